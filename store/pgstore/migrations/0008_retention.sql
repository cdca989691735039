-- Kapsel schema, version 8: retention (docs/operations.md, "Retention").
--
--   - body_erasure, body_erased_at: an event whose body (and forwarded
--     headers) were erased — 'expired' by the body retention, 'expunged'
--     on request — keeps its row, its size and body hash, and says why and
--     when. '' and NULL while the body is kept.
--
-- Adding a column with a constant default and no volatile expression only
-- changes the catalog (PostgreSQL 11+): no rewrite of events, however large.
-- The check is added NOT VALID, so that it does not scan the table under
-- the ALTER's lock either; it holds for every row written from now on, and
-- the rows already there hold '' by construction.
--
-- No index: retention walks events in primary-key order (ids sort by
-- creation time) with a cursor it keeps between batches, so neither the
-- erased bodies nor the kept events are read twice in a pass, and nothing
-- is added to the insert path. docs/storage.md has the reasoning.

ALTER TABLE events
    ADD COLUMN body_erasure text NOT NULL DEFAULT '',
    ADD COLUMN body_erased_at timestamptz;

ALTER TABLE events ADD CONSTRAINT events_body_erasure_check
    CHECK (body_erasure IN ('', 'expired', 'expunged')) NOT VALID;
