-- Kapsel embedded schema, version 1.
--
-- Times are INTEGER microseconds since the Unix epoch (UTC), NULL when unset
-- (a zero time.Time in Go): Postgres' precision, and integers compare and
-- index cheaply. Durations are INTEGER nanoseconds. Ids are the wire ids
-- ("evt_01J…"), ULIDs that sort in creation order under the default BINARY
-- collation.

CREATE TABLE tenants (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    -- SHA-256 of the API key; the key itself is never stored.
    api_key_hash BLOB NOT NULL UNIQUE,
    rate_limit   REAL NOT NULL,
    rate_burst   INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE endpoints (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    name            TEXT NOT NULL,
    url             TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('active', 'paused', 'disabled')),
    disabled_reason TEXT NOT NULL,
    -- Verifier, signing secrets, retry policy, timeout and custom headers as
    -- one JSON document: never queried, always read and written whole.
    config          TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    -- Soft delete: the endpoint disappears from reads and claims; its events
    -- and attempts stay (the audit trail).
    deleted_at      INTEGER
) STRICT;

CREATE INDEX endpoints_tenant_idx ON endpoints (tenant_id, id) WHERE deleted_at IS NULL;

CREATE TABLE events (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    endpoint_id      TEXT NOT NULL REFERENCES endpoints (id),
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivering', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL,
    next_attempt_at  INTEGER NOT NULL,
    next_trigger     TEXT NOT NULL,
    lease_token      TEXT,
    lease_expires_at INTEGER,
    last_error       TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    content_type     TEXT NOT NULL,
    -- http.Header as JSON {"Name": ["v1", …]}
    headers          TEXT NOT NULL,
    body_hash        BLOB NOT NULL,
    size             INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    delivered_at     INTEGER,
    body             BLOB NOT NULL
) STRICT;

-- Claiming: due pending events, earliest first; expired leases.
CREATE INDEX events_pending_idx ON events (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX events_delivering_idx ON events (lease_expires_at) WHERE status = 'delivering';
-- Listing by tenant or endpoint in id order; replay by endpoint.
CREATE INDEX events_tenant_idx ON events (tenant_id, id);
CREATE INDEX events_endpoint_idx ON events (endpoint_id, id);

-- One event per (endpoint, idempotency key) within the window. A key whose
-- expires_at <= now is taken over by the next insert.
CREATE TABLE idempotency_keys (
    endpoint_id TEXT NOT NULL,
    key         TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    body_hash   BLOB NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (endpoint_id, key)
) STRICT, WITHOUT ROWID;

-- The audit trail: one row per HTTP request sent to a destination, written in
-- the same transaction as the event change it causes.
CREATE TABLE attempts (
    id            TEXT PRIMARY KEY,
    event_id      TEXT NOT NULL REFERENCES events (id),
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
    UNIQUE (event_id, number)
) STRICT;

-- Endpoint health: attempts since a time, last success and failure.
CREATE INDEX attempts_endpoint_started_idx ON attempts (endpoint_id, started_at);

-- Circuit breakers; saves are a compare-and-set on version.
CREATE TABLE breakers (
    endpoint_id     TEXT PRIMARY KEY,
    status          TEXT NOT NULL,
    trips           INTEGER NOT NULL,
    open_until      INTEGER,
    probe_until     INTEGER,
    failing_since   INTEGER,
    last_success_at INTEGER,
    last_failure_at INTEGER,
    version         INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;
