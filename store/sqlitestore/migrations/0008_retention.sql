-- Kapsel schema, version 8: retention (docs/operations.md, "Retention").
--
-- body_erasure, body_erased_at: an event whose body (and forwarded
-- headers) were erased — 'expired' by the body retention, 'expunged' on
-- request — keeps its row, its size and body hash, and says why and when
-- (microseconds, as every time here). '' and NULL while the body is kept.
-- ADD COLUMN only changes the schema text: no row is rewritten.
--
-- No index: retention walks events in id order (ids sort by creation
-- time) with a cursor kept between batches, reading on the read-only
-- connections and writing short batches by primary key, so nothing is
-- added to the insert path.

ALTER TABLE events ADD COLUMN body_erasure TEXT NOT NULL DEFAULT ''
    CHECK (body_erasure IN ('', 'expired', 'expunged'));
ALTER TABLE events ADD COLUMN body_erased_at INTEGER;
