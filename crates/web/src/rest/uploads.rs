//! The chunk upload service, as `sentry-cli` uses it: `GET …/chunk-upload/` says how to upload
//! (chunk size, SHA-1, gzip), `POST …/chunk-upload/` takes chunks (multipart, one part per
//! chunk, named by the SHA-1 of its content, gzip-compressed as `file_gzip`), and
//! `POST …/artifactbundle/assemble/` (or `…/releases/{version}/assemble/`) puts a file together
//! from its chunks, answers which are missing, and stores the bundle's files (then the
//! chunks are deleted; chunks never assembled stay until the organisation is deleted).
//!
//! Bounds: a request body of at most [`MAX_REQUEST_BYTES`] (more is a 413 before it is read),
//! chunks of at most [`CHUNK_BYTES`] once decompressed, an assembled file of at most
//! [`MAX_FILE_BYTES`], and one assembly at a time.

use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};
use std::io::Read;
use store::OrgId;
use tokio::sync::Semaphore;

use super::{answer, json_body};
use crate::access::extract::{Bearer, OrgScope};
use crate::access::Action;
use crate::{ApiError, AppState, Routes};

/// The most bytes of one chunk, decompressed.
pub const CHUNK_BYTES: usize = 8 << 20;
/// The most chunks one request may carry.
pub const CHUNKS_PER_REQUEST: usize = 64;
/// The most bytes of one upload request.
pub const MAX_REQUEST_BYTES: usize = 32 << 20;
/// The most bytes of one assembled file.
pub const MAX_FILE_BYTES: usize = 64 << 20;

/// One assembly at a time: it holds a whole file and what it unpacks to.
static ASSEMBLING: Semaphore = Semaphore::const_new(1);

pub(super) fn routes(r: Routes) -> Routes {
    r.get("/api/0/organizations/{org}/chunk-upload/", options)
        .post_limited("/api/0/organizations/{org}/chunk-upload/", upload, DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .post("/api/0/organizations/{org}/artifactbundle/assemble/", assemble_bundle)
        .post("/api/0/organizations/{org}/releases/{version}/assemble/", assemble_release)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChunkOptions {
    url: String,
    chunk_size: usize,
    chunks_per_request: usize,
    max_file_size: usize,
    max_request_size: usize,
    concurrency: usize,
    hash_algorithm: &'static str,
    compression: Vec<&'static str>,
    accept: Vec<&'static str>,
}

/// `GET …/chunk-upload/`: how to upload.
async fn options(State(state): State<AppState>, scope: OrgScope<Bearer>) -> Result<Response, ApiError> {
    scope.require(Action::Release)?;
    Ok(answer(
        StatusCode::OK,
        ChunkOptions {
            url: format!("{}/api/0/organizations/{}/chunk-upload/", state.public_url, scope.org.slug),
            chunk_size: CHUNK_BYTES,
            chunks_per_request: CHUNKS_PER_REQUEST,
            max_file_size: MAX_FILE_BYTES,
            max_request_size: MAX_REQUEST_BYTES,
            concurrency: 1,
            hash_algorithm: "sha1",
            compression: vec!["gzip"],
            accept: vec!["release_files", "artifact_bundles", "sources"],
        },
    ))
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge(format!("an upload request may be at most {MAX_REQUEST_BYTES} bytes; send fewer chunks at once"))
    } else {
        ApiError::BadRequest(format!("the upload is not a valid multipart form: {}", e.body_text()))
    }
}

/// `POST …/chunk-upload/`: stores each part as a chunk, after checking that its content has
/// the SHA-1 its file name says.
async fn upload(
    State(state): State<AppState>,
    scope: OrgScope<Bearer>,
    headers: axum::http::HeaderMap,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    scope.require(Action::Release)?;
    let length = headers.get(axum::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if length.is_some_and(|n| n > MAX_REQUEST_BYTES as u64) {
        return Err(ApiError::TooLarge(format!("an upload request may be at most {MAX_REQUEST_BYTES} bytes; send fewer chunks at once")));
    }
    // Read only once the access check has passed.
    let mut form = Multipart::from_request(req, &state).await.map_err(|e| ApiError::BadRequest(format!("the upload is not a multipart form: {}", e.body_text())))?;
    let mut chunks: Vec<(String, Vec<u8>)> = Vec::new();
    while let Some(field) = form.next_field().await.map_err(multipart_error)? {
        let gzip = match field.name() {
            Some("file") => false,
            Some("file_gzip") => true,
            other => return Err(ApiError::BadRequest(format!("unexpected form field {other:?}: chunks are sent as \"file\" or \"file_gzip\""))),
        };
        let name = field.file_name().unwrap_or_default().trim().to_ascii_lowercase();
        if name.len() != 40 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ApiError::BadRequest(format!("a chunk's file name must be the SHA-1 of its content, not {name:?}")));
        }
        if chunks.len() == CHUNKS_PER_REQUEST {
            return Err(ApiError::BadRequest(format!("at most {CHUNKS_PER_REQUEST} chunks per request")));
        }
        let raw = field.bytes().await.map_err(multipart_error)?;
        let data = if gzip { gunzip(&raw)? } else { raw.to_vec() };
        if data.len() > CHUNK_BYTES {
            return Err(ApiError::TooLarge(format!("a chunk may be at most {CHUNK_BYTES} bytes")));
        }
        let actual = hex::encode(Sha1::digest(&data));
        if actual != name {
            return Err(ApiError::BadRequest(format!("the chunk named {name} has the SHA-1 {actual}: it was damaged on the way, or misnamed")));
        }
        chunks.push((name, data));
    }
    let org = scope.org.id;
    let store = state.store.clone();
    store::off_thread(move || {
        for (sha1, data) in &chunks {
            store.put_chunk(org, sha1, data)?;
        }
        Ok::<_, store::StoreError>(())
    })
    .await?;
    Ok(answer(StatusCode::OK, serde_json::json!({})))
}

/// A gzip chunk, decompressed up to one byte past the chunk limit.
fn gunzip(raw: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(raw)
        .take(CHUNK_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::BadRequest(format!("a chunk sent as gzip does not decompress: {e}")))?;
    Ok(out)
}

#[derive(Deserialize)]
struct AssembleBody {
    checksum: String,
    #[serde(default)]
    chunks: Vec<String>,
    #[serde(default)]
    projects: Vec<String>,
    version: Option<String>,
    dist: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AssembleAnswer {
    state: &'static str,
    missing_chunks: Vec<String>,
    detail: Option<String>,
}

fn assembled(state: &'static str, missing: Vec<String>, detail: Option<String>) -> Response {
    answer(StatusCode::OK, AssembleAnswer { state, missing_chunks: missing, detail })
}

/// `POST …/artifactbundle/assemble/` with `{"checksum", "chunks", "projects", "version"?,
/// "dist"?}`.
async fn assemble_bundle(State(state): State<AppState>, scope: OrgScope<Bearer>, body: bytes::Bytes) -> Result<Response, ApiError> {
    scope.require(Action::Release)?;
    let b: AssembleBody = json_body(&body)?;
    assemble(&state, scope.org.id, b, None).await
}

/// `POST …/releases/{version}/assemble/`: the same, for a release's files (the older upload).
async fn assemble_release(
    State(state): State<AppState>,
    scope: OrgScope<Bearer>,
    Path((_, version)): Path<(String, String)>,
    body: bytes::Bytes,
) -> Result<Response, ApiError> {
    scope.require(Action::Release)?;
    let b: AssembleBody = json_body(&body)?;
    assemble(&state, scope.org.id, b, Some(version)).await
}

async fn assemble(state: &AppState, org: OrgId, b: AssembleBody, release: Option<String>) -> Result<Response, ApiError> {
    let sha1 = |s: &str| s.len() == 40 && s.bytes().all(|c| c.is_ascii_hexdigit());
    if !sha1(&b.checksum) || !b.chunks.iter().all(|c| sha1(c)) {
        return Err(ApiError::BadRequest("\"checksum\" and every one of \"chunks\" must be a SHA-1 in hex".into()));
    }
    if b.chunks.len() > 10_000 {
        return Err(ApiError::TooLarge("the file has too many chunks".into()));
    }
    let store = state.store.clone();
    let chunks = b.chunks.clone();
    let missing = store::off_thread(move || store.missing_chunks(org, &chunks)).await?;
    if !missing.is_empty() {
        return Ok(assembled("not_found", missing, None));
    }
    let _permit = ASSEMBLING.acquire().await.map_err(|_| ApiError::Unavailable("the server is stopping".into()))?;
    let store = state.store.clone();
    let outcome = store::off_thread(move || {
        let release = release.or(b.version.clone());
        if let Some(v) = &release
            && store.release(org, v)?.is_none()
        {
            // sentry-cli creates the release first; a bundle for a release not made yet makes it.
            let projects = store.org_projects(org)?.into_iter().filter(|p| b.projects.contains(&p.slug)).map(|p| p.id).collect();
            store.upsert_release(org, v, &store::ReleaseChange { projects, ..Default::default() })?;
        }
        let mut file = Vec::new();
        let mut hash = Sha1::new();
        for c in &b.chunks {
            let Some(data) = store.chunk(org, c)? else { return Ok(Err(format!("chunk {c} disappeared; upload it again"))) };
            if file.len() + data.len() > MAX_FILE_BYTES {
                return Ok(Err(format!("the file is larger than {MAX_FILE_BYTES} bytes")));
            }
            hash.update(&data);
            file.extend_from_slice(&data);
        }
        let actual = hex::encode(hash.finalize());
        if !actual.eq_ignore_ascii_case(&b.checksum) {
            return Ok(Err(format!("the chunks put together have the SHA-1 {actual}, not the checksum {}", b.checksum)));
        }
        let files = match ingest::bundle::unpack(&file, release.as_deref(), b.dist.as_deref()) {
            Ok(f) => f,
            Err(e) => return Ok(Err(e.to_string())),
        };
        store.put_artifacts(org, &files)?;
        // The files are stored; the chunks are not needed any more.
        store.delete_chunks(org, &b.chunks)?;
        Ok::<_, store::StoreError>(Ok(files.len()))
    })
    .await?;
    Ok(match outcome {
        Ok(_) => assembled("ok", Vec::new(), None),
        Err(why) => assembled("error", Vec::new(), Some(why)),
    })
}
