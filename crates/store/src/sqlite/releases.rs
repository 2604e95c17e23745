//! Releases, deploys, upload chunks and the files assembled from them, in SQLite. Contents are
//! blobs in the same file (a chunk is small; an assembled file is bounded by the API).

use rusqlite::{params, OptionalExtension, Row};

use super::SqliteStore;
use crate::{
    now, Artifact, ArtifactKind, GroupId, ReleaseActivity, Deploy, NewArtifact, NewDeploy, OrgId, ProjectId, Release, ReleaseChange, Result, StoreError,
};

const RELEASE_COLUMNS: &str = "id, org_id, version, ref, url, created_at, released_at";
const ARTIFACT_COLUMNS: &str = "id, org_id, name, kind, debug_id, release, dist, headers, sha1, size, created_at";

fn release_from(r: &Row<'_>) -> rusqlite::Result<Release> {
    Ok(Release {
        id: r.get(0)?,
        org_id: OrgId(r.get(1)?),
        version: r.get(2)?,
        reference: r.get(3)?,
        url: r.get(4)?,
        created_at: r.get(5)?,
        released_at: r.get(6)?,
        projects: Vec::new(),
    })
}

fn artifact_from(r: &Row<'_>) -> rusqlite::Result<Artifact> {
    Ok(Artifact {
        id: r.get(0)?,
        org_id: OrgId(r.get(1)?),
        name: r.get(2)?,
        kind: ArtifactKind::parse(&r.get::<_, String>(3)?),
        debug_id: r.get(4)?,
        release: r.get(5)?,
        dist: r.get(6)?,
        headers: r.get(7)?,
        sha1: r.get(8)?,
        size: r.get::<_, i64>(9)? as u64,
        created_at: r.get(10)?,
    })
}

fn deploy_from(r: &Row<'_>) -> rusqlite::Result<Deploy> {
    Ok(Deploy {
        id: r.get(0)?,
        release_id: r.get(1)?,
        environment: r.get(2)?,
        name: r.get(3)?,
        url: r.get(4)?,
        started_at: r.get(5)?,
        finished_at: r.get(6)?,
    })
}

fn with_projects(conn: &rusqlite::Connection, mut rel: Release) -> Result<Release> {
    let mut st = conn.prepare_cached("SELECT project_id FROM release_projects WHERE release_id = ?1 ORDER BY project_id")?;
    rel.projects = st.query_map([rel.id], |r| Ok(ProjectId(r.get(0)?)))?.collect::<rusqlite::Result<_>>()?;
    Ok(rel)
}

impl crate::Releases for SqliteStore {
    fn upsert_release(&self, org: OrgId, version: &str, change: &ReleaseChange) -> Result<(Release, bool)> {
        let version = crate::checks::release_version(version)?;
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let found: Option<i64> =
            tx.query_row("SELECT id FROM releases WHERE org_id = ?1 AND version = ?2", params![org.0, version], |r| r.get(0)).optional()?;
        let (id, created) = match found {
            Some(id) => {
                tx.execute(
                    "UPDATE releases SET ref = COALESCE(?2, ref), url = COALESCE(?3, url), released_at = COALESCE(?4, released_at)
                     WHERE id = ?1",
                    params![id, change.reference, change.url, change.released_at],
                )?;
                (id, false)
            }
            None => {
                tx.execute(
                    "INSERT INTO releases (org_id, version, ref, url, created_at, released_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![org.0, version, change.reference, change.url, now(), change.released_at],
                )
                .map_err(|e| match StoreError::from(e) {
                    StoreError::Conflict(_) => StoreError::NotFound(format!("organisation {}", org.0)),
                    e => e,
                })?;
                (tx.last_insert_rowid(), true)
            }
        };
        for p in &change.projects {
            let same_org: bool =
                tx.query_row("SELECT EXISTS (SELECT 1 FROM projects WHERE id = ?1 AND org_id = ?2)", params![p.0, org.0], |r| r.get(0))?;
            if !same_org {
                return Err(StoreError::Invalid(format!("project {} is not one of the organisation's", p.0)));
            }
            tx.execute("INSERT OR IGNORE INTO release_projects (release_id, project_id) VALUES (?1, ?2)", params![id, p.0])?;
        }
        let rel = tx.query_row(&format!("SELECT {RELEASE_COLUMNS} FROM releases WHERE id = ?1"), [id], release_from)?;
        let rel = with_projects(&tx, rel)?;
        tx.commit()?;
        Ok((rel, created))
    }

    fn release(&self, org: OrgId, version: &str) -> Result<Option<Release>> {
        let conn = self.conn()?;
        let rel = conn
            .query_row(
                &format!("SELECT {RELEASE_COLUMNS} FROM releases WHERE org_id = ?1 AND version = ?2"),
                params![org.0, version],
                release_from,
            )
            .optional()?;
        rel.map(|r| with_projects(&conn, r)).transpose()
    }

    fn releases(&self, org: OrgId, project: Option<ProjectId>, after: Option<i64>, limit: usize) -> Result<Vec<Release>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(&format!(
            "SELECT {RELEASE_COLUMNS} FROM releases r WHERE org_id = ?1 AND id < ?2
             AND (?3 IS NULL OR EXISTS (SELECT 1 FROM release_projects rp WHERE rp.release_id = r.id AND rp.project_id = ?3))
             ORDER BY id DESC LIMIT ?4"
        ))?;
        let rows = st
            .query_map(params![org.0, after.unwrap_or(i64::MAX), project.map(|p| p.0), limit as i64], release_from)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(|r| with_projects(&conn, r)).collect()
    }

    fn delete_release(&self, org: OrgId, version: &str) -> Result<bool> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM artifacts WHERE org_id = ?1 AND release = ?2", params![org.0, version])?;
        let n = tx.execute("DELETE FROM releases WHERE org_id = ?1 AND version = ?2", params![org.0, version])?;
        tx.commit()?;
        Ok(n > 0)
    }

    fn create_deploy(&self, release: i64, d: &NewDeploy) -> Result<Deploy> {
        let env = crate::checks::environment(&d.environment)?;
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO deploys (release_id, environment, name, url, started_at, finished_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![release, env, d.name, d.url, d.started_at, d.finished_at.unwrap_or_else(now)],
        )
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => StoreError::NotFound(format!("release {release}")),
            e => e,
        })?;
        let id = conn.last_insert_rowid();
        Ok(conn.query_row(
            "SELECT id, release_id, environment, name, url, started_at, finished_at FROM deploys WHERE id = ?1",
            [id],
            deploy_from,
        )?)
    }

    fn deploys(&self, release: i64) -> Result<Vec<Deploy>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(
            "SELECT id, release_id, environment, name, url, started_at, finished_at FROM deploys WHERE release_id = ?1 ORDER BY id DESC",
        )?;
        Ok(st.query_map([release], deploy_from)?.collect::<rusqlite::Result<_>>()?)
    }

    fn put_chunk(&self, org: OrgId, sha1: &str, data: &[u8]) -> Result<()> {
        let actual = crate::checks::chunk_sha1(sha1, data)?;
        let conn = self.conn()?;
        conn.execute(
            "INSERT OR IGNORE INTO upload_chunks (org_id, sha1, data, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![org.0, actual, data, now()],
        )?;
        Ok(())
    }

    fn missing_chunks(&self, org: OrgId, sha1s: &[String]) -> Result<Vec<String>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM upload_chunks WHERE org_id = ?1 AND sha1 = ?2)")?;
        let mut out = Vec::new();
        for s in sha1s {
            let has: bool = st.query_row(params![org.0, s.to_ascii_lowercase()], |r| r.get(0))?;
            if !has && !out.contains(s) {
                out.push(s.clone());
            }
        }
        Ok(out)
    }

    fn chunk(&self, org: OrgId, sha1: &str) -> Result<Option<Vec<u8>>> {
        let conn = self.conn()?;
        Ok(conn
            .query_row("SELECT data FROM upload_chunks WHERE org_id = ?1 AND sha1 = ?2", params![org.0, sha1.to_ascii_lowercase()], |r| r.get(0))
            .optional()?)
    }

    fn delete_chunks(&self, org: OrgId, sha1s: &[String]) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for s in sha1s {
            tx.execute("DELETE FROM upload_chunks WHERE org_id = ?1 AND sha1 = ?2", params![org.0, s.to_ascii_lowercase()])?;
        }
        tx.commit()?;
        Ok(())
    }

    fn delete_stale_chunks(&self, before: f64) -> Result<u64> {
        let conn = self.conn()?;
        Ok(conn.execute("DELETE FROM upload_chunks WHERE created_at < ?1", params![before])? as u64)
    }

    fn put_artifacts(&self, org: OrgId, files: &[NewArtifact]) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let at = now();
        for f in files {
            let debug_id = f.debug_id.as_deref().map(str::to_ascii_lowercase);
            if let Some(id) = &debug_id {
                tx.execute("DELETE FROM artifacts WHERE org_id = ?1 AND debug_id = ?2 AND kind = ?3", params![org.0, id, f.kind.as_str()])?;
            }
            if let Some(rel) = &f.release {
                tx.execute(
                    "DELETE FROM artifacts WHERE org_id = ?1 AND release = ?2 AND dist IS ?3 AND name = ?4 AND debug_id IS NULL",
                    params![org.0, rel, f.dist, f.name],
                )?;
            }
            tx.execute(
                "INSERT INTO artifacts (org_id, name, kind, debug_id, release, dist, headers, sha1, size, data, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![org.0, f.name, f.kind.as_str(), debug_id, f.release, f.dist, f.headers, crate::checks::sha1_hex(&f.data), f.data.len() as i64, f.data, at],
            )
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => StoreError::NotFound(format!("organisation {}", org.0)),
                e => e,
            })?;
        }
        tx.commit()?;
        Ok(())
    }

    fn artifact_by_debug_id(&self, org: OrgId, debug_id: &str, kind: ArtifactKind) -> Result<Option<(Artifact, Vec<u8>)>> {
        let conn = self.conn()?;
        Ok(conn
            .query_row(
                &format!("SELECT {ARTIFACT_COLUMNS}, data FROM artifacts WHERE org_id = ?1 AND debug_id = ?2 AND kind = ?3 ORDER BY id DESC LIMIT 1"),
                params![org.0, debug_id.to_ascii_lowercase(), kind.as_str()],
                |r| Ok((artifact_from(r)?, r.get(11)?)),
            )
            .optional()?)
    }

    fn artifact_by_name(&self, org: OrgId, release: &str, dist: Option<&str>, name: &str) -> Result<Option<(Artifact, Vec<u8>)>> {
        let conn = self.conn()?;
        Ok(conn
            .query_row(
                &format!(
                    "SELECT {ARTIFACT_COLUMNS}, data FROM artifacts WHERE org_id = ?1 AND release = ?2 AND dist IS ?3 AND name = ?4
                     ORDER BY id DESC LIMIT 1"
                ),
                params![org.0, release, dist, name],
                |r| Ok((artifact_from(r)?, r.get(11)?)),
            )
            .optional()?)
    }

    fn release_artifacts(&self, org: OrgId, release: &str) -> Result<Vec<Artifact>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(&format!("SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE org_id = ?1 AND release = ?2 ORDER BY name, id"))?;
        Ok(st.query_map(params![org.0, release], artifact_from)?.collect::<rusqlite::Result<_>>()?)
    }

    fn release_activity(&self, project: ProjectId, version: &str) -> Result<ReleaseActivity> {
        let conn = self.conn()?;
        let (first_seen, last_seen, events): (Option<f64>, Option<f64>, Option<i64>) = conn.query_row(
            "SELECT MIN(t.first_seen), MAX(t.last_seen), SUM(t.count) FROM group_tags t JOIN groups g ON g.id = t.group_id
             WHERE t.key = 'release' AND t.value = ?2 AND g.project_id = ?1",
            params![project.0, version],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let mut st = conn.prepare_cached(
            "SELECT t.group_id FROM group_tags t JOIN groups g ON g.id = t.group_id
             WHERE t.key = 'release' AND t.value = ?2 AND g.project_id = ?1
             AND NOT EXISTS (SELECT 1 FROM group_tags o WHERE o.group_id = t.group_id AND o.key = 'release'
                             AND o.value <> t.value AND o.first_seen < t.first_seen)
             ORDER BY t.first_seen DESC LIMIT 100",
        )?;
        let new_groups = st.query_map(params![project.0, version], |r| Ok(GroupId(r.get(0)?)))?.collect::<rusqlite::Result<_>>()?;
        Ok(ReleaseActivity { first_seen, last_seen, events: events.unwrap_or(0) as u64, new_groups })
    }

    fn group_releases(&self, group: GroupId) -> Result<(Option<String>, Option<String>)> {
        let conn = self.conn()?;
        let first = conn
            .query_row(
                "SELECT value FROM group_tags WHERE group_id = ?1 AND key = 'release' ORDER BY first_seen, value LIMIT 1",
                [group.0],
                |r| r.get(0),
            )
            .optional()?;
        let last = conn
            .query_row(
                "SELECT value FROM group_tags WHERE group_id = ?1 AND key = 'release' ORDER BY last_seen DESC, value DESC LIMIT 1",
                [group.0],
                |r| r.get(0),
            )
            .optional()?;
        Ok((first, last))
    }
}
