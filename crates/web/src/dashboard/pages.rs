//! The pages: home, dashboard (across projects), project stream, group detail, event detail
//! (with its raw JSON), and the triage actions (resolve, ignore, reopen). Handlers are thin:
//! read the URL, query the store on a blocking thread, fill a view, render its template.

use std::sync::Arc;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use store::{GroupId, GroupRow, GroupStatus, Project, ProjectId, Sort, StatusFilter, Store, StreamQuery};

use super::auth::CurrentUser;
use crate::access::extract::{ProjectScope, Viewer};
use crate::access::Action;
use super::event_view::EventView;
use super::filters::{self, Filter, IntervalFilter, Widget, INTERVALS};
use super::environments::{self, Selector};
use super::format::{self, query_string};
use super::{blocking, charts, render, PageError, PageResult};
use crate::AppState;

/// The top bar of every page once logged in.
pub struct Nav {
    pub email: String,
    pub csrf: String,
    /// (slug, name) of every project the viewer may see.
    pub projects: Vec<(String, String)>,
    /// The project being looked at, if any.
    pub current: String,
    pub section: &'static str,
}

pub(super) fn nav(store: &Arc<dyn Store>, viewer: &Viewer, current: &str, section: &'static str) -> PageResult<Nav> {
    Ok(Nav {
        email: viewer.principal.user.email.clone(),
        csrf: viewer.principal.csrf.clone(),
        projects: viewer.projects(store)?.into_iter().map(|p| (p.slug, p.name)).collect(),
        current: current.to_string(),
        section,
    })
}

/// A link that may be the active one of its group (a tab, a sort, an interval).
pub struct Link {
    pub label: String,
    pub href: String,
    pub active: bool,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub title: String,
    pub message: String,
}

/// `GET /`: the dashboard when logged in, else the login page.
pub async fn home(user: Result<CurrentUser, PageError>) -> Response {
    match user {
        Ok(_) => Redirect::to("/dashboard").into_response(),
        Err(_) => Redirect::to("/login").into_response(),
    }
}

fn interval_secs(name: &str) -> Option<Option<f64>> {
    INTERVALS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// One group in a short list (dashboard, trending).
pub struct GroupLink {
    pub href: String,
    pub title: String,
    pub culprit: String,
    pub level: String,
    pub project: String,
    pub detail: String,
}

fn group_href(slug: &str, id: GroupId) -> String {
    super::paths::issue(slug, id)
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    nav: Nav,
    intervals: Vec<Link>,
    interval: String,
    chart: String,
    total: String,
    projects: Vec<(String, String, String)>,
    new_groups: Vec<GroupLink>,
    trending: Vec<GroupLink>,
    env: Selector,
    problems: Vec<String>,
}

/// `GET /dashboard?interval=24h&environment=…`: event rate, new and trending groups across
/// projects; the environments narrow the issues listed (and the links), not the event counts.
pub async fn dashboard(State(state): State<AppState>, viewer: Viewer, Query(params): Query<Vec<(String, String)>>) -> PageResult {
    let store = state.store.clone();
    blocking(move || {
        let (envs, problems) = environments::chosen(&params);
        let interval = params.iter().rev().find(|(k, _)| k == "interval").map(|(_, v)| v.clone());
        let interval = interval.filter(|i| interval_secs(i).flatten().is_some()).unwrap_or_else(|| "24h".into());
        let secs = interval_secs(&interval).flatten().unwrap_or(86400.0);
        let now = store::now();
        let since = now - secs;
        let projects = viewer.projects(&store)?;
        let slug_of = |id: ProjectId| projects.iter().find(|p| p.id == id).map(|p| p.slug.clone()).unwrap_or_default();
        let ids: Vec<ProjectId> = projects.iter().map(|p| p.id).collect();
        let mut series = store.project_series(&ids, since, now, 48)?;
        let start = charts::chart_start(since, now, charts::first_bar(&series, since, now));
        if start > since {
            series = store.project_series(&ids, start, now, 48)?;
        }
        let mut per_project = Vec::new();
        for p in &projects {
            let n: u64 = store.project_series(&[p.id], since, now, 1)?.iter().sum();
            let href = environments::carry(&format!("{}?interval={interval}", super::paths::stream(&p.slug)), &envs);
            per_project.push((href, p.name.clone(), format::count(n)));
        }
        let link = |g: &GroupRow, detail: String| GroupLink {
            href: environments::carry(&group_href(&slug_of(g.project_id), g.id), &envs),
            title: g.title.clone(),
            culprit: g.culprit.clone(),
            level: g.level.clone(),
            project: slug_of(g.project_id),
            detail,
        };
        let new_groups = store
            .new_groups(&ids, since, &envs, 10)?
            .iter()
            .map(|g| link(g, format!("first seen {}", format::ago(g.first_seen, now))))
            .collect();
        let trending = store
            .trending(&ids, now, &envs, 10)?
            .iter()
            .map(|t| link(&t.group, trending_detail(t.last_15m, t.last_24h, t.ratio)))
            .collect();
        let page = DashboardPage {
            nav: nav(&store, &viewer, "", "dashboard")?,
            intervals: INTERVALS
                .iter()
                .filter(|(_, s)| s.is_some())
                .map(|(n, _)| Link { label: n.to_string(), href: environments::carry(&format!("/dashboard?interval={n}"), &envs), active: *n == interval })
                .collect(),
            env: Selector::new(
                &store,
                &ids,
                &envs,
                "/dashboard",
                vec![("interval".into(), interval.clone())],
                format!(
                    "New and trending issues are those seen in {}; the event counts and the chart are of every environment, as the \
                     counters by time don't record it.",
                    environments::label(&envs)
                ),
            )?,
            problems: problems.into_iter().collect(),
            chart: charts::bars(&series, start, now, &format!("Events in the last {interval}, all projects")),
            total: format::plural(series.iter().sum(), "event"),
            interval,
            projects: per_project,
            new_groups,
            trending,
        };
        render(&page)
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// The project stream
// ---------------------------------------------------------------------------------------------

pub struct ChoiceView {
    pub value: String,
    pub label: String,
    pub selected: bool,
    pub href: String,
}

pub struct SliceView {
    pub param: String,
    pub label: String,
    pub widget: &'static str,
    pub current: String,
    pub choices: Vec<ChoiceView>,
    pub clear_href: String,
}

pub struct RowView {
    pub id: GroupId,
    pub href: String,
    pub title: String,
    pub culprit: String,
    pub level: String,
    pub kind: String,
    pub count: String,
    pub users: String,
    pub first_seen: String,
    pub first_seen_utc: String,
    pub last_seen: String,
    pub last_seen_utc: String,
    pub sparkline: String,
    pub avg: String,
    pub total: String,
    /// Who it is assigned to: an email, `#team`, or "".
    pub assignee: String,
}

#[derive(Template)]
#[template(path = "stream.html")]
struct StreamPage {
    nav: Nav,
    slug: String,
    name: String,
    tabs: Vec<Link>,
    sorts: Vec<Link>,
    intervals: Vec<Link>,
    slices: Vec<SliceView>,
    hidden: Vec<(String, String)>,
    q: String,
    problems: Vec<String>,
    rows: Vec<RowView>,
    next_url: Option<String>,
    first_url: Option<String>,
    empty: String,
    count_label: String,
    live_url: String,
    /// The stream's parameters, for the bulk form (what "all that match" means).
    bulk_state: Vec<(String, String)>,
    /// Whom the bulk bar can assign to: nobody, the members, the teams.
    assign_choices: Vec<super::triage::AssignChoice>,
    env: Selector,
    /// How to send a first event, while the project has no issue at all.
    guide: Option<super::onboarding::Guide>,
    /// Crash-free sessions of the last days, when the project's SDKs report sessions.
    health: Option<String>,
}

#[derive(Template)]
#[template(path = "stream_rows.html")]
struct StreamRows {
    rows: Vec<RowView>,
    next_url: Option<String>,
    first_url: Option<String>,
    empty: String,
    count_label: String,
}

const SORTS: &[(&str, &str)] = &[
    ("priority", "Priority"),
    ("last_seen", "Last seen"),
    ("first_seen", "First seen"),
    ("frequency", "Frequency"),
    ("time_spent", "Avg. time"),
    ("total_time_spent", "Total time"),
];

/// The stream's URL state, in a fixed order so URLs are stable and shareable.
#[derive(Clone)]
pub(super) struct StreamState {
    sort: String,
    interval: String,
    status: String,
    /// (param, value) of each slice that is set.
    slices: Vec<(String, String)>,
    /// The environments chosen in the selector; none: all.
    pub(super) environments: Vec<String>,
    q: String,
}

impl StreamState {
    pub(super) fn pairs(&self) -> Vec<(String, String)> {
        let mut v = vec![("sort".to_string(), self.sort.clone()), ("interval".into(), self.interval.clone()), ("status".into(), self.status.clone())];
        v.extend(self.slices.iter().cloned());
        v.extend(self.environments.iter().map(|e| (environments::PARAM.to_string(), e.clone())));
        v.push(("q".into(), self.q.clone()));
        v
    }

    /// The URL with one parameter changed (empty removes it).
    fn with(&self, base: &str, key: &str, value: &str) -> String {
        let mut pairs = self.pairs();
        match pairs.iter_mut().find(|(k, _)| k == key) {
            Some(p) => p.1 = value.to_string(),
            None => pairs.push((key.to_string(), value.to_string())),
        }
        format!("{base}{}", query_string(&pairs))
    }
}

/// The filters of a project's slices, each with how it is shown.
pub(super) type SliceFilters = Vec<(Box<dyn Filter>, Widget)>;

/// The stream query of a stream URL's parameters (`sort`, `interval`, `status`, the slices,
/// `q`, `cursor`), what of them is set, and what was not understood. The stream page and its
/// bulk actions ("all issues that match") read the same.
pub(super) fn stream_query(
    project: &Project,
    params: &[(String, String)],
    slices: &[filters::SliceSpec],
    now: f64,
    ctx: &super::search::SearchContext,
) -> (StreamQuery, StreamState, Vec<String>, SliceFilters) {
    let param = |k: &str| params.iter().rev().find(|(pk, _)| pk == k).map(|(_, v)| v.trim().to_string()).filter(|v| !v.is_empty());
    let mut problems = Vec::new();
    let mut query = StreamQuery::new(project.id, now);

    let sort = param("sort").unwrap_or_else(|| "priority".into());
    query.sort = Sort::parse(&sort).unwrap_or_else(|| {
        problems.push(format!("\"{sort}\" is not a sort; showing priority"));
        Sort::Priority
    });
    let sort = SORTS.iter().find(|(n, _)| Sort::parse(n) == Some(query.sort)).map_or("priority", |s| s.0).to_string();
    let mut interval = param("interval").unwrap_or_else(|| "24h".into());
    if let Err(p) = IntervalFilter.apply(&interval, &mut query) {
        problems.push(p);
        interval = "24h".into();
        let _ = IntervalFilter.apply(&interval, &mut query);
    }
    let status = param("status").unwrap_or_else(|| "unresolved".into());
    let status = match GroupStatus::parse(&status) {
        Some(s) => {
            query.status = StatusFilter::Only(s);
            s.as_str().to_string()
        }
        None => {
            problems.push(format!("\"{status}\" is not a status"));
            "unresolved".into()
        }
    };
    let mut set = Vec::new();
    // The environment selector, not a slice, owns `environment=`.
    let filters: Vec<(Box<dyn Filter>, Widget)> =
        slices.iter().map(|s| (s.filter(), s.widget())).filter(|(f, _)| f.param() != environments::PARAM).collect();
    let (environments, refused) = environments::chosen(params);
    problems.extend(refused);
    query.environments = environments.clone();
    for (f, _) in &filters {
        if let Some(v) = param(f.param()) {
            match f.apply(&v, &mut query) {
                Ok(()) => set.push((f.param().to_string(), v)),
                Err(p) => problems.push(p),
            }
        }
    }
    let q = param("q").unwrap_or_default();
    problems.extend(filters::apply_search(&q, &mut query, ctx));
    if let Some(c) = param("cursor") {
        match store::Cursor::parse(&c) {
            Some(c) => query.cursor = Some(c),
            None => problems.push("the page link is broken; showing the first page".into()),
        }
    }
    let st = StreamState { sort, interval, status, slices: set, environments, q };
    (query, st, problems, filters)
}

/// `GET /p/{slug}/?sort=…&interval=…&status=…&level=…&q=…&cursor=…` (`fragment=1`: only the list).
pub async fn stream(
    State(state): State<AppState>,
    scope: ProjectScope,
    Query(params): Query<Vec<(String, String)>>,
) -> PageResult {
    let store = state.store.clone();
    let slices = state.dashboard.config.slices.get(&scope.project.slug).cloned().unwrap_or_else(filters::default_slices);
    let url = state.public_url.clone();
    blocking(move || {
        let project = scope.project.clone();
        let param = |k: &str| params.iter().rev().find(|(pk, _)| pk == k).map(|(_, v)| v.trim().to_string()).filter(|v| !v.is_empty());
        let now = store::now();
        let ctx = super::search::SearchContext::load(&*store, project.org_id, &scope.viewer.actor)?;
        let (query, st, problems, filters) = stream_query(&project, &params, &slices, now, &ctx);
        let (sort, interval, status, q) = (st.sort.clone(), st.interval.clone(), st.status.clone(), st.q.clone());
        let base = super::paths::stream(&project.slug);

        let page = store.stream(&query)?;
        let rows: Vec<RowView> = page
            .rows
            .iter()
            .map(|r| {
                let g = &r.group;
                RowView {
                    id: g.id,
                    href: environments::carry(&group_href(&project.slug, g.id), &st.environments),
                    title: g.title.clone(),
                    culprit: g.culprit.clone(),
                    level: g.level.clone(),
                    kind: g.kind.clone(),
                    count: format::count(r.interval_count),
                    users: format::count(r.users),
                    first_seen: format::ago(g.first_seen, now),
                    first_seen_utc: format::utc(g.first_seen),
                    last_seen: format::ago(g.last_seen, now),
                    last_seen_utc: format::utc(g.last_seen),
                    sparkline: charts::sparkline(&r.sparkline),
                    avg: g.time_spent.as_ref().map(|t| format::ms(t.avg_ms)).unwrap_or_default(),
                    total: g.time_spent.as_ref().map(|t| format::ms(t.sum_ms)).unwrap_or_default(),
                    assignee: r.assignee.map(|a| ctx.name_of(a)).unwrap_or_default(),
                }
            })
            .collect();
        let next_url = page.next.map(|c| st.with(&base, "cursor", &c.encode()));
        let first_url = query.cursor.map(|_| st.with(&base, "cursor", ""));
        let in_envs = if st.environments.is_empty() { String::new() } else { format!(" in {}", environments::label(&st.environments)) };
        let empty = if query.cursor.is_some() {
            "No more issues.".to_string()
        } else if interval == "all" {
            format!("No {status} issues{in_envs} match.")
        } else {
            format!("No {status} issues{in_envs} in the last {interval} match.")
        };
        let count_label = match (interval == "all", st.environments.is_empty()) {
            (true, _) => "Events".to_string(),
            (false, true) => format!("Events ({interval})"),
            (false, false) => format!("Events ({interval}, all environments)"),
        };
        let (guide, empty) = match rows.is_empty() && query.cursor.is_none() && !has_any_issue(&*store, project.id, now)? {
            false => (None, empty),
            true if scope.allows(Action::ManageProject) => {
                let dsn = store.keys(project.id)?.into_iter().find(|k| k.is_active()).map(|k| super::settings::dsn(&url, &k.public_key, project.id));
                (dsn.transpose()?.map(super::onboarding::Guide::new), "This project has no events yet.".to_string())
            }
            true => (None, "This project has no events yet. An admin of the project finds its DSN in the project's settings.".to_string()),
        };
        if param("fragment").is_some() {
            return render(&StreamRows { rows, next_url, first_url, empty, count_label });
        }

        let mut slice_views = Vec::new();
        for (f, widget) in &filters {
            let current = st.slices.iter().find(|(k, _)| k == f.param()).map(|(_, v)| v.clone()).unwrap_or_default();
            let choices = if *widget == Widget::Search { Vec::new() } else { f.choices(&store, project.id)? };
            let mut choices: Vec<ChoiceView> = choices
                .into_iter()
                .map(|c| ChoiceView {
                    label: match c.count {
                        Some(n) => format!("{} ({})", c.value, format::count(n)),
                        None => c.value.clone(),
                    },
                    selected: c.value == current,
                    href: st.with(&base, f.param(), if c.value == current { "" } else { &c.value }),
                    value: c.value,
                })
                .collect();
            if !current.is_empty() && !choices.iter().any(|c| c.selected) {
                choices.insert(0, ChoiceView { value: current.clone(), label: current.clone(), selected: true, href: st.with(&base, f.param(), "") });
            }
            slice_views.push(SliceView {
                param: f.param().to_string(),
                label: f.label(),
                widget: widget.as_str(),
                clear_href: st.with(&base, f.param(), ""),
                current,
                choices,
            });
        }
        let tabs = ["unresolved", "resolved", "ignored"]
            .iter()
            .map(|s| Link { label: capitalise(s), href: st.with(&base, "status", s), active: *s == status })
            .collect();
        let sorts = SORTS.iter().map(|(n, l)| Link { label: l.to_string(), href: st.with(&base, "sort", n), active: *n == sort }).collect();
        let intervals = INTERVALS
            .iter()
            .map(|(n, _)| Link { label: n.to_string(), href: st.with(&base, "interval", n), active: *n == interval })
            .collect();
        // The filter form keeps what it does not show.
        let mut hidden = vec![("sort".to_string(), sort.clone()), ("interval".into(), interval.clone()), ("status".into(), status.clone())];
        hidden.extend(st.environments.iter().map(|e| (environments::PARAM.to_string(), e.clone())));
        for s in &slice_views {
            if s.widget == "toggles" && !s.current.is_empty() {
                hidden.push((s.param.clone(), s.current.clone()));
            }
        }
        let page = StreamPage {
            nav: nav(&store, &scope.viewer, &project.slug, "stream")?,
            live_url: format!("{base}live"),
            slug: project.slug.clone(),
            name: project.name.clone(),
            tabs,
            sorts,
            intervals,
            slices: slice_views,
            hidden,
            q,
            problems,
            rows,
            next_url,
            first_url,
            empty,
            count_label,
            bulk_state: st.pairs(),
            assign_choices: super::triage::assign_choices(&store, project.org_id, None)?.1,
            env: Selector::new(&store, &[project.id], &st.environments, &base, st.pairs(), stream_note(&st.environments, &interval))?,
            guide,
            health: super::releases::project_health(&*store, project.id, now)?,
        };
        render(&page)
    })
    .await
}

/// What the chosen environments don't narrow on the stream.
fn stream_note(envs: &[String], interval: &str) -> String {
    let label = environments::label(envs);
    if interval == "all" {
        format!("Issues and their event counts are those of {label}; users and trend lines are of every environment.")
    } else {
        format!(
            "Issues are those seen in {label} in the last {interval}; their event counts, users and trend lines are of every \
             environment, as the counters by time don't record it. Choose the interval \"all\" for counts of {label} only."
        )
    }
}

/// A trending issue's line: its recent count against its usual rate, or that it has no usual
/// rate yet when all its events of the last 24 hours came in the last 15 minutes (a new issue,
/// a fresh install), where a ratio would only say "96×".
fn trending_detail(last_15m: u64, last_24h: u64, ratio: f64) -> String {
    let recent = format!("{} in 15 min", format::plural(last_15m, "event"));
    if last_24h <= last_15m {
        format!("{recent} · none before in 24 h, so no usual rate yet")
    } else {
        format!("{recent} · {} in 24 h · {ratio:.1}× its usual rate", format::plural(last_24h, "event"))
    }
}

/// Whether the project has any issue, of any status, at any time (one row read).
fn has_any_issue(store: &dyn Store, project: ProjectId, now: f64) -> PageResult<bool> {
    let mut q = StreamQuery::new(project, now);
    q.status = StatusFilter::All;
    q.sort = Sort::LastSeen;
    q.limit = 1;
    Ok(!store.stream(&q)?.rows.is_empty())
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Group and event detail
// ---------------------------------------------------------------------------------------------

pub struct TagValueView {
    pub value: String,
    pub count: String,
    pub pct: String,
    pub bar: String,
    pub href: String,
}

pub struct DurationView {
    pub avg: String,
    pub p95: String,
    pub min: String,
    pub max: String,
    pub total: String,
    pub count: String,
    pub chart: String,
}

pub struct ComponentView {
    pub name: String,
    pub values: Vec<String>,
    pub contributes: bool,
}

pub struct EventLine {
    pub href: String,
    pub id: String,
    pub ago: String,
    pub utc: String,
    pub title: String,
    pub level: String,
    pub duration: String,
}

/// One event, as the group and event pages show it.
pub struct EventDetail {
    pub event_id: String,
    pub href: String,
    pub json_href: String,
    pub ago: String,
    pub utc: String,
    pub level: String,
    pub duration: String,
    pub tags: Vec<(String, String, String)>,
    pub v: EventView,
    /// Oldest, older, newer, newest: (label, link, or "" where there is none); empty when the
    /// event is its issue's only one.
    pub steps: Vec<(&'static str, String)>,
}

/// An event to show, with the links to step through its issue's events; every link keeps the
/// environments chosen.
fn event_detail(store: &dyn Store, slug: &str, e: &store::EventRow, now: f64, envs: &[String]) -> PageResult<EventDetail> {
    let href = super::paths::event(slug, e.group_id, &e.event_id);
    let nav = store.event_nav(e.group_id, e.position)?;
    let step = |id: Option<String>| id.map(|id| environments::carry(&super::paths::event(slug, e.group_id, &id), envs)).unwrap_or_default();
    let mut steps = vec![("Oldest", step(nav.oldest)), ("Older", step(nav.older)), ("Newer", step(nav.newer)), ("Newest", step(nav.newest))];
    if steps.iter().all(|(_, href)| href.is_empty()) {
        steps.clear();
    }
    Ok(EventDetail {
        steps,
        json_href: format!("{href}json"),
        href: environments::carry(&href, envs),
        event_id: e.event_id.clone(),
        ago: format::ago(e.timestamp, now),
        utc: format::utc(e.timestamp),
        level: e.level.clone(),
        duration: e.time_spent.map(format::ms).unwrap_or_default(),
        tags: e
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), v.clone(), format!("{}?q={}", super::paths::stream(slug), format::url_encode(&search_term(k, v)))))
            .collect(),
        v: EventView::from_payload(&e.payload),
    })
}

/// `key:value` for the search box, quoted when the value has spaces.
fn search_term(k: &str, v: &str) -> String {
    if v.contains(char::is_whitespace) || v.contains('"') { format!("{k}:\"{}\"", v.replace('"', "")) } else { format!("{k}:{v}") }
}

#[derive(Template)]
#[template(path = "group.html")]
struct GroupPage {
    nav: Nav,
    slug: String,
    g: GroupRow,
    status: String,
    first_seen: String,
    last_seen: String,
    first_seen_utc: String,
    last_seen_utc: String,
    count: String,
    interval_count: String,
    users: String,
    /// `event` or `events`, `user` or `users`, after the counts.
    count_noun: String,
    users_noun: String,
    intervals: Vec<Link>,
    interval: String,
    chart: String,
    tags: Vec<(String, Vec<TagValueView>)>,
    durations: Option<DurationView>,
    normalised: Option<(String, String)>,
    components: Vec<ComponentView>,
    events: Vec<EventLine>,
    events_next: Option<String>,
    activity: Vec<super::triage::TimelineItem>,
    /// The group's grouping hashes (more than one once others were merged into it).
    hashes: Vec<store::GroupHash>,
    /// Who it is assigned to ("" for nobody), and the choices: (value, label, chosen).
    assignee: String,
    assign_choices: Vec<super::triage::AssignChoice>,
    regression: bool,
    latest: Option<EventDetail>,
    base: String,
    feedback: Vec<super::feedback::FeedbackView>,
    feedback_href: String,
    /// The releases of the first and the last event, with their pages.
    releases: Vec<(String, String, String)>,
    /// While resolved in a release: which, in words ("in release 2.0").
    resolved_in: String,
    /// Releases to resolve it in: the project's, newest first.
    release_choices: Vec<String>,
    /// The stream, with the environments chosen.
    stream_href: String,
    /// The issue's events in the chosen environments ("" when none are chosen).
    env_summary: String,
}

#[derive(Deserialize)]
pub struct GroupQuery {
    interval: Option<String>,
    events_before: Option<i64>,
}

/// The group `id` of the project `slug`; a group of another project is "not found".
pub(super) fn group_of(store: &Arc<dyn Store>, project: &Project, id: &str) -> PageResult<(Project, GroupRow)> {
    let not_found = || PageError::NotFound(format!("there is no issue {id} in the project \"{}\"", project.slug));
    let id: GroupId = id.parse().map_err(|_| not_found())?;
    let group = store.group(id)?.filter(|g| g.project_id == project.id).ok_or_else(not_found)?;
    Ok((project.clone(), group))
}

/// `GET /p/{slug}/issues/{id}/`
pub async fn group(
    State(state): State<AppState>,
    scope: ProjectScope,
    Path((_, id)): Path<(String, String)>,
    Query(q): Query<GroupQuery>,
    Query(params): Query<Vec<(String, String)>>,
) -> PageResult {
    let store = state.store.clone();
    blocking(move || {
        let (envs, _) = environments::chosen(&params);
        let (project, g) = group_of(&store, &scope.project, &id)?;
        let now = store::now();
        let base = group_href(&project.slug, g.id);
        let interval = q.interval.filter(|i| interval_secs(i).flatten().is_some()).unwrap_or_else(|| "24h".into());
        let secs = interval_secs(&interval).flatten().unwrap_or(86400.0);
        let since = now - secs;
        let start = charts::chart_start(since, now, Some(g.first_seen));
        let series = store.group_series(g.id, start, now, 48)?;
        let interval_count = store.group_interval_count(g.id, Some(since), now)?;
        let tag_rows = store.group_tags(g.id, 8)?;
        let users = tag_rows.iter().find(|(k, _)| k == "user").map_or(0, |(_, v)| v.len());
        let mut release_choices: Vec<String> =
            store.releases(project.org_id, Some(project.id), None, 10)?.into_iter().map(|r| r.version).collect();
        for (_, values) in tag_rows.iter().filter(|(k, _)| k == "release") {
            release_choices.extend(values.iter().map(|t| t.value.clone()).filter(|v| !release_choices.contains(v)).collect::<Vec<_>>());
        }
        let env_summary = environment_summary(&tag_rows, &envs);
        let stream_href = environments::carry(&super::paths::stream(&project.slug), &envs);
        let tags = tag_rows
            .into_iter()
            .map(|(k, vals)| {
                let views = vals
                    .into_iter()
                    .map(|t| TagValueView {
                        pct: format!("{:.0}%", t.count as f64 / g.count.max(1) as f64 * 100.0),
                        bar: charts::share_bar(t.count, g.count),
                        count: format::count(t.count),
                        href: environments::carry(
                            &format!("{}?q={}", super::paths::stream(&project.slug), format::url_encode(&search_term(&k, &t.value))),
                            &envs,
                        ),
                        value: t.value,
                    })
                    .collect();
                (k, views)
            })
            .collect();
        let durations = match &g.time_spent {
            Some(t) => Some(DurationView {
                avg: format::ms(t.avg_ms),
                p95: format::ms(t.p95_ms),
                min: format::ms(t.min_ms),
                max: format::ms(t.max_ms),
                total: format::ms(t.sum_ms),
                count: format::count(t.count),
                chart: charts::histogram(&store.duration_histogram(g.id)?, t.avg_ms, t.p95_ms),
            }),
            None => None,
        };
        let normalised = match g.kind.as_str() {
            "query" => Some(("Normalised SQL".to_string(), g.title.clone())),
            "transaction" => Some(("Transaction".to_string(), g.title.clone())),
            _ => None,
        };
        let components = serde_json::from_str::<Vec<serde_json::Value>>(&g.components)
            .unwrap_or_default()
            .into_iter()
            .map(|c| ComponentView {
                name: c["name"].as_str().unwrap_or("").to_string(),
                values: c["values"].as_array().map(|v| v.iter().map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string)).collect()).unwrap_or_default(),
                contributes: c["contributes"].as_bool().unwrap_or(true),
            })
            .collect();
        let page_events = store.group_events(g.id, q.events_before, 20)?;
        let events_next = (page_events.len() == 20)
            .then(|| page_events.last().map(|e| environments::carry(&format!("{base}?interval={interval}&events_before={}#events", e.position), &envs)))
            .flatten();
        let events = page_events
            .iter()
            .map(|e| EventLine {
                href: environments::carry(&format!("{base}events/{}/", e.event_id), &envs),
                id: e.event_id[..8.min(e.event_id.len())].to_string(),
                ago: format::ago(e.timestamp, now),
                utc: format::utc(e.timestamp),
                title: e.title.clone(),
                level: e.level.clone(),
                duration: e.time_spent.map(format::ms).unwrap_or_default(),
            })
            .collect();
        let latest = store.group_events(g.id, None, 1)?.first().map(|e| event_detail(&*store, &project.slug, e, now, &envs)).transpose()?;
        let activity_rows = store.activity(g.id)?;
        let regression = g.status == GroupStatus::Unresolved && activity_rows.last().is_some_and(|a| a.kind == store::ACTIVITY_REGRESSION);
        let activity = super::triage::timeline(&store, &activity_rows, &project.slug, now, 200)?;
        let hashes = store.group_hashes(g.id)?;
        let (assignee, assign_choices) = super::triage::assign_choices(&store, project.org_id, store.group_assignee(g.id)?)?;
        let (first_release, last_release) = store.group_releases(g.id)?;
        let releases = [("first release", first_release), ("last release", last_release)]
            .into_iter()
            .filter_map(|(what, r)| r.map(|r| (what.to_string(), super::paths::release(&project.slug, &r), r)))
            .collect();
        let resolved_in = store.resolution(g.id)?.map(|r| super::triage::resolved_in(&r)).unwrap_or_default();
        let page = GroupPage {
            resolved_in,
            release_choices,
            stream_href,
            env_summary,
            releases,
            nav: nav(&store, &scope.viewer, &project.slug, "group")?,
            feedback: super::feedback::of_group(&store, &project.slug, g.id, now)?,
            feedback_href: super::paths::feedback(&project.slug),
            slug: project.slug.clone(),
            status: g.status.as_str().to_string(),
            first_seen: format::ago(g.first_seen, now),
            last_seen: format::ago(g.last_seen, now),
            first_seen_utc: format::utc(g.first_seen),
            last_seen_utc: format::utc(g.last_seen),
            count: format::count(g.count),
            interval_count: format::count(interval_count),
            users: format::count(users as u64),
            count_noun: format::noun(g.count, "event"),
            users_noun: format::noun(users as u64, "user"),
            intervals: INTERVALS
                .iter()
                .filter(|(_, s)| s.is_some())
                .map(|(n, _)| Link { label: n.to_string(), href: environments::carry(&format!("{base}?interval={n}"), &envs), active: *n == interval })
                .collect(),
            chart: charts::bars(&series, start, now, &format!("Events of this issue in the last {interval}")),
            interval,
            tags,
            durations,
            normalised,
            components,
            events,
            events_next,
            activity,
            hashes,
            assignee,
            assign_choices,
            regression,
            latest,
            base,
            g,
        };
        render(&page)
    })
    .await
}

/// "In production: 2 of its events (all time) …" for the chosen environments, from the
/// issue's tag values (the first few per key: an environment past them is not counted).
fn environment_summary(tags: &[(String, Vec<store::TagCount>)], envs: &[String]) -> String {
    if envs.is_empty() {
        return String::new();
    }
    let values = tags.iter().find(|(k, _)| k == environments::PARAM).map_or(&[][..], |(_, v)| v.as_slice());
    let n: u64 = values.iter().filter(|t| envs.contains(&t.value)).map(|t| t.count).sum();
    format!(
        "In {}: {} of its events, all time. The chart, the counts by interval and the list of events are of every environment.",
        environments::label(envs),
        format::count(n)
    )
}

#[derive(Deserialize)]
pub struct StatusForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    status: String,
    /// With `status=resolved`: `next` for the next release, `named` for `release`.
    #[serde(default)]
    in_release: String,
    #[serde(default)]
    release: String,
}

/// `POST /p/{slug}/issues/{id}/status`: resolve, ignore or reopen.
pub async fn set_status(
    State(state): State<AppState>,
    scope: ProjectScope,
    headers: HeaderMap,
    Path((_, id)): Path<(String, String)>,
    Form(form): Form<StatusForm>,
) -> PageResult {
    scope.viewer.principal.check_csrf(&form.csrf, &headers)?;
    scope.require(Action::Triage)?;
    let status = GroupStatus::parse(&form.status)
        .ok_or_else(|| PageError::BadRequest(format!("\"{}\" is not a status: use resolved, ignored or unresolved", form.status)))?;
    let in_release = match (form.in_release.as_str(), form.release.trim()) {
        ("", _) => None,
        _ if status != GroupStatus::Resolved => {
            return Err(PageError::BadRequest("only resolving can name a release".into()));
        }
        ("next", _) => Some(store::InRelease::Next),
        ("named", "") => return Err(PageError::BadRequest("name the release to resolve it in, for example shop@1.2.3".into())),
        ("named", version) => Some(store::InRelease::Named(version.to_string())),
        (other, _) => return Err(PageError::BadRequest(format!("\"{other}\" is not a choice: use next or named"))),
    };
    let store = state.store.clone();
    let href = blocking(move || {
        let (project, g) = group_of(&store, &scope.project, &id)?;
        let actor = Some(scope.viewer.principal.user.id);
        match &in_release {
            Some(target) => store.resolve_in_release(&[g.id], target, actor)?,
            None => store.change_status(&[g.id], status, &store::Snooze::default(), actor)?,
        };
        Ok(group_href(&project.slug, g.id))
    })
    .await?;
    Ok(Redirect::to(&href).into_response())
}

#[derive(Template)]
#[template(path = "event.html")]
struct EventPage {
    nav: Nav,
    slug: String,
    stream_href: String,
    g: GroupRow,
    group_href: String,
    latest: Option<EventDetail>,
    raw: String,
    trace_logs: Option<super::logs::TraceLogs>,
}

fn event_of(store: &Arc<dyn Store>, project: &Project, id: &str, event_id: &str) -> PageResult<(Project, GroupRow, store::EventRow)> {
    let (project, g) = group_of(store, project, id)?;
    let not_found = || PageError::NotFound(format!("there is no event {event_id} in this issue"));
    let eid: protocol::EventId = event_id.parse().map_err(|_| not_found())?;
    let event = store.event(project.id, &eid)?.filter(|e| e.group_id == g.id).ok_or_else(not_found)?;
    Ok((project, g, event))
}

/// `GET /p/{slug}/issues/{id}/events/{event_id}/`
pub async fn event(
    State(state): State<AppState>,
    scope: ProjectScope,
    Path((_, id, event_id)): Path<(String, String, String)>,
    Query(params): Query<Vec<(String, String)>>,
) -> PageResult {
    let store = state.store.clone();
    blocking(move || {
        let (envs, _) = environments::chosen(&params);
        let (project, g, e) = event_of(&store, &scope.project, &id, &event_id)?;
        let page = EventPage {
            nav: nav(&store, &scope.viewer, &project.slug, "event")?,
            stream_href: environments::carry(&super::paths::stream(&project.slug), &envs),
            slug: project.slug.clone(),
            group_href: environments::carry(&group_href(&project.slug, g.id), &envs),
            raw: EventView::pretty(&e.payload),
            latest: Some(event_detail(&*store, &project.slug, &e, store::now(), &envs)?),
            trace_logs: super::logs::of_event(&*store, project.id, &project.slug, &e.payload, store::now())?,
            g,
        };
        render(&page)
    })
    .await
}

/// `GET /p/{slug}/issues/{id}/events/{event_id}/json`: the event as the client sent it.
pub async fn event_json(
    State(state): State<AppState>,
    scope: ProjectScope,
    Path((_, id, event_id)): Path<(String, String, String)>,
) -> PageResult {
    let store = state.store.clone();
    let payload = blocking(move || Ok(event_of(&store, &scope.project, &id, &event_id)?.2.payload)).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], payload).into_response())
}
