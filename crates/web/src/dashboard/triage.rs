//! Working issues on the dashboard: an issue's timeline (who did what and when, comments in
//! Markdown), comments that mention members, ignoring with a snooze, unmerging a hash, and the
//! stream's bulk actions — on the issues ticked, or on every issue that matches the search, in
//! the background with a progress page.
//!
//! The pieces the REST API shares (Markdown, mentions, snooze limits, the bulk work itself) are
//! `pub(crate)` here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use askama::Template;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect};
use axum::Form;
use serde::Deserialize;
use store::{Activity, GroupId, GroupStatus, Member, OrgId, ProjectId, Snooze, Store, UserId};

use super::format;
use super::pages::{nav, Nav};
use super::{blocking, render, PageError, PageResult};
use crate::access::extract::ProjectScope;
use crate::access::Action;
use crate::AppState;

// ---------------------------------------------------------------------------------------------
// Markdown and mentions
// ---------------------------------------------------------------------------------------------

/// A comment's Markdown as HTML that is safe to show: raw HTML in it is shown as text, links
/// open with `rel="noopener noreferrer nofollow"` and only to http, https, mailto or a path,
/// images become links.
pub(crate) fn markdown(text: &str) -> String {
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
    let events = Parser::new_ext(text, Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES).map(|e| match e {
        Event::Html(h) | Event::InlineHtml(h) => Event::Text(h),
        Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
            let href = attribute(safe_url(&dest_url));
            Event::Html(format!("<a href=\"{href}\" rel=\"noopener noreferrer nofollow\">").into())
        }
        Event::End(TagEnd::Link | TagEnd::Image) => Event::Html("</a>".into()),
        e => e,
    });
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, events);
    out
}

/// Text for a double-quoted HTML attribute.
fn attribute(s: &str) -> String {
    s.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;").replace('\'', "&#39;")
}

/// The link target kept: web and mail links and paths; anything else (`javascript:`, `data:`)
/// goes nowhere.
fn safe_url(url: &str) -> &str {
    let lower = url.trim().to_ascii_lowercase();
    let scheme = lower.split_once(':').map(|(s, _)| s).filter(|s| !s.contains('/') && !s.contains('?') && !s.contains('#'));
    match scheme {
        None => url,
        Some("http" | "https" | "mailto") => url,
        Some(_) => "#",
    }
}

/// The members a comment mentions: `@` and their email (`@ann@example.com`), each once.
pub(crate) fn mentions(text: &str, members: &[Member]) -> Vec<UserId> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices('@') {
        if i > 0 && !text[..i].ends_with(|c: char| c.is_whitespace() || "([{,;:".contains(c)) {
            continue;
        }
        let word: String = text[i + 1..].chars().take_while(|c| !c.is_whitespace() && !",;:!?()[]{}<>\"'".contains(*c)).collect();
        let word = word.trim_end_matches('.');
        if let Some(m) = members.iter().find(|m| m.user.email.eq_ignore_ascii_case(word))
            && !out.contains(&m.user.id)
        {
            out.push(m.user.id);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Snoozes
// ---------------------------------------------------------------------------------------------

/// The longest snooze by time, and the largest counts one waits for.
const MAX_SNOOZE_SECS: f64 = 366.0 * 86400.0;
const MAX_SNOOZE_COUNT: u64 = 1_000_000_000;

/// A snooze from what a person chose: for some minutes, until a time (unix seconds), for a
/// number of events or of users; nothing of it is "for good". Out-of-range values are refused
/// with a reason.
pub(crate) fn snooze_of(minutes: Option<f64>, until: Option<f64>, count: Option<u64>, users: Option<u64>, now: f64) -> Result<Snooze, String> {
    let until = match (minutes, until) {
        (Some(_), Some(_)) => return Err("choose either a duration or an end time, not both".into()),
        (Some(m), None) if !(m.is_finite() && m > 0.0 && m * 60.0 <= MAX_SNOOZE_SECS) => {
            return Err("a snooze lasts between a minute and a year".into());
        }
        (Some(m), None) => Some(now + m * 60.0),
        (None, Some(t)) if !(t.is_finite() && t > now && t - now <= MAX_SNOOZE_SECS) => {
            return Err("the end of a snooze is a time in the coming year".into());
        }
        (None, t) => t,
    };
    for (n, what) in [(count, "events"), (users, "users")] {
        if n.is_some_and(|n| n == 0 || n > MAX_SNOOZE_COUNT) {
            return Err(format!("the number of {what} to wait for is between 1 and {MAX_SNOOZE_COUNT}"));
        }
    }
    Ok(Snooze { until, count, users })
}

/// `2026-12-31`, `2026-12-31T18:00` (UTC) or RFC 3339, as unix seconds.
pub(crate) fn parse_time(s: &str) -> Option<f64> {
    use time::format_description::well_known::Rfc3339;
    let s = s.trim();
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t.unix_timestamp() as f64);
    }
    let with_time = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    if let Ok(t) = time::PrimitiveDateTime::parse(s, &with_time) {
        return Some(t.assume_utc().unix_timestamp() as f64);
    }
    let date = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &date).ok().map(|d| d.midnight().assume_utc().unix_timestamp() as f64)
}

// ---------------------------------------------------------------------------------------------
// The timeline
// ---------------------------------------------------------------------------------------------

/// One line of an issue's timeline.
pub struct TimelineItem {
    pub kind: String,
    /// What happened, in words ("resolved", "merged 2 issues into this one").
    pub what: String,
    /// Who, or empty for what the system did.
    pub who: String,
    pub ago: String,
    pub utc: String,
    /// A comment's text, rendered ([`markdown`]); empty otherwise.
    pub body: String,
}

/// The words of an activity row, and a comment's text.
/// A resolution in a release, in words for the issue page: "in release 2.0", "in the next
/// release (after 1.9)".
pub(crate) fn resolved_in(r: &store::ReleaseResolution) -> String {
    match (&r.release, &r.after) {
        (Some(release), _) => format!("in release {release}"),
        (None, Some(after)) => format!("in the next release (after {after})"),
        (None, None) => "in the next release".into(),
    }
}

pub(crate) fn describe(a: &Activity, issue_href: &dyn Fn(i64) -> String) -> (String, Option<String>) {
    let data: serde_json::Value = a.data.as_deref().and_then(|d| serde_json::from_str(d).ok()).unwrap_or_default();
    let what = match a.kind.as_str() {
        store::ACTIVITY_CREATED => "first seen".to_string(),
        store::ACTIVITY_REGRESSION => "came back: a new event after it was resolved (regression)".into(),
        store::ACTIVITY_RESOLVED => match (data["inRelease"].as_str(), data["inNextRelease"].as_bool()) {
            (Some(release), _) => format!("resolved it in release {release}"),
            (None, Some(true)) => match data["after"].as_str() {
                Some(after) => format!("resolved it in the next release (after {after})"),
                None => "resolved it in the next release".into(),
            },
            _ => "resolved".into(),
        },
        store::ACTIVITY_REOPENED => "reopened".into(),
        store::ACTIVITY_IGNORED => {
            let mut until = Vec::new();
            if let Some(t) = data["ignoreUntil"].as_f64() {
                until.push(format!("until {}", format::utc(t)));
            }
            if let Some(n) = data["ignoreCount"].as_u64() {
                until.push(format!("until {n} more events"));
            }
            if let Some(n) = data["ignoreUserCount"].as_u64() {
                until.push(format!("until {n} more users"));
            }
            if until.is_empty() { "ignored".into() } else { format!("ignored {}", until.join(" or ")) }
        }
        store::ACTIVITY_UNIGNORED => match data["reason"].as_str() {
            Some("count") => "came back: it had the events it was ignored for".into(),
            Some("users") => "came back: it reached the users it was ignored for".into(),
            _ => "came back: the time it was ignored for is over".into(),
        },
        store::ACTIVITY_NOTE => "commented".into(),
        store::ACTIVITY_ASSIGNED => match data["to"].as_str() {
            Some(to) if data["rule"].is_string() => format!("assigned to {to} by ownership rule `{}`", data["rule"].as_str().unwrap_or("")),
            Some(to) => format!("assigned it to {to}"),
            None => "assigned it".into(),
        },
        store::ACTIVITY_UNASSIGNED => "unassigned it".into(),
        store::ACTIVITY_MERGE => {
            let groups = data["groups"].as_array().map(|g| g.len()).unwrap_or(0);
            format!("merged {groups} issue{} into this one", if groups == 1 { "" } else { "s" })
        }
        store::ACTIVITY_UNMERGE => match (data["to"].as_i64(), data["from"].as_i64()) {
            (Some(to), _) => format!("moved the events of hash {} to issue {to} ({})", data["hash"].as_str().unwrap_or(""), issue_href(to)),
            (_, Some(from)) => format!("made from the events of hash {} of issue {from}", data["hash"].as_str().unwrap_or("")),
            _ => "unmerged".into(),
        },
        other => other.to_string(),
    };
    (what, data["text"].as_str().map(str::to_string))
}

/// An issue's timeline, newest first (at most `limit` lines), with the members' emails.
pub(crate) fn timeline(store: &Arc<dyn Store>, rows: &[Activity], slug: &str, now: f64, limit: usize) -> PageResult<Vec<TimelineItem>> {
    let mut emails: HashMap<UserId, String> = HashMap::new();
    let mut out = Vec::new();
    for a in rows.iter().rev().take(limit) {
        let who = match a.actor {
            Some(id) => match emails.get(&id) {
                Some(e) => e.clone(),
                None => {
                    let e = store.user(id)?.map_or_else(|| "a former member".to_string(), |u| u.email);
                    emails.insert(id, e.clone());
                    e
                }
            },
            None => String::new(),
        };
        let href = |id: i64| super::paths::issue(slug, GroupId(id));
        let (what, text) = describe(a, &href);
        out.push(TimelineItem {
            kind: a.kind.clone(),
            what,
            who,
            ago: format::ago(a.at, now),
            utc: format::utc(a.at),
            body: text.map(|t| markdown(&t)).unwrap_or_default(),
        });
    }
    Ok(out)
}

/// The members of a project's organisation (whom a comment can mention).
pub(crate) fn members_of(store: &Arc<dyn Store>, org: OrgId) -> store::Result<Vec<Member>> {
    store.members(org)
}

// ---------------------------------------------------------------------------------------------
// Comments, snoozes, unmerge
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct CommentForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    text: String,
}

/// `POST /p/{slug}/issues/{id}/comments`: a comment on the issue's timeline; the members it
/// mentions (`@their@email`) are notified.
pub async fn comment(
    State(state): State<AppState>,
    scope: ProjectScope,
    headers: HeaderMap,
    Path((_, id)): Path<(String, String)>,
    Form(form): Form<CommentForm>,
) -> PageResult {
    scope.viewer.principal.check_csrf(&form.csrf, &headers)?;
    scope.require(Action::Triage)?;
    let store = state.store.clone();
    let href = blocking(move || {
        let g = super::pages::group_of(&store, &scope.project, &id)?.1;
        let members = members_of(&store, scope.project.org_id)?;
        let mentioned = mentions(&form.text, &members);
        store.add_note(g.id, scope.viewer.principal.user.id, &form.text, &mentioned)?;
        Ok(format!("{}#activity", super::paths::issue(&scope.project.slug, g.id)))
    })
    .await?;
    Ok(Redirect::to(&href).into_response())
}

/// What the ignore menu sends: `for` (`30m`, `1h`, `24h`, `7d`, or empty), `until` (a date or
/// date and time, UTC), `count` (more events), `users` (more users). None of them: for good.
#[derive(Deserialize, Default)]
pub struct SnoozeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default, rename = "for")]
    duration: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    count: String,
    #[serde(default)]
    users: String,
}

impl SnoozeForm {
    fn snooze(&self, now: f64) -> Result<Snooze, String> {
        let minutes = match self.duration.trim() {
            "" | "forever" => None,
            d => Some(duration_minutes(d).ok_or_else(|| format!("\"{d}\" is not a duration: use 30m, 1h, 24h or 7d"))?),
        };
        let until = match self.until.trim() {
            "" => None,
            u => Some(parse_time(u).ok_or_else(|| format!("\"{u}\" is not a date: use 2026-12-31 or 2026-12-31T18:00 (UTC)"))?),
        };
        let number = |s: &str, what: &str| match s.trim() {
            "" => Ok(None),
            n => n.parse::<u64>().map(Some).map_err(|_| format!("\"{n}\" is not a number of {what}")),
        };
        snooze_of(minutes, until, number(&self.count, "events")?, number(&self.users, "users")?, now)
    }
}

/// `30m`, `1h`, `24h`, `7d` in minutes.
fn duration_minutes(s: &str) -> Option<f64> {
    let (n, unit) = s.split_at(s.len().checked_sub(1)?);
    let n: f64 = n.parse().ok()?;
    Some(n * match unit {
        "m" => 1.0,
        "h" => 60.0,
        "d" => 1440.0,
        "w" => 10080.0,
        _ => return None,
    })
}

/// `POST /p/{slug}/issues/{id}/ignore`: ignores the issue, for good or until its snooze ends.
pub async fn ignore(
    State(state): State<AppState>,
    scope: ProjectScope,
    headers: HeaderMap,
    Path((_, id)): Path<(String, String)>,
    Form(form): Form<SnoozeForm>,
) -> PageResult {
    scope.viewer.principal.check_csrf(&form.csrf, &headers)?;
    scope.require(Action::Triage)?;
    let snooze = form.snooze(store::now()).map_err(PageError::BadRequest)?;
    let store = state.store.clone();
    let href = blocking(move || {
        let g = super::pages::group_of(&store, &scope.project, &id)?.1;
        store.change_status(&[g.id], GroupStatus::Ignored, &snooze, Some(scope.viewer.principal.user.id))?;
        Ok(super::paths::issue(&scope.project.slug, g.id))
    })
    .await?;
    Ok(Redirect::to(&href).into_response())
}

#[derive(Deserialize)]
pub struct UnmergeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    hash: String,
}

/// `POST /p/{slug}/issues/{id}/unmerge`: the events of one hash become an issue of their own
/// (shown next).
pub async fn unmerge(
    State(state): State<AppState>,
    scope: ProjectScope,
    headers: HeaderMap,
    Path((_, id)): Path<(String, String)>,
    Form(form): Form<UnmergeForm>,
) -> PageResult {
    scope.viewer.principal.check_csrf(&form.csrf, &headers)?;
    scope.require(Action::Triage)?;
    if form.hash.trim().is_empty() {
        return Err(PageError::BadRequest("choose the hash to unmerge".into()));
    }
    let store = state.store.clone();
    let href = blocking(move || {
        let g = super::pages::group_of(&store, &scope.project, &id)?.1;
        let split = store.unmerge(g.id, form.hash.trim(), Some(scope.viewer.principal.user.id))?;
        Ok(super::paths::issue(&scope.project.slug, split))
    })
    .await?;
    Ok(Redirect::to(&href).into_response())
}

// ---------------------------------------------------------------------------------------------
// Bulk actions
// ---------------------------------------------------------------------------------------------

/// At most this many issues in one bulk action on all that match.
pub(crate) const MAX_BULK: usize = 100_000;

/// What a bulk action does to each issue.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum BulkAction {
    Status(GroupStatus, Snooze),
    /// To a member, a team, or nobody.
    Assign(Option<store::Assignee>),
    /// Into the issue with the most events.
    Merge,
    Delete,
}

impl BulkAction {
    fn verb(&self) -> &'static str {
        match self {
            BulkAction::Status(GroupStatus::Resolved, _) => "Resolving",
            BulkAction::Status(GroupStatus::Ignored, _) => "Ignoring",
            BulkAction::Status(GroupStatus::Unresolved, _) => "Reopening",
            BulkAction::Assign(_) => "Assigning",
            BulkAction::Merge => "Merging",
            BulkAction::Delete => "Deleting",
        }
    }
}

/// Which of `groups` a merge keeps: the one with the most events (the oldest of those).
pub(crate) fn merge_target(store: &dyn Store, groups: &[GroupId]) -> store::Result<Option<GroupId>> {
    let mut rows = Vec::new();
    for g in groups {
        rows.extend(store.group(*g)?);
    }
    Ok(rows.iter().max_by_key(|g| (g.count, std::cmp::Reverse(g.id))).map(|g| g.id))
}

/// Applies `action` to `groups`, [`store::BULK_CHUNK`] at a time, calling `progress` with how
/// many are done. Returns how many changed (merge: how many went into the one kept).
pub(crate) fn apply_bulk(
    store: &Arc<dyn Store>,
    groups: &[GroupId],
    action: &BulkAction,
    actor: Option<UserId>,
    progress: &mut dyn FnMut(usize),
) -> store::Result<usize> {
    if *action == BulkAction::Merge {
        if groups.len() > store::BULK_CHUNK {
            return Err(store::StoreError::Invalid(format!("at most {} issues can be merged at a time", store::BULK_CHUNK)));
        }
        let Some(into) = merge_target(&**store, groups)? else { return Ok(0) };
        let from: Vec<GroupId> = groups.iter().copied().filter(|g| *g != into).collect();
        store.merge_groups(into, &from, actor)?;
        progress(groups.len());
        return Ok(from.len());
    }
    let mut changed = 0;
    for (i, chunk) in groups.chunks(store::BULK_CHUNK).enumerate() {
        changed += match action {
            BulkAction::Status(status, snooze) => store.change_status(chunk, *status, snooze, actor)?,
            BulkAction::Assign(to) => {
                let mut n = 0;
                for g in chunk {
                    n += usize::from(store.assign_group_by(*g, *to, actor)?);
                }
                n
            }
            BulkAction::Delete => {
                store.delete_groups(chunk)?;
                chunk.len()
            }
            BulkAction::Merge => 0,
        };
        progress((i * store::BULK_CHUNK + chunk.len()).min(groups.len()));
    }
    Ok(changed)
}

/// Every issue `query` selects (all its pages, at most [`MAX_BULK`]).
pub(crate) fn all_matching(store: &Arc<dyn Store>, mut query: store::StreamQuery) -> store::Result<Vec<GroupId>> {
    query.cursor = None;
    query.limit = 100;
    query.sparkline_points = 0;
    let mut ids = Vec::new();
    loop {
        let page = store.stream(&query)?;
        ids.extend(page.rows.iter().map(|r| r.group.id));
        match page.next {
            Some(c) if ids.len() < MAX_BULK => query.cursor = Some(c),
            _ => break,
        }
    }
    ids.truncate(MAX_BULK);
    Ok(ids)
}

/// A bulk action running in the background.
#[derive(Clone, Debug)]
pub(crate) struct Job {
    pub project: ProjectId,
    pub verb: &'static str,
    /// `None` while the matching issues are still being found.
    pub total: Option<usize>,
    pub done: usize,
    pub finished: Option<Result<usize, String>>,
}

/// The bulk actions of this node, by id (the newest few hundred are kept).
#[derive(Default)]
pub(crate) struct Jobs {
    jobs: Mutex<HashMap<String, Job>>,
}

const KEPT_JOBS: usize = 200;

impl Jobs {
    fn start(&self, project: ProjectId, verb: &'static str) -> String {
        let id = hex::encode(rand_bytes());
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        if jobs.len() >= KEPT_JOBS {
            let done: Vec<String> = jobs.iter().filter(|(_, j)| j.finished.is_some()).map(|(k, _)| k.clone()).collect();
            for k in done {
                jobs.remove(&k);
            }
        }
        jobs.insert(id.clone(), Job { project, verb, total: None, done: 0, finished: None });
        id
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut Job)) {
        if let Some(j) = self.jobs.lock().unwrap_or_else(|e| e.into_inner()).get_mut(id) {
            f(j);
        }
    }

    fn get(&self, id: &str) -> Option<Job> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }
}

fn rand_bytes() -> [u8; 12] {
    let mut b = [0u8; 12];
    let _ = getrandom::fill(&mut b);
    b
}

/// What the stream's bulk form sends: `action` (`resolve`, `unresolve`, `ignore`, `assign`,
/// `merge`, `delete`), the ticked issues as `id`s or `all=1` for every issue the search (sent as
/// `stream.*`: the stream's own parameters) matches, the ignore menu's fields and the assign
/// menu's `to`.
struct BulkRequest {
    ids: Vec<String>,
    all: bool,
    action: String,
    snooze: SnoozeForm,
    to: String,
    stream: Vec<(String, String)>,
}

fn bulk_request(form: &[(String, String)]) -> BulkRequest {
    let mut ids = Vec::new();
    let mut all = false;
    let mut action = String::new();
    let mut snooze = SnoozeForm::default();
    let mut to = String::new();
    let mut stream = Vec::new();
    for (k, v) in form {
        match k.as_str() {
            "id" => ids.push(v.clone()),
            "all" => all = v == "1",
            "action" => action = v.clone(),
            "to" => to = v.clone(),
            "csrf" => snooze.csrf = v.clone(),
            "for" => snooze.duration = v.clone(),
            "until" => snooze.until = v.clone(),
            "count" => snooze.count = v.clone(),
            "users" => snooze.users = v.clone(),
            k => {
                if let Some(p) = k.strip_prefix("stream.") {
                    stream.push((p.to_string(), v.clone()));
                }
            }
        }
    }
    BulkRequest { ids, all, action, snooze, to, stream }
}

/// `POST /p/{slug}/bulk`: a bulk action. Ticked issues are changed at once and the stream shown
/// again; all that match go to the background, and the progress page is shown.
pub async fn bulk(
    State(state): State<AppState>,
    scope: ProjectScope,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> PageResult {
    let BulkRequest { ids, all, action, snooze, to, stream } = bulk_request(&form);
    scope.viewer.principal.check_csrf(&snooze.csrf, &headers)?;
    scope.require(Action::Triage)?;
    let ctx = {
        let (store, org, actor) = (state.store.clone(), scope.project.org_id, scope.viewer.actor.clone());
        blocking(move || Ok(super::search::SearchContext::load(&*store, org, &actor)?)).await?
    };
    let action = match action.as_str() {
        "resolve" => BulkAction::Status(GroupStatus::Resolved, Snooze::default()),
        "unresolve" => BulkAction::Status(GroupStatus::Unresolved, Snooze::default()),
        "ignore" => BulkAction::Status(GroupStatus::Ignored, snooze.snooze(store::now()).map_err(PageError::BadRequest)?),
        "assign" => BulkAction::Assign(match to.trim() {
            "" => None,
            name => Some(ctx.assignee(name).map_err(PageError::BadRequest)?),
        }),
        "merge" => BulkAction::Merge,
        "delete" => BulkAction::Delete,
        a => return Err(PageError::BadRequest(format!("\"{a}\" is not a bulk action: use resolve, unresolve, ignore, assign, merge or delete"))),
    };
    let back = format!("{}{}", super::paths::stream(&scope.project.slug), format::query_string(&stream));
    let slices = state.dashboard.config.slices.get(&scope.project.slug).cloned().unwrap_or_else(super::filters::default_slices);
    let actor = Some(scope.viewer.principal.user.id);
    let store = state.store.clone();
    let project = scope.project.clone();
    if !all {
        if ids.is_empty() {
            return Err(PageError::BadRequest("tick the issues to change first".into()));
        }
        if ids.len() > store::BULK_CHUNK {
            return Err(PageError::BadRequest(format!("at most {} ticked issues at a time; choose all that match instead", store::BULK_CHUNK)));
        }
        if action == BulkAction::Merge && ids.len() < 2 {
            return Err(PageError::BadRequest("tick two issues or more to merge them".into()));
        }
        blocking(move || {
            let mut groups = Vec::new();
            for id in &ids {
                groups.push(super::pages::group_of(&store, &project, id)?.1.id);
            }
            apply_bulk(&store, &groups, &action, actor, &mut |_| {})?;
            Ok(())
        })
        .await?;
        return Ok(Redirect::to(&back).into_response());
    }
    let (query, _, problems, _) = super::pages::stream_query(&project, &stream, &slices, store::now(), &ctx);
    if let Some(p) = problems.first() {
        return Err(PageError::BadRequest(format!("the search was not understood: {p}")));
    }
    let jobs = state.dashboard.jobs.clone();
    let job = jobs.start(project.id, action.verb());
    let id = job.clone();
    tokio::task::spawn_blocking(move || {
        let result = all_matching(&store, query).and_then(|groups| {
            jobs.update(&id, |j| j.total = Some(groups.len()));
            apply_bulk(&store, &groups, &action, actor, &mut |done| jobs.update(&id, |j| j.done = done))
        });
        if let Err(e) = &result {
            tracing::warn!(error = %e, "a bulk action on the issues that match a search stopped");
        }
        jobs.update(&id, |j| j.finished = Some(result.map_err(|e| e.to_string())));
    });
    Ok(Redirect::to(&format!("{}bulk/{job}?{}", super::paths::stream(&scope.project.slug), back.split_once('?').map_or("", |b| b.1)))
        .into_response())
}

#[derive(Template)]
#[template(path = "bulk.html")]
struct BulkPage {
    nav: Nav,
    verb: &'static str,
    done: usize,
    total: String,
    running: bool,
    error: String,
    back: String,
}

/// `GET /p/{slug}/bulk/{job}`: how far a bulk action is (the page reloads itself while it runs).
pub async fn bulk_progress(
    State(state): State<AppState>,
    scope: ProjectScope,
    Path((_, job)): Path<(String, String)>,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> PageResult {
    // Jobs are kept in memory, for a while, by the node that runs them: an unknown one is said
    // so in the page (after a restart, or behind a balancer), not as a broken link.
    let j = state.dashboard.jobs.get(&job).filter(|j| j.project == scope.project.id).unwrap_or_else(|| Job {
        project: scope.project.id,
        verb: "change",
        total: None,
        done: 0,
        finished: Some(Err("this server does not know this bulk action: it ran on another server, or this one restarted since. \
                            What it did is in the list of issues."
            .into())),
    });
    let store = state.store.clone();
    blocking(move || {
        let page = BulkPage {
            nav: nav(&store, &scope.viewer, &scope.project.slug, "stream")?,
            verb: j.verb,
            done: j.done,
            total: j.total.map_or_else(|| "…".to_string(), |t| t.to_string()),
            running: j.finished.is_none(),
            error: match &j.finished {
                Some(Err(e)) => e.clone(),
                _ => String::new(),
            },
            back: format!("{}{}", super::paths::stream(&scope.project.slug), raw.map(|r| format!("?{r}")).unwrap_or_default()),
        };
        render(&page)
    })
    .await
}

/// One choice of the assign menu: its value (an email, `#team`, "" for nobody), its label,
/// and whether it is the current one.
pub(super) type AssignChoice = (String, String, bool);

/// Who an issue is assigned to (an email, `#team`, or "" for nobody), and the choices of the
/// issue page's assign menu: nobody, each member of the organisation, each team.
pub(super) fn assign_choices(
    store: &std::sync::Arc<dyn store::Store>,
    org: store::OrgId,
    current: Option<store::Assignee>,
) -> PageResult<(String, Vec<AssignChoice>)> {
    let mut choices = vec![(String::new(), "Nobody".to_string(), current.is_none())];
    let mut shown = String::new();
    for m in store.members(org)? {
        let chosen = current == Some(store::Assignee::User(m.user.id));
        if chosen {
            shown = m.user.email.clone();
        }
        choices.push((m.user.email.clone(), m.user.email, chosen));
    }
    for t in store.teams(org)? {
        let chosen = current == Some(store::Assignee::Team(t.id));
        let name = format!("#{}", t.slug);
        if chosen {
            shown = name.clone();
        }
        choices.push((name.clone(), name, chosen));
    }
    Ok((shown, choices))
}

#[derive(Deserialize)]
pub struct AssignForm {
    #[serde(default)]
    csrf: String,
    /// A member's email, `#team`, `me`, or "" for nobody.
    #[serde(default)]
    to: String,
}

/// `POST /p/{slug}/issues/{id}/assign`: assigns the issue to a member or a team of the
/// project's organisation, or to nobody; recorded on its timeline.
pub async fn assign(
    State(state): State<AppState>,
    scope: ProjectScope,
    headers: HeaderMap,
    Path((_, id)): Path<(String, String)>,
    Form(form): Form<AssignForm>,
) -> PageResult {
    scope.viewer.principal.check_csrf(&form.csrf, &headers)?;
    scope.require(Action::Triage)?;
    let store = state.store.clone();
    let href = blocking(move || {
        let ctx = super::search::SearchContext::load(&*store, scope.project.org_id, &scope.viewer.actor)?;
        let to = match form.to.trim() {
            "" => None,
            name => Some(ctx.assignee(name).map_err(PageError::BadRequest)?),
        };
        let g = super::pages::group_of(&store, &scope.project, &id)?.1;
        store.assign_group_by(g.id, to, Some(scope.viewer.principal.user.id))?;
        Ok(super::paths::issue(&scope.project.slug, g.id))
    })
    .await?;
    Ok(Redirect::to(&href).into_response())
}
