-- Kapsel schema, version 5: fan-out (0.2). Sources become the inbound door,
-- events become immutable, and what the queue rewrites moves to a new,
-- small deliveries table: one row per (event, endpoint). docs/storage.md
-- explains the tables and their indexes; docs/operations.md, "Upgrading
-- from 0.1", what this costs on a large installation.
--
-- The mapping of 0.1's rows (the rules internal/upgradetest checks):
--
--   - each endpoint, deleted ones too, becomes a source "src_" + the same
--     ULID (kapsel.LegacySourceID): name, verifier, created_at and
--     updated_at; active; deleted when the endpoint is. The endpoint keeps
--     everything else and subscribes to exactly that source: source_ids is
--     that source, event_types and channels are cleared. 0.1 stored them
--     but never applied them (an event went to the endpoint it named), so
--     kept they would filter out, from then on, the 0.1 traffic the legacy
--     URL still brings (ingested events have no channels).
--   - each event keeps its immutable part, with source_id its endpoint's
--     legacy source; its queue state becomes a delivery "dlv_" + the
--     event's ULID, whatever its status, so history, retry and replay keep
--     working. A pending or delivering event of a deleted endpoint becomes
--     a failed delivery, last_error 'endpoint deleted', as 0.2's
--     EndpointDelete ends them (a delivering one keeps its lease).
--   - each attempt gets the delivery of its event.
--   - each idempotency key is scoped by (tenant, source): the legacy source
--     of the endpoint it was scoped by.

-- Sources. The verifier is jsonb in the endpoints' former format,
-- {"scheme", "secrets", "header"}; event_type_from and
-- idempotency_key_from are kapsel.FieldRef texts, '' for none.
CREATE TABLE sources (
    id                   text COLLATE "C" PRIMARY KEY,
    tenant_id            text COLLATE "C" NOT NULL REFERENCES tenants (id),
    name                 text NOT NULL,
    state                text NOT NULL CHECK (state IN ('active', 'paused')),
    verifier             jsonb NOT NULL,
    event_type_from      text NOT NULL,
    idempotency_key_from text NOT NULL,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    -- Soft delete: the ingest URL answers 404, the source's events stay.
    deleted_at           timestamptz
);

-- Listing a tenant's live sources by id.
CREATE INDEX sources_tenant_id_idx ON sources (tenant_id, id) WHERE deleted_at IS NULL;

INSERT INTO sources (id, tenant_id, name, state, verifier, event_type_from, idempotency_key_from,
    created_at, updated_at, deleted_at)
SELECT 'src_' || substr(id, 4), tenant_id, name, 'active', ingest_verifier, '', '', created_at, updated_at, deleted_at
FROM endpoints;

UPDATE endpoints SET source_ids = ARRAY['src_' || substr(id, 4)], event_types = '{}', channels = '{}';
ALTER TABLE endpoints DROP COLUMN ingest_verifier;

-- Deliveries: the unit of work, and the rows the hot path rewrites. No
-- body, no headers (the claim joins events for them), no foreign keys
-- (their per-row triggers cost the insert and the completion, as on 0.1's
-- events; endpoints are only soft-deleted, and deliveries are written only
-- by statements that have just read their event and endpoint).
CREATE TABLE deliveries (
    id               text COLLATE "C" PRIMARY KEY,
    tenant_id        text COLLATE "C" NOT NULL,
    event_id         text COLLATE "C" NOT NULL,
    endpoint_id      text COLLATE "C" NOT NULL,
    status           text NOT NULL CHECK (status IN ('pending', 'delivering', 'delivered', 'failed')),
    attempts         integer NOT NULL,
    -- When the delivery is next due (pending), or was due (other statuses).
    next_attempt_at  timestamptz NOT NULL,
    -- When the claim next looks at a pending delivery: next_attempt_at,
    -- or later while its endpoint is blocked (migration 0002's hold).
    claimable_at     timestamptz NOT NULL,
    next_trigger     text NOT NULL CHECK (next_trigger IN ('scheduled', 'manual')),
    -- Set while delivering; every completion and release is a
    -- compare-and-set on lease_token (fencing). A delivery that
    -- EndpointDelete ended while delivering keeps its lease, so that the
    -- attempt in flight is still recorded.
    lease_token      uuid,
    lease_expires_at timestamptz,
    last_error       text NOT NULL,
    created_at       timestamptz NOT NULL,
    delivered_at     timestamptz,
    CHECK ((lease_token IS NULL) = (lease_expires_at IS NULL)),
    CHECK (status <> 'delivering' OR lease_token IS NOT NULL),
    CHECK (status IN ('delivering', 'failed') OR lease_token IS NULL)
);

INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, status, attempts, next_attempt_at, claimable_at,
    next_trigger, lease_token, lease_expires_at, last_error, created_at, delivered_at)
SELECT 'dlv_' || substr(e.id, 5), e.tenant_id, e.id, e.endpoint_id,
    CASE WHEN ep.deleted_at IS NOT NULL AND e.status IN ('pending', 'delivering') THEN 'failed' ELSE e.status END,
    e.attempts, e.next_attempt_at, e.claimable_at, e.next_trigger, e.lease_token, e.lease_expires_at,
    CASE WHEN ep.deleted_at IS NOT NULL AND e.status IN ('pending', 'delivering') THEN 'endpoint deleted' ELSE e.last_error END,
    e.created_at, e.delivered_at
FROM events e
LEFT JOIN endpoints ep ON ep.id = e.endpoint_id;

-- Built after the rows are in, which is faster than maintaining them row by
-- row. Every full index here is also written by every claim and every
-- completion (a status change is never a HOT update, since the partial
-- indexes' predicates read status), so there are as few as the reads need.
--
-- (event_id, endpoint_id): exactly one delivery per pair (I10), decided by
-- the index, not by a check; DeliveryBackfill inserts ON CONFLICT DO
-- NOTHING against it. Its leading column also serves every read by event
-- (the event's summary, DeliveryList by event, AttemptList by event):
-- a separate (event_id) index would be a copy.
ALTER TABLE deliveries ADD CONSTRAINT deliveries_event_endpoint_key UNIQUE (event_id, endpoint_id);
-- Claiming: due pending deliveries, earliest first (0.1's events_pending_idx).
CREATE INDEX deliveries_pending_idx ON deliveries (claimable_at, id) WHERE status = 'pending';
-- Claiming and sweeping: delivering deliveries whose lease has expired.
CREATE INDEX deliveries_delivering_idx ON deliveries (lease_expires_at) WHERE status = 'delivering';
-- Releasing an endpoint's held deliveries. Only held ones are in it:
-- nothing on the insert path.
CREATE INDEX deliveries_held_idx ON deliveries (endpoint_id) WHERE status = 'pending' AND claimable_at > next_attempt_at;
-- Listing by endpoint in id order; replay.
CREATE INDEX deliveries_endpoint_id_idx ON deliveries (endpoint_id, id);
-- Listing a tenant's deliveries in id order (GET /v1/deliveries with no
-- endpoint or event): without it, that walked the primary key through every
-- tenant's deliveries until the page was full. docs/storage.md has what it
-- costs the insert, the claim and the completion.
CREATE INDEX deliveries_tenant_id_idx ON deliveries (tenant_id, id);

-- Attempts belong to a delivery; numbers count per delivery. The column is
-- added, then computed by a rewrite of the table (ALTER … TYPE … USING,
-- checked NOT NULL in the same pass), which leaves no dead copy of every
-- row behind as an UPDATE would.
ALTER TABLE attempts ADD COLUMN delivery_id text COLLATE "C";
ALTER TABLE attempts
    ALTER COLUMN delivery_id TYPE text COLLATE "C" USING 'dlv_' || substr(event_id, 5),
    ALTER COLUMN delivery_id SET NOT NULL;
ALTER TABLE attempts DROP CONSTRAINT attempts_event_id_number_key;
-- Attempts of a delivery, oldest first; one record per attempt number.
ALTER TABLE attempts ADD CONSTRAINT attempts_delivery_id_number_key UNIQUE (delivery_id, number);

-- Idempotency keys: scope (tenant, source), source '' for sends. Small
-- (one row per key within its window), so copied into a new table.
CREATE TABLE idempotency_keys_v5 (
    tenant_id  text COLLATE "C" NOT NULL,
    source_id  text COLLATE "C" NOT NULL,
    key        text COLLATE "C" NOT NULL,
    event_id   text COLLATE "C" NOT NULL,
    body_hash  bytea NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, source_id, key)
);
INSERT INTO idempotency_keys_v5 (tenant_id, source_id, key, event_id, body_hash, expires_at)
SELECT ep.tenant_id, 'src_' || substr(k.endpoint_id, 4), k.key, k.event_id, k.body_hash, k.expires_at
FROM idempotency_keys k
JOIN endpoints ep ON ep.id = k.endpoint_id;
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_keys_v5 RENAME TO idempotency_keys;
ALTER INDEX idempotency_keys_v5_pkey RENAME TO idempotency_keys_pkey;
-- Purging expired keys.
CREATE INDEX idempotency_keys_expires_at_idx ON idempotency_keys USING brin (expires_at);

-- Events keep what is immutable. The queue columns go (with the indexes
-- and the check built on them: events_pending_idx, events_delivering_idx,
-- events_held_idx), and endpoint_id becomes source_id, the legacy source,
-- by one rewrite of the table: it computes the new ids, drops the space of
-- the dropped columns and rebuilds the remaining indexes, instead of an
-- UPDATE that would leave a dead copy of every event behind.
-- events_endpoint_id_idx (endpoint_id, id) is rebuilt over the new values
-- and becomes the index of EventList by source.
ALTER TABLE events
    DROP COLUMN status,
    DROP COLUMN attempts,
    DROP COLUMN next_attempt_at,
    DROP COLUMN claimable_at,
    DROP COLUMN next_trigger,
    DROP COLUMN lease_token,
    DROP COLUMN lease_expires_at,
    DROP COLUMN last_error,
    DROP COLUMN delivered_at,
    ALTER COLUMN endpoint_id TYPE text COLLATE "C" USING 'src_' || substr(endpoint_id, 4);
ALTER TABLE events RENAME COLUMN endpoint_id TO source_id;
ALTER INDEX events_endpoint_id_idx RENAME TO events_source_id_idx;
