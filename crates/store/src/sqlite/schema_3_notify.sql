-- Version 3 of the SQLite schema: notifications. (Version 2 belongs to the dashboard; the
-- runner applies every version it has not recorded, in list order, whatever the others.)

-- The delivery outbox: one row per rule action of a firing, written before anything is sent.
-- (firing_id, action) is unique, so one firing never queues the same action twice.
CREATE TABLE notify_outbox (
    id              INTEGER PRIMARY KEY,
    firing_id       TEXT NOT NULL,
    action          INTEGER NOT NULL,
    project_id      INTEGER NOT NULL,
    group_id        INTEGER NOT NULL,
    rule            TEXT NOT NULL,
    plugin          TEXT NOT NULL,
    -- The action's own settings (JSON object), laid over the plugin's section at delivery.
    settings        TEXT NOT NULL,
    -- The notification (JSON).
    payload         TEXT NOT NULL,
    created_at      REAL NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    expires_at      REAL NOT NULL,
    delivered_at    REAL,
    failed_at       REAL,
    last_error      TEXT,
    UNIQUE (firing_id, action)
);
CREATE INDEX notify_outbox_pending ON notify_outbox(next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;

-- How far the notification engine has read a log (`group_activity`: the last id handled).
CREATE TABLE notify_cursors (
    name     TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);

-- When a rule last fired for a group, for its throttle.
CREATE TABLE notify_throttle (
    rule          TEXT NOT NULL,
    group_id      INTEGER NOT NULL,
    last_fired_at REAL NOT NULL,
    PRIMARY KEY (rule, group_id)
) WITHOUT ROWID;
