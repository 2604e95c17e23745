-- Releases, deploys, and what sentry-cli uploads: chunks (by SHA-1, per organisation) and the
-- files assembled from them (source maps, minified sources). Contents are stored in the file
-- as blobs: a chunk is at most 8 MiB, an assembled file at most 64 MiB (the API's limits).

CREATE TABLE releases (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    version TEXT NOT NULL,
    ref TEXT,
    url TEXT,
    created_at REAL NOT NULL,
    released_at REAL,
    UNIQUE (org_id, version)
);

CREATE TABLE release_projects (
    release_id INTEGER NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    PRIMARY KEY (release_id, project_id)
);
CREATE INDEX release_projects_by_project ON release_projects (project_id, release_id);

CREATE TABLE deploys (
    id INTEGER PRIMARY KEY,
    release_id INTEGER NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    environment TEXT NOT NULL,
    name TEXT,
    url TEXT,
    started_at REAL,
    finished_at REAL NOT NULL
);
CREATE INDEX deploys_by_release ON deploys (release_id, id);

CREATE TABLE upload_chunks (
    org_id INTEGER NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    sha1 TEXT NOT NULL,
    data BLOB NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (org_id, sha1)
);

CREATE TABLE artifacts (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    debug_id TEXT,
    release TEXT,
    dist TEXT,
    headers TEXT,
    sha1 TEXT NOT NULL,
    size INTEGER NOT NULL,
    data BLOB NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX artifacts_by_debug_id ON artifacts (org_id, debug_id, kind) WHERE debug_id IS NOT NULL;
CREATE INDEX artifacts_by_name ON artifacts (org_id, release, name) WHERE release IS NOT NULL;
