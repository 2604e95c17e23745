//! Issues and their events: `/api/0/projects/{org}/{project}/issues/` (list with `query=` in
//! the dashboard's search syntax and `statsPeriod`, bulk status changes), an issue by id and
//! its events, and an event by id with its raw JSON, as `sentry-cli issues` and scripts use them.
//! An update (of many issues, or of one: `…/issues/{id}/`, also without the organisation in the
//! path) changes the status, with Sentry's `statusDetails` (`inRelease`, `inNextRelease`;
//! `ignoreDuration` minutes, `ignoreCount`, `ignoreUserCount`, `ignoreUntil`), and / or the
//! assignee (`assignedTo`); one issue can be deleted.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use store::{EventRow, GroupId, GroupRow, GroupStatus, InRelease, Project, Snooze, Sort, StatusFilter, StreamQuery};

use super::types::{date, ApiAssignee, ApiIssue};
use super::{answer, json_body, list, query_pairs, query_value, ApiProject, PAGE};
use crate::access::extract::{Bearer, OrgScope, Viewer};
use crate::access::{can, Action, Actor, Decision, Resource};
use crate::dashboard::filters::apply_search;
use crate::dashboard::search::SearchContext;
use crate::{ApiError, AppState, Routes};

pub(super) fn routes(r: Routes) -> Routes {
    r.get("/api/0/projects/{org}/{slug}/issues/", issues)
        .put("/api/0/projects/{org}/{slug}/issues/", update_issues)
        .get("/api/0/projects/{org}/{slug}/events/{event_id}/", event)
        .get("/api/0/projects/{org}/{slug}/events/{event_id}/json/", event_json)
        .get("/api/0/organizations/{org}/issues/{id}/", issue)
        .put("/api/0/organizations/{org}/issues/{id}/", update_issue)
        .delete("/api/0/organizations/{org}/issues/{id}/", delete_issue)
        .get("/api/0/issues/{id}/", token_issue)
        .put("/api/0/issues/{id}/", token_update_issue)
        .delete("/api/0/issues/{id}/", token_delete_issue)
        .get("/api/0/issues/{id}/comments/", comments)
        .post("/api/0/issues/{id}/comments/", add_comment)
        .get("/api/0/organizations/{org}/issues/{id}/events/", issue_events)
        .get("/api/0/organizations/{org}/issues/{id}/events/latest/", latest_event)
}

/// Sentry's `statsPeriod` (`24h`, `14d`, `90m`, empty for all time) in seconds.
fn period(s: &str) -> Result<Option<f64>, ApiError> {
    if s.is_empty() {
        return Ok(None);
    }
    let (n, unit) = s.split_at(s.len() - 1);
    let n: f64 = n.parse().map_err(|_| ApiError::BadRequest(format!("\"{s}\" is not a statsPeriod: use a number and m, h, d or w, like 24h or 14d")))?;
    let unit = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        "w" => 7.0 * 86400.0,
        _ => return Err(ApiError::BadRequest(format!("\"{s}\" is not a statsPeriod: use m, h, d or w, like 24h or 14d"))),
    };
    Ok(Some(n * unit))
}

/// The stream query of `?query=…&statsPeriod=…&sort=…&cursor=…` (Sentry's default query is
/// `is:unresolved`).
fn stream_query(p: &Project, raw: &Option<String>, ctx: &SearchContext) -> Result<StreamQuery, ApiError> {
    let pairs = query_pairs(raw);
    let mut q = StreamQuery::new(p.id, store::now());
    q.limit = query_value(&pairs, "limit").and_then(|l| l.parse().ok()).unwrap_or(PAGE).clamp(1, PAGE);
    q.sparkline_points = 0;
    q.sort = match query_value(&pairs, "sort") {
        None => Sort::LastSeen,
        Some(s) => Sort::parse(s).ok_or_else(|| ApiError::BadRequest(format!("\"{s}\" is not a sort: use {}", Sort::NAMES.join(", "))))?,
    };
    if let Some(s) = query_value(&pairs, "statsPeriod") {
        q.since = period(s)?.map(|secs| q.now - secs);
    }
    let text = match query_value(&pairs, "query") {
        Some(text) => {
            q.status = StatusFilter::All;
            text
        }
        None => "is:unresolved",
    };
    let problems = apply_search(text, &mut q, ctx);
    if let Some(p) = problems.first() {
        return Err(ApiError::BadRequest(format!("the query was not understood: {p}")));
    }
    if let Some(c) = query_value(&pairs, "cursor") {
        q.cursor = store::Cursor::parse(c);
    }
    Ok(q)
}

/// The search context of the request's actor in the project's organisation.
async fn search_context(state: &AppState, p: &ApiProject) -> Result<SearchContext, ApiError> {
    let store = state.store.clone();
    let (org, actor) = (p.org.id, p.scope.viewer.actor.clone());
    Ok(store::off_thread(move || SearchContext::load(&*store, org, &actor)).await?)
}

/// `GET /api/0/projects/{org}/{project}/issues/`.
async fn issues(State(state): State<AppState>, p: ApiProject, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let ctx = search_context(&state, &p).await?;
    let q = stream_query(p.project(), &raw, &ctx)?;
    let project = p.project().clone();
    let url = format!("{}/api/0/projects/{}/{}/issues/", state.public_url, p.org.slug, project.slug);
    let store = state.store.clone();
    let page = store::off_thread(move || store.stream(&q)).await?;
    let links = crate::dashboard::Links::new(&state.public_url);
    let items: Vec<ApiIssue> = page
        .rows
        .iter()
        .map(|r| ApiIssue {
            assigned_to: r.assignee.and_then(|a| ApiAssignee::of(a, &ctx)),
            ..ApiIssue::of(&r.group, &project, links.issue(&project.slug, r.group.id), r.users)
        })
        .collect();
    Ok(list(items, &url, page.next.map(|c| c.encode())))
}

/// `assignedTo` of a bulk update: `"user:3"`, `"team:2"`, a member's email, `"#team"`, `"me"`;
/// `null` or `""` unassigns.
fn assignee_of(v: &serde_json::Value, ctx: &SearchContext) -> Result<Option<store::Assignee>, ApiError> {
    let bad = |why: String| ApiError::BadRequest(format!("assignedTo: {why}"));
    let name = match v {
        serde_json::Value::Null => return Ok(None),
        serde_json::Value::String(s) if s.trim().is_empty() => return Ok(None),
        serde_json::Value::String(s) => s.trim(),
        _ => return Err(bad("give a string: \"user:ID\", \"team:ID\", a member's email, or null to unassign".into())),
    };
    let by_id = |prefix: &str| name.strip_prefix(prefix).map(|id| id.parse::<i64>().map_err(|_| bad(format!("\"{name}\" is not {prefix}ID"))));
    if let Some(id) = by_id("user:") {
        let id = store::UserId(id?);
        return match ctx.members.iter().any(|(_, u)| *u == id) {
            true => Ok(Some(store::Assignee::User(id))),
            false => Err(bad(format!("there is no member {name} in this organisation"))),
        };
    }
    if let Some(id) = by_id("team:") {
        let id = store::TeamId(id?);
        return match ctx.teams.iter().any(|(_, t)| *t == id) {
            true => Ok(Some(store::Assignee::Team(id))),
            false => Err(bad(format!("there is no team {name} in this organisation"))),
        };
    }
    ctx.assignee(name).map(Some).map_err(bad)
}

/// What an update does to issues, from its body.
struct Change {
    /// The new status, with its snooze when ignored, or the release it is resolved in.
    status: Option<(GroupStatus, Snooze, Option<InRelease>)>,
    /// The new assignee (`Some(None)` unassigns).
    assign: Option<Option<store::Assignee>>,
}

const NOTHING_TO_CHANGE: &str =
    "nothing to change: send {\"status\": \"resolved\"} (or \"ignored\", \"unresolved\", \"resolvedInNextRelease\"), with \"statusDetails\" if you like, or {\"assignedTo\": \"user:ID\"}";

/// Reads `{"status", "statusDetails", "assignedTo"}` (and sentry-cli's `snoozeDuration`, the
/// minutes of an ignore) as Sentry does.
fn change_of(body: &[u8], ctx: &SearchContext) -> Result<Change, ApiError> {
    let change: serde_json::Map<String, serde_json::Value> = json_body(body)?;
    let bad = |why: String| ApiError::BadRequest(why);
    let details = match change.get("statusDetails") {
        None | Some(serde_json::Value::Null) => serde_json::Map::new(),
        Some(serde_json::Value::Object(d)) => d.clone(),
        Some(_) => return Err(bad("statusDetails: give an object, like {\"inRelease\": \"1.2\"} or {\"ignoreDuration\": 30}".into())),
    };
    let number = |key: &str, v: Option<&serde_json::Value>| -> Result<Option<f64>, ApiError> {
        match v {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::Number(n)) => Ok(n.as_f64()),
            Some(_) => Err(ApiError::BadRequest(format!("{key}: give a number"))),
        }
    };
    let count = |key: &str| -> Result<Option<u64>, ApiError> {
        match number(key, details.get(key))? {
            None => Ok(None),
            Some(n) if n >= 1.0 && n.fract() == 0.0 => Ok(Some(n as u64)),
            Some(_) => Err(ApiError::BadRequest(format!("{key}: give a whole number of at least 1"))),
        }
    };
    // Resolving in a release.
    let in_release = match (details.get("inRelease"), details.get("inNextRelease")) {
        (Some(_), Some(_)) => return Err(bad("statusDetails: give inRelease or inNextRelease, not both".into())),
        (Some(serde_json::Value::String(v)), None) if !v.trim().is_empty() => Some(InRelease::Named(v.trim().to_string())),
        (Some(serde_json::Value::String(_) | serde_json::Value::Null), None) | (None, Some(serde_json::Value::Bool(false))) | (None, None) => None,
        (Some(_), None) => return Err(bad("statusDetails.inRelease: give a release version, like \"1.2\"".into())),
        (None, Some(serde_json::Value::Bool(true))) => Some(InRelease::Next),
        (None, Some(_)) => return Err(bad("statusDetails.inNextRelease: give true or false".into())),
    };
    // Ignoring for a while.
    let minutes = match (number("statusDetails.ignoreDuration", details.get("ignoreDuration"))?, number("snoozeDuration", change.get("snoozeDuration"))?) {
        (Some(m), _) | (None, Some(m)) => Some(m),
        (None, None) => None,
    };
    let until = match details.get("ignoreUntil") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(t)) => Some(
            crate::dashboard::triage::parse_time(t).ok_or_else(|| bad(format!("statusDetails.ignoreUntil: \"{t}\" is not a time: use 2026-12-31T18:00:00Z")))?,
        ),
        Some(_) => return Err(bad("statusDetails.ignoreUntil: give a time, like \"2026-12-31T18:00:00Z\"".into())),
    };
    let (events, users) = (count("ignoreCount")?, count("ignoreUserCount")?);
    // sentry-cli's `resolve --next-release` says it in the status.
    let in_release = match (change.get("status").and_then(|s| s.as_str()), in_release) {
        (Some("resolvedInNextRelease"), None) => Some(InRelease::Next),
        (_, named) => named,
    };
    let ignoring = minutes.is_some() || until.is_some() || events.is_some() || users.is_some();
    let status = match change.get("status") {
        None if in_release.is_some() => Some(GroupStatus::Resolved),
        None if ignoring => Some(GroupStatus::Ignored),
        None => None,
        Some(serde_json::Value::String(name)) => Some(match name.as_str() {
            "resolvedInNextRelease" | "resolvedInRelease" => GroupStatus::Resolved,
            "muted" => GroupStatus::Ignored,
            s => GroupStatus::parse(s).ok_or_else(|| bad(format!("\"{s}\" is not a status: use resolved, ignored, unresolved or resolvedInNextRelease")))?,
        }),
        Some(_) => return Err(bad("status: give a string: resolved, ignored or unresolved".into())),
    };
    if in_release.is_some() && status != Some(GroupStatus::Resolved) {
        return Err(bad("statusDetails: only resolving takes inRelease or inNextRelease".into()));
    }
    if change.get("status").and_then(|s| s.as_str()) == Some("resolvedInRelease") && in_release.is_none() {
        return Err(bad("resolvedInRelease: name the release in statusDetails, like {\"inRelease\": \"1.2\"}".into()));
    }
    if ignoring && status != Some(GroupStatus::Ignored) {
        return Err(bad("statusDetails: only ignoring takes ignoreDuration, ignoreCount, ignoreUserCount or ignoreUntil".into()));
    }
    let snooze = match ignoring {
        true => crate::dashboard::triage::snooze_of(minutes, until, events, users, store::now()).map_err(|why| bad(format!("statusDetails: {why}")))?,
        false => Snooze::default(),
    };
    let change = Change { status: status.map(|s| (s, snooze, in_release)), assign: assign_of(&change, ctx)? };
    if change.status.is_none() && change.assign.is_none() {
        return Err(bad(NOTHING_TO_CHANGE.into()));
    }
    Ok(change)
}

fn assign_of(change: &serde_json::Map<String, serde_json::Value>, ctx: &SearchContext) -> Result<Option<Option<store::Assignee>>, ApiError> {
    change.get("assignedTo").map(|v| assignee_of(v, ctx)).transpose()
}

impl Change {
    /// Applies the change to `groups` (of one project), at most [`store::BULK_CHUNK`] at a time.
    fn apply(&self, store: &dyn store::Store, groups: &[GroupId], actor: Option<store::UserId>) -> Result<(), store::StoreError> {
        for part in groups.chunks(store::BULK_CHUNK) {
            match &self.status {
                Some((_, _, Some(target))) => {
                    store.resolve_in_release(part, target, actor)?;
                }
                Some((status, snooze, None)) => {
                    store.change_status(part, *status, snooze, actor)?;
                }
                None => {}
            }
            if let Some(to) = self.assign {
                for g in part {
                    store.assign_group_by(*g, to, actor)?;
                }
            }
        }
        Ok(())
    }

    /// What Sentry answers a bulk update with: the fields it changed.
    fn answer(&self, ctx: &SearchContext) -> serde_json::Map<String, serde_json::Value> {
        let mut out = serde_json::Map::new();
        if let Some((status, snooze, in_release)) = &self.status {
            out.insert("status".into(), super::types::status_name(*status).into());
            out.insert("statusDetails".into(), status_details(snooze, in_release.as_ref()));
        }
        if let Some(to) = self.assign {
            let shown = to.and_then(|a| ApiAssignee::of(a, ctx));
            out.insert("assignedTo".into(), serde_json::to_value(shown).unwrap_or_default());
        }
        out
    }
}

/// Sentry's `statusDetails` of a snooze or a resolution in a release.
fn status_details(snooze: &Snooze, in_release: Option<&InRelease>) -> serde_json::Value {
    let mut d = serde_json::Map::new();
    match in_release {
        Some(InRelease::Next) => {
            d.insert("inNextRelease".into(), true.into());
        }
        Some(InRelease::Named(v)) => {
            d.insert("inRelease".into(), v.clone().into());
        }
        None => {}
    }
    if let Some(t) = snooze.until {
        d.insert("ignoreUntil".into(), date(t).into());
    }
    if let Some(n) = snooze.count {
        d.insert("ignoreCount".into(), n.into());
    }
    if let Some(n) = snooze.users {
        d.insert("ignoreUserCount".into(), n.into());
    }
    serde_json::Value::Object(d)
}

/// The user a token acts for (none for an organisation token).
fn acting_user(actor: &Actor) -> Option<store::UserId> {
    actor.user.as_ref().map(|u| u.id)
}

/// `PUT /api/0/projects/{org}/{project}/issues/?id=1&id=2` (or, without ids, every issue the
/// `query=`/`status=` selects, at most 1,000) with `{"status": "resolved" | "unresolved" |
/// "ignored" | "resolvedInNextRelease", "statusDetails": {…}}` and/or `{"assignedTo":
/// "user:3" | "team:2" | email | null}`. 204 when nothing matched.
async fn update_issues(State(state): State<AppState>, p: ApiProject, RawQuery(raw): RawQuery, body: bytes::Bytes) -> Result<Response, ApiError> {
    p.require(Action::Triage)?;
    let ctx = search_context(&state, &p).await?;
    let pairs = query_pairs(&raw);
    if let Ok(serde_json::Value::Object(b)) = serde_json::from_slice::<serde_json::Value>(&body)
        && b.get("merge").is_some_and(|m| m == &serde_json::json!(1) || m == &serde_json::json!(true))
    {
        return merge_issues(&state, &p, &pairs).await;
    }
    let change = change_of(&body, &ctx)?;
    let ids = ids_of(&pairs)?;
    let project = p.project().clone();
    let mut q = stream_query(&project, &raw, &ctx)?;
    if let Some(s) = query_value(&pairs, "status") {
        q.status = match GroupStatus::parse(s) {
            Some(s) => StatusFilter::Only(s),
            None => return Err(ApiError::BadRequest(format!("\"{s}\" is not a status: use resolved, ignored or unresolved"))),
        };
    }
    q.limit = 1000;
    let actor = acting_user(&p.scope.viewer.actor);
    let store = state.store.clone();
    let (n, change) = store::off_thread(move || {
        let groups: Vec<GroupId> = if ids.is_empty() {
            store.stream(&q)?.rows.into_iter().map(|r| r.group.id).collect()
        } else {
            let mut found = Vec::new();
            for id in ids {
                match store.group(GroupId(id))? {
                    Some(g) if g.project_id == project.id => found.push(g.id),
                    _ => return Err(ApiError::NotFound(format!("There is no issue {id} in this project."))),
                }
            }
            found
        };
        change.apply(&*store, &groups, actor)?;
        Ok::<_, ApiError>((groups.len(), change))
    })
    .await?;
    if n == 0 {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok(answer(StatusCode::OK, change.answer(&ctx)))
}

/// The `?id=` of a bulk request.
fn ids_of(pairs: &[(String, String)]) -> Result<Vec<i64>, ApiError> {
    pairs
        .iter()
        .filter(|(k, _)| k == "id")
        .map(|(_, v)| v.parse().map_err(|_| ApiError::BadRequest(format!("\"{v}\" is not an issue id"))))
        .collect()
}

/// `PUT …/issues/?id=1&id=2` with `{"merge": 1}`: the issues become one, the one with the most
/// events (as in the stream's bulk merge); Sentry's answer names it and the others.
async fn merge_issues(state: &AppState, p: &ApiProject, pairs: &[(String, String)]) -> Result<Response, ApiError> {
    let ids = ids_of(pairs)?;
    if ids.len() < 2 {
        return Err(ApiError::BadRequest("name two issues or more to merge, as ?id=1&id=2".into()));
    }
    let project = p.project().clone();
    let actor = acting_user(&p.scope.viewer.actor);
    let store = state.store.clone();
    let (parent, children) = store::off_thread(move || {
        let mut groups = Vec::new();
        for id in ids {
            match store.group(GroupId(id))? {
                Some(g) if g.project_id == project.id => groups.push(g.id),
                _ => return Err(ApiError::NotFound(format!("There is no issue {id} in this project."))),
            }
        }
        let parent = crate::dashboard::triage::merge_target(&*store, &groups)?.ok_or_else(|| ApiError::NotFound("no such issues".into()))?;
        crate::dashboard::triage::apply_bulk(&store, &groups, &crate::dashboard::triage::BulkAction::Merge, actor, &mut |_| {})?;
        let children: Vec<String> = groups.iter().filter(|g| **g != parent).map(|g| g.0.to_string()).collect();
        Ok::<_, ApiError>((parent, children))
    })
    .await?;
    Ok(answer(StatusCode::OK, serde_json::json!({"merge": {"parent": parent.0.to_string(), "children": children}})))
}

/// The issue `id` of the organisation, once the actor may see its project.
async fn issue_of(state: &AppState, scope: &OrgScope<Bearer>, id: &str, action: Action) -> Result<(GroupRow, Project), ApiError> {
    issue_in(state, &scope.viewer.actor, scope.org.id, id, action).await
}

/// The issue `id` of organisation `org`, once `actor` may do `action` to its project (an issue
/// the actor may not see is not there: 404).
async fn issue_in(state: &AppState, actor: &Actor, org: store::OrgId, id: &str, action: Action) -> Result<(GroupRow, Project), ApiError> {
    let nope = || ApiError::NotFound(format!("There is no issue {id}."));
    let id: i64 = id.parse().map_err(|_| nope())?;
    let store = state.store.clone();
    let found = store::off_thread(move || {
        let Some(g) = store.group(GroupId(id))? else { return Ok(None) };
        let Some(p) = store.project(g.project_id)? else { return Ok(None) };
        let teams = store.project_teams(p.id)?;
        Ok::<_, store::StoreError>(Some((g, p, teams)))
    })
    .await?;
    let (g, p, teams) = found.ok_or_else(nope)?;
    if p.org_id != org {
        return Err(nope());
    }
    match can(actor, action, Resource::Project { org: p.org_id, teams: &teams }) {
        Decision::Allowed => Ok((g, p)),
        Decision::Hidden => Err(nope()),
        Decision::Forbidden if can(actor, Action::ViewProject, Resource::Project { org: p.org_id, teams: &teams }) == Decision::Hidden => {
            Err(nope())
        }
        Decision::Forbidden => Err(ApiError::Forbidden("You do not have permission to perform this action.".into())),
    }
}

/// The organisation of a token's own routes (`/api/0/issues/{id}/`): its own, once it may see it.
/// A comment as Sentry's activity shows it.
fn comment_json(a: &store::Activity, members: &[store::Member]) -> serde_json::Value {
    let data: serde_json::Value = a.data.as_deref().and_then(|d| serde_json::from_str(d).ok()).unwrap_or_default();
    let user = a.actor.and_then(|u| members.iter().find(|m| m.user.id == u)).map(|m| super::types::ApiUser::from(&m.user));
    serde_json::json!({
        "id": a.id.to_string(),
        "type": "note",
        "data": {"text": data["text"].as_str().unwrap_or_default()},
        "dateCreated": date(a.at),
        "user": user,
    })
}

/// `GET /api/0/issues/{id}/comments/`: the issue's comments, newest first.
async fn comments(State(state): State<AppState>, viewer: Viewer<Bearer>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let org = token_org(&viewer)?;
    let (g, p) = issue_in(&state, &viewer.actor, org, &id, Action::ViewProject).await?;
    let store = state.store.clone();
    let notes = store::off_thread(move || {
        let members = store.members(p.org_id)?;
        let mut notes: Vec<serde_json::Value> =
            store.activity(g.id)?.iter().filter(|a| a.kind == store::ACTIVITY_NOTE).map(|a| comment_json(a, &members)).collect();
        notes.reverse();
        Ok::<_, store::StoreError>(notes)
    })
    .await?;
    Ok(answer(StatusCode::OK, notes))
}

#[derive(serde::Deserialize)]
struct NewComment {
    #[serde(default)]
    text: String,
}

/// `POST /api/0/issues/{id}/comments/` with `{"text"}`: 201 with the comment; the members it
/// mentions (`@their@email`) are told, as from the dashboard. Needs a personal token: a comment
/// is someone's.
async fn add_comment(State(state): State<AppState>, viewer: Viewer<Bearer>, Path(id): Path<String>, body: bytes::Bytes) -> Result<Response, ApiError> {
    let org = token_org(&viewer)?;
    let (g, p) = issue_in(&state, &viewer.actor, org, &id, Action::Triage).await?;
    let b: NewComment = super::json_body(&body)?;
    let Some(user) = acting_user(&viewer.actor) else {
        return Err(ApiError::BadRequest("an organisation token is nobody: comment with a personal token (sentry token create --user EMAIL)".into()));
    };
    let store = state.store.clone();
    let note = store::off_thread(move || {
        let members = store.members(p.org_id)?;
        let mentioned = crate::dashboard::triage::mentions(&b.text, &members);
        let a = store.add_note(g.id, user, &b.text, &mentioned)?;
        Ok::<_, store::StoreError>(comment_json(&a, &members))
    })
    .await?;
    Ok(answer(StatusCode::CREATED, note))
}

fn token_org(viewer: &Viewer<Bearer>) -> Result<store::OrgId, ApiError> {
    let org = viewer.principal.token.org_id;
    match can(&viewer.actor, Action::ViewOrg, Resource::Org(org)) {
        Decision::Allowed => Ok(org),
        Decision::Forbidden => Err(ApiError::Forbidden("You do not have permission to perform this action.".into())),
        Decision::Hidden => Err(ApiError::NotFound("There is no such issue.".into())),
    }
}

/// An issue as the API shows it, with its assignee and, when resolved in a release, that.
async fn issue_json(state: &AppState, actor: &Actor, g: GroupRow, p: &Project) -> Result<ApiIssue, ApiError> {
    let link = crate::dashboard::Links::new(&state.public_url).issue(&p.slug, g.id);
    let store = state.store.clone();
    let (org, actor, id) = (p.org_id, actor.clone(), g.id);
    let (ctx, assignee, resolution) = store::off_thread(move || {
        Ok::<_, store::StoreError>((SearchContext::load(&*store, org, &actor)?, store.group_assignee(id)?, store.resolution(id)?))
    })
    .await?;
    let mut issue = ApiIssue { assigned_to: assignee.and_then(|a| ApiAssignee::of(a, &ctx)), ..ApiIssue::of(&g, p, link, 0) };
    if let Some(r) = resolution.filter(|_| g.status == GroupStatus::Resolved) {
        let target = match r.release {
            Some(v) => InRelease::Named(v),
            None => InRelease::Next,
        };
        issue.status_details = status_details(&Snooze::default(), Some(&target));
    }
    Ok(issue)
}

/// `GET /api/0/organizations/{org}/issues/{id}/`.
async fn issue(State(state): State<AppState>, scope: OrgScope<Bearer>, Path((_, id)): Path<(String, String)>) -> Result<Response, ApiError> {
    show_issue(&state, &scope.viewer.actor, scope.org.id, &id).await
}

/// `GET /api/0/issues/{id}/`: an issue of the token's organisation.
async fn token_issue(State(state): State<AppState>, viewer: Viewer<Bearer>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let org = token_org(&viewer)?;
    show_issue(&state, &viewer.actor, org, &id).await
}

async fn show_issue(state: &AppState, actor: &Actor, org: store::OrgId, id: &str) -> Result<Response, ApiError> {
    let (g, p) = issue_in(state, actor, org, id, Action::ViewProject).await?;
    Ok(answer(StatusCode::OK, issue_json(state, actor, g, &p).await?))
}

/// `PUT /api/0/organizations/{org}/issues/{id}/` with what a bulk update takes: the issue as
/// it is afterwards.
async fn update_issue(State(state): State<AppState>, scope: OrgScope<Bearer>, Path((_, id)): Path<(String, String)>, body: bytes::Bytes) -> Result<Response, ApiError> {
    change_issue(&state, &scope.viewer.actor, scope.org.id, &id, &body).await
}

/// `PUT /api/0/issues/{id}/`.
async fn token_update_issue(State(state): State<AppState>, viewer: Viewer<Bearer>, Path(id): Path<String>, body: bytes::Bytes) -> Result<Response, ApiError> {
    let org = token_org(&viewer)?;
    change_issue(&state, &viewer.actor, org, &id, &body).await
}

async fn change_issue(state: &AppState, actor: &Actor, org: store::OrgId, id: &str, body: &[u8]) -> Result<Response, ApiError> {
    let (g, p) = issue_in(state, actor, org, id, Action::Triage).await?;
    let store = state.store.clone();
    let who = actor.clone();
    let ctx = store::off_thread(move || SearchContext::load(&*store, org, &who)).await?;
    let change = change_of(body, &ctx)?;
    let details = change.status.as_ref().map(|(_, snooze, in_release)| status_details(snooze, in_release.as_ref()));
    let (store, user, group) = (state.store.clone(), acting_user(actor), g.id);
    let g = store::off_thread(move || {
        change.apply(&*store, &[group], user)?;
        store.group(group)?.ok_or_else(|| store::StoreError::NotFound(format!("issue {}", group.0)))
    })
    .await?;
    let mut issue = issue_json(state, actor, g, &p).await?;
    if let Some(d) = details {
        issue.status_details = d;
    }
    Ok(answer(StatusCode::OK, issue))
}

/// `DELETE /api/0/organizations/{org}/issues/{id}/`: the issue goes with its events (202, as
/// Sentry answers).
async fn delete_issue(State(state): State<AppState>, scope: OrgScope<Bearer>, Path((_, id)): Path<(String, String)>) -> Result<Response, ApiError> {
    remove_issue(&state, &scope.viewer.actor, scope.org.id, &id).await
}

/// `DELETE /api/0/issues/{id}/`.
async fn token_delete_issue(State(state): State<AppState>, viewer: Viewer<Bearer>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let org = token_org(&viewer)?;
    remove_issue(&state, &viewer.actor, org, &id).await
}

async fn remove_issue(state: &AppState, actor: &Actor, org: store::OrgId, id: &str) -> Result<Response, ApiError> {
    let (g, _) = issue_in(state, actor, org, id, Action::Triage).await?;
    let store = state.store.clone();
    store::off_thread(move || store.delete_groups(&[g.id])).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// An event as the API shows it: Sentry's summary fields, and the event's own JSON fields
/// (`exception`, `message`, `contexts`, …) as sent, after processing.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ApiEvent {
    id: String,
    #[serde(rename = "eventID")]
    event_id: String,
    #[serde(rename = "groupID")]
    group_id: String,
    #[serde(rename = "projectID")]
    project_id: String,
    title: String,
    message: String,
    #[serde(rename = "type")]
    kind: String,
    platform: Option<String>,
    date_created: String,
    date_received: String,
    tags: Vec<Tag>,
    entries: Vec<serde_json::Value>,
    errors: serde_json::Value,
}

#[derive(Serialize)]
struct Tag {
    key: String,
    value: String,
}

fn api_event(e: &EventRow) -> ApiEvent {
    let payload: serde_json::Value = serde_json::from_slice(&e.payload).unwrap_or(serde_json::Value::Null);
    let mut entries = Vec::new();
    for key in ["exception", "message", "logentry", "request", "breadcrumbs", "threads"] {
        if let Some(v) = payload.get(key).filter(|v| !v.is_null()) {
            entries.push(serde_json::json!({"type": if key == "logentry" { "message" } else { key }, "data": v}));
        }
    }
    let message = payload
        .get("logentry")
        .and_then(|l| l.get("formatted").or_else(|| l.get("message")))
        .or_else(|| payload.get("message"))
        .and_then(|m| m.as_str())
        .unwrap_or_default()
        .to_string();
    ApiEvent {
        id: e.event_id.clone(),
        event_id: e.event_id.clone(),
        group_id: e.group_id.0.to_string(),
        project_id: e.project_id.to_string(),
        title: e.title.clone(),
        message,
        kind: if e.kind == "exception" { "error".into() } else { "default".into() },
        platform: payload.get("platform").and_then(|p| p.as_str()).map(str::to_string),
        date_created: date(e.timestamp),
        date_received: date(e.received),
        tags: e.tags.iter().map(|(k, v)| Tag { key: k.clone(), value: v.clone() }).collect(),
        entries,
        errors: payload.get("errors").cloned().unwrap_or_else(|| serde_json::json!([])),
    }
}

/// `GET /api/0/organizations/{org}/issues/{id}/events/`: newest first, 100 a page.
async fn issue_events(
    State(state): State<AppState>,
    scope: OrgScope<Bearer>,
    Path((_, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (g, _) = issue_of(&state, &scope, &id, Action::ViewEvents).await?;
    let before = super::cursor_id(&raw);
    let store = state.store.clone();
    let rows = store::off_thread(move || store.group_events(g.id, before, PAGE + 1)).await?;
    let next = (rows.len() > PAGE).then(|| super::next_cursor(rows[PAGE - 1].position));
    let url = format!("{}/api/0/organizations/{}/issues/{id}/events/", state.public_url, scope.org.slug);
    Ok(list(rows.iter().take(PAGE).map(api_event).collect::<Vec<_>>(), &url, next))
}

/// `GET /api/0/organizations/{org}/issues/{id}/events/latest/`.
async fn latest_event(State(state): State<AppState>, scope: OrgScope<Bearer>, Path((_, id)): Path<(String, String)>) -> Result<Response, ApiError> {
    let (g, _) = issue_of(&state, &scope, &id, Action::ViewEvents).await?;
    let store = state.store.clone();
    let rows = store::off_thread(move || store.group_events(g.id, None, 1)).await?;
    let e = rows.first().ok_or_else(|| ApiError::NotFound("The issue has no events stored.".into()))?;
    Ok(answer(StatusCode::OK, api_event(e)))
}

async fn event_row(state: &AppState, p: &ApiProject, event_id: &str) -> Result<EventRow, ApiError> {
    p.require(Action::ViewEvents)?;
    let nope = || ApiError::NotFound(format!("There is no event {event_id} in this project."));
    let id: protocol::EventId = event_id.parse().map_err(|_| nope())?;
    let store = state.store.clone();
    let project = p.project().id;
    store::off_thread(move || store.event(project, &id)).await?.ok_or_else(nope)
}

/// `GET /api/0/projects/{org}/{project}/events/{event_id}/`.
async fn event(State(state): State<AppState>, p: ApiProject, Path((_, _, event_id)): Path<(String, String, String)>) -> Result<Response, ApiError> {
    let e = event_row(&state, &p, &event_id).await?;
    Ok(answer(StatusCode::OK, api_event(&e)))
}

/// `GET /api/0/projects/{org}/{project}/events/{event_id}/json/`: the event's JSON as stored
/// (after processing: resolved frames, with the minified ones kept).
async fn event_json(State(state): State<AppState>, p: ApiProject, Path((_, _, event_id)): Path<(String, String, String)>) -> Result<Response, ApiError> {
    let e = event_row(&state, &p, &event_id).await?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], e.payload).into_response())
}
