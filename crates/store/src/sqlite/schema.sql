-- Version 1 of the SQLite schema. Times are unix seconds (REAL); ids are INTEGER.

CREATE TABLE projects (
    id          INTEGER PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    created_at  REAL NOT NULL
);

CREATE TABLE project_keys (
    public_key            TEXT PRIMARY KEY,
    project_id            INTEGER NOT NULL REFERENCES projects(id),
    label                 TEXT,
    rate_limit_per_minute INTEGER,
    created_at            REAL NOT NULL,
    revoked_at            REAL
);
CREATE INDEX project_keys_project ON project_keys(project_id);

CREATE TABLE groups (
    id            INTEGER PRIMARY KEY,
    project_id    INTEGER NOT NULL REFERENCES projects(id),
    hash          TEXT NOT NULL,
    kind          TEXT NOT NULL,
    title         TEXT NOT NULL,
    culprit       TEXT NOT NULL,
    level         TEXT NOT NULL,
    logger        TEXT,
    status        INTEGER NOT NULL DEFAULT 0,
    first_seen    REAL NOT NULL,
    last_seen     REAL NOT NULL,
    times_seen    INTEGER NOT NULL DEFAULT 0,
    priority      REAL NOT NULL DEFAULT 0,
    ts_count      INTEGER NOT NULL DEFAULT 0,
    ts_sum        REAL NOT NULL DEFAULT 0,
    ts_min        REAL,
    ts_max        REAL,
    last_event_id TEXT NOT NULL DEFAULT '',
    components    TEXT NOT NULL DEFAULT '[]',
    resolved_at   REAL,
    UNIQUE (project_id, hash)
);
CREATE INDEX groups_last_seen  ON groups(project_id, status, last_seen);
CREATE INDEX groups_first_seen ON groups(project_id, status, first_seen);
CREATE INDEX groups_times_seen ON groups(project_id, status, times_seen);
CREATE INDEX groups_priority   ON groups(project_id, status, priority);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL,
    event_id    BLOB NOT NULL,
    group_id    INTEGER NOT NULL REFERENCES groups(id),
    kind        TEXT NOT NULL,
    timestamp   REAL NOT NULL,
    received    REAL NOT NULL,
    level       TEXT NOT NULL,
    title       TEXT NOT NULL,
    time_spent  REAL,
    -- The event JSON as received, zstd-compressed with dictionary `dict` (NULL: none). Its tags
    -- are derived from it again when read.
    dict        INTEGER,
    payload     BLOB NOT NULL,
    UNIQUE (project_id, event_id)
);

-- zstd dictionaries trained on this file's own events.
CREATE TABLE payload_dicts (
    id         INTEGER PRIMARY KEY,
    dict       BLOB NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX events_group ON events(group_id, id);

-- How many events of a group carried each tag value.
CREATE TABLE group_tags (
    group_id   INTEGER NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    count      INTEGER NOT NULL,
    first_seen REAL NOT NULL,
    last_seen  REAL NOT NULL,
    PRIMARY KEY (group_id, key, value)
) WITHOUT ROWID;
CREATE INDEX group_tags_value ON group_tags(key, value, group_id);

-- Events per group per minute (floor(timestamp / 60)).
CREATE TABLE group_buckets (
    group_id INTEGER NOT NULL,
    minute   INTEGER NOT NULL,
    count    INTEGER NOT NULL,
    PRIMARY KEY (group_id, minute)
) WITHOUT ROWID;

-- Duration histogram per group: bucket 0 holds < 1 ms, bucket b ≥ 1 holds
-- [2^((b-1)/8), 2^(b/8)) ms.
CREATE TABLE group_durations (
    group_id INTEGER NOT NULL,
    bucket   INTEGER NOT NULL,
    count    INTEGER NOT NULL,
    PRIMARY KEY (group_id, bucket)
) WITHOUT ROWID;

-- The life of a group: created, regression, resolved, ignored, reopened.
CREATE TABLE group_activity (
    id       INTEGER PRIMARY KEY,
    group_id INTEGER NOT NULL,
    kind     TEXT NOT NULL,
    at       REAL NOT NULL
);
CREATE INDEX group_activity_group ON group_activity(group_id, id);

-- Envelope items accepted but not stored as events, counted per project, type and day.
CREATE TABLE item_counts (
    project_id INTEGER NOT NULL,
    item_type  TEXT NOT NULL,
    day        INTEGER NOT NULL,
    count      INTEGER NOT NULL,
    PRIMARY KEY (project_id, item_type, day)
) WITHOUT ROWID;
