-- The spool every node shares: records some node acknowledged and no node has stored yet.
-- A row is free when `lease_until` is NULL or past; a claim sets `claim` and `lease_until`,
-- and the transaction that stores the record deletes it (only while the claim holds).
CREATE TABLE ingest_queue (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    appended_at double precision NOT NULL,
    events integer NOT NULL,
    data bytea NOT NULL,
    claim bigint,
    lease_until double precision,
    claims integer NOT NULL DEFAULT 0
) WITH (autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_insert_threshold = 1000);
-- A record is written once and read once, within moments, compressed by the node (zstd): kept in
-- its row where it fits, never compressed again by PostgreSQL.
ALTER TABLE ingest_queue ALTER COLUMN data SET STORAGE MAIN;
