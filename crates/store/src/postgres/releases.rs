//! Releases, deploys, upload chunks and the files assembled from them, in PostgreSQL. Contents
//! are `bytea` values (a chunk is small; an assembled file is bounded by the API).

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::PgStore;
use crate::{
    Artifact, ArtifactKind, Deploy, GroupId, NewArtifact, NewDeploy, OrgId, ProjectId, Release, ReleaseActivity, ReleaseChange,
    Result, StoreError, checks, now,
};

const RELEASE_COLUMNS: &str = "id, org_id, version, ref, url, created_at, released_at";
const ARTIFACT_COLUMNS: &str = "id, org_id, name, kind, debug_id, release, dist, headers, sha1, size, created_at";
const DEPLOY_COLUMNS: &str = "id, release_id, environment, name, url, started_at, finished_at";

fn release_from(r: &Row) -> Release {
    Release {
        id: r.get(0),
        org_id: OrgId(r.get(1)),
        version: r.get(2),
        reference: r.get(3),
        url: r.get(4),
        created_at: r.get(5),
        released_at: r.get(6),
        projects: Vec::new(),
    }
}

fn artifact_from(r: &Row) -> Artifact {
    Artifact {
        id: r.get(0),
        org_id: OrgId(r.get(1)),
        name: r.get(2),
        kind: ArtifactKind::parse(r.get(3)),
        debug_id: r.get(4),
        release: r.get(5),
        dist: r.get(6),
        headers: r.get(7),
        sha1: r.get(8),
        size: r.get::<_, i64>(9).max(0) as u64,
        created_at: r.get(10),
    }
}

fn deploy_from(r: &Row) -> Deploy {
    Deploy {
        id: r.get(0),
        release_id: r.get(1),
        environment: r.get(2),
        name: r.get(3),
        url: r.get(4),
        started_at: r.get(5),
        finished_at: r.get(6),
    }
}

async fn with_projects(c: &impl GenericClient, mut rel: Release) -> Result<Release> {
    rel.projects = c
        .query("SELECT project_id FROM release_projects WHERE release_id = $1 ORDER BY project_id", &[&rel.id])
        .await?
        .iter()
        .map(|r| ProjectId(r.get(0)))
        .collect();
    Ok(rel)
}

/// A missing organisation (a broken reference) as `NotFound`.
fn org_missing(e: tokio_postgres::Error, org: OrgId) -> StoreError {
    match super::classify(e) {
        StoreError::Conflict(_) => StoreError::NotFound(format!("organisation {}", org.0)),
        e => e,
    }
}

impl crate::Releases for PgStore {
    fn upsert_release(&self, org: OrgId, version: &str, change: &ReleaseChange) -> Result<(Release, bool)> {
        let version = checks::release_version(version)?;
        self.with(async |c| {
            let tx = c.transaction().await?;
            let found = tx.query_opt("SELECT id FROM releases WHERE org_id = $1 AND version = $2 FOR UPDATE", &[&org.0, &version]).await?;
            let (id, created): (i64, bool) = match found {
                Some(r) => {
                    let id: i64 = r.get(0);
                    tx.execute(
                        "UPDATE releases SET ref = COALESCE($2, ref), url = COALESCE($3, url), released_at = COALESCE($4, released_at)
                         WHERE id = $1",
                        &[&id, &change.reference, &change.url, &change.released_at],
                    )
                    .await?;
                    (id, false)
                }
                None => {
                    let r = tx
                        .query_one(
                            "INSERT INTO releases (org_id, version, ref, url, created_at, released_at) VALUES ($1, $2, $3, $4, $5, $6)
                             RETURNING id",
                            &[&org.0, &version, &change.reference, &change.url, &now(), &change.released_at],
                        )
                        .await
                        .map_err(|e| org_missing(e, org))?;
                    (r.get(0), true)
                }
            };
            for p in &change.projects {
                let same_org: bool =
                    tx.query_one("SELECT EXISTS (SELECT 1 FROM projects WHERE id = $1 AND org_id = $2)", &[&p.0, &org.0]).await?.get(0);
                if !same_org {
                    return Err(StoreError::Invalid(format!("project {} is not one of the organisation's", p.0)));
                }
                tx.execute("INSERT INTO release_projects (release_id, project_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", &[&id, &p.0]).await?;
            }
            let rel = release_from(&tx.query_one(&format!("SELECT {RELEASE_COLUMNS} FROM releases WHERE id = $1"), &[&id]).await?);
            let rel = with_projects(&tx, rel).await?;
            tx.commit().await?;
            Ok((rel, created))
        })
    }

    fn release(&self, org: OrgId, version: &str) -> Result<Option<Release>> {
        self.with(async |c| {
            let row = c.query_opt(&format!("SELECT {RELEASE_COLUMNS} FROM releases WHERE org_id = $1 AND version = $2"), &[&org.0, &version]).await?;
            match row {
                Some(r) => Ok(Some(with_projects(&*c, release_from(&r)).await?)),
                None => Ok(None),
            }
        })
    }

    fn releases(&self, org: OrgId, project: Option<ProjectId>, after: Option<i64>, limit: usize) -> Result<Vec<Release>> {
        self.with(async |c| {
            let rows = c
                .query(
                    &format!(
                        "SELECT {RELEASE_COLUMNS} FROM releases r WHERE org_id = $1 AND id < $2
                         AND ($3::bigint IS NULL OR EXISTS (SELECT 1 FROM release_projects rp WHERE rp.release_id = r.id AND rp.project_id = $3))
                         ORDER BY id DESC LIMIT $4"
                    ),
                    &[&org.0, &after.unwrap_or(i64::MAX), &project.map(|p| p.0), &(limit as i64)],
                )
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(with_projects(&*c, release_from(r)).await?);
            }
            Ok(out)
        })
    }

    fn delete_release(&self, org: OrgId, version: &str) -> Result<bool> {
        self.with(async |c| {
            let tx = c.transaction().await?;
            tx.execute("DELETE FROM artifacts WHERE org_id = $1 AND release = $2", &[&org.0, &version]).await?;
            let n = tx.execute("DELETE FROM releases WHERE org_id = $1 AND version = $2", &[&org.0, &version]).await?;
            tx.commit().await?;
            Ok(n > 0)
        })
    }

    fn create_deploy(&self, release: i64, d: &NewDeploy) -> Result<Deploy> {
        let env = checks::environment(&d.environment)?;
        self.with(async |c| {
            let r = c
                .query_one(
                    &format!(
                        "INSERT INTO deploys (release_id, environment, name, url, started_at, finished_at) VALUES ($1, $2, $3, $4, $5, $6)
                         RETURNING {DEPLOY_COLUMNS}"
                    ),
                    &[&release, &env, &d.name, &d.url, &d.started_at, &d.finished_at.unwrap_or_else(now)],
                )
                .await
                .map_err(|e| match super::classify(e) {
                    StoreError::Conflict(_) => StoreError::NotFound(format!("release {release}")),
                    e => e,
                })?;
            Ok(deploy_from(&r))
        })
    }

    fn deploys(&self, release: i64) -> Result<Vec<Deploy>> {
        self.with(async |c| {
            Ok(c.query(&format!("SELECT {DEPLOY_COLUMNS} FROM deploys WHERE release_id = $1 ORDER BY id DESC"), &[&release])
                .await?
                .iter()
                .map(deploy_from)
                .collect())
        })
    }

    fn put_chunk(&self, org: OrgId, sha1: &str, data: &[u8]) -> Result<()> {
        let actual = checks::chunk_sha1(sha1, data)?;
        self.with(async |c| {
            c.execute(
                "INSERT INTO upload_chunks (org_id, sha1, data, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[&org.0, &actual, &data, &now()],
            )
            .await
            .map_err(|e| org_missing(e, org))?;
            Ok(())
        })
    }

    fn missing_chunks(&self, org: OrgId, sha1s: &[String]) -> Result<Vec<String>> {
        self.with(async |c| {
            let lower: Vec<String> = sha1s.iter().map(|s| s.to_ascii_lowercase()).collect();
            let have: std::collections::HashSet<String> = c
                .query("SELECT sha1 FROM upload_chunks WHERE org_id = $1 AND sha1 = ANY($2)", &[&org.0, &lower])
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let mut out: Vec<String> = Vec::new();
            for s in sha1s {
                if !have.contains(&s.to_ascii_lowercase()) && !out.contains(s) {
                    out.push(s.clone());
                }
            }
            Ok(out)
        })
    }

    fn chunk(&self, org: OrgId, sha1: &str) -> Result<Option<Vec<u8>>> {
        self.with(async |c| {
            Ok(c.query_opt("SELECT data FROM upload_chunks WHERE org_id = $1 AND sha1 = $2", &[&org.0, &sha1.to_ascii_lowercase()])
                .await?
                .map(|r| r.get(0)))
        })
    }

    fn delete_chunks(&self, org: OrgId, sha1s: &[String]) -> Result<()> {
        self.with(async |c| {
            let lower: Vec<String> = sha1s.iter().map(|s| s.to_ascii_lowercase()).collect();
            c.execute("DELETE FROM upload_chunks WHERE org_id = $1 AND sha1 = ANY($2)", &[&org.0, &lower]).await?;
            Ok(())
        })
    }

    fn delete_stale_chunks(&self, before: f64) -> Result<u64> {
        self.with(async |c| Ok(c.execute("DELETE FROM upload_chunks WHERE created_at < $1", &[&before]).await?))
    }

    fn put_artifacts(&self, org: OrgId, files: &[NewArtifact]) -> Result<()> {
        self.with(async |c| {
            let tx = c.transaction().await?;
            let at = now();
            for f in files {
                let debug_id = f.debug_id.as_deref().map(str::to_ascii_lowercase);
                if let Some(id) = &debug_id {
                    tx.execute("DELETE FROM artifacts WHERE org_id = $1 AND debug_id = $2 AND kind = $3", &[&org.0, id, &f.kind.as_str()]).await?;
                }
                if let Some(rel) = &f.release {
                    tx.execute(
                        "DELETE FROM artifacts WHERE org_id = $1 AND release = $2 AND dist IS NOT DISTINCT FROM $3 AND name = $4 AND debug_id IS NULL",
                        &[&org.0, rel, &f.dist, &f.name],
                    )
                    .await?;
                }
                tx.execute(
                    "INSERT INTO artifacts (org_id, name, kind, debug_id, release, dist, headers, sha1, size, data, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                    &[
                        &org.0,
                        &f.name,
                        &f.kind.as_str(),
                        &debug_id,
                        &f.release,
                        &f.dist,
                        &f.headers,
                        &checks::sha1_hex(&f.data),
                        &(f.data.len() as i64),
                        &f.data,
                        &at,
                    ],
                )
                .await
                .map_err(|e| org_missing(e, org))?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn artifact_by_debug_id(&self, org: OrgId, debug_id: &str, kind: ArtifactKind) -> Result<Option<(Artifact, Vec<u8>)>> {
        self.with(async |c| {
            let row = c
                .query_opt(
                    &format!("SELECT {ARTIFACT_COLUMNS}, data FROM artifacts WHERE org_id = $1 AND debug_id = $2 AND kind = $3 ORDER BY id DESC LIMIT 1"),
                    &[&org.0, &debug_id.to_ascii_lowercase(), &kind.as_str()],
                )
                .await?;
            Ok(row.map(|r| (artifact_from(&r), r.get(11))))
        })
    }

    fn artifact_by_name(&self, org: OrgId, release: &str, dist: Option<&str>, name: &str) -> Result<Option<(Artifact, Vec<u8>)>> {
        self.with(async |c| {
            let row = c
                .query_opt(
                    &format!(
                        "SELECT {ARTIFACT_COLUMNS}, data FROM artifacts
                         WHERE org_id = $1 AND release = $2 AND dist IS NOT DISTINCT FROM $3 AND name = $4 ORDER BY id DESC LIMIT 1"
                    ),
                    &[&org.0, &release, &dist, &name],
                )
                .await?;
            Ok(row.map(|r| (artifact_from(&r), r.get(11))))
        })
    }

    fn release_artifacts(&self, org: OrgId, release: &str) -> Result<Vec<Artifact>> {
        self.with(async |c| {
            Ok(c.query(&format!("SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE org_id = $1 AND release = $2 ORDER BY name, id"), &[&org.0, &release])
                .await?
                .iter()
                .map(artifact_from)
                .collect())
        })
    }

    fn release_activity(&self, project: ProjectId, version: &str) -> Result<ReleaseActivity> {
        self.with(async |c| {
            let r = c
                .query_one(
                    "SELECT MIN(t.first_seen), MAX(t.last_seen), SUM(t.count)::bigint FROM group_tags t JOIN groups g ON g.id = t.group_id
                     WHERE t.key = 'release' AND t.value = $2 AND g.project_id = $1",
                    &[&project.0, &version],
                )
                .await?;
            let (first_seen, last_seen, events): (Option<f64>, Option<f64>, Option<i64>) = (r.get(0), r.get(1), r.get(2));
            let new_groups = c
                .query(
                    "SELECT t.group_id FROM group_tags t JOIN groups g ON g.id = t.group_id
                     WHERE t.key = 'release' AND t.value = $2 AND g.project_id = $1
                     AND NOT EXISTS (SELECT 1 FROM group_tags o WHERE o.group_id = t.group_id AND o.key = 'release'
                                     AND o.value <> t.value AND o.first_seen < t.first_seen)
                     ORDER BY t.first_seen DESC LIMIT 100",
                    &[&project.0, &version],
                )
                .await?
                .iter()
                .map(|r| GroupId(r.get(0)))
                .collect();
            Ok(ReleaseActivity { first_seen, last_seen, events: events.unwrap_or(0).max(0) as u64, new_groups })
        })
    }

    fn group_releases(&self, group: GroupId) -> Result<(Option<String>, Option<String>)> {
        self.with(async |c| {
            let first = c
                .query_opt("SELECT value FROM group_tags WHERE group_id = $1 AND key = 'release' ORDER BY first_seen, value LIMIT 1", &[&group.0])
                .await?
                .map(|r| r.get(0));
            let last = c
                .query_opt(
                    "SELECT value FROM group_tags WHERE group_id = $1 AND key = 'release' ORDER BY last_seen DESC, value DESC LIMIT 1",
                    &[&group.0],
                )
                .await?
                .map(|r| r.get(0));
            Ok((first, last))
        })
    }
}
