-- How far each ingest spool's records are applied, committed in the same transaction as the
-- events they held: after a crash, replay starts right after `position` and stores nothing twice.
CREATE TABLE spool_marks (
    spool TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    applied_at REAL NOT NULL
);
