-- Kapsel schema, version 3: the event type (docs/ingest.md), and an index
-- for listing a tenant's events of one type.
--
-- type is '' for an event without one (hmac-sha256 and none sources, sends
-- that name none). ADD COLUMN with a constant default rewrites no row: the
-- existing events read '' at once, so the migration is quick on a large
-- table (the index below is built over it, though). Stores write the type as
-- kapsel.StorableEventType makes it: valid UTF-8 without NUL, at most 255
-- bytes. There is no CHECK on the length: EventInsertParams.Storable is the
-- one place the rule lives, and a CHECK would scan the table here.
--
-- The index serves EventList with a Type: `tenant_id = $1 AND type = $2
-- AND type <> '' AND id > $3 ORDER BY id LIMIT n` is one range scan of the
-- index that stops after n entries — no sort, and no row of another tenant
-- or another type is read. The API always lists within a tenant, so
-- tenant_id leads; (type, id) alone would walk every tenant's events of a
-- common type ("push") to fill a page, and events_tenant_id_idx
-- (tenant_id, id) would walk all of the tenant's events of every type.
--
-- It is partial (type <> ''): events without a type — every hmac-sha256 and
-- none source's — add no entry, so the insert path, the hot path, pays for
-- the index only for typed events. Listing by the empty type means "any
-- type" and never needs it. The planner uses a partial index only when it
-- can prove the query's WHERE implies the index's condition, which it
-- cannot from a parameter in a generic plan, so EventList states
-- `type <> ''` itself (checked with EXPLAIN in explain_test.go).

-- IF NOT EXISTS, on the column and the index: an operator of a busy
-- installation may have created both by hand beforehand, the index with
-- CREATE INDEX CONCURRENTLY, so that this transaction does not hold
-- inserts into events while it builds the index (docs/operations.md,
-- "Upgrading from 0.1").
ALTER TABLE events ADD COLUMN IF NOT EXISTS type text NOT NULL DEFAULT '';

CREATE INDEX IF NOT EXISTS events_tenant_type_idx ON events (tenant_id, type, id) WHERE type <> '';
