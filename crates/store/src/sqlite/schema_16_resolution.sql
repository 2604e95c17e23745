-- A group resolved "in a release": which release fixes it, and the older releases whose later
-- events leave it resolved (JSON, `store::Resolution`). NULL: resolved plainly, or not resolved.
ALTER TABLE groups ADD COLUMN resolution TEXT;
