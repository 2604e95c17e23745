-- Structured logs (`log` items), kept for their own number of days (`retention.logs_days`).
-- `log_id` makes a replayed spool record or a client's retry store a log once. Read newest
-- first per project, by trace and by level; deleted by the time they were received.
CREATE TABLE logs (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL,
    log_id      BLOB NOT NULL,
    timestamp   REAL NOT NULL,
    received    REAL NOT NULL,
    trace_id    TEXT,
    level       TEXT NOT NULL,
    body        TEXT NOT NULL,
    template    TEXT,
    release     TEXT,
    environment TEXT,
    attributes  TEXT NOT NULL,
    UNIQUE (project_id, log_id)
);
CREATE INDEX logs_project ON logs(project_id, timestamp, id);
CREATE INDEX logs_trace ON logs(project_id, trace_id, timestamp);
CREATE INDEX logs_level ON logs(project_id, level, timestamp, id);
CREATE INDEX logs_received ON logs(received);
