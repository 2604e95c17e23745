-- Version 12: working issues. Who changed a group and what went with it (a comment's text, a
-- snooze's condition, the merged groups), the snooze of an ignored group, the grouping hashes
-- merged into a group, and each event's own hash (to split a merged one off again).
ALTER TABLE group_activity ADD COLUMN actor INTEGER;
ALTER TABLE group_activity ADD COLUMN data TEXT;
-- While ignored: when it comes back by itself, at which times_seen, at how many distinct users.
ALTER TABLE groups ADD COLUMN snooze_until REAL;
ALTER TABLE groups ADD COLUMN snooze_count INTEGER;
ALTER TABLE groups ADD COLUMN snooze_users INTEGER;
CREATE INDEX groups_snooze_until ON groups(snooze_until) WHERE snooze_until IS NOT NULL;
-- NULL: the hash of its group (events stored before this version, and before any merge).
ALTER TABLE events ADD COLUMN hash TEXT;
CREATE INDEX events_group_hash ON events(group_id, hash);
-- Hashes merged into a group other than its own: the writer sends their events there.
CREATE TABLE group_hashes (
    project_id INTEGER NOT NULL,
    hash       TEXT NOT NULL,
    group_id   INTEGER NOT NULL,
    PRIMARY KEY (project_id, hash)
) WITHOUT ROWID;
CREATE INDEX group_hashes_group ON group_hashes(group_id);
