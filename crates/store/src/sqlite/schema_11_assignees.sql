-- Version 11: who a group is assigned to (a member or a team, at most one of the two), and
-- its distinct users (rows of its `user` tag), kept by a trigger for sorting and `users:>N`.

ALTER TABLE groups ADD COLUMN assigned_user INTEGER;
ALTER TABLE groups ADD COLUMN assigned_team INTEGER;
ALTER TABLE groups ADD COLUMN users INTEGER NOT NULL DEFAULT 0;

UPDATE groups SET users = (SELECT COUNT(*) FROM group_tags t WHERE t.group_id = groups.id AND t.key = 'user');

CREATE INDEX groups_users ON groups(project_id, status, users);
CREATE INDEX groups_assigned_user ON groups(assigned_user) WHERE assigned_user IS NOT NULL;
CREATE INDEX groups_assigned_team ON groups(assigned_team) WHERE assigned_team IS NOT NULL;

-- The writer upserts group tags: a new row of the `user` key is a new user of the group.
CREATE TRIGGER group_users_counted AFTER INSERT ON group_tags WHEN NEW.key = 'user' BEGIN
    UPDATE groups SET users = users + 1 WHERE id = NEW.group_id;
END;

CREATE TRIGGER group_users_uncounted AFTER DELETE ON group_tags WHEN OLD.key = 'user' BEGIN
    UPDATE groups SET users = max(users - 1, 0) WHERE id = OLD.group_id;
END;
