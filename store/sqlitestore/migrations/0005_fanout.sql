-- Kapsel SQLite schema, version 5: sources, immutable events, deliveries
-- (0.2, docs/design/fanout.md). The upgrade from 0.1 happens here, in the
-- one transaction migrate runs this file in: it commits whole or not at all.
--
-- What changes:
--
--   - sources: the inbound doors. Each 0.1 endpoint, deleted ones too
--     (created deleted), becomes the source kapsel.LegacySourceID names —
--     "src_" and the endpoint id's ULID — with its name, its verifier (moved
--     out of the endpoint's config document), state active and its times.
--     The endpoint is subscribed to that source (source_ids) and its
--     event types and channels are cleared — 0.1 stored them but never
--     applied them, and kept they would filter out the 0.1 traffic the
--     legacy URL still brings (ingested events have no channels) — so
--     /ingest/ep_… keeps working as it did.
--   - events keep what is immutable and gain source_id, the legacy source
--     of their 0.1 endpoint; the queue columns move to deliveries.
--   - deliveries: one per 0.1 event, whatever its status (history and
--     replay keep working), id "dlv_" and the event's ULID, with the
--     event's status, attempts, times, hold, trigger, lease and last error
--     (those of a deleted endpoint end as failed, see below).
--   - attempts gain delivery_id ("dlv_" and their event's ULID).
--   - idempotency keys are scoped by (tenant, source), '' for sends: a 0.1
--     key of an endpoint becomes a key of its legacy source.
--   - the held-events triggers of migration 0002 act on deliveries.
--
-- SQLite cannot drop a column that a foreign key, an index or a trigger
-- names, so events, attempts and idempotency_keys are rebuilt: a new table
-- is filled from the old one, the old one dropped, the new one renamed. The
-- writer runs with foreign keys on, which cannot be switched off inside a
-- transaction; the order below never leaves a row pointing at a dropped
-- table: the new tables reference events_new (renamed to events at the
-- end, which SQLite carries into their REFERENCES clauses), and the old
-- attempts table, the only child of the old events, is dropped before it.
-- The old triggers name events and are dropped first, as a rename checks
-- every trigger.

DROP TRIGGER events_release_on_active;
DROP TRIGGER events_release_on_breaker_insert;
DROP TRIGGER events_release_on_breaker_update;
DROP TRIGGER events_release_on_breaker_delete;

CREATE TABLE sources (
    id                   TEXT PRIMARY KEY,
    tenant_id            TEXT NOT NULL REFERENCES tenants (id),
    name                 TEXT NOT NULL,
    state                TEXT NOT NULL CHECK (state IN ('active', 'paused')),
    -- The verifier as one JSON document {"scheme", "secrets", "header"}:
    -- never queried, always read and written whole.
    verifier             TEXT NOT NULL,
    event_type_from      TEXT NOT NULL,
    idempotency_key_from TEXT NOT NULL,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    -- Soft delete: the ingest URL answers 404; the events stay.
    deleted_at           INTEGER
) STRICT;

CREATE INDEX sources_tenant_idx ON sources (tenant_id, id) WHERE deleted_at IS NULL;

INSERT INTO sources (id, tenant_id, name, state, verifier, event_type_from, idempotency_key_from,
    created_at, updated_at, deleted_at)
SELECT 'src_' || substr(id, 4), tenant_id, name, 'active',
    json_object(
        'scheme', coalesce(json_extract(config, '$.ingest_verifier.Scheme'), ''),
        'secrets', json(coalesce(json_extract(config, '$.ingest_verifier.Secrets'), '[]')),
        'header', coalesce(json_extract(config, '$.ingest_verifier.Header'), '')),
    '', '', created_at, updated_at, deleted_at
FROM endpoints;

UPDATE endpoints SET config = json_remove(config, '$.ingest_verifier'),
    source_ids = json_array('src_' || substr(id, 4)), event_types = '[]', channels = '[]';

-- Events: immutable once stored. source_id is '' for a send.
CREATE TABLE events_new (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    source_id       TEXT NOT NULL,
    type            TEXT NOT NULL,
    channels        TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    content_type    TEXT NOT NULL,
    -- http.Header as JSON {"Name": ["v1", …]}
    headers         TEXT NOT NULL,
    body_hash       BLOB NOT NULL,
    size            INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    body            BLOB NOT NULL
) STRICT;

INSERT INTO events_new (id, tenant_id, source_id, type, channels, idempotency_key, content_type, headers,
    body_hash, size, created_at, body)
SELECT id, tenant_id, 'src_' || substr(endpoint_id, 4), type, channels, idempotency_key, content_type, headers,
    body_hash, size, created_at, body
FROM events;

-- Deliveries: an event on its way to one endpoint, the rows the hot path
-- rewrites, so they hold no body. WITHOUT ROWID: the rows are small, and
-- the claim and completions find them by id in one b-tree instead of two.
-- held_until is migration 0002's hold, moved here (held.go).
CREATE TABLE deliveries (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    event_id         TEXT NOT NULL REFERENCES events_new (id),
    endpoint_id      TEXT NOT NULL REFERENCES endpoints (id),
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivering', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL,
    next_attempt_at  INTEGER NOT NULL,
    held_until       INTEGER,
    next_trigger     TEXT NOT NULL,
    lease_token      TEXT,
    lease_expires_at INTEGER,
    last_error       TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    delivered_at     INTEGER,
    -- I10: exactly one delivery per (event, endpoint). It also serves an
    -- event's summary, its retry and the backfill's existence check.
    UNIQUE (event_id, endpoint_id)
) STRICT, WITHOUT ROWID;

-- A pending or delivering event of a deleted endpoint (0.1 left those as
-- they were, never to be claimed) becomes a failed delivery with last_error
-- 'endpoint deleted', as 0.2's EndpointDelete ends them (kapsel's
-- LastErrorEndpointDeleted), so the upgraded store holds no pending
-- delivery of a deleted endpoint; a delivering one keeps its lease, as
-- EndpointDelete leaves it, so an attempt in flight is still recorded.
INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, status, attempts, next_attempt_at, held_until,
    next_trigger, lease_token, lease_expires_at, last_error, created_at, delivered_at)
SELECT 'dlv_' || substr(e.id, 5), e.tenant_id, e.id, e.endpoint_id,
    CASE WHEN ended THEN 'failed' ELSE e.status END, e.attempts, e.next_attempt_at,
    CASE WHEN ended THEN NULL ELSE e.held_until END,
    e.next_trigger, e.lease_token, e.lease_expires_at,
    CASE WHEN ended THEN 'endpoint deleted' ELSE e.last_error END,
    e.created_at, e.delivered_at
FROM (
    SELECT ev.*, (p.deleted_at IS NOT NULL AND ev.status IN ('pending', 'delivering')) AS ended
    FROM events ev JOIN endpoints p ON p.id = ev.endpoint_id
) AS e;

CREATE TABLE attempts_new (
    id            TEXT PRIMARY KEY,
    delivery_id   TEXT NOT NULL REFERENCES deliveries (id),
    event_id      TEXT NOT NULL REFERENCES events_new (id),
    endpoint_id   TEXT NOT NULL,
    tenant_id     TEXT NOT NULL,
    number        INTEGER NOT NULL,
    trigger       TEXT NOT NULL,
    started_at    INTEGER NOT NULL,
    duration_ns   INTEGER NOT NULL,
    status_code   INTEGER NOT NULL,
    error_code    TEXT NOT NULL,
    error         TEXT NOT NULL,
    response_body BLOB NOT NULL,
    UNIQUE (delivery_id, number)
) STRICT;

INSERT INTO attempts_new (id, delivery_id, event_id, endpoint_id, tenant_id, number, trigger, started_at,
    duration_ns, status_code, error_code, error, response_body)
SELECT id, 'dlv_' || substr(event_id, 5), event_id, endpoint_id, tenant_id, number, trigger, started_at,
    duration_ns, status_code, error_code, error, response_body
FROM attempts;

-- One event per (tenant, source, idempotency key) within the window;
-- source_id is '' for sends, whose scope is the tenant. A key whose
-- expires_at <= now is taken over by the next insert.
CREATE TABLE idempotency_keys_new (
    tenant_id  TEXT NOT NULL,
    source_id  TEXT NOT NULL,
    key        TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    body_hash  BLOB NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, source_id, key)
) STRICT, WITHOUT ROWID;

INSERT INTO idempotency_keys_new (tenant_id, source_id, key, event_id, body_hash, expires_at)
SELECT p.tenant_id, 'src_' || substr(k.endpoint_id, 4), k.key, k.event_id, k.body_hash, k.expires_at
FROM idempotency_keys k JOIN endpoints p ON p.id = k.endpoint_id;

DROP TABLE idempotency_keys;
DROP TABLE attempts;
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
ALTER TABLE attempts_new RENAME TO attempts;
ALTER TABLE idempotency_keys_new RENAME TO idempotency_keys;

-- Listing a tenant's events in id order (and the backfill's walk); by type
-- (migration 0003's index); by source (ingested events only: sends add no
-- entry).
CREATE INDEX events_tenant_idx ON events (tenant_id, id);
CREATE INDEX events_tenant_type_idx ON events (tenant_id, type, id) WHERE type <> '';
CREATE INDEX events_source_idx ON events (source_id, id) WHERE source_id <> '';

-- Claiming: due pending deliveries in claim order (migration 0002's
-- events_claim_idx); expired leases. Stats count pending deliveries on
-- deliveries_endpoint_pending_idx and find the oldest due one on the claim
-- index, so 0.1's second index on pending events (by next_attempt_at) is
-- gone from the insert path.
CREATE INDEX deliveries_claim_idx ON deliveries (coalesce(held_until, next_attempt_at), id) WHERE status = 'pending';
CREATE INDEX deliveries_delivering_idx ON deliveries (lease_expires_at) WHERE status = 'delivering';
-- An endpoint's pending deliveries: releasing its held ones (the triggers
-- below), failing them when it is deleted, counting them for stats.
CREATE INDEX deliveries_endpoint_pending_idx ON deliveries (endpoint_id) WHERE status = 'pending';
-- Listing an endpoint's deliveries in id order; replay.
CREATE INDEX deliveries_endpoint_idx ON deliveries (endpoint_id, id);
-- Listing a tenant's deliveries in id order (no endpoint or event given):
-- without it, that walked the table through every tenant's deliveries
-- until the page was full.
CREATE INDEX deliveries_tenant_idx ON deliveries (tenant_id, id);

-- An event's attempts, oldest first; endpoint health.
CREATE INDEX attempts_event_idx ON attempts (event_id, id);
CREATE INDEX attempts_endpoint_started_idx ON attempts (endpoint_id, started_at);

-- Migration 0002's releases, on deliveries: every write that lets an
-- endpoint through again releases its held deliveries in its transaction.

-- Made active again: every held delivery is due again at its next_attempt_at.
CREATE TRIGGER deliveries_release_on_active AFTER UPDATE OF state ON endpoints
WHEN NEW.state = 'active'
BEGIN
    UPDATE deliveries SET held_until = NULL
    WHERE endpoint_id = NEW.id AND status = 'pending' AND held_until IS NOT NULL;
END;

-- Breaker saved (closed, or open_until moved): deliveries held for the
-- breaker beyond its new open_until are held until then instead, or not at
-- all once that is before their next_attempt_at. Deliveries held forever
-- (an inactive endpoint) stay held.
CREATE TRIGGER deliveries_release_on_breaker_insert AFTER INSERT ON breakers
BEGIN
    UPDATE deliveries SET held_until = CASE WHEN NEW.open_until > next_attempt_at THEN NEW.open_until END
    WHERE endpoint_id = NEW.endpoint_id AND status = 'pending' AND held_until IS NOT NULL
        AND held_until <> 9223372036854775807 AND held_until > coalesce(NEW.open_until, -9223372036854775808);
END;

CREATE TRIGGER deliveries_release_on_breaker_update AFTER UPDATE ON breakers
BEGIN
    UPDATE deliveries SET held_until = CASE WHEN NEW.open_until > next_attempt_at THEN NEW.open_until END
    WHERE endpoint_id = NEW.endpoint_id AND status = 'pending' AND held_until IS NOT NULL
        AND held_until <> 9223372036854775807 AND held_until > coalesce(NEW.open_until, -9223372036854775808);
END;

-- Breaker reset: every held delivery is due again (one still blocked by the
-- endpoint's state is held again by the next claim).
CREATE TRIGGER deliveries_release_on_breaker_delete AFTER DELETE ON breakers
BEGIN
    UPDATE deliveries SET held_until = NULL
    WHERE endpoint_id = OLD.endpoint_id AND status = 'pending' AND held_until IS NOT NULL;
END;
