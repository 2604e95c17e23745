//! Artifact bundles: the zip archives `sentry-cli sourcemaps upload` assembles from chunks, a
//! `manifest.json` naming each file's URL, type (`minified_source`, `source_map`) and headers
//! (`debug-id`, `sourcemap`), and the files. Unpacked within bounds that hold before the bytes
//! are read: at most [`MAX_FILES`] files, each at most [`MAX_FILE_BYTES`] and all together at
//! most [`MAX_TOTAL_BYTES`] unpacked, whatever the archive claims (a zip bomb stops at the bound).

use std::collections::BTreeMap;
use std::io::{Cursor, Read};

use serde::Deserialize;
use store::{ArtifactKind, NewArtifact};

/// The most files one bundle may hold.
pub const MAX_FILES: usize = 10_000;
/// The most bytes one file of a bundle may unpack to.
pub const MAX_FILE_BYTES: u64 = 64 << 20;
/// The most bytes all files of a bundle may unpack to.
pub const MAX_TOTAL_BYTES: u64 = 256 << 20;

/// Why a bundle was refused, in words for the person who uploaded it.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("the upload is not a zip archive: {0}")]
    NotZip(String),
    #[error("the bundle has no manifest.json")]
    NoManifest,
    #[error("the bundle's manifest.json is not valid: {0}")]
    BadManifest(String),
    #[error("the bundle has more than {MAX_FILES} files")]
    TooManyFiles,
    #[error("{0} unpacks to more than {MAX_FILE_BYTES} bytes")]
    FileTooLarge(String),
    #[error("the bundle unpacks to more than {MAX_TOTAL_BYTES} bytes")]
    TooLarge,
    #[error("{path} could not be read from the bundle: {why}")]
    BadFile { path: String, why: String },
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    files: BTreeMap<String, ManifestFile>,
    release: Option<String>,
    dist: Option<String>,
}

#[derive(Deserialize)]
struct ManifestFile {
    url: String,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// The files of a bundle, with the bundle's release and dist unless `release` / `dist` (what
/// the upload named) are given.
pub fn unpack(data: &[u8], release: Option<&str>, dist: Option<&str>) -> Result<Vec<NewArtifact>, BundleError> {
    let mut zip = zip::ZipArchive::new(Cursor::new(data)).map_err(|e| BundleError::NotZip(e.to_string()))?;
    if zip.len() > MAX_FILES + 1 {
        return Err(BundleError::TooManyFiles);
    }
    let mut total = 0u64;
    let manifest = read_entry(&mut zip, "manifest.json", &mut total)?.ok_or(BundleError::NoManifest)?;
    let manifest: Manifest = serde_json::from_slice(&manifest).map_err(|e| BundleError::BadManifest(e.to_string()))?;
    let release = release.map(str::to_string).or(manifest.release);
    let dist = dist.map(str::to_string).or(manifest.dist);
    let mut out = Vec::new();
    for (path, file) in manifest.files {
        let Some(bytes) = read_entry(&mut zip, &path, &mut total)? else {
            return Err(BundleError::BadFile { path, why: "the manifest names it, but the archive does not hold it".into() });
        };
        let header = |name: &str| file.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
        let headers = (!file.headers.is_empty()).then(|| serde_json::to_string(&file.headers).unwrap_or_default());
        out.push(NewArtifact {
            name: file.url.clone(),
            kind: ArtifactKind::parse(&file.kind),
            debug_id: header("debug-id"),
            release: release.clone(),
            dist: dist.clone(),
            headers,
            data: bytes,
        });
    }
    Ok(out)
}

/// One entry's bytes, read within the bounds (`None` when the archive has no such entry).
fn read_entry(zip: &mut zip::ZipArchive<Cursor<&[u8]>>, path: &str, total: &mut u64) -> Result<Option<Vec<u8>>, BundleError> {
    let mut entry = match zip.by_name(path) {
        Ok(e) => e,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(BundleError::BadFile { path: path.into(), why: e.to_string() }),
    };
    let allowed = MAX_FILE_BYTES.min(MAX_TOTAL_BYTES - *total);
    if entry.size() > allowed {
        return Err(if entry.size() > MAX_FILE_BYTES { BundleError::FileTooLarge(path.into()) } else { BundleError::TooLarge });
    }
    let mut bytes = Vec::with_capacity(entry.size() as usize);
    (&mut entry)
        .take(allowed + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| BundleError::BadFile { path: path.into(), why: e.to_string() })?;
    if bytes.len() as u64 > allowed {
        return Err(if bytes.len() as u64 > MAX_FILE_BYTES { BundleError::FileTooLarge(path.into()) } else { BundleError::TooLarge });
    }
    *total += bytes.len() as u64;
    Ok(Some(bytes))
}
