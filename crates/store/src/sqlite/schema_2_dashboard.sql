-- Version 2: what the web dashboard needs. Accounts (users, sessions, one-time setup links),
-- coarser time buckets and per-project tag counts kept up to date by triggers (so the writer
-- does not change), and indexes so that every sort × tag filter × interval × status of the
-- project stream is answered from an index.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    is_admin      INTEGER NOT NULL DEFAULT 0,
    created_at    REAL NOT NULL,
    last_login    REAL
);

-- A logged-in browser. Only a SHA-256 of the cookie's token is kept.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_user ON sessions(user_id);

-- The one-time link `sentry start` prints while no user exists (hashed like sessions).
CREATE TABLE setup_tokens (
    token_hash TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    used_at    REAL
) WITHOUT ROWID;

-- Events per group per hour and per day: the minute buckets summed, for long intervals.
CREATE TABLE group_hours (
    group_id INTEGER NOT NULL,
    hour     INTEGER NOT NULL,
    count    INTEGER NOT NULL,
    PRIMARY KEY (group_id, hour)
) WITHOUT ROWID;
CREATE TABLE group_days (
    group_id INTEGER NOT NULL,
    day      INTEGER NOT NULL,
    count    INTEGER NOT NULL,
    PRIMARY KEY (group_id, day)
) WITHOUT ROWID;

-- Events per project per minute and per hour, for the event-rate charts.
CREATE TABLE project_minutes (
    project_id INTEGER NOT NULL,
    minute     INTEGER NOT NULL,
    count      INTEGER NOT NULL,
    PRIMARY KEY (project_id, minute)
) WITHOUT ROWID;
CREATE TABLE project_hours (
    project_id INTEGER NOT NULL,
    hour       INTEGER NOT NULL,
    count      INTEGER NOT NULL,
    PRIMARY KEY (project_id, hour)
) WITHOUT ROWID;

-- How many events of a project carried each tag value: the choices of the filter widgets.
CREATE TABLE project_tags (
    project_id INTEGER NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    count      INTEGER NOT NULL,
    last_seen  REAL NOT NULL,
    PRIMARY KEY (project_id, key, value)
) WITHOUT ROWID;
CREATE INDEX project_tags_top ON project_tags(project_id, key, count);

INSERT INTO group_hours (group_id, hour, count)
    SELECT group_id, minute / 60, SUM(count) FROM group_buckets GROUP BY 1, 2;
INSERT INTO group_days (group_id, day, count)
    SELECT group_id, minute / 1440, SUM(count) FROM group_buckets GROUP BY 1, 2;
INSERT INTO project_minutes (project_id, minute, count)
    SELECT g.project_id, b.minute, SUM(b.count) FROM group_buckets b JOIN groups g ON g.id = b.group_id GROUP BY 1, 2;
INSERT INTO project_hours (project_id, hour, count)
    SELECT g.project_id, b.minute / 60, SUM(b.count) FROM group_buckets b JOIN groups g ON g.id = b.group_id GROUP BY 1, 2;
INSERT INTO project_tags (project_id, key, value, count, last_seen)
    SELECT g.project_id, t.key, t.value, SUM(t.count), MAX(t.last_seen)
    FROM group_tags t JOIN groups g ON g.id = t.group_id GROUP BY 1, 2, 3;

-- The writer upserts minute buckets and group tags; these keep the tables above in step.
-- (An upsert that updates fires the UPDATE trigger with OLD and NEW counts.)
CREATE TRIGGER group_buckets_inserted AFTER INSERT ON group_buckets BEGIN
    INSERT INTO group_hours (group_id, hour, count) VALUES (NEW.group_id, NEW.minute / 60, NEW.count)
        ON CONFLICT (group_id, hour) DO UPDATE SET count = count + excluded.count;
    INSERT INTO group_days (group_id, day, count) VALUES (NEW.group_id, NEW.minute / 1440, NEW.count)
        ON CONFLICT (group_id, day) DO UPDATE SET count = count + excluded.count;
    INSERT INTO project_minutes (project_id, minute, count)
        VALUES ((SELECT project_id FROM groups WHERE id = NEW.group_id), NEW.minute, NEW.count)
        ON CONFLICT (project_id, minute) DO UPDATE SET count = count + excluded.count;
    INSERT INTO project_hours (project_id, hour, count)
        VALUES ((SELECT project_id FROM groups WHERE id = NEW.group_id), NEW.minute / 60, NEW.count)
        ON CONFLICT (project_id, hour) DO UPDATE SET count = count + excluded.count;
END;

CREATE TRIGGER group_buckets_updated AFTER UPDATE OF count ON group_buckets BEGIN
    UPDATE group_hours SET count = count + NEW.count - OLD.count
        WHERE group_id = NEW.group_id AND hour = NEW.minute / 60;
    UPDATE group_days SET count = count + NEW.count - OLD.count
        WHERE group_id = NEW.group_id AND day = NEW.minute / 1440;
    UPDATE project_minutes SET count = count + NEW.count - OLD.count
        WHERE project_id = (SELECT project_id FROM groups WHERE id = NEW.group_id) AND minute = NEW.minute;
    UPDATE project_hours SET count = count + NEW.count - OLD.count
        WHERE project_id = (SELECT project_id FROM groups WHERE id = NEW.group_id) AND hour = NEW.minute / 60;
END;

CREATE TRIGGER group_tags_inserted AFTER INSERT ON group_tags BEGIN
    INSERT INTO project_tags (project_id, key, value, count, last_seen)
        VALUES ((SELECT project_id FROM groups WHERE id = NEW.group_id), NEW.key, NEW.value, NEW.count, NEW.last_seen)
        ON CONFLICT (project_id, key, value) DO UPDATE SET count = count + excluded.count,
            last_seen = max(last_seen, excluded.last_seen);
END;

CREATE TRIGGER group_tags_updated AFTER UPDATE OF count ON group_tags BEGIN
    UPDATE project_tags SET count = count + NEW.count - OLD.count, last_seen = max(last_seen, NEW.last_seen)
        WHERE project_id = (SELECT project_id FROM groups WHERE id = NEW.group_id)
          AND key = NEW.key AND value = NEW.value;
END;

-- Sorting by average and total duration.
ALTER TABLE groups ADD COLUMN ts_avg REAL GENERATED ALWAYS AS (CASE WHEN ts_count > 0 THEN ts_sum / ts_count END) VIRTUAL;
CREATE INDEX groups_ts_avg ON groups(project_id, status, ts_avg);
CREATE INDEX groups_ts_sum ON groups(project_id, status, ts_sum);
