//! The web dashboard: server-rendered HTML pages (askama templates, escaped by default) that
//! work without JavaScript, plus a little script for live updates (server-sent events) and
//! keyboard navigation.
//!
//! - `auth`: users, sessions (HttpOnly SameSite cookies), CSRF tokens, the login rate limit,
//!   the one-time setup link.
//! - `filters`: the Filter API (a processor that narrows the stream query, a renderer that
//!   says how it is shown) and the search box's `key:value` terms.
//! - `pages`: the stream, dashboard, group, event and settings pages.
//! - `triage`: an issue's timeline and comments (Markdown, mentions), snoozes, unmerge, and
//!   the stream's bulk actions with their progress.
//! - `releases`: a project's releases and a release's page (deploys, events, new issues, files).
//! - `settings`, `org_settings`: projects and keys; an organisation's members, teams,
//!   invitations, API tokens and audit log.
//! - `onboarding`: an empty project's DSN and SDK set-up snippets.
//! - `invite`: the page of a one-time invitation link.
//! - `sso`: single sign-on with OpenID Connect.
//! - `event_view`: turns a stored event's JSON into what the pages show.
//! - `charts`: SVG charts rendered on the server.
//! - `live`: the server-sent events stream.
//! - `logs`: a project's Logs page and the logs of an event's trace.
//!
//! Every store call is blocking and runs on a blocking thread ([`blocking`]).

pub mod auth;
mod charts;
mod environments;
mod event_view;
mod feedback;
mod monitors;
pub mod filters;
pub mod search;
mod format;
mod invite;
mod live;
pub mod logs;
mod onboarding;
mod org_settings;
mod pages;
mod releases;
pub(crate) mod settings;
mod sso;
pub(crate) mod triage;

use std::collections::HashMap;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Router;

use crate::AppState;
pub use filters::SliceSpec;

/// What the dashboard is configured with, from the config file.
#[derive(Clone, Debug, Default)]
pub struct DashboardConfig {
    /// The filters shown on each project's stream (`[projects.<slug>] slices`), by slug.
    /// Projects not listed get [`filters::DEFAULT_SLICES`].
    pub slices: HashMap<String, Vec<SliceSpec>>,
    /// `retention.days`: how long events are kept (0: forever).
    pub retention_days: u32,
    /// `[projects.<slug>] retention_days`, by slug.
    pub project_retention_days: HashMap<String, u32>,
    /// `store.max_bytes` (0: no cap).
    pub max_bytes: u64,
    /// `limits.max_login_hashes`: password checks run at once.
    pub login_hashes: usize,
}

/// The dashboard's shared state: its config and the login rate limiter.
pub struct Dashboard {
    pub config: DashboardConfig,
    pub(crate) logins: auth::LoginLimiter,
    /// Single sign-ons under way.
    pub(crate) sso: sso::SsoLogins,
    /// Cookies get `Secure` when the public URL is https.
    pub(crate) secure_cookies: bool,
    /// Set when the server shuts down: live streams end so connections can close.
    pub(crate) stopping: tokio::sync::watch::Sender<bool>,
    /// What the data takes, read at most once a minute (it reads every event).
    pub(crate) usage: std::sync::Mutex<Option<(std::time::Instant, store::StorageUsage)>>,
    /// Bulk actions running in the background, and those done lately.
    pub(crate) jobs: std::sync::Arc<triage::Jobs>,
}

impl Dashboard {
    pub fn new(config: DashboardConfig, public_url: &str) -> Dashboard {
        Dashboard {
            logins: auth::LoginLimiter::new(config.login_hashes),
            config,
            sso: sso::SsoLogins::default(),
            secure_cookies: public_url.starts_with("https://"),
            stopping: tokio::sync::watch::channel(false).0,
            usage: std::sync::Mutex::new(None),
            jobs: Default::default(),
        }
    }

    /// Counts login attempts in `windows`, shared with the other nodes, from now on.
    pub fn share_logins(&self, windows: std::sync::Arc<dyn auth::SharedWindows>) {
        self.logins.share(windows);
    }

    /// Ends every live stream (call when the server stops accepting connections; an open
    /// stream would otherwise hold the graceful shutdown forever).
    pub fn shutdown(&self) {
        self.stopping.send_replace(true);
    }
}

/// The dashboard's paths, the one place (with the router below) that spells them. Slugs are
/// URL-encoded.
pub mod paths {
    use super::format::url_encode;
    use store::GroupId;

    /// A project's stream: `/p/{slug}/`.
    pub fn stream(slug: &str) -> String {
        format!("/p/{}/", url_encode(slug))
    }

    /// An issue's page: `/p/{slug}/issues/{id}/`.
    pub fn issue(slug: &str, group: GroupId) -> String {
        format!("{}issues/{group}/", stream(slug))
    }

    /// A project's settings: `/settings/projects/{slug}/`.
    pub fn project_settings(slug: &str) -> String {
        format!("/settings/projects/{}/", url_encode(slug))
    }

    /// A project's user feedback: `/p/{slug}/feedback/`.
    pub fn feedback(slug: &str) -> String {
        format!("{}feedback/", stream(slug))
    }

    /// A project's cron monitors: `/p/{slug}/monitors/`.
    pub fn monitors(slug: &str) -> String {
        format!("{}monitors/", stream(slug))
    }

    /// The issues of one cron monitor: the stream, searched for its tag.
    pub fn monitor_issues(slug: &str, monitor: &str) -> String {
        format!("{}?q={}", stream(slug), url_encode(&format!("monitor.slug:{monitor}")))
    }

    /// An organisation's settings: `/o/{org}/settings/`.
    pub fn org_settings(org: &str) -> String {
        format!("/o/{}/settings/", url_encode(org))
    }

    /// Where an organisation's members sign in with single sign-on: `/sso/{org}`.
    pub fn sso(org: &str) -> String {
        format!("/sso/{}", url_encode(org))
    }

    /// The path of a one-time invitation link: `/invite/{token}`.
    pub fn invite(token: &str) -> String {
        format!("/invite/{}", url_encode(token))
    }

    /// A project's releases: `/p/{slug}/releases/`.
    pub fn releases(slug: &str) -> String {
        format!("{}releases/", stream(slug))
    }

    /// A release's page: `/p/{slug}/releases/{version}/`.
    pub fn release(slug: &str, version: &str) -> String {
        format!("{}{}/", releases(slug), url_encode(version))
    }

    /// A project's logs: `/p/{slug}/logs/`.
    pub fn logs(slug: &str) -> String {
        format!("{}logs/", stream(slug))
    }

    /// An event's page: `/p/{slug}/issues/{id}/events/{event_id}/`.
    pub fn event(slug: &str, group: GroupId, event_id: &str) -> String {
        format!("{}events/{}/", issue(slug, group), url_encode(event_id))
    }
}

/// Full links to dashboard pages, for what leaves the server (notifications): the public URL
/// and a path from [`paths`].
#[derive(Clone, Debug)]
pub struct Links {
    public_url: String,
}

impl Links {
    /// `public_url` without a trailing slash, as people reach the server.
    pub fn new(public_url: &str) -> Links {
        Links { public_url: public_url.trim_end_matches('/').to_string() }
    }

    pub fn issue(&self, slug: &str, group: store::GroupId) -> String {
        format!("{}{}", self.public_url, paths::issue(slug, group))
    }

    pub fn project(&self, slug: &str) -> String {
        format!("{}{}", self.public_url, paths::stream(slug))
    }
}

/// The dashboard's routes, with the headers every page gets.
pub fn router(state: &AppState) -> Router<AppState> {
    routes().router.fallback(no_such_page).layer(axum::middleware::map_response_with_state(state.dashboard.secure_cookies, security_headers))
}

/// The dashboard's routes, listed (see [`crate::routes`]).
pub(crate) fn routes() -> crate::Routes {
    crate::Routes::new()
        .get("/", pages::home)
        .get("/login", auth::login_page)
        .post("/login", auth::login)
        .post("/logout", auth::logout)
        .get("/setup/{token}", auth::setup_page)
        .post("/setup/{token}", auth::setup)
        .get("/login/sso", sso::choose)
        .get("/sso/callback", sso::callback)
        .get("/sso/{org}", sso::start)
        .get("/invite/{token}", invite::page)
        .post("/invite/{token}", invite::accept)
        .get("/dashboard", pages::dashboard)
        .get("/live", live::all)
        .get("/p/{slug}/", pages::stream)
        .get("/p/{slug}/live", live::project)
        .get("/p/{slug}/feedback/", feedback::page)
        .get("/p/{slug}/logs/", logs::page)
        .get("/p/{slug}/monitors/", monitors::page)
        .get("/p/{slug}/issues/{id}/", pages::group)
        .post("/p/{slug}/issues/{id}/status", pages::set_status)
        .post("/p/{slug}/issues/{id}/ignore", triage::ignore)
        .post("/p/{slug}/issues/{id}/comments", triage::comment)
        .post("/p/{slug}/issues/{id}/unmerge", triage::unmerge)
        .post("/p/{slug}/issues/{id}/assign", triage::assign)
        .post("/p/{slug}/bulk", triage::bulk)
        .get("/p/{slug}/bulk/{job}", triage::bulk_progress)
        .get("/p/{slug}/issues/{id}/events/{event_id}/", pages::event)
        .get("/p/{slug}/issues/{id}/events/{event_id}/json", pages::event_json)
        .get("/p/{slug}/releases/", releases::list)
        .get("/p/{slug}/releases/{version}/", releases::page)
        .get("/settings/", settings::index)
        .post("/settings/password", settings::change_password)
        .post("/settings/account/delete", settings::delete_account)
        .get("/settings/projects/{slug}/", settings::project)
        .post("/settings/projects/{slug}/rename", settings::rename_project)
        .post("/settings/projects/{slug}/ownership", settings::set_ownership)
        .post("/settings/projects/{slug}/delete", settings::delete_project)
        .post("/settings/projects/{slug}/keys", settings::create_key)
        .post("/settings/projects/{slug}/keys/{key}/revoke", settings::revoke_key)
        .get("/o/{org}/settings/", org_settings::page)
        .post("/o/{org}/projects", org_settings::create_project)
        .post("/o/{org}/teams", org_settings::create_team)
        .post("/o/{org}/invitations", org_settings::invite)
        .post("/o/{org}/members/{user}/role", org_settings::set_role)
        .post("/o/{org}/members/{user}/remove", org_settings::remove_member)
        .post("/o/{org}/members/{user}/teams", org_settings::join_team)
        .post("/o/{org}/tokens", org_settings::create_token)
        .post("/o/{org}/tokens/{id}/revoke", org_settings::revoke_token)
        .post("/o/{org}/sso", org_settings::set_sso)
        .get("/static/app.css", || async { asset("text/css; charset=utf-8", include_str!("../../static/app.css")) })
        .get("/static/app.js", || async { asset("text/javascript; charset=utf-8", include_str!("../../static/app.js")) })
        .get("/static/favicon.svg", || async { asset(FAVICON_TYPE, FAVICON) })
        .get("/favicon.ico", || async { asset(FAVICON_TYPE, FAVICON) })
}

/// The icon of the browser's tab, also at `/favicon.ico`, where browsers look without being told.
const FAVICON: &str = include_str!("../../static/favicon.svg");
const FAVICON_TYPE: &str = "image/svg+xml";

/// What an address that names no page shows: a 404 page with the way back, or for `/api/`,
/// Sentry's JSON error.
pub(crate) async fn no_such_page(uri: axum::http::Uri) -> Response {
    let path = uri.path();
    if path.starts_with("/api/") {
        let body = serde_json::json!({"detail": format!("there is no API endpoint at {path}")});
        return (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response();
    }
    let shown: String = path.chars().take(200).collect();
    error_page(StatusCode::NOT_FOUND, "Not found", format!("There is no page at {shown}."))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "max-age=300")], body).into_response()
}

/// Pages may not be framed, sniffed or run scripts from anywhere but us; they are not kept in
/// any cache (they show what only a logged-in person may see), except what sets its own
/// `Cache-Control` (the static assets). Over https (`secure` is the public URL's scheme),
/// browsers are told to use https only, for a year.
async fn security_headers(axum::extract::State(secure): axum::extract::State<bool>, mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    if secure {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    resp
}

/// Why a page could not be shown.
#[derive(Debug)]
pub enum PageError {
    /// Not logged in: go to the login page, then come back to `next`.
    Login { next: String },
    NotFound(String),
    Forbidden(String),
    BadRequest(String),
    TooManyRequests(String),
    /// The store can't serve now (disk full, busy): try again shortly.
    Unavailable(String),
    /// Our fault. The message goes to the log with a request id; the page shows only the id.
    Internal(String),
}

impl From<store::StoreError> for PageError {
    fn from(e: store::StoreError) -> PageError {
        match e {
            store::StoreError::NotFound(what) => PageError::NotFound(format!("{what} does not exist")),
            store::StoreError::Invalid(why) | store::StoreError::Conflict(why) => PageError::BadRequest(why),
            store::StoreError::Unavailable(why) => PageError::Unavailable(why),
            e @ (store::StoreError::Backend(_) | store::StoreError::ClaimLost) => PageError::Internal(e.to_string()),
        }
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> PageError {
        PageError::Internal(format!("rendering the page: {e}"))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            PageError::Login { next } => {
                let target = format!("/login?next={}", format::url_encode(&next));
                return Redirect::to(&target).into_response();
            }
            PageError::NotFound(m) => (StatusCode::NOT_FOUND, "Not found", m),
            PageError::Forbidden(m) => (StatusCode::FORBIDDEN, "Not allowed", m),
            PageError::BadRequest(m) => (StatusCode::BAD_REQUEST, "Can't do that", m),
            PageError::TooManyRequests(m) => (StatusCode::TOO_MANY_REQUESTS, "Too many attempts", m),
            PageError::Unavailable(m) => {
                tracing::warn!(error = %m, "dashboard page could not reach the store");
                (StatusCode::SERVICE_UNAVAILABLE, "Try again in a moment", "The data store is busy or full right now.".to_string())
            }
            PageError::Internal(m) => {
                let id = request_id();
                tracing::error!(request_id = %id, error = %m, "dashboard page failed");
                let message = format!(
                    "Something went wrong on our side. If it happens again, give the administrator this request id: {id}."
                );
                let mut resp = error_page(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", message);
                if let Ok(v) = HeaderValue::from_str(&id) {
                    resp.headers_mut().insert("x-request-id", v);
                }
                return resp;
            }
        };
        error_page(status, title, message)
    }
}

fn error_page(status: StatusCode, title: &str, message: String) -> Response {
    let page = pages::ErrorPage { title: title.to_string(), message };
    let body = askama::Template::render(&page).unwrap_or_else(|_| "error".into());
    (status, Html(body)).into_response()
}

/// A short id that ties an error page to its log line: 8 hex digits, random (or from the clock
/// if the system's generator fails).
fn request_id() -> String {
    let mut buf = [0u8; 4];
    if getrandom::fill(&mut buf).is_err() {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        buf = nanos.to_be_bytes();
    }
    hex::encode(buf)
}

pub type PageResult<T = Response> = Result<T, PageError>;

/// Runs blocking work (store calls, rendering) off the async threads, through the store's
/// one bridge.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> PageResult<T> + Send + 'static) -> PageResult<T> {
    store::off_thread(f).await
}

/// Renders a template into a response.
pub(crate) fn render(t: &impl askama::Template) -> PageResult {
    Ok(Html(t.render()?).into_response())
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn body(resp: Response) -> String {
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn an_internal_error_shows_a_request_id_not_the_message() {
        let resp = PageError::Internal("secret detail".into()).into_response();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let id = resp.headers().get("x-request-id").expect("an X-Request-Id header").to_str().unwrap().to_string();
        assert_eq!(id.len(), 8);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        let body = body(resp).await;
        assert!(!body.contains("secret detail"), "{body}");
        assert!(body.contains("Something went wrong on our side"), "{body}");
        assert!(body.contains(&id), "{body}");
    }

    #[tokio::test]
    async fn other_errors_show_their_message() {
        let resp = PageError::NotFound("there is no project x".into()).into_response();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert!(resp.headers().get("x-request-id").is_none());
        assert!(body(resp).await.contains("there is no project x"));
    }
}
