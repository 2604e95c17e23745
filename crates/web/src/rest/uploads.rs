//! The chunk upload service, as `sentry-cli` uses it: `GET …/chunk-upload/` says how to upload
//! (chunk size, SHA-1, gzip), `POST …/chunk-upload/` takes chunks (multipart, one part per
//! chunk, named by the SHA-1 of its content, gzip-compressed as `file_gzip`), and
//! `POST …/artifactbundle/assemble/` (or `…/releases/{version}/assemble/`) puts a file together
//! from its chunks, answers which are missing, and stores the bundle's files (then the
//! chunks are deleted; chunks never assembled are deleted by the server's housekeeping a day
//! after they were uploaded, [`store::UNASSEMBLED_CHUNK_SECS`]).
//!
//! Bounds: a request body of at most [`MAX_REQUEST_BYTES`] (more is a 413 before it is read),
//! read part by part: each chunk is decompressed as it arrives, up to [`CHUNK_BYTES`] (one
//! byte more is a 413, however much the part still holds), checked and stored before the next
//! part is read, so a request holds at most one chunk. At most [`UPLOADS_AT_ONCE`] uploads read
//! chunks at a time; one more waits up to [`UPLOAD_WAIT`] for its turn, then gets a 429 with
//! `Retry-After`. An assembled file is at most [`MAX_FILE_BYTES`] and is put together in a
//! temporary file in the data directory ([`AppState::upload_dir`]), chunk by chunk; it is
//! unpacked from there, and its files are stored in batches (see [`ingest::bundle`]). One
//! assembly at a time.

use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};
use std::io::{Seek, Write};
use std::time::Duration;
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

/// How many uploads may read (decompress, check, store) chunks at once.
pub const UPLOADS_AT_ONCE: usize = 4;
/// How long an upload waits for its turn before it is told to come back later (429).
pub const UPLOAD_WAIT: Duration = Duration::from_secs(10);

static UPLOADING: Semaphore = Semaphore::const_new(UPLOADS_AT_ONCE);
/// One assembly at a time: it holds a temporary file and a batch of what it unpacks to.
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
    let _turn = match tokio::time::timeout(UPLOAD_WAIT, UPLOADING.acquire()).await {
        Ok(Ok(permit)) => permit,
        Ok(Err(_)) => return Err(ApiError::Unavailable("the server is stopping".into())),
        Err(_) => {
            return Err(ApiError::RateLimited {
                reason: format!("{UPLOADS_AT_ONCE} uploads are being read already; try again in a few seconds"),
                retry_after: 5,
                header: String::new(),
            });
        }
    };
    // Read only once the access check has passed.
    let mut form = Multipart::from_request(req, &state).await.map_err(|e| ApiError::BadRequest(format!("the upload is not a multipart form: {}", e.body_text())))?;
    let mut count = 0;
    while let Some(mut field) = form.next_field().await.map_err(multipart_error)? {
        let gzip = match field.name() {
            Some("file") => false,
            Some("file_gzip") => true,
            other => return Err(ApiError::BadRequest(format!("unexpected form field {other:?}: chunks are sent as \"file\" or \"file_gzip\""))),
        };
        let name = field.file_name().unwrap_or_default().trim().to_ascii_lowercase();
        if name.len() != 40 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ApiError::BadRequest(format!("a chunk's file name must be the SHA-1 of its content, not {name:?}")));
        }
        if count == CHUNKS_PER_REQUEST {
            return Err(ApiError::BadRequest(format!("at most {CHUNKS_PER_REQUEST} chunks per request")));
        }
        count += 1;
        let mut chunk = Chunk::new(gzip);
        while let Some(frame) = field.chunk().await.map_err(multipart_error)? {
            chunk.feed(&frame)?;
        }
        let data = chunk.finish()?;
        let actual = hex::encode(Sha1::digest(&data));
        if actual != name {
            return Err(ApiError::BadRequest(format!("the chunk named {name} has the SHA-1 {actual}: it was damaged on the way, or misnamed")));
        }
        let (org, store) = (scope.org.id, state.store.clone());
        store::off_thread(move || store.put_chunk(org, &name, &data)).await?;
    }
    Ok(answer(StatusCode::OK, serde_json::json!({})))
}

fn chunk_too_large() -> ApiError {
    ApiError::TooLarge(format!("a chunk may be at most {CHUNK_BYTES} bytes once decompressed"))
}

/// One chunk as its part arrives: its bytes, decompressed on the way when sent as gzip, never
/// more than [`CHUNK_BYTES`] of them.
enum Chunk {
    Plain(Vec<u8>),
    Gzip(Box<flate2::write::GzDecoder<Capped>>),
}

impl Chunk {
    fn new(gzip: bool) -> Chunk {
        match gzip {
            true => Chunk::Gzip(Box::new(flate2::write::GzDecoder::new(Capped::default()))),
            false => Chunk::Plain(Vec::new()),
        }
    }

    fn feed(&mut self, bytes: &[u8]) -> Result<(), ApiError> {
        match self {
            Chunk::Plain(data) if data.len() + bytes.len() > CHUNK_BYTES => Err(chunk_too_large()),
            Chunk::Plain(data) => {
                data.extend_from_slice(bytes);
                Ok(())
            }
            Chunk::Gzip(decoder) => decoder.write_all(bytes).map_err(|e| gzip_error(decoder.get_ref(), e)),
        }
    }

    fn finish(self) -> Result<Vec<u8>, ApiError> {
        match self {
            Chunk::Plain(data) => Ok(data),
            Chunk::Gzip(mut decoder) => {
                decoder.try_finish().map_err(|e| gzip_error(decoder.get_ref(), e))?;
                Ok(decoder.finish().map_err(|e| ApiError::BadRequest(format!("a chunk sent as gzip does not decompress: {e}")))?.data)
            }
        }
    }
}

fn gzip_error(out: &Capped, e: std::io::Error) -> ApiError {
    match out.over {
        true => chunk_too_large(),
        false => ApiError::BadRequest(format!("a chunk sent as gzip does not decompress: {e}")),
    }
}

/// Where a gzip chunk decompresses to: refuses the byte past [`CHUNK_BYTES`], which stops the
/// decompression there.
#[derive(Default)]
struct Capped {
    data: Vec<u8>,
    over: bool,
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.data.len() + buf.len() > CHUNK_BYTES {
            self.over = true;
            return Err(std::io::Error::other("the chunk is too large"));
        }
        self.data.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
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
    let (store, dir) = (state.store.clone(), state.upload_dir.clone());
    let outcome = store::off_thread(move || {
        let release = release.or(b.version.clone());
        if let Some(v) = &release
            && store.release(org, v)?.is_none()
        {
            // sentry-cli creates the release first; a bundle for a release not made yet makes it.
            let projects = store.org_projects(org)?.into_iter().filter(|p| b.projects.contains(&p.slug)).map(|p| p.id).collect();
            store.upsert_release(org, v, &store::ReleaseChange { projects, ..Default::default() })?;
        }
        let mut file = std::io::BufWriter::new(tempfile::tempfile_in(&dir).map_err(|e| store::StoreError::Backend(format!("no temporary file for the upload in {}: {e}", dir.display())))?);
        let io = |e: std::io::Error| store::StoreError::Backend(format!("the temporary file of the upload: {e}"));
        let (mut size, mut hash) = (0usize, Sha1::new());
        for c in &b.chunks {
            let Some(data) = store.chunk(org, c)? else { return Ok(Err(format!("chunk {c} disappeared; upload it again"))) };
            size += data.len();
            if size > MAX_FILE_BYTES {
                return Ok(Err(format!("the file is larger than {MAX_FILE_BYTES} bytes")));
            }
            hash.update(&data);
            file.write_all(&data).map_err(io)?;
        }
        let actual = hex::encode(hash.finalize());
        if !actual.eq_ignore_ascii_case(&b.checksum) {
            return Ok(Err(format!("the chunks put together have the SHA-1 {actual}, not the checksum {}", b.checksum)));
        }
        let mut file = file.into_inner().map_err(|e| io(e.into_error()))?;
        file.rewind().map_err(io)?;
        let unpacked = ingest::bundle::unpack(std::io::BufReader::new(file), release.as_deref(), b.dist.as_deref(), &mut |batch| store.put_artifacts(org, batch));
        let files = match unpacked {
            Ok(n) => n,
            Err(ingest::bundle::BundleError::Store(e)) => return Err(e),
            Err(e) => return Ok(Err(e.to_string())),
        };
        // The files are stored; the chunks are not needed any more.
        store.delete_chunks(org, &b.chunks)?;
        Ok::<_, store::StoreError>(Ok(files))
    })
    .await?;
    Ok(match outcome {
        Ok(_) => assembled("ok", Vec::new(), None),
        Err(why) => assembled("error", Vec::new(), Some(why)),
    })
}
