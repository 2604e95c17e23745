-- Events keep the tags ingest derived: the compressed blob holds the tags (a JSON array of
-- [key, value] pairs, `tags_len` bytes) followed by the payload. NULL: written before this
-- version, when the tags were derived from the payload again on every read.
ALTER TABLE events ADD COLUMN tags_len INTEGER;

-- Deliveries are claimed with a lease before they are sent, so that several processes can
-- share the outbox without sending one twice.
ALTER TABLE notify_outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE notify_outbox ADD COLUMN claimed_until REAL;
