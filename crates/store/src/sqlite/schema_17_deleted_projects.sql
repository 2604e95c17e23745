-- A deleted project: gone from every list at once (its slug freed, its keys revoked); its
-- issues and events are deleted afterwards, a chunk at a time, and the row stays so that events
-- still on their way find the project they name. `purged_at`: when its data was last deleted
-- (cleared when late events brought issues back), so that the purge stops looking.
ALTER TABLE projects ADD COLUMN deleted_at REAL;
ALTER TABLE projects ADD COLUMN purged_at REAL;
