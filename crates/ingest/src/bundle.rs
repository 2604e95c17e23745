//! Artifact bundles: the zip archives `sentry-cli sourcemaps upload` assembles from chunks, a
//! `manifest.json` naming each file's URL, type (`minified_source`, `source_map`) and headers
//! (`debug-id`, `sourcemap`), and the files. Unpacked within bounds that hold before the bytes
//! are read: at most [`MAX_FILES`] files, each at most [`MAX_FILE_BYTES`] and all together at
//! most [`MAX_TOTAL_BYTES`] unpacked, whatever the archive claims (a zip bomb stops at the bound).
//! The archive is read from anything seekable (the assembled upload is a temporary file), and
//! its files go to the store in batches of at most [`BATCH_BYTES`], so unpacking holds one batch
//! (or one file larger than that), never the whole bundle.

use std::collections::BTreeMap;
use std::io::{Read, Seek};

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
    /// Storing a batch of the files failed (not the upload's fault).
    #[error("the files could not be stored: {0}")]
    Store(store::StoreError),
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

/// The most bytes of file content handed to the store in one batch (a larger file is a batch
/// of its own).
pub const BATCH_BYTES: usize = 16 << 20;

/// Unpacks a bundle from `archive` (a file on disk, say), handing its files to `put` in
/// batches of at most [`BATCH_BYTES`] of content, with the bundle's release and dist unless
/// `release` / `dist` (what the upload named) are given. Returns how many files there were.
///
/// Everything the manifest names is checked to be in the archive, within the bounds it claims,
/// before the first batch; an entry that unpacks to more than it claims is refused when it is
/// read, after the batches before it were stored.
pub fn unpack<R: Read + Seek>(
    archive: R,
    release: Option<&str>,
    dist: Option<&str>,
    put: &mut dyn FnMut(&[NewArtifact]) -> Result<(), store::StoreError>,
) -> Result<usize, BundleError> {
    let mut zip = zip::ZipArchive::new(archive).map_err(|e| BundleError::NotZip(e.to_string()))?;
    if zip.len() > MAX_FILES + 1 {
        return Err(BundleError::TooManyFiles);
    }
    let mut total = 0u64;
    let manifest = read_entry(&mut zip, "manifest.json", &mut total)?.ok_or(BundleError::NoManifest)?;
    let manifest: Manifest = serde_json::from_slice(&manifest).map_err(|e| BundleError::BadManifest(e.to_string()))?;
    let release = release.map(str::to_string).or(manifest.release);
    let dist = dist.map(str::to_string).or(manifest.dist);
    // What the archive says of each file, before any is read.
    let mut claimed = total;
    for path in manifest.files.keys() {
        let size = match zip.by_name(path) {
            Ok(e) => e.size(),
            Err(zip::result::ZipError::FileNotFound) => {
                return Err(BundleError::BadFile { path: path.clone(), why: "the manifest names it, but the archive does not hold it".into() });
            }
            Err(e) => return Err(BundleError::BadFile { path: path.clone(), why: e.to_string() }),
        };
        if size > MAX_FILE_BYTES {
            return Err(BundleError::FileTooLarge(path.clone()));
        }
        claimed += size;
        if claimed > MAX_TOTAL_BYTES {
            return Err(BundleError::TooLarge);
        }
    }
    let mut batch: Vec<NewArtifact> = Vec::new();
    let mut batch_bytes = 0usize;
    let count = manifest.files.len();
    for (path, file) in manifest.files {
        let Some(bytes) = read_entry(&mut zip, &path, &mut total)? else {
            return Err(BundleError::BadFile { path, why: "the manifest names it, but the archive does not hold it".into() });
        };
        if !batch.is_empty() && batch_bytes + bytes.len() > BATCH_BYTES {
            put(&batch).map_err(BundleError::Store)?;
            batch.clear();
            batch_bytes = 0;
        }
        let header = |name: &str| file.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
        let headers = (!file.headers.is_empty()).then(|| serde_json::to_string(&file.headers).unwrap_or_default());
        batch_bytes += bytes.len();
        batch.push(NewArtifact {
            name: file.url.clone(),
            kind: ArtifactKind::parse(&file.kind),
            debug_id: header("debug-id"),
            release: release.clone(),
            dist: dist.clone(),
            headers,
            data: bytes,
        });
    }
    if !batch.is_empty() {
        put(&batch).map_err(BundleError::Store)?;
    }
    Ok(count)
}

/// One entry's bytes, read within the bounds (`None` when the archive has no such entry).
fn read_entry<R: Read + Seek>(zip: &mut zip::ZipArchive<R>, path: &str, total: &mut u64) -> Result<Option<Vec<u8>>, BundleError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};

    /// A bundle of (path, content), each named in the manifest, plus `missing` named but absent.
    fn bundle(files: &[(&str, Vec<u8>)], missing: &[&str]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        let mut manifest = serde_json::Map::new();
        for (path, data) in files {
            manifest.insert(path.to_string(), serde_json::json!({"url": format!("~/{path}"), "type": "source_map"}));
            zip.start_file(*path, opts).unwrap();
            zip.write_all(data).unwrap();
        }
        for path in missing {
            manifest.insert(path.to_string(), serde_json::json!({"url": format!("~/{path}"), "type": "source_map"}));
        }
        zip.start_file("manifest.json", opts).unwrap();
        zip.write_all(serde_json::json!({"files": manifest, "release": "1.0"}).to_string().as_bytes()).unwrap();
        zip.finish().unwrap().into_inner()
    }

    /// The sizes of each batch `unpack` hands over.
    fn batches(data: Vec<u8>) -> Result<Vec<Vec<usize>>, BundleError> {
        let mut seen = Vec::new();
        unpack(Cursor::new(data), None, None, &mut |b: &[NewArtifact]| {
            seen.push(b.iter().map(|a| a.data.len()).collect());
            Ok(())
        })?;
        Ok(seen)
    }

    #[test]
    fn files_go_to_the_store_in_batches_of_bounded_size() {
        let six = vec![b'a'; 6 << 20];
        let twenty = vec![b'b'; 20 << 20];
        let files = [("a.map", six.clone()), ("b.map", six.clone()), ("c.map", six.clone()), ("d.map", twenty), ("e.map", b"{}".to_vec())];
        let seen = batches(bundle(&files, &[])).unwrap();
        assert_eq!(seen, vec![vec![6 << 20, 6 << 20], vec![6 << 20], vec![20 << 20], vec![2]]);
        for b in &seen {
            assert!(b.len() == 1 || b.iter().sum::<usize>() <= BATCH_BYTES, "{b:?}");
        }
    }

    #[test]
    fn a_file_the_manifest_names_but_the_archive_lacks_is_refused_before_anything_is_stored() {
        let files = [("a.map", b"{}".to_vec())];
        let mut stored = 0;
        let err = unpack(Cursor::new(bundle(&files, &["z.map"])), None, None, &mut |b: &[NewArtifact]| {
            stored += b.len();
            Ok(())
        })
        .unwrap_err();
        assert!(err.to_string().contains("z.map"), "{err}");
        assert_eq!(stored, 0);
        assert!(matches!(batches(b"not a zip".to_vec()), Err(BundleError::NotZip(_))));
    }
}
