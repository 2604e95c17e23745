//! The ingest endpoints, thin: each one extracts what the request says (project, key,
//! encoding), reads the body within its limit and the memory budget, and hands it to
//! `ingest::Pipeline::accept`, which runs the rest; then maps the answer to HTTP.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use ingest::{Endpoint, IngestError, Request, Reservation};
use protocol::{Auth, AuthError, ContentEncoding, ProjectId};

use crate::{ApiError, AppState, ALLOWED_METHODS};

/// `OPTIONS`: the CORS preflight of browser SDKs.
pub async fn preflight() -> Response {
    let methods = ALLOWED_METHODS.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ");
    let mut resp = StatusCode::OK.into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&methods) {
        h.insert("access-control-allow-methods", v);
    }
    h.insert(
        "access-control-allow-headers",
        HeaderValue::from_static(
            "x-sentry-auth, x-requested-with, x-forwarded-for, origin, referer, accept, content-type, \
             authentication, authorization, content-encoding, transfer-encoding, baggage, sentry-trace",
        ),
    );
    h.insert("access-control-max-age", HeaderValue::from_static("3600"));
    resp
}

/// `POST /api/{project_id}/envelope/`
pub async fn envelope(
    State(state): State<AppState>,
    Path(project): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let edge = async {
        let project_id = parse_project(&project)?;
        let key = request_key(&headers, query.as_deref())?;
        // A key in the request (not only in the envelope's header) is checked before the body
        // is read: an unknown or revoked key costs no body.
        if key.is_some() {
            state.pipeline.check_key(Some(project_id), key.as_deref())?;
        }
        read_request(&state, Endpoint::Envelope(project_id), key, &headers, body).await
    };
    accept(&state, edge.await).await
}

/// `POST /api/{project_id}/store/`: one event as JSON, possibly deflated and base64-encoded
/// (legacy raven clients).
pub async fn store(
    State(state): State<AppState>,
    Path(project): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let edge = async {
        let project_id = parse_project(&project)?;
        store_request(&state, Some(project_id), query, headers, body).await
    };
    accept(&state, edge.await).await
}

/// `POST /api/{project_id}/user-feedback/`: one user report as JSON (`{event_id, name, email,
/// comments}`), the older way to send feedback; the key is checked before the body is read.
pub async fn user_feedback(
    State(state): State<AppState>,
    Path(project): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let edge = async {
        let project_id = parse_project(&project)?;
        let key = request_key(&headers, query.as_deref())?;
        let auth = state.pipeline.authorize(Some(project_id), key.as_deref())?;
        read_request(&state, Endpoint::UserFeedback(auth.project_id), key, &headers, body).await
    };
    accept(&state, edge.await).await
}

/// `POST /api/store/`: the oldest form, where the key alone names the project.
pub async fn store_legacy(State(state): State<AppState>, RawQuery(query): RawQuery, headers: HeaderMap, body: Body) -> Response {
    let edge = store_request(&state, None, query, headers, body).await;
    accept(&state, edge).await
}

async fn store_request(
    state: &AppState,
    project_id: Option<ProjectId>,
    query: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Request, IngestError> {
    let key = request_key(&headers, query.as_deref())?;
    // Refuse unknown and revoked keys before reading the body.
    let auth = state.pipeline.authorize(project_id, key.as_deref())?;
    read_request(state, Endpoint::Store(auth.project_id), key, &headers, body).await
}

/// The rest of every ingest request, once its key (where it can be) was checked: its encoding,
/// and its body read within the memory budget.
async fn read_request(
    state: &AppState,
    endpoint: Endpoint,
    key: Option<String>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Request, IngestError> {
    let encoding = content_encoding(headers)?;
    let mut reservation = state.pipeline.budget().reserve();
    let body = read_body(state, body, &mut reservation).await?;
    Ok(Request { endpoint, key, encoding, body, reservation, received: store::now() })
}

/// Hands what the edge read to the pipeline, and answers: `{"id": …}` once the events are
/// durable, or the refusal. Every refusal is counted by reason: the edge's here, the
/// pipeline's by `accept`.
async fn accept(state: &AppState, edge: Result<Request, IngestError>) -> Response {
    let result = match edge {
        Ok(req) => state.pipeline.accept(req).await,
        Err(e) => {
            state.pipeline.refused(&e);
            Err(e)
        }
    };
    match result {
        Ok(accepted) => {
            let body = match accepted.event_id {
                Some(id) => serde_json::json!({ "id": id.to_string() }),
                None => serde_json::json!({}),
            };
            axum::Json(body).into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

fn parse_project(s: &str) -> Result<ProjectId, IngestError> {
    s.parse::<i64>().ok().filter(|p| *p > 0).map(ProjectId).ok_or_else(|| IngestError::NoSuchProject(s.to_string()))
}

fn content_encoding(headers: &HeaderMap) -> Result<ContentEncoding, IngestError> {
    let value = headers.get("content-encoding").map(|v| v.to_str().unwrap_or("(not text)"));
    Ok(ContentEncoding::parse(value)?)
}

/// The client key from the request itself (headers, each of them if repeated, and query
/// string). Several forms naming different keys are refused; the same key twice is fine.
fn request_key(headers: &HeaderMap, query: Option<&str>) -> Result<Option<String>, IngestError> {
    let mut keys: Vec<String> = Vec::new();
    for v in headers.get_all("x-sentry-auth") {
        let text = v.to_str().map_err(|_| IngestError::BadKey("X-Sentry-Auth is not text".into()))?;
        keys.push(Auth::from_header(text).map_err(bad_auth)?.key);
    }
    // Authorization may carry another scheme for a proxy in front of us: only a Sentry one counts.
    for v in headers.get_all("authorization") {
        match v.to_str().map(Auth::from_authorization) {
            Ok(Ok(auth)) => keys.push(auth.key),
            Ok(Err(AuthError::TwoKeys)) => return Err(bad_auth(AuthError::TwoKeys)),
            _ => {}
        }
    }
    if let Some(q) = query.filter(|q| q.contains("sentry_key")) {
        keys.push(Auth::from_query(q).map_err(bad_auth)?.key);
    }
    match keys.split_first() {
        None => Ok(None),
        Some((first, rest)) if rest.iter().all(|k| k == first) => Ok(Some(first.clone())),
        Some(_) => Err(bad_auth(AuthError::TwoKeys)),
    }
}

/// Two different keys are a malformed request (400); any other auth error is a bad key (401).
fn bad_auth(e: AuthError) -> IngestError {
    match e {
        AuthError::TwoKeys => IngestError::BadRequest(e.to_string()),
        e => IngestError::BadKey(format!("bad authentication: {e}")),
    }
}

/// Reads the whole body: refused with 413 as soon as it passes `max_body_bytes`, 503 when the
/// memory budget is spent, 408 when the client takes longer than the request timeout.
async fn read_body(state: &AppState, body: Body, reservation: &mut Reservation) -> Result<Vec<u8>, IngestError> {
    let limit = state.pipeline.limits().max_body_bytes;
    let read = async {
        let mut body = body;
        let mut buf = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| IngestError::BadRequest(format!("could not read the request body: {e}")))?;
            let Ok(data) = frame.into_data() else { continue };
            if buf.len() + data.len() > limit {
                return Err(IngestError::BodyTooLarge(limit));
            }
            if !reservation.grow(data.len()) {
                return Err(IngestError::OverBudget);
            }
            buf.extend_from_slice(&data);
        }
        Ok(buf)
    };
    let timeout = state.request_timeout;
    tokio::time::timeout(timeout, read).await.map_err(|_| IngestError::Timeout(timeout.as_secs()))?
}
