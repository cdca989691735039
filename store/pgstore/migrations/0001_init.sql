-- Kapsel schema, version 1.
--
-- Every object is created in the current schema (the first schema of the
-- connection's search_path): nothing names a schema, so one database can hold
-- several Kapsel installations, and tests run each in a schema of its own.
--
-- Identifiers are the wire ids ("evt_01J…"): text in the "C" collation, so
-- they compare byte-wise and, being ULIDs, sort in creation order.
-- Optional times are NULL when unset (a zero time.Time in Go).

CREATE TABLE tenants (
    id           text COLLATE "C" PRIMARY KEY,
    name         text NOT NULL,
    -- SHA-256 of the API key; the key itself is never stored.
    api_key_hash bytea NOT NULL UNIQUE,
    rate_limit   double precision NOT NULL,
    rate_burst   integer NOT NULL,
    created_at   timestamptz NOT NULL
);

CREATE TABLE endpoints (
    id              text COLLATE "C" PRIMARY KEY,
    tenant_id       text COLLATE "C" NOT NULL REFERENCES tenants (id),
    name            text NOT NULL,
    url             text NOT NULL,
    state           text NOT NULL CHECK (state IN ('active', 'paused', 'disabled')),
    disabled_reason text NOT NULL CHECK (disabled_reason IN ('', 'manual', 'gone', 'failing')),
    -- {"scheme", "secrets", "header"}
    ingest_verifier jsonb NOT NULL,
    -- [{"secret", "expires_at"}], the current secret first
    signing_secrets jsonb NOT NULL,
    -- {"max_attempts", "initial_interval_ns", "multiplier", "jitter",
    --  "max_interval_ns", "max_age_ns", "retry_4xx"}
    retry_policy    jsonb NOT NULL,
    timeout_ns      bigint NOT NULL,
    headers         jsonb NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    -- Soft delete: a deleted endpoint disappears from reads and claims, its
    -- events and attempts stay (the audit trail).
    deleted_at      timestamptz
);

-- Listing a tenant's live endpoints by id.
CREATE INDEX endpoints_tenant_id_idx ON endpoints (tenant_id, id) WHERE deleted_at IS NULL;

CREATE TABLE events (
    id               text COLLATE "C" PRIMARY KEY,
    tenant_id        text COLLATE "C" NOT NULL,
    -- No foreign key: endpoints are only ever soft-deleted, and the insert
    -- statement checks the endpoint itself (it must anyway, for deleted_at
    -- and the tenant); the key's per-row trigger cost ~15 % of a batch insert.
    endpoint_id      text COLLATE "C" NOT NULL,
    status           text NOT NULL CHECK (status IN ('pending', 'delivering', 'delivered', 'failed')),
    attempts         integer NOT NULL,
    -- When the event is next due (pending), or was due (other statuses).
    next_attempt_at  timestamptz NOT NULL,
    next_trigger     text NOT NULL CHECK (next_trigger IN ('scheduled', 'manual')),
    -- Set while delivering; every completion and release is a
    -- compare-and-set on lease_token (fencing).
    lease_token      uuid,
    lease_expires_at timestamptz,
    last_error       text NOT NULL,
    -- Shown on the event; uniqueness is enforced by idempotency_keys.
    idempotency_key  text,
    content_type     text NOT NULL,
    -- http.Header as {"Name": ["v1", …]}
    headers          jsonb NOT NULL,
    body_hash        bytea NOT NULL,
    size             integer NOT NULL,
    created_at       timestamptz NOT NULL,
    delivered_at     timestamptz,
    -- Last, so the fixed-width columns come first; large bodies are TOASTed
    -- and updates of the other columns do not copy them.
    body             bytea NOT NULL,
    CHECK ((status = 'delivering') = (lease_token IS NOT NULL AND lease_expires_at IS NOT NULL))
);

-- Claiming: due pending events, earliest first (EventClaim reads this index
-- in order and stops at its LIMIT).
CREATE INDEX events_pending_idx ON events (next_attempt_at, id) WHERE status = 'pending';
-- Claiming: delivering events whose lease has expired.
CREATE INDEX events_delivering_idx ON events (lease_expires_at) WHERE status = 'delivering';
-- Listing by tenant or endpoint, in id order; replay by endpoint.
CREATE INDEX events_tenant_id_idx ON events (tenant_id, id);
CREATE INDEX events_endpoint_id_idx ON events (endpoint_id, id);
-- Retention by creation time. BRIN: events are inserted in created_at
-- order, so a few pages of summaries cover the table and cost next to
-- nothing on the insert path.
CREATE INDEX events_created_at_idx ON events USING brin (created_at);

-- One event per (endpoint, idempotency key) within the window. The primary
-- key, not a check-then-insert, enforces it: EventInsertMany inserts with
-- ON CONFLICT DO UPDATE … WHERE expires_at <= now, so an expired key is taken
-- over atomically and a live one is never.
CREATE TABLE idempotency_keys (
    endpoint_id text COLLATE "C" NOT NULL,
    key         text COLLATE "C" NOT NULL,
    event_id    text COLLATE "C" NOT NULL,
    body_hash   bytea NOT NULL,
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (endpoint_id, key)
);

-- Purging expired keys.
CREATE INDEX idempotency_keys_expires_at_idx ON idempotency_keys USING brin (expires_at);

-- The audit trail: one row per HTTP request sent to a destination, written in
-- the same statement as the event change it causes.
CREATE TABLE attempts (
    id            text COLLATE "C" PRIMARY KEY,
    -- No foreign key: attempts are only written by the completion statement,
    -- for events it has just updated, and retention deletes an event's
    -- attempts with it; the key's per-row trigger cost ~10 % of a completion.
    event_id      text COLLATE "C" NOT NULL,
    endpoint_id   text COLLATE "C" NOT NULL,
    tenant_id     text COLLATE "C" NOT NULL,
    number        integer NOT NULL,
    trigger       text NOT NULL CHECK (trigger IN ('scheduled', 'manual')),
    started_at    timestamptz NOT NULL,
    duration_ns   bigint NOT NULL,
    status_code   integer NOT NULL,
    error_code    text NOT NULL,
    error         text NOT NULL,
    response_body bytea NOT NULL CHECK (octet_length(response_body) <= 65536),
    -- Attempts of an event, oldest first; also one record per attempt number.
    UNIQUE (event_id, number)
);

-- Endpoint health: recent attempts, last success and failure.
CREATE INDEX attempts_endpoint_started_idx ON attempts (endpoint_id, started_at);

-- Circuit breakers, shared by every dispatcher; saves are a compare-and-set on
-- version. No foreign key: a breaker row may outlive a deleted endpoint.
CREATE TABLE breakers (
    endpoint_id     text COLLATE "C" PRIMARY KEY,
    status          text NOT NULL CHECK (status IN ('closed', 'open', 'half_open')),
    trips           integer NOT NULL,
    open_until      timestamptz,
    probe_until     timestamptz,
    failing_since   timestamptz,
    last_success_at timestamptz,
    last_failure_at timestamptz,
    version         bigint NOT NULL,
    updated_at      timestamptz NOT NULL
);
