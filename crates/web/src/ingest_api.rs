//! The ingest endpoints. Each one: find the key, read the body within its limit, decode,
//! parse, authorize, process (on a blocking thread), submit, and answer `{"id": …}` once the
//! events are durable.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use ingest::process::Processed;
use ingest::Reservation;
use protocol::decode::{decode, decode_store_body};
use protocol::{Auth, ContentEncoding, Dsn, Envelope};

use crate::{ApiError, AppState, ALLOWED_METHODS};

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

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
) -> Result<Response, ApiError> {
    let project_id = parse_project(&project)?;
    let from_request = request_key(&headers, query.as_deref())?;
    let encoding = content_encoding(&headers)?;
    let mut reservation = state.pipeline.budget().reserve();
    let raw = read_body(&state, body, &mut reservation).await?;
    let pipeline = state.pipeline.clone();
    let received = now();
    let size = raw.len();
    let (processed, reservation) = cpu_work(&state, size, move || {
        let mut reservation = reservation;
        let limits = pipeline.limits();
        let data = decode(&raw, encoding, limits.max_decompressed_bytes)?;
        drop(raw);
        hold(&mut reservation, data.len())?;
        let env = Envelope::parse(&data, limits)?;
        let key = match (from_request, env.dsn()) {
            (Some(k), _) => Some(k),
            (None, Some(dsn)) => Some(
                dsn.parse::<Dsn>()
                    .map_err(|e| ApiError::Unauthorized(format!("the envelope's dsn is not valid: {e}")))?
                    .public_key,
            ),
            (None, None) => None,
        };
        let auth = pipeline.authorize(Some(project_id), key.as_deref())?;
        Ok((pipeline.process_envelope(&auth, &env, received)?, reservation))
    })
    .await?;
    submit(&state, processed, reservation).await
}

/// `POST /api/{project_id}/store/`: one event as JSON, possibly deflated and base64-encoded
/// (legacy raven clients).
pub async fn store(
    State(state): State<AppState>,
    Path(project): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let project_id = parse_project(&project)?;
    store_inner(state, Some(project_id), query, headers, body).await
}

/// `POST /api/store/`: the oldest form, where the key alone names the project.
pub async fn store_legacy(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    store_inner(state, None, query, headers, body).await
}

async fn store_inner(
    state: AppState,
    project_id: Option<i64>,
    query: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let key = request_key(&headers, query.as_deref())?;
    let pipeline = state.pipeline.clone();
    // Refuse unknown and revoked keys before reading the body.
    let auth = {
        let pipeline = pipeline.clone();
        let key = key.clone();
        cpu_work(&state, 0, move || Ok(pipeline.authorize(project_id, key.as_deref())?)).await?
    };
    let encoding = content_encoding(&headers)?;
    let mut reservation = pipeline.budget().reserve();
    let raw = read_body(&state, body, &mut reservation).await?;
    let received = now();
    let size = raw.len();
    let (processed, reservation) = cpu_work(&state, size, move || {
        let mut reservation = reservation;
        let limits = pipeline.limits();
        let data = decode(&raw, encoding, limits.max_decompressed_bytes)?;
        drop(raw);
        let json = decode_store_body(&data, limits.max_decompressed_bytes)?;
        drop(data);
        hold(&mut reservation, json.len())?;
        Ok((pipeline.process_store_body(&auth, &json, received)?, reservation))
    })
    .await?;
    submit(&state, processed, reservation).await
}

/// Counts decoded bytes against the memory budget; refuses the request when it is spent.
fn hold(reservation: &mut Reservation, bytes: usize) -> Result<(), ApiError> {
    if reservation.grow(bytes) {
        Ok(())
    } else {
        Err(overloaded())
    }
}

fn overloaded() -> ApiError {
    ApiError::Unavailable("the server is overloaded: too much data is waiting to be written; retry later".into())
}

/// Submits the events; the reservation (their memory) is held until they are written.
async fn submit(state: &AppState, processed: Processed, reservation: Reservation) -> Result<Response, ApiError> {
    let submitted = state.pipeline.submit(processed).await?;
    drop(reservation);
    let body = match submitted.event_id {
        Some(id) => serde_json::json!({ "id": id.to_string() }),
        None => serde_json::json!({}),
    };
    Ok(axum::Json(body).into_response())
}

/// Bodies up to this size are decoded and parsed right on the async worker: tens of
/// microseconds, cheaper than handing them to another thread. Larger ones go to a blocking
/// thread, one per core at a time.
const INLINE_MAX: usize = 64 * 1024;

async fn cpu_work<T: Send + 'static>(
    state: &AppState,
    body_bytes: usize,
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let failed = || ApiError::Unavailable("the server failed while processing the request".into());
    if body_bytes <= INLINE_MAX {
        return std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| Err(failed()));
    }
    let slot = state.pipeline.cpu_slot().await;
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        f()
    })
    .await
    .map_err(|_| failed())?
}

fn parse_project(s: &str) -> Result<i64, ApiError> {
    s.parse::<i64>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| ApiError::NotFound(format!("there is no project \"{s}\": the project id in the DSN must be a number")))
}

fn content_encoding(headers: &HeaderMap) -> Result<ContentEncoding, ApiError> {
    let value = headers.get("content-encoding").map(|v| v.to_str().unwrap_or("(not text)"));
    Ok(ContentEncoding::parse(value)?)
}

/// The client key from the request itself (headers or query string). Several forms naming
/// different keys are refused.
fn request_key(headers: &HeaderMap, query: Option<&str>) -> Result<Option<String>, ApiError> {
    let mut keys: Vec<String> = Vec::new();
    if let Some(v) = headers.get("x-sentry-auth") {
        let text = v.to_str().map_err(|_| ApiError::Unauthorized("X-Sentry-Auth is not text".into()))?;
        keys.push(Auth::from_header(text)?.key);
    }
    // Authorization may carry another scheme for a proxy in front of us: only a Sentry one counts.
    if let Some(Ok(text)) = headers.get("authorization").map(|v| v.to_str())
        && let Ok(auth) = Auth::from_authorization(text)
    {
        keys.push(auth.key);
    }
    if let Some(q) = query.filter(|q| q.contains("sentry_key")) {
        keys.push(Auth::from_query(q)?.key);
    }
    keys.dedup();
    match keys.len() {
        0 => Ok(None),
        1 => Ok(keys.pop()),
        _ => Err(ApiError::BadRequest("the request names two different client keys; send one".into())),
    }
}

/// Reads the whole body: refused with 413 as soon as it passes `max_body_bytes`, 503 when the
/// memory budget is spent, 408 when the client takes longer than the request timeout.
async fn read_body(state: &AppState, body: Body, reservation: &mut Reservation) -> Result<Vec<u8>, ApiError> {
    let limit = state.pipeline.limits().max_body_bytes;
    let read = async {
        let mut body = body;
        let mut buf = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ApiError::BadRequest(format!("could not read the request body: {e}")))?;
            let Ok(data) = frame.into_data() else { continue };
            if buf.len() + data.len() > limit {
                return Err(ApiError::TooLarge(format!("the request body is over the limit of {limit} bytes")));
            }
            hold(reservation, data.len())?;
            buf.extend_from_slice(&data);
        }
        Ok(buf)
    };
    let timeout = state.request_timeout;
    tokio::time::timeout(timeout, read).await.map_err(|_| {
        ApiError::Timeout(format!("the request body did not arrive within {} s", timeout.as_secs()))
    })?
}
