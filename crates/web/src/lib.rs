//! The HTTP layer: thin ingest endpoints (`/api/{project}/envelope/`, `/api/{project}/store/`,
//! `/api/store/`), CORS for browser SDKs, health, the mapping of every refusal to a status
//! ([`ApiError`]), and the web dashboard ([`dashboard`]).
//!
//! Architecture invariant: only this crate knows HTTP, and only its route table spells a
//! dashboard URL ([`dashboard::Links`] gives them to others). Ingest handlers read the body
//! within its limit, hand it to `ingest::Pipeline::accept`, and answer 200 only once it says
//! the events are durable.

pub mod access;
pub mod dashboard;
mod error;
mod framing;
mod ingest_api;
mod metrics;
mod rest;
pub mod serve;

use std::sync::Arc;

use axum::http::{HeaderValue, Method};
use axum::routing::{delete, get, post, put};
use axum::Router;
use ingest::Pipeline;

pub use error::ApiError;
pub use metrics::Metrics;
pub use serve::serve;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The store, for the dashboard's reads and changes.
    pub store: Arc<dyn store::Store>,
    /// Ingest: what the API endpoints hand requests to.
    pub pipeline: Arc<Pipeline>,
    /// Base URL people and clients use to reach this server, without a trailing slash.
    pub public_url: String,
    /// How long a client may take to send a request body.
    pub request_timeout: std::time::Duration,
    /// Request counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The web dashboard's config and state.
    pub dashboard: Arc<dashboard::Dashboard>,
    /// What else `/healthz` reports on (Redis), beside the store.
    pub probes: Vec<Arc<dyn Probe>>,
    /// Where uploaded files are put together, in temporary files that are gone once closed (the
    /// data directory: on disk, beside the store).
    pub upload_dir: std::path::PathBuf,
}

/// Something this node shares with others, reported by `/healthz` without failing it: the node
/// still serves while it is away.
pub trait Probe: Send + Sync {
    /// What it is, as `/healthz` names it (`redis`).
    fn name(&self) -> &'static str;
    /// `Ok` when it answers, else what this node does meanwhile, in plain words. Blocking.
    fn check(&self) -> Result<(), String>;
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/api/{project_id}/envelope/", post(ingest_api::envelope).options(ingest_api::preflight))
        .route("/api/{project_id}/envelope", post(ingest_api::envelope).options(ingest_api::preflight))
        .route("/api/{project_id}/store/", post(ingest_api::store).options(ingest_api::preflight))
        .route("/api/{project_id}/store", post(ingest_api::store).options(ingest_api::preflight))
        .route("/api/store/", post(ingest_api::store_legacy).options(ingest_api::preflight))
        .route("/api/{project_id}/user-feedback/", post(ingest_api::user_feedback).options(ingest_api::preflight))
        .layer(axum::middleware::map_response_with_state(state.clone(), count))
        .layer(axum::middleware::map_response(cors));
    Router::new()
        .merge(api)
        .merge(dashboard::router(&state).layer(axum::middleware::from_fn_with_state(state.clone(), settle)))
        .merge(rest::routes().router.layer(axum::middleware::from_fn_with_state(state.clone(), settle)))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::render))
        .with_state(state)
}

/// `GET /healthz`: 200 while this node can serve: its data store answers (a load balancer takes
/// a node whose database is gone out of rotation); else 503 with the reason. One line per part
/// (`store: ok`, `redis: …`); what is shared and away (Redis) is reported, not failed.
async fn healthz(axum::extract::State(state): axum::extract::State<AppState>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let store = state.store.clone();
    let check = store::off_thread(move || store.schema_version());
    let (status, mut body) = match tokio::time::timeout(std::time::Duration::from_secs(5), check).await {
        Ok(Ok(_)) => (axum::http::StatusCode::OK, "ok\nstore: ok\n".to_string()),
        Ok(Err(e)) => (axum::http::StatusCode::SERVICE_UNAVAILABLE, format!("{e}\nstore: unavailable\n")),
        Err(_) => (axum::http::StatusCode::SERVICE_UNAVAILABLE, "the data store did not answer within 5 seconds\nstore: unavailable\n".to_string()),
    };
    for probe in &state.probes {
        let p = probe.clone();
        let answer = tokio::task::spawn_blocking(move || p.check()).await.unwrap_or_else(|_| Err("the check failed".into()));
        match answer {
            Ok(()) => body.push_str(&format!("{}: ok\n", probe.name())),
            Err(why) => body.push_str(&format!("{}: {why}\n", probe.name())),
        }
    }
    (status, body).into_response()
}

/// A router that remembers its routes, so that a test can go through every one of them (the
/// authorisation matrix): what [`routes`] lists is what the router serves.
pub(crate) struct Routes {
    pub router: Router<AppState>,
    pub list: Vec<(&'static str, &'static str)>,
}

impl Routes {
    pub fn new() -> Routes {
        Routes { router: Router::new(), list: Vec::new() }
    }

    pub fn get<H: axum::handler::Handler<T, AppState>, T: 'static>(mut self, path: &'static str, h: H) -> Routes {
        self.router = self.router.route(path, get(h));
        self.list.push(("GET", path));
        self
    }

    pub fn post<H: axum::handler::Handler<T, AppState>, T: 'static>(mut self, path: &'static str, h: H) -> Routes {
        self.router = self.router.route(path, post(h));
        self.list.push(("POST", path));
        self
    }

    /// A POST whose body may be larger (or must be smaller) than the default limit.
    pub fn post_limited<H: axum::handler::Handler<T, AppState>, T: 'static>(
        mut self,
        path: &'static str,
        h: H,
        limit: axum::extract::DefaultBodyLimit,
    ) -> Routes {
        self.router = self.router.route(path, post(h).layer(limit));
        self.list.push(("POST", path));
        self
    }

    pub fn put<H: axum::handler::Handler<T, AppState>, T: 'static>(mut self, path: &'static str, h: H) -> Routes {
        self.router = self.router.route(path, put(h));
        self.list.push(("PUT", path));
        self
    }

    pub fn delete<H: axum::handler::Handler<T, AppState>, T: 'static>(mut self, path: &'static str, h: H) -> Routes {
        self.router = self.router.route(path, delete(h));
        self.list.push(("DELETE", path));
        self
    }
}

/// Every route of the dashboard and of the REST API (`/api/0/`), as (method, path pattern):
/// the routes that people and tokens reach through the access check. (The ingest endpoints,
/// authorised by client keys, `/healthz` and `/metrics` are not among them.)
pub fn routes() -> Vec<(&'static str, &'static str)> {
    let mut list = dashboard::routes().list;
    list.extend(rest::routes().list);
    list
}

async fn count(axum::extract::State(state): axum::extract::State<AppState>, resp: axum::response::Response) -> axum::response::Response {
    state.metrics.count(resp.status().as_u16());
    resp
}

/// How long a page waits for events acknowledged before it was asked for to be stored.
const READ_YOUR_WRITES: std::time::Duration = std::time::Duration::from_secs(2);

/// A page (or an API read) shows what was acknowledged before it was asked for: it waits
/// (briefly; not for the live stream or static files) until the spool has applied it.
async fn settle(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let path = req.uri().path();
    if req.method() == Method::GET && !path.ends_with("/live") && !path.starts_with("/static/") {
        state.pipeline.settled(READ_YOUR_WRITES).await;
    }
    next.run(req).await
}

/// Browser SDKs post from any origin and read our rate-limit and error headers.
async fn cors(mut resp: axum::response::Response) -> axum::response::Response {
    let h = resp.headers_mut();
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    h.insert(
        "access-control-expose-headers",
        HeaderValue::from_static("x-sentry-error, x-sentry-rate-limits, retry-after"),
    );
    resp
}

/// Methods the ingest endpoints allow, for preflight answers.
pub(crate) const ALLOWED_METHODS: [Method; 2] = [Method::POST, Method::OPTIONS];
