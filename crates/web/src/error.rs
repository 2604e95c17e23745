//! `ApiError`: the one place that decides which status a refusal gets, and how it is told to
//! the client (JSON `{"detail": …}` plus `X-Sentry-Error`, `Retry-After`,
//! `X-Sentry-Rate-Limits`).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ingest::IngestError;

/// A refused request.
#[derive(Debug)]
pub enum ApiError {
    /// 400: the request is malformed; the reason says how.
    BadRequest(String),
    /// 401: no key, or a key we don't know.
    Unauthorized(String),
    /// 403: a revoked key, or a key of another project.
    Forbidden(String),
    /// 404: no such thing.
    NotFound(String),
    /// 408: the client took too long to send its request.
    Timeout(String),
    /// 413: a body or an item over its limit.
    TooLarge(String),
    /// 429: over a rate limit.
    RateLimited { reason: String, retry_after: u64, header: String },
    /// 503: the pipeline is full or the store cannot write; retry later.
    Unavailable(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            ApiError::BadRequest(r)
            | ApiError::Unauthorized(r)
            | ApiError::Forbidden(r)
            | ApiError::NotFound(r)
            | ApiError::Timeout(r)
            | ApiError::TooLarge(r)
            | ApiError::Unavailable(r) => r,
            ApiError::RateLimited { reason, .. } => reason,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), reason = self.reason(), "ingest request refused");
        } else {
            tracing::debug!(status = status.as_u16(), reason = self.reason(), "ingest request refused");
        }
        let body = serde_json::json!({ "detail": self.reason() }).to_string();
        let mut resp = (status, [(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response();
        let headers = resp.headers_mut();
        // Header values must be visible ASCII; the JSON body keeps the full text.
        let ascii: String = self.reason().chars().map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' }).take(500).collect();
        if let Ok(v) = HeaderValue::from_str(&ascii) {
            headers.insert("x-sentry-error", v);
        }
        match &self {
            ApiError::RateLimited { retry_after, header, .. } => {
                headers.insert("retry-after", HeaderValue::from(*retry_after));
                if let Ok(v) = HeaderValue::from_str(header) {
                    headers.insert("x-sentry-rate-limits", v);
                }
            }
            ApiError::Unavailable(_) => {
                headers.insert("retry-after", HeaderValue::from(1u64));
            }
            _ => {}
        }
        resp
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> ApiError {
        let reason = e.to_string();
        if e.is_too_large() {
            return ApiError::TooLarge(reason);
        }
        match e {
            IngestError::MissingKey | IngestError::UnknownKey(_) | IngestError::BadKey(_) => ApiError::Unauthorized(reason),
            IngestError::RevokedKey(_) | IngestError::WrongProject { .. } => ApiError::Forbidden(reason),
            IngestError::NoSuchProject(_) => ApiError::NotFound(reason),
            IngestError::RateLimited(r) => ApiError::RateLimited { retry_after: r.retry_after, header: r.header(), reason },
            IngestError::Timeout(_) => ApiError::Timeout(reason),
            IngestError::Overloaded | IngestError::OverBudget | IngestError::Store(_) | IngestError::Crashed => {
                ApiError::Unavailable(reason)
            }
            IngestError::BodyTooLarge(_) => ApiError::TooLarge(reason),
            IngestError::BadRequest(_) | IngestError::Decode(_) | IngestError::Envelope(_) | IngestError::Invalid(_) => {
                ApiError::BadRequest(reason)
            }
        }
    }
}
