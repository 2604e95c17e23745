//! The values of releases, deploys and uploaded artifacts (source maps and minified sources,
//! from artifact bundles or the older per-release file upload), and of upload chunks.
//! Backend-neutral: no SQL here.

use crate::{OrgId, ProjectId};

/// How long an uploaded chunk is kept while no file was assembled from it (a day): the
/// server's housekeeping deletes older ones ([`crate::Releases::delete_stale_chunks`]).
pub const UNASSEMBLED_CHUNK_SECS: f64 = 86_400.0;

/// A release: a version of an organisation's code, in some of its projects.
#[derive(Clone, Debug, PartialEq)]
pub struct Release {
    pub id: i64,
    pub org_id: OrgId,
    pub version: String,
    pub reference: Option<String>,
    pub url: Option<String>,
    pub created_at: f64,
    /// When it was released (finalised); `None` while it is being prepared.
    pub released_at: Option<f64>,
    pub projects: Vec<ProjectId>,
}

/// What creating or changing a release sets; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct ReleaseChange {
    pub reference: Option<String>,
    pub url: Option<String>,
    pub released_at: Option<f64>,
    /// Projects to add the release to.
    pub projects: Vec<ProjectId>,
}

/// A deploy of a release to an environment.
#[derive(Clone, Debug, PartialEq)]
pub struct Deploy {
    pub id: i64,
    pub release_id: i64,
    pub environment: String,
    pub name: Option<String>,
    pub url: Option<String>,
    pub started_at: Option<f64>,
    pub finished_at: f64,
}

/// A new deploy.
#[derive(Clone, Debug, Default)]
pub struct NewDeploy {
    pub environment: String,
    pub name: Option<String>,
    pub url: Option<String>,
    pub started_at: Option<f64>,
    pub finished_at: Option<f64>,
}

/// What an uploaded file is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArtifactKind {
    SourceMap,
    MinifiedSource,
    /// Anything else a bundle carries (kept, not used).
    Other,
}

impl ArtifactKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::SourceMap => "source_map",
            ArtifactKind::MinifiedSource => "minified_source",
            ArtifactKind::Other => "other",
        }
    }

    pub fn parse(s: &str) -> ArtifactKind {
        match s {
            "source_map" | "sourcemap" => ArtifactKind::SourceMap,
            "minified_source" | "source" => ArtifactKind::MinifiedSource,
            _ => ArtifactKind::Other,
        }
    }
}

/// A file to store: from an artifact bundle (with a debug id) or a release's files (with a
/// release and name).
#[derive(Clone, Debug)]
pub struct NewArtifact {
    /// The file's URL as the bundle or upload names it, like `~/static/app.min.js`.
    pub name: String,
    pub kind: ArtifactKind,
    /// The debug id shared by a minified file and its map (lowercase, with dashes).
    pub debug_id: Option<String>,
    pub release: Option<String>,
    pub dist: Option<String>,
    /// The file's headers worth keeping, e.g. `Sourcemap` (JSON object).
    pub headers: Option<String>,
    pub data: Vec<u8>,
}

/// A stored file, without its content.
#[derive(Clone, Debug, PartialEq)]
pub struct Artifact {
    pub id: i64,
    pub org_id: OrgId,
    pub name: String,
    pub kind: ArtifactKind,
    pub debug_id: Option<String>,
    pub release: Option<String>,
    pub dist: Option<String>,
    pub headers: Option<String>,
    /// Hex SHA-1 of the content.
    pub sha1: String,
    pub size: u64,
    pub created_at: f64,
}

/// A release's events in one project, from the `release` tag of its events.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReleaseActivity {
    pub first_seen: Option<f64>,
    pub last_seen: Option<f64>,
    pub events: u64,
    /// Issues whose first event came from this release, newest first (at most 100).
    pub new_groups: Vec<crate::GroupId>,
}
