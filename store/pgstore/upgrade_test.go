package pgstore_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/kapsel-dev/kapsel/internal/testdb"
	"github.com/kapsel-dev/kapsel/internal/upgradetest"
)

// releasedVersion is the schema version of the last release (0.1).
const releasedVersion = 2

// TestUpgradeFromReleasedSchema builds a schema at the released version,
// fills it with rows in every state using that schema's SQL, migrates it as
// kapseld does, and checks everything through the store: the 0.1 → 0.2
// mapping of migration 0005 (internal/upgradetest), claims and completions
// of migrated deliveries, and inserts through the legacy sources.
func TestUpgradeFromReleasedSchema(t *testing.T) {
	t.Parallel()
	testUpgrade(t, releasedVersion, upgradetest.New())
}

// TestUpgradeFromSchema4 starts from the last schema before the fan-out
// (0.2's development: event types, channels and subscription filters
// exist), with rows that use them: the upgrade replaces the endpoints'
// filters with their legacy source (types and channels cleared: they were
// never applied) and keeps the events' types and channels.
func TestUpgradeFromSchema4(t *testing.T) {
	t.Parallel()
	testUpgrade(t, 4, upgradetest.New().WithRouting())
}

func testUpgrade(t *testing.T, version int, f *upgradetest.Fixture) {
	ctx := t.Context()
	s := openStore(t, testdb.New(t))
	if err := s.MigrateTo(ctx, version); err != nil {
		t.Fatalf("migrating to version %d: %v", version, err)
	}
	b := &pgx.Batch{}
	writeOld(b, f, version)
	if err := s.Pool().SendBatch(ctx, b).Close(); err != nil {
		t.Fatalf("writing the fixture at version %d: %v", version, err)
	}

	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("upgrading: %v", err)
	}
	requireVersions(t, s)
	upgradetest.Check(t, s, f)
}

// writeOld queues the fixture's rows in the SQL of schema version 2 (0.1),
// and from version 4 on with their event types, channels and subscription
// filters.
func writeOld(b *pgx.Batch, f *upgradetest.Fixture, version int) {
	for _, tn := range f.Tenants {
		b.Queue(`INSERT INTO tenants (id, name, api_key_hash, rate_limit, rate_burst, created_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, tn.ID, tn.Name, tn.APIKeyHash, tn.RateLimit, tn.RateBurst, tn.CreatedAt)
	}
	for _, e := range f.Endpoints {
		secrets := []map[string]any{}
		for _, s := range e.SigningSecrets {
			m := map[string]any{"secret": s.Secret}
			if !s.ExpiresAt.IsZero() {
				m["expires_at"] = s.ExpiresAt
			}
			secrets = append(secrets, m)
		}
		v, p := e.IngestVerifier, e.RetryPolicy
		b.Queue(`INSERT INTO endpoints (id, tenant_id, name, url, state, disabled_reason, ingest_verifier,
			signing_secrets, retry_policy, timeout_ns, headers, created_at, updated_at, deleted_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
			e.ID, e.TenantID, e.Name, e.URL, e.State, e.DisabledReason,
			jsonText(map[string]any{"scheme": v.Scheme, "secrets": v.Secrets, "header": v.Header}),
			jsonText(secrets),
			jsonText(map[string]any{
				"max_attempts": p.MaxAttempts, "initial_interval_ns": p.InitialInterval, "multiplier": p.Multiplier,
				"jitter": p.Jitter, "max_interval_ns": p.MaxInterval, "max_age_ns": p.MaxAge, "retry_4xx": p.Retry4xx,
			}),
			int64(e.Timeout), jsonText(e.Headers), e.CreatedAt, e.UpdatedAt, nullTime(f.DeletedAt[e.ID]))
		if version >= 4 {
			b.Queue(`UPDATE endpoints SET event_types = $2, source_ids = $3, channels = $4 WHERE id = $1`,
				e.ID, nonNilList(e.Subscription.EventTypes), nonNilList(e.Subscription.SourceIDs), nonNilList(e.Subscription.Channels))
		}
	}
	for _, e := range f.Events {
		claimable := pgtype.Timestamptz{Time: e.NextAttemptAt, Valid: true}
		if until, held := f.Held[e.ID]; held {
			claimable = pgtype.Timestamptz{Time: until, Valid: true}
			if until.IsZero() {
				claimable = pgtype.Timestamptz{InfinityModifier: pgtype.Infinity, Valid: true}
			}
		}
		var token, key any
		if e.LeaseToken != "" {
			token = e.LeaseToken
		}
		if e.IdempotencyKey != "" {
			key = e.IdempotencyKey
		}
		b.Queue(`INSERT INTO events (id, tenant_id, endpoint_id, status, attempts, next_attempt_at, next_trigger,
			lease_token, lease_expires_at, last_error, idempotency_key, content_type, headers, body_hash, size,
			created_at, delivered_at, body, claimable_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::uuid, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`,
			e.ID, e.TenantID, e.EndpointID, e.Status, e.Attempts, e.NextAttemptAt, e.NextTrigger,
			token, nullTime(e.LeaseExpiresAt), e.LastError, key, e.ContentType, jsonText(e.Headers), e.BodyHash, e.Size,
			e.CreatedAt, nullTime(e.DeliveredAt), e.Body, claimable)
		if version >= 4 {
			b.Queue(`UPDATE events SET type = $2, channels = $3 WHERE id = $1`, e.ID, e.Type, nonNilList(e.Channels))
		}
	}
	for _, k := range f.Keys {
		b.Queue(`INSERT INTO idempotency_keys (endpoint_id, key, event_id, body_hash, expires_at)
			VALUES ($1, $2, $3, $4, $5)`, k.EndpointID, k.Key, k.EventID, k.BodyHash, k.ExpiresAt)
	}
	for _, a := range f.Attempts {
		b.Queue(`INSERT INTO attempts (id, event_id, endpoint_id, tenant_id, number, trigger, started_at,
			duration_ns, status_code, error_code, error, response_body)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			a.ID, a.EventID, a.EndpointID, a.TenantID, a.Number, a.Trigger, a.StartedAt,
			int64(a.Duration), a.StatusCode, a.ErrorCode, a.Error, a.ResponseBody)
	}
	for _, br := range f.Breakers {
		b.Queue(`INSERT INTO breakers (endpoint_id, status, trips, open_until, probe_until, failing_since,
			last_success_at, last_failure_at, version, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			br.EndpointID, br.Status, br.Trips, nullTime(br.OpenUntil), nullTime(br.ProbeUntil), nullTime(br.FailingSince),
			nullTime(br.LastSuccessAt), nullTime(br.LastFailureAt), br.Version, br.UpdatedAt)
	}
}

// jsonText is v as the text of a jsonb value.
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// nullTime is NULL for a zero time.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// nonNilList is l as a NOT NULL text[] value.
func nonNilList[T ~string](l []T) []string {
	out := make([]string, len(l))
	for i, v := range l {
		out[i] = string(v)
	}
	return out
}
