//! The JSON the REST API answers with, in Sentry's field names: types of the API's own, built
//! from store values, so that a change in the store never changes what clients read.

use serde::Serialize;
use store::{ApiToken, ClientKey, Deploy, GroupRow, GroupStatus, Member, Organization, Project, Release, Team};

use crate::access::Actor;

/// A time as Sentry writes it: RFC 3339, UTC, milliseconds.
pub fn date(ts: f64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos((ts * 1e9) as i128).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let t = t.replace_nanosecond(t.millisecond() as u32 * 1_000_000).unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

#[derive(Serialize)]
pub struct AuthInfo {
    pub user: Option<ApiUser>,
    pub auth: Auth,
}

#[derive(Serialize)]
pub struct Auth {
    pub scopes: Vec<String>,
}

#[derive(Serialize)]
pub struct ApiUser {
    pub id: String,
    pub name: String,
    pub username: String,
    pub email: String,
}

impl AuthInfo {
    pub fn of(actor: &Actor, token: &ApiToken) -> AuthInfo {
        AuthInfo { user: actor.user.as_ref().map(ApiUser::from), auth: Auth { scopes: token.scopes.clone() } }
    }
}

impl From<&store::User> for ApiUser {
    fn from(u: &store::User) -> ApiUser {
        ApiUser { id: u.id.0.to_string(), name: u.email.clone(), username: u.email.clone(), email: u.email.clone() }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiOrganization {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub date_created: String,
    pub status: Status,
    pub is_early_adopter: bool,
    #[serde(rename = "require2FA")]
    pub require_2fa: bool,
    pub avatar: Avatar,
    pub features: Vec<String>,
}

#[derive(Serialize)]
pub struct Status {
    pub id: &'static str,
    pub name: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Avatar {
    pub avatar_type: &'static str,
    pub avatar_uuid: Option<String>,
}

impl From<&Organization> for ApiOrganization {
    fn from(o: &Organization) -> ApiOrganization {
        ApiOrganization {
            id: o.id.to_string(),
            slug: o.slug.clone(),
            name: o.name.clone(),
            date_created: date(o.created_at),
            status: Status { id: "active", name: "active" },
            is_early_adopter: false,
            require_2fa: false,
            avatar: Avatar { avatar_type: "letter_avatar", avatar_uuid: None },
            features: Vec::new(),
        }
    }
}

#[derive(Serialize, Clone)]
pub struct TeamRef {
    pub id: String,
    pub slug: String,
    pub name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiProject {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub platform: Option<String>,
    pub date_created: String,
    pub is_bookmarked: bool,
    pub is_member: bool,
    pub has_access: bool,
    pub status: &'static str,
    pub features: Vec<String>,
    pub first_event: Option<String>,
    pub team: Option<TeamRef>,
    pub teams: Vec<TeamRef>,
    /// The environments its events were sent from, most events first.
    pub environments: Vec<String>,
    /// Its newest release, as `{"version"}`.
    pub latest_release: Option<serde_json::Value>,
}

impl ApiProject {
    pub fn of(p: &Project, teams: &[Team], member: bool) -> ApiProject {
        let teams: Vec<TeamRef> = teams.iter().map(|t| TeamRef { id: t.id.to_string(), slug: t.slug.clone(), name: t.name.clone() }).collect();
        ApiProject {
            id: p.id.to_string(),
            slug: p.slug.clone(),
            name: p.name.clone(),
            platform: None,
            date_created: date(p.created_at),
            is_bookmarked: false,
            is_member: member,
            has_access: true,
            status: "active",
            features: Vec::new(),
            first_event: None,
            team: teams.first().cloned(),
            teams,
            environments: Vec::new(),
            latest_release: None,
        }
    }

    /// With what the project has seen: its environments and its newest release.
    pub fn seen(mut self, store: &dyn store::Store, p: &Project) -> store::Result<ApiProject> {
        self.environments = store.project_tag_values(p.id, "environment", 100)?.into_iter().map(|t| t.value).collect();
        self.latest_release = store.releases(p.org_id, Some(p.id), None, 1)?.first().map(|r| serde_json::json!({ "version": r.version }));
        Ok(self)
    }
}

/// A project as a release names it: Sentry gives its id as a number here, and its new issues.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseProject {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub new_groups: u64,
    pub platform: Option<String>,
    pub platforms: Vec<String>,
}

/// A project as a release or an issue names it.
#[derive(Serialize)]
pub struct ProjectRef {
    pub id: String,
    pub slug: String,
    pub name: String,
}

impl From<&Project> for ProjectRef {
    fn from(p: &Project) -> ProjectRef {
        ProjectRef { id: p.id.to_string(), slug: p.slug.clone(), name: p.name.clone() }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiTeam {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub date_created: Option<String>,
    pub is_member: bool,
    pub member_count: usize,
    pub project_count: usize,
    pub has_access: bool,
}

impl ApiTeam {
    pub fn of(t: &Team, members: usize, mine: bool, projects: usize) -> ApiTeam {
        ApiTeam {
            id: t.id.to_string(),
            slug: t.slug.clone(),
            name: t.name.clone(),
            date_created: None,
            is_member: mine,
            member_count: members,
            project_count: projects,
            has_access: true,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiMember {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub role_name: String,
    pub org_role: String,
    pub pending: bool,
    pub expired: bool,
    pub date_created: String,
    pub user: ApiUser,
    pub teams: Vec<String>,
}

impl From<&Member> for ApiMember {
    fn from(m: &Member) -> ApiMember {
        let role = m.role.as_str().to_string();
        let mut name = role.clone();
        if let Some(first) = name.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        ApiMember {
            id: m.user.id.0.to_string(),
            email: m.user.email.clone(),
            name: m.user.email.clone(),
            role: role.clone(),
            role_name: name,
            org_role: role,
            pending: false,
            expired: false,
            date_created: date(m.joined_at),
            user: ApiUser::from(&m.user),
            teams: m.teams.iter().map(|t| t.to_string()).collect(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub label: String,
    pub public: String,
    pub secret: Option<String>,
    pub project_id: i64,
    pub is_active: bool,
    pub rate_limit: Option<RateLimit>,
    pub dsn: KeyDsn,
    pub date_created: String,
}

#[derive(Serialize)]
pub struct RateLimit {
    pub window: u64,
    pub count: u64,
}

#[derive(Serialize)]
pub struct KeyDsn {
    pub public: String,
    pub secret: String,
    pub csp: String,
    pub security: String,
    pub minidump: String,
    pub cdn: String,
}

impl ApiKey {
    /// The key with its DSN on this server; `None` when the server's URL makes no DSN.
    pub fn of(k: &ClientKey, public_url: &str) -> Option<ApiKey> {
        let dsn = crate::dashboard::settings::dsn(public_url, &k.public_key, k.project_id).ok()?;
        let base = format!("{public_url}/api/{}", k.project_id);
        let label = k.label.clone().unwrap_or_else(|| "Default".into());
        Some(ApiKey {
            id: k.public_key.clone(),
            name: label.clone(),
            label,
            public: k.public_key.clone(),
            secret: None,
            project_id: k.project_id.0,
            is_active: k.is_active(),
            rate_limit: k.rate_limit_per_minute.map(|c| RateLimit { window: 60, count: c }),
            dsn: KeyDsn {
                public: dsn.clone(),
                secret: dsn,
                csp: format!("{base}/csp-report/?sentry_key={}", k.public_key),
                security: format!("{base}/security/?sentry_key={}", k.public_key),
                minidump: format!("{base}/minidump/?sentry_key={}", k.public_key),
                cdn: String::new(),
            },
            date_created: date(k.created_at),
        })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiRelease {
    pub id: i64,
    pub version: String,
    pub short_version: String,
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    pub url: Option<String>,
    pub date_created: String,
    pub date_released: Option<String>,
    pub last_event: Option<String>,
    pub first_event: Option<String>,
    pub new_groups: u64,
    pub commit_count: u64,
    pub deploy_count: usize,
    pub last_deploy: Option<ApiDeploy>,
    pub authors: Vec<String>,
    pub projects: Vec<ReleaseProject>,
    pub data: serde_json::Value,
}

impl ApiRelease {
    pub fn of(r: &Release, projects: Vec<ReleaseProject>, deploys: &[Deploy]) -> ApiRelease {
        ApiRelease {
            id: r.id,
            version: r.version.clone(),
            short_version: r.version.chars().take(12).collect(),
            reference: r.reference.clone(),
            url: r.url.clone(),
            date_created: date(r.created_at),
            date_released: r.released_at.map(date),
            last_event: None,
            first_event: None,
            new_groups: 0,
            commit_count: 0,
            deploy_count: deploys.len(),
            last_deploy: deploys.first().map(ApiDeploy::from),
            authors: Vec::new(),
            projects,
            data: serde_json::json!({}),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiDeploy {
    pub id: String,
    pub environment: String,
    pub name: Option<String>,
    pub url: Option<String>,
    pub date_started: Option<String>,
    pub date_finished: String,
}

impl From<&Deploy> for ApiDeploy {
    fn from(d: &Deploy) -> ApiDeploy {
        ApiDeploy {
            id: d.id.to_string(),
            environment: d.environment.clone(),
            name: d.name.clone(),
            url: d.url.clone(),
            date_started: d.started_at.map(date),
            date_finished: date(d.finished_at),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiFile {
    pub id: String,
    pub name: String,
    pub dist: Option<String>,
    pub headers: serde_json::Value,
    pub size: u64,
    pub sha1: String,
    pub date_created: String,
}

impl From<&store::Artifact> for ApiFile {
    fn from(a: &store::Artifact) -> ApiFile {
        ApiFile {
            id: a.id.to_string(),
            name: a.name.clone(),
            dist: a.dist.clone(),
            headers: a.headers.as_deref().and_then(|h| serde_json::from_str(h).ok()).unwrap_or_else(|| serde_json::json!({})),
            size: a.size,
            sha1: a.sha1.clone(),
            date_created: date(a.created_at),
        }
    }
}

/// Sentry's status names.
pub fn status_name(s: GroupStatus) -> &'static str {
    match s {
        GroupStatus::Unresolved => "unresolved",
        GroupStatus::Resolved => "resolved",
        GroupStatus::Ignored => "ignored",
    }
}

/// An issue's assignee as Sentry shapes it: `{"type": "user", "id": "3", "name": …, "email": …}`
/// or `{"type": "team", "id": "2", "name": "ops"}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ApiAssignee {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl ApiAssignee {
    /// The assignee with its name from the organisation's teams and members (`None` when it is
    /// no longer one of them).
    pub fn of(a: store::Assignee, ctx: &crate::dashboard::search::SearchContext) -> Option<ApiAssignee> {
        match a {
            store::Assignee::User(u) => ctx.members.iter().find(|(_, id)| *id == u).map(|(email, _)| ApiAssignee {
                kind: "user",
                id: u.0.to_string(),
                name: email.clone(),
                email: Some(email.clone()),
            }),
            store::Assignee::Team(t) => ctx
                .teams
                .iter()
                .find(|(_, id)| *id == t)
                .map(|(slug, _)| ApiAssignee { kind: "team", id: t.0.to_string(), name: slug.clone(), email: None }),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiIssue {
    pub id: String,
    pub short_id: String,
    pub title: String,
    pub culprit: String,
    pub permalink: String,
    pub logger: Option<String>,
    pub level: String,
    pub status: &'static str,
    pub status_details: serde_json::Value,
    pub substatus: Option<&'static str>,
    pub is_public: bool,
    pub platform: Option<String>,
    pub project: ProjectRef,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub metadata: serde_json::Value,
    pub num_comments: u64,
    pub assigned_to: Option<ApiAssignee>,
    pub is_bookmarked: bool,
    pub is_subscribed: bool,
    pub has_seen: bool,
    pub annotations: Vec<String>,
    pub count: String,
    pub user_count: u64,
    pub first_seen: String,
    pub last_seen: String,
}

impl ApiIssue {
    pub fn of(g: &GroupRow, project: &Project, permalink: String, users: u64) -> ApiIssue {
        let kind = if g.kind == "exception" { "error" } else { "default" };
        let (ty, value) = g.title.split_once(": ").unwrap_or((&g.title, ""));
        ApiIssue {
            id: g.id.0.to_string(),
            short_id: format!("{}-{}", project.slug.to_ascii_uppercase(), g.id.0),
            title: g.title.clone(),
            culprit: g.culprit.clone(),
            permalink,
            logger: g.logger.clone(),
            level: g.level.clone(),
            status: status_name(g.status),
            status_details: serde_json::json!({}),
            substatus: match g.status {
                GroupStatus::Unresolved => Some("ongoing"),
                GroupStatus::Ignored => Some("archived_forever"),
                GroupStatus::Resolved => None,
            },
            is_public: false,
            platform: None,
            project: ProjectRef::from(project),
            kind,
            metadata: if kind == "error" {
                serde_json::json!({"type": ty, "value": value, "title": g.title})
            } else {
                serde_json::json!({"title": g.title})
            },
            num_comments: 0,
            assigned_to: None,
            is_bookmarked: false,
            is_subscribed: false,
            has_seen: false,
            annotations: Vec::new(),
            count: g.count.to_string(),
            user_count: users,
            first_seen: date(g.first_seen),
            last_seen: date(g.last_seen),
        }
    }
}
