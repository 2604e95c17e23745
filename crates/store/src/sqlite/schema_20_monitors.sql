-- Cron monitors (created by their first check-in) and their runs. `next_expected` is when the
-- next check-in is due (without the margin); the scheduler moves it on when one is missed.
CREATE TABLE monitors (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    slug TEXT NOT NULL,
    schedule_type TEXT NOT NULL,
    schedule TEXT NOT NULL,
    timezone TEXT NOT NULL,
    margin_minutes INTEGER NOT NULL,
    max_runtime_minutes INTEGER NOT NULL,
    status TEXT NOT NULL,
    last_check_in REAL,
    next_expected REAL,
    created REAL NOT NULL,
    UNIQUE (project_id, slug)
);
CREATE INDEX monitors_next_expected ON monitors (next_expected);

-- One run: an in_progress check-in and the ok / error closing it (same check_in_id), a closing
-- check-in alone, or a missed run (no check_in_id). `deadline`: when an open run times out.
-- `reported`: a failed run already made an issue's event.
CREATE TABLE monitor_runs (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    monitor_id INTEGER NOT NULL REFERENCES monitors(id),
    check_in_id BLOB,
    status TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL,
    duration REAL,
    deadline REAL,
    release TEXT,
    environment TEXT,
    reported INTEGER NOT NULL DEFAULT 0,
    UNIQUE (monitor_id, check_in_id)
);
CREATE INDEX monitor_runs_monitor ON monitor_runs (monitor_id, started);
CREATE INDEX monitor_runs_open ON monitor_runs (deadline) WHERE status = 'in_progress';
CREATE INDEX monitor_runs_unreported ON monitor_runs (id) WHERE reported = 0 AND status IN ('error', 'missed', 'timeout');
