//! The Store interface every backend implements, and the one bridge from async code to it.
//!
//! The interface is blocking: SQLite is a library call on the calling thread, and a backend
//! over the network can block on its own pool as well. Async callers go through [`off_thread`]
//! (one place that moves work to a blocking thread); the event writer is the exception, since
//! ingest waits on it for every request: [`EventSink::write`] only queues and hands back a
//! [`WriteTicket`] to await.

use std::sync::Arc;

use tokio::sync::oneshot;

use crate::{
    Activity, ActivityEntry, Cleaned, Retention, StorageUsage, Trimmed, ClientKey, Delivery, EventId, EventRow, GroupId, GroupRow, GroupStatus,
    HistogramBar, ItemCounts, NewEvent, Project, ProjectId, Result, Session, StoreError, StreamPage, StreamQuery,
    SpoolMark, TagCount, Trending, User, UserId, WriteOutcome, Enqueue, ApiToken, AuditEntry, Invitation, Member,
    Membership, NewToken, OrgId, Organization, Role, SsoConfig, Team, TeamId, TokenId, FeedbackRow, NewFeedback,
    Artifact, Deploy, NewArtifact, NewDeploy, Release, ReleaseChange,
    ClientReportSum, NewClientReport,
    LogQuery, LogRow, NewLog,
};

/// Batched, durable writes of events. A backend has one writer per process; what it answers
/// `Stored` has been committed.
pub trait EventSink: Send + Sync {
    /// Queues events (and counts of non-event items) for the next batch. The ticket resolves
    /// once that batch is committed, with one outcome per event, in order.
    fn write(&self, events: Vec<NewEvent>, counts: ItemCounts) -> Result<WriteTicket> {
        self.write_batch(WriteBatch { events, counts, ..WriteBatch::default() })
    }
    /// The same, and `mark` (how far a spool's records are applied) is committed in the same
    /// transaction: after a crash, [`Maintenance::spool_mark`] says exactly what is stored.
    fn write_through(&self, events: Vec<NewEvent>, counts: ItemCounts, mark: Option<SpoolMark>) -> Result<WriteTicket> {
        self.write_batch(WriteBatch { events, counts, mark, ..WriteBatch::default() })
    }
    /// Everything one write carries, committed in one transaction: the ticket resolves with one
    /// outcome per event, in order.
    fn write_batch(&self, batch: WriteBatch) -> Result<WriteTicket>;
    /// Writes everything queued so far, then stops.
    fn shutdown(&self);
}

/// One write: events, counts of the other items, the other items that are stored, and how far
/// a spool is applied.
#[derive(Debug, Default)]
pub struct WriteBatch {
    pub events: Vec<NewEvent>,
    pub counts: ItemCounts,
    pub items: NewItems,
    pub mark: Option<SpoolMark>,
    /// Queued records (the shared spool) this write stores, deleted in its transaction.
    pub claim: Option<crate::QueueClaim>,
}

/// The items other than events that are stored, each kind in its own table, committed in the
/// same transaction as the events they came with. A new kind of item is a field here, a section
/// of the spool record (`ingest::record`) and a write in each backend's writer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewItems {
    /// User feedback (`feedback` and `user_report` items, the user-feedback endpoint).
    pub feedback: Vec<NewFeedback>,
    /// The SDKs' own discard counts (`client_report` items).
    pub client_reports: Vec<NewClientReport>,
    /// Release health: session updates (`session` items) and the SDKs' counts (`sessions`).
    pub sessions: Vec<crate::NewSession>,
    pub session_counts: Vec<crate::NewSessionCounts>,
    /// Structured logs (`log` items).
    pub logs: Vec<NewLog>,
    /// Cron monitors' check-ins (`check_in` items).
    pub check_ins: Vec<crate::NewCheckIn>,
}

impl NewItems {
    pub fn is_empty(&self) -> bool {
        let NewItems { feedback, client_reports, sessions, session_counts, logs, check_ins } = self;
        feedback.is_empty() && client_reports.is_empty() && sessions.is_empty() && session_counts.is_empty() && logs.is_empty() && check_ins.is_empty()
    }

    /// Moves every item of `other` into `self`.
    pub fn append(&mut self, other: &mut NewItems) {
        let NewItems { feedback, client_reports, sessions, session_counts, logs, check_ins } = other;
        self.feedback.append(feedback);
        self.client_reports.append(client_reports);
        self.sessions.append(sessions);
        self.session_counts.append(session_counts);
        self.logs.append(logs);
        self.check_ins.append(check_ins);
    }

    /// How many rows these items write, for the writer's batch size.
    pub fn len(&self) -> usize {
        let NewItems { feedback, client_reports, sessions, session_counts, logs, check_ins } = self;
        feedback.len() + client_reports.len() + sessions.len() + session_counts.len() + logs.len() + check_ins.len()
    }
}

/// The answer to one [`EventSink::write`], once its batch is committed.
pub struct WriteTicket(oneshot::Receiver<Result<Vec<WriteOutcome>>>);

impl WriteTicket {
    /// A ticket and the sender that answers it (for backends).
    pub fn new() -> (oneshot::Sender<Result<Vec<WriteOutcome>>>, WriteTicket) {
        let (tx, rx) = oneshot::channel();
        (tx, WriteTicket(rx))
    }

    pub async fn wait(self) -> Result<Vec<WriteOutcome>> {
        self.0.await.map_err(|_| StoreError::Unavailable("the store's writer has stopped".into()))?
    }

    /// The same as [`wait`](Self::wait), for threads outside an async runtime.
    pub fn wait_blocking(self) -> Result<Vec<WriteOutcome>> {
        self.0.blocking_recv().map_err(|_| StoreError::Unavailable("the store's writer has stopped".into()))?
    }
}

/// Reads of groups, events and their statistics.
pub trait Reads: Send + Sync {
    /// One page of a project's stream (also what `sentry groups` lists).
    fn stream(&self, q: &StreamQuery) -> Result<StreamPage>;
    fn group(&self, id: GroupId) -> Result<Option<GroupRow>>;
    /// Who a group is assigned to (`None`: nobody). NotFound for no such group.
    fn group_assignee(&self, group: GroupId) -> Result<Option<crate::Assignee>>;
    /// The most frequent values per tag key of a group (at most `per_key` each), keys sorted.
    fn group_tags(&self, group: GroupId, per_key: usize) -> Result<Vec<(String, Vec<TagCount>)>>;
    /// A group's events, newest first, from just before `before` (an [`EventRow::position`]).
    fn group_events(&self, group: GroupId, before: Option<i64>, limit: usize) -> Result<Vec<EventRow>>;
    /// The events around the one at `position` in its group, to step through them.
    fn event_nav(&self, group: GroupId, position: i64) -> Result<crate::EventNav>;
    /// One event of a project by its id.
    fn event(&self, project: ProjectId, id: &EventId) -> Result<Option<EventRow>>;
    /// How many events a project has stored.
    fn event_count(&self, project: ProjectId) -> Result<u64>;
    /// The life of a group, oldest first.
    fn activity(&self, group: GroupId) -> Result<Vec<Activity>>;
    /// Accepted non-event items per type, summed over all days.
    fn item_counts(&self, project: ProjectId) -> Result<Vec<(String, u64)>>;
    /// A group's events in the interval (all time without one), from the chart buckets.
    fn group_interval_count(&self, group: GroupId, since: Option<f64>, now: f64) -> Result<u64>;
    /// A group's events with a timestamp in minute `from_minute` (unix minutes) or later.
    fn group_count_since(&self, group: GroupId, from_minute: i64) -> Result<u64>;
    /// A group's events over [since, now] in `points` equal parts.
    fn group_series(&self, group: GroupId, since: f64, now: f64, points: usize) -> Result<Vec<u64>>;
    /// The events of some projects over [since, now] in `points` equal parts.
    fn project_series(&self, projects: &[ProjectId], since: f64, now: f64, points: usize) -> Result<Vec<u64>>;
    /// The most frequent values of a tag key in a project (the choices of a filter widget).
    fn project_tag_values(&self, project: ProjectId, key: &str, limit: usize) -> Result<Vec<TagCount>>;
    /// A group's duration histogram, bar by bar (empty without durations).
    fn duration_histogram(&self, group: GroupId) -> Result<Vec<HistogramBar>>;
    /// Unresolved groups first seen since `since`, newest first, across projects; with
    /// `environments`, only those with events in one of them since then.
    fn new_groups(&self, projects: &[ProjectId], since: f64, environments: &[String], limit: usize) -> Result<Vec<GroupRow>>;
    /// Unresolved groups whose last 15 minutes ran hottest against their last 24 hours; with
    /// `environments`, only those with events in one of them in the last 15 minutes (the
    /// counts stay those of every environment: the buckets don't record it).
    fn trending(&self, projects: &[ProjectId], now: f64, environments: &[String], limit: usize) -> Result<Vec<Trending>>;
}

/// Projects, client keys and group status.
pub trait Admin: Send + Sync {
    /// Creates a project and its first client key. A taken slug is a `Conflict`.
    fn create_project(&self, name: &str) -> Result<(Project, ClientKey)>;
    fn projects(&self) -> Result<Vec<Project>>;
    fn project(&self, id: ProjectId) -> Result<Option<Project>>;
    fn project_by_slug(&self, slug: &str) -> Result<Option<Project>>;
    /// A new display name; the slug, and so the URLs, stay.
    fn rename_project(&self, id: ProjectId, name: &str) -> Result<()>;
    fn create_key(&self, project: ProjectId, label: Option<&str>, rate_limit_per_minute: Option<u64>) -> Result<ClientKey>;
    /// The keys of a project, oldest first, revoked ones included.
    fn keys(&self, project: ProjectId) -> Result<Vec<ClientKey>>;
    fn key(&self, public_key: &str) -> Result<Option<ClientKey>>;
    /// From then on the key is refused. False when there is no such key.
    fn revoke_key(&self, public_key: &str) -> Result<bool>;
    /// Resolves, ignores or reopens a group, and records it in the group's activity.
    fn set_group_status(&self, group: GroupId, status: GroupStatus) -> Result<()>;
    /// Assigns a group to a member or a team, or to nobody, and records `assigned` or
    /// `unassigned` in its activity. False (and nothing recorded) when it already was so.
    fn assign_group(&self, group: GroupId, to: Option<crate::Assignee>) -> Result<bool> {
        self.assign_group_by(group, to, None)
    }
    /// [`Admin::assign_group`], recording who did it (`None`: the system). The activity's data
    /// names the assignee for people (`to`: an email or `#team`) and for the notifications
    /// (`user` or `team`, their ids).
    fn assign_group_by(&self, group: GroupId, to: Option<crate::Assignee>, actor: Option<crate::UserId>) -> Result<bool>;
    /// Deletes a project as everyone sees it, at once: it leaves every list and lookup, its
    /// slug is free again, its keys are revoked (events sent with them are refused). Its issues
    /// and events go afterwards, a chunk at a time: [`Admin::purge_deleted_projects`].
    fn delete_project(&self, id: ProjectId) -> Result<()>;
    /// Deletes up to `groups` issues (with their events) of deleted projects, then, once none
    /// is left, the rest of their data. Returns how many issues it deleted: 0 when done.
    fn purge_deleted_projects(&self, groups: usize) -> Result<u64>;
}

/// Deletes what deleted projects left, [`crate::BULK_CHUNK`] issues at a time, for at most
/// `rounds` chunks (`None`: until nothing is left). Returns the issues deleted.
pub fn purge_deleted_projects(store: &dyn Store, rounds: Option<usize>) -> Result<u64> {
    let mut total = 0;
    for _ in 0..rounds.unwrap_or(usize::MAX) {
        let n = store.purge_deleted_projects(crate::BULK_CHUNK)?;
        total += n;
        if n == 0 {
            break;
        }
    }
    Ok(total)
}

/// What a project keeps beside its issues (each table with a `project_id`), deleted with it.
pub(crate) const PROJECT_DATA: [&str; 14] = [
    "project_minutes", "project_hours", "project_tags", "item_counts", "feedback", "client_reports", "release_projects", "notify_outbox", "ownership_rules",
    "release_sessions", "release_session_counts", "logs", "monitor_runs", "monitors",
];

/// Users, browser sessions and the one-time setup links. Tokens arrive hashed.
pub trait Accounts: Send + Sync {
    /// A taken email (case-insensitively) is a `Conflict`.
    fn create_user(&self, email: &str, password_hash: &str, is_admin: bool) -> Result<User>;
    /// Sets a user's password hash and ends their sessions.
    fn set_password(&self, user: UserId, password_hash: &str) -> Result<()>;
    /// Deletes a user: their memberships, sessions and tokens end, the issues assigned to them
    /// are unassigned. The last owner of an organisation can't be deleted (`Invalid`).
    fn delete_user(&self, user: UserId) -> Result<()>;
    fn user_count(&self) -> Result<u64>;
    fn users(&self) -> Result<Vec<User>>;
    fn user(&self, id: UserId) -> Result<Option<User>>;
    /// A user and their password hash, by email (case-insensitive).
    fn user_for_login(&self, email: &str) -> Result<Option<(User, String)>>;
    fn create_session(&self, user: UserId, token_hash: &str, csrf_token: &str, ttl_secs: f64) -> Result<()>;
    /// The live (not expired) session with this token hash.
    fn session(&self, token_hash: &str) -> Result<Option<Session>>;
    fn delete_session(&self, token_hash: &str) -> Result<()>;
    /// Replaces any unused setup link by a new one, valid for `ttl_secs`.
    fn create_setup_token(&self, token_hash: &str, ttl_secs: f64) -> Result<()>;
    /// Not used, not expired, and still no user exists.
    fn setup_token_valid(&self, token_hash: &str) -> Result<bool>;
    /// Uses a setup link: creates the first (admin) user, owner of the first organisation, atomically, so two visitors racing
    /// with the same link can't both succeed.
    fn use_setup_token(&self, token_hash: &str, email: &str, password_hash: &str) -> Result<User>;
}

/// Organisations, their teams and members, API tokens, invitations and the audit log. A
/// fresh store has one organisation, `default`, with one team, `default`: projects made with
/// [`Admin::create_project`] go there, and so does the first user, made by the setup link, as
/// its owner. A user made with [`Accounts::create_user`] is in no organisation until added.
pub trait Orgs: Send + Sync {
    /// Every organisation, oldest first.
    fn organizations(&self) -> Result<Vec<Organization>>;
    fn organization_by_slug(&self, slug: &str) -> Result<Option<Organization>>;
    /// A new organisation with a team of the same name; `owner` becomes its owner and a member
    /// of that team. A taken slug is a `Conflict`.
    fn create_organization(&self, name: &str, owner: UserId) -> Result<Organization>;
    /// An organisation's teams, oldest first.
    fn teams(&self, org: OrgId) -> Result<Vec<Team>>;
    /// A taken slug (within the organisation) is a `Conflict`.
    fn create_team(&self, org: OrgId, name: &str) -> Result<Team>;
    /// Adds a member of the organisation to one of its teams (nothing when already in it).
    fn join_team(&self, team: TeamId, user: UserId) -> Result<()>;
    /// The organisations a user is a member of, oldest first, with role and teams.
    fn memberships(&self, user: UserId) -> Result<Vec<Membership>>;
    /// An organisation's members, oldest first.
    fn members(&self, org: OrgId) -> Result<Vec<Member>>;
    /// Adds a user to an organisation (and to `team`, one of its teams). Already a member:
    /// `Conflict`.
    fn add_member(&self, org: OrgId, user: UserId, role: Role, team: Option<TeamId>) -> Result<()>;
    /// Changes a member's role. The last owner can't stop being one (`Invalid`).
    fn set_role(&self, org: OrgId, user: UserId, role: Role) -> Result<()>;
    /// Removes a member from the organisation and its teams, and revokes their personal
    /// tokens there. The last owner can't be removed (`Invalid`).
    fn remove_member(&self, org: OrgId, user: UserId) -> Result<()>;
    /// The teams a project belongs to.
    fn project_teams(&self, project: ProjectId) -> Result<Vec<TeamId>>;
    /// Creates a project of `team`'s organisation, belonging to `team`, with its first key.
    fn create_project_in(&self, team: TeamId, name: &str) -> Result<(Project, ClientKey)>;
    /// An organisation's projects, oldest first.
    fn org_projects(&self, org: OrgId) -> Result<Vec<Project>>;

    /// Records an invitation link (hashed), valid for `ttl_secs`, for one use.
    fn create_invitation(&self, token_hash: &str, org: OrgId, email: &str, role: Role, team: Option<TeamId>, ttl_secs: f64) -> Result<()>;
    /// The invitation, when not used and not expired.
    fn invitation(&self, token_hash: &str) -> Result<Option<Invitation>>;
    /// Uses an invitation, atomically (two visitors can't both use one link): the user joins
    /// its organisation with its role and team. Used or expired: `Invalid`.
    fn accept_invitation(&self, token_hash: &str, user: UserId) -> Result<Organization>;

    fn create_token(&self, token: &NewToken<'_>) -> Result<ApiToken>;
    /// The live (not revoked) token with this hash; records that it was used now.
    fn use_token(&self, token_hash: &str) -> Result<Option<ApiToken>>;
    /// An organisation's tokens, newest first, revoked ones included.
    fn tokens(&self, org: OrgId) -> Result<Vec<ApiToken>>;
    /// From then on the token is refused. False when the organisation has no such token.
    fn revoke_token(&self, org: OrgId, id: TokenId) -> Result<bool>;

    /// Sets (or, with `None`, removes) an organisation's single sign-on.
    fn set_sso(&self, org: OrgId, sso: Option<&SsoConfig>) -> Result<()>;
    fn sso(&self, org: OrgId) -> Result<Option<SsoConfig>>;

    fn record_audit(&self, org: OrgId, actor: &str, action: &str, target: &str) -> Result<()>;
    /// The newest `limit` entries of an organisation's audit log, newest first.
    fn audit_log(&self, org: OrgId, limit: usize) -> Result<Vec<AuditEntry>>;
}

/// The notification outbox and the engine's bookkeeping. Deliveries are *claimed* with a
/// lease before they are sent: while a claim holds, no other claimer gets the row, so several
/// processes can share one outbox without sending twice.
pub trait Outbox: Send + Sync {
    /// The position of cursor `name`; `None` when it was never set.
    fn notify_cursor(&self, name: &str) -> Result<Option<i64>>;
    /// The newest activity id (0 when there is none), where a new cursor starts.
    fn last_activity_id(&self) -> Result<i64>;
    /// Activity after id `after`, oldest first, at most `limit` rows.
    fn activity_after(&self, after: i64, limit: usize) -> Result<Vec<ActivityEntry>>;
    /// When `rule` last fired for `group`.
    fn last_fired(&self, rule: &str, group: GroupId) -> Result<Option<f64>>;
    /// Queues deliveries, marks the rules that fired and moves the cursor, atomically. A
    /// delivery whose (firing, action) is already queued is left out. Returns how many were
    /// queued.
    fn enqueue_deliveries(&self, e: &Enqueue) -> Result<usize>;
    /// Claims up to `limit` deliveries due at `now` (pending, not expired, not claimed by a
    /// live lease) for `claimer` until `now + lease_secs`, oldest first.
    fn claim_deliveries(&self, claimer: &str, now: f64, lease_secs: f64, limit: usize) -> Result<Vec<Delivery>>;
    /// The earliest next attempt of a pending delivery, to know how long to sleep.
    fn next_delivery_at(&self) -> Result<Option<f64>>;
    /// Every delivery, newest first.
    fn deliveries(&self, limit: usize) -> Result<Vec<Delivery>>;
    /// Records a successful attempt and releases the claim.
    fn delivery_done(&self, id: i64) -> Result<()>;
    /// Records a failed attempt: retried at `retry_at`, or given up for good when `None`.
    fn delivery_failed(&self, id: i64, error: &str, retry_at: Option<f64>) -> Result<()>;
    /// Gives up on pending deliveries whose time is over. Returns how many.
    fn expire_deliveries(&self, now: f64) -> Result<usize>;
    /// After a restart: pending deliveries not claimed by a live lease are due now (their
    /// backoff was for the last run). Returns how many.
    fn resume_deliveries(&self, now: f64) -> Result<usize>;
}

/// Upgrades and retention.
pub trait Maintenance: Send + Sync {
    /// The schema version the data is at, and the newest this build knows.
    fn schema_version(&self) -> Result<(i64, i64)>;
    /// Deletes what `retention` says is past keeping: events and user feedback received
    /// before their project's cutoff, then groups last seen before it (a group whose events
    /// all go stays while it was seen since). Group counts stay lifetime totals. Calls
    /// `progress` with the events deleted so far after each step.
    fn cleanup(&self, retention: &Retention, progress: &mut dyn FnMut(u64)) -> Result<Cleaned>;
    /// How many events `cleanup` would delete now (for a progress bar; reads every event).
    fn expired_events(&self, retention: &Retention) -> Result<u64>;
    /// What the data takes, in all and per project (reads every event).
    fn storage_usage(&self) -> Result<StorageUsage>;
    /// Keeps the store under `max_bytes`: while it is over, deletes the oldest events of any
    /// project (groups, their counts and history stay). A backend may also do this on its own
    /// after each write once [`Maintenance::set_size_cap`] named a cap.
    fn trim_to(&self, max_bytes: u64) -> Result<Trimmed>;
    /// A cap the writer keeps after each batch (0: none), where the backend can do so cheaply.
    fn set_size_cap(&self, max_bytes: u64);
    /// How far the spool named `spool` is applied (its last [`SpoolMark`]), if ever.
    fn spool_mark(&self, spool: &str) -> Result<Option<u64>>;
}

/// Releases, their deploys, and what `sentry-cli` uploads for them: chunks (by SHA-1, per
/// organisation) and the files assembled from them (source maps and minified sources).
pub trait Releases: Send + Sync {
    /// Creates a release, or, when the organisation has it already, adds `change`'s projects
    /// and fields to it. True when it was created.
    fn upsert_release(&self, org: OrgId, version: &str, change: &ReleaseChange) -> Result<(Release, bool)>;
    fn release(&self, org: OrgId, version: &str) -> Result<Option<Release>>;
    /// An organisation's releases (of `project` only, when given), newest first, from just
    /// after `after` (a [`Release::id`]), at most `limit`.
    fn releases(&self, org: OrgId, project: Option<ProjectId>, after: Option<i64>, limit: usize) -> Result<Vec<Release>>;
    /// Deletes a release with its deploys and files. False when there is no such release.
    fn delete_release(&self, org: OrgId, version: &str) -> Result<bool>;
    fn create_deploy(&self, release: i64, deploy: &NewDeploy) -> Result<Deploy>;
    /// A release's deploys, newest first.
    fn deploys(&self, release: i64) -> Result<Vec<Deploy>>;

    /// Stores a chunk under its (checked) SHA-1; one already stored changes nothing.
    fn put_chunk(&self, org: OrgId, sha1: &str, data: &[u8]) -> Result<()>;
    /// Which of `sha1s` the organisation has no chunk for, in their order.
    fn missing_chunks(&self, org: OrgId, sha1s: &[String]) -> Result<Vec<String>>;
    fn chunk(&self, org: OrgId, sha1: &str) -> Result<Option<Vec<u8>>>;
    /// Forgets chunks (once a file was assembled from them).
    fn delete_chunks(&self, org: OrgId, sha1s: &[String]) -> Result<()>;
    /// Forgets the chunks of every organisation uploaded before `before` (unix seconds), which
    /// were never assembled (see [`crate::UNASSEMBLED_CHUNK_SECS`]). Returns how many went.
    fn delete_stale_chunks(&self, before: f64) -> Result<u64>;

    /// Stores files; a file with the same (debug id, kind), or the same (release, dist, name),
    /// replaces the one before.
    fn put_artifacts(&self, org: OrgId, files: &[NewArtifact]) -> Result<()>;
    /// The newest file of `kind` with this debug id, and its content.
    fn artifact_by_debug_id(&self, org: OrgId, debug_id: &str, kind: crate::ArtifactKind) -> Result<Option<(Artifact, Vec<u8>)>>;
    /// The file of a release (and dist) by its name, and its content.
    fn artifact_by_name(&self, org: OrgId, release: &str, dist: Option<&str>, name: &str) -> Result<Option<(Artifact, Vec<u8>)>>;
    /// A release's files, by name.
    fn release_artifacts(&self, org: OrgId, release: &str) -> Result<Vec<Artifact>>;

    /// A release's events in a project (their `release` tag): first and last seen, how many,
    /// and the issues it brought.
    fn release_activity(&self, project: ProjectId, version: &str) -> Result<crate::ReleaseActivity>;
    /// The release of an issue's first event and of its last one (by the `release` tag).
    fn group_releases(&self, group: GroupId) -> Result<(Option<String>, Option<String>)>;
}

/// A whole backend: what callers hold, as `Arc<dyn Store>`.
/// User feedback, newest first.
/// Release health, from the sessions SDKs report (`crate::health`).
pub trait Health {
    /// Each release's sessions received since `since`, by release name.
    fn release_health(&self, project: ProjectId, since: f64) -> Result<Vec<crate::ReleaseHealth>>;
    /// The same by UTC day, of one release or (`None`) of every release together.
    fn health_by_day(&self, project: ProjectId, release: Option<&str>, since: f64) -> Result<Vec<crate::HealthDay>>;
}

pub trait Feedback {
    /// A project's feedback.
    fn feedback(&self, project: ProjectId, limit: usize) -> Result<Vec<FeedbackRow>>;
    /// The feedback about the events of one issue.
    fn group_feedback(&self, group: GroupId, limit: usize) -> Result<Vec<FeedbackRow>>;
    /// What the project's SDKs said they dropped, summed by reason and category, largest first.
    fn client_reports(&self, project: ProjectId) -> Result<Vec<ClientReportSum>>;
}

/// Working an issue: status changes by whom, snoozes, comments, merging and deleting.
pub trait Triage: Send + Sync {
    /// Sets the status of groups (at most [`crate::BULK_CHUNK`]) in one transaction, each
    /// change on its group's timeline with `actor`; ignoring takes `snooze` (its counts are
    /// from now on). Groups already in that status (with no new snooze) are left alone.
    /// Returns how many changed; an unknown group is `NotFound`.
    fn change_status(&self, groups: &[GroupId], status: GroupStatus, snooze: &crate::Snooze, actor: Option<UserId>) -> Result<usize>;
    /// Resolves groups (at most [`crate::BULK_CHUNK`]) in a release (see
    /// [`crate::ReleaseResolution::of`]): a later event of an older release leaves each resolved, one
    /// of that release or a newer one (or of no release) is a regression. On each timeline
    /// with `actor`. Returns how many changed; an unknown group is `NotFound`.
    fn resolve_in_release(&self, groups: &[GroupId], target: &crate::InRelease, actor: Option<UserId>) -> Result<usize>;
    /// A group's resolution in a release, while it is resolved in one.
    fn resolution(&self, group: GroupId) -> Result<Option<crate::ReleaseResolution>>;
    /// Adds a comment to a group's timeline, with the members it mentions (to notify them).
    fn add_note(&self, group: GroupId, actor: UserId, text: &str, mentions: &[UserId]) -> Result<Activity>;
    /// Brings back ignored groups whose snooze time is over at `now` (with the reason on their
    /// timeline). Returns them.
    fn wake_snoozed(&self, now: f64) -> Result<Vec<GroupId>>;
    /// Merges `from` into `into` (all of one project): their events, counts and hashes move,
    /// and later events of those hashes go to `into`; `from` are deleted.
    fn merge_groups(&self, into: GroupId, from: &[GroupId], actor: Option<UserId>) -> Result<()>;
    /// Splits the events of one of a group's hashes off into a new group (returned), which
    /// gets that hash's later events. A group's only hash can't be split off (`Invalid`).
    fn unmerge(&self, group: GroupId, hash: &str, actor: Option<UserId>) -> Result<GroupId>;
    /// A group's hashes, its own first.
    fn group_hashes(&self, group: GroupId) -> Result<Vec<crate::GroupHash>>;
    /// Deletes groups (at most [`crate::BULK_CHUNK`]) with their events, counts and timeline.
    /// Returns how many events went.
    fn delete_groups(&self, groups: &[GroupId]) -> Result<u64>;
}

/// A project's ownership rules (`crate::owners`), and the assignments they make.
pub trait Ownership: Send + Sync {
    /// The project's rules text as saved; `None` when it never had any.
    fn ownership_rules(&self, project: ProjectId) -> Result<Option<String>>;
    /// Replaces the project's rules text (checked by the caller). NotFound for no such project.
    fn set_ownership_rules(&self, project: ProjectId, text: &str) -> Result<()>;
    /// Assigns a group that has no assignee, by the ownership rule `rule` (its text), and
    /// records `assigned` with the rule in its activity. False (nothing changed) when the group
    /// already has an assignee: a rule never overrides someone's choice.
    fn assign_by_rule(&self, group: GroupId, to: crate::Assignee, rule: &str) -> Result<bool>;
}

/// Structured logs (`crate::logs`): read per project, and deleted past their own retention.
pub trait Logs: Send + Sync {
    /// A project's logs matching `q`, newest first (time, then id); `Invalid` for an attribute
    /// name no query can hold.
    fn logs(&self, q: &LogQuery) -> Result<Vec<LogRow>>;
    /// Deletes logs received before `cutoff` (unix seconds), a chunk at a time. Returns how many.
    fn delete_logs_before(&self, cutoff: f64) -> Result<u64>;
}

/// Cron monitors and their runs (`crates/store/src/monitors.rs`): the writer stores check-ins
/// with the batch; the scheduler asks what is overdue. Marking is one conditional update per
/// monitor or run, so with several nodes each failure is recorded once.
pub trait Monitors: Send + Sync {
    /// A project's monitors, by slug.
    fn monitors(&self, project: ProjectId) -> Result<Vec<crate::MonitorRow>>;
    /// A monitor's runs, newest first.
    fn monitor_runs(&self, monitor: i64, limit: usize) -> Result<Vec<crate::MonitorRunRow>>;
    /// Every monitor whose next check-in plus its margin is before `now` gets a missed run
    /// and its next expected time moved on. Returns how many were missed.
    fn mark_missed(&self, now: f64) -> Result<usize>;
    /// Every run in progress past its monitor's longest run at `now` times out. Returns how many.
    fn mark_timeouts(&self, now: f64) -> Result<usize>;
    /// Failed runs (error, missed, timeout) not yet [reported](Self::mark_reported), oldest first.
    fn unreported_failures(&self, limit: usize) -> Result<Vec<crate::MonitorFailure>>;
    /// Records that these runs' failures are stored as events.
    fn mark_reported(&self, runs: &[i64]) -> Result<()>;
}

pub trait Store: Reads + Admin + Accounts + Orgs + Outbox + Maintenance + Feedback + Releases + Triage + Ownership + Health + Logs + Monitors {
    /// Starts this process's event writer; events are written only through it.
    fn start_writer(&self, batch_max: usize) -> Result<Arc<dyn EventSink>>;
    /// The spool every node shares, where the backend has one (PostgreSQL); `None` where each
    /// node keeps its own on local disk.
    fn queue(&self) -> Option<Arc<dyn crate::Queue>> {
        None
    }
}

/// Runs blocking store work (and whatever goes with it) off the async threads: the one bridge
/// from async code to the blocking interface.
pub async fn off_thread<T, E>(f: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, E>
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(StoreError::Backend(format!("a store task failed: {e}")).into()))
}
