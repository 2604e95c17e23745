-- Release health: each session (its updates merged by session id), and the SDKs' own counts.
CREATE TABLE release_sessions (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL,
    sid TEXT NOT NULL,
    did TEXT,
    release TEXT NOT NULL,
    environment TEXT NOT NULL,
    started REAL NOT NULL,
    received REAL NOT NULL,
    status INTEGER NOT NULL,
    errored INTEGER NOT NULL,
    UNIQUE (project_id, sid)
);
CREATE INDEX release_sessions_by_release ON release_sessions (project_id, release, received);
CREATE INDEX release_sessions_by_received ON release_sessions (received);
CREATE TABLE release_session_counts (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL,
    release TEXT NOT NULL,
    environment TEXT NOT NULL,
    started REAL NOT NULL,
    did TEXT NOT NULL,
    received REAL NOT NULL,
    exited INTEGER NOT NULL,
    errored INTEGER NOT NULL,
    abnormal INTEGER NOT NULL,
    crashed INTEGER NOT NULL,
    UNIQUE (project_id, release, environment, started, did)
);
CREATE INDEX session_counts_by_release ON release_session_counts (project_id, release, received);
CREATE INDEX session_counts_by_received ON release_session_counts (received);
