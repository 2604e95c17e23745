-- Version 5: working issues. Who changed a group and what went with it (a comment's text, a
-- snooze's condition, the merged groups), the snooze of an ignored group, the grouping hashes
-- merged into a group, and each event's own hash (to split a merged one off again).
ALTER TABLE group_activity ADD COLUMN actor bigint;
ALTER TABLE group_activity ADD COLUMN data text;
-- While ignored: when it comes back by itself, at which times_seen, at how many distinct users.
ALTER TABLE groups ADD COLUMN snooze_until double precision;
ALTER TABLE groups ADD COLUMN snooze_count bigint;
ALTER TABLE groups ADD COLUMN snooze_users bigint;
CREATE INDEX groups_snooze_until ON groups(snooze_until) WHERE snooze_until IS NOT NULL;
-- NULL: the hash of its group (events stored before this version, and before any merge).
ALTER TABLE events ADD COLUMN hash text;
CREATE INDEX events_group_hash ON events(group_id, hash);
-- Hashes merged into a group other than its own: the writer sends their events there.
CREATE TABLE group_hashes (
    project_id bigint NOT NULL,
    hash       text NOT NULL,
    group_id   bigint NOT NULL,
    PRIMARY KEY (project_id, hash)
);
CREATE INDEX group_hashes_group ON group_hashes(group_id);
