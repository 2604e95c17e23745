-- Version 4: the writer keeps the hourly, daily and per-project counters itself, from the
-- batch's summed deltas (one upsert per key per batch), instead of triggers firing on every
-- group_buckets and group_tags row.
DROP TRIGGER IF EXISTS group_buckets_inserted;
DROP TRIGGER IF EXISTS group_buckets_updated;
DROP TRIGGER IF EXISTS group_tags_inserted;
DROP TRIGGER IF EXISTS group_tags_updated;
