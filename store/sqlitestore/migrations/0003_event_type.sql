-- Kapsel SQLite schema, version 3: the event type (docs/ingest.md), and an
-- index for listing a tenant's events of one type.
--
-- type is '' for an event without one (hmac-sha256 and none sources, sends
-- that name none). Existing events get ''. Stores write it as
-- kapsel.StorableEventType makes it: valid UTF-8 without NUL, at most 255
-- bytes. The length is not checked here: EventInsertParams.Storable is the
-- one place the rule lives.
--
-- The index serves EventList with a Type: `tenant_id = ? AND type = ? AND
-- type <> '' AND id > ? ORDER BY id LIMIT n` is one range scan of the index
-- that stops after n entries — no sort, and no row of another tenant or
-- another type is read. The API always lists within a tenant, so
-- tenant_id leads; (type, id) alone would walk every tenant's events of a
-- common type ("push") to fill a page. (tenant_id, id), the existing
-- events_tenant_idx, would walk all of the tenant's events of every type.
--
-- It is partial (type <> ''): events without a type — every hmac-sha256 and
-- none source's — add no entry, so the insert path pays for the index only
-- for typed events. Listing by the empty type means "any type" and never
-- needs it. A query uses a partial index only when its WHERE clause names
-- the index's condition, so EventList adds `type <> ''` to a type filter.

ALTER TABLE events ADD COLUMN type TEXT NOT NULL DEFAULT '';

CREATE INDEX events_tenant_type_idx ON events (tenant_id, type, id) WHERE type <> '';
