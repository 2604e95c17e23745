-- What the item types beside events leave: user feedback and the SDKs' client reports.

-- User feedback (`feedback` items, `user_report`). `group_id` is the issue of `event_id` when
-- that event was stored before the feedback (else found when read).
CREATE TABLE feedback (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL,
    feedback_id BLOB NOT NULL,
    event_id    BLOB,
    group_id    INTEGER,
    name        TEXT NOT NULL,
    email       TEXT NOT NULL,
    message     TEXT NOT NULL,
    url         TEXT,
    timestamp   REAL NOT NULL,
    received    REAL NOT NULL,
    UNIQUE (project_id, feedback_id)
);
CREATE INDEX feedback_project ON feedback(project_id, timestamp);
CREATE INDEX feedback_group ON feedback(group_id, timestamp);
CREATE INDEX feedback_event ON feedback(project_id, event_id);
CREATE INDEX feedback_received ON feedback(received);

-- The SDKs' own discard counts (`client_report` items), summed per reason and category.
CREATE TABLE client_reports (
    project_id INTEGER NOT NULL,
    reason     TEXT NOT NULL,
    category   TEXT NOT NULL,
    quantity   INTEGER NOT NULL,
    PRIMARY KEY (project_id, reason, category)
) WITHOUT ROWID;
