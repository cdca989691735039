package sqlitestore

import (
	"database/sql"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/kapsel-dev/kapsel/internal/upgradetest"
)

// releasedVersion is the schema version of the last release (0.1).
const releasedVersion = 1

// TestUpgradeFromReleasedSchema builds a database at the released version,
// fills it with rows in every state using that schema's SQL, opens it as
// kapseld does (which migrates it), and checks everything through the store.
// The released schema has no held_until: every event starts unheld, and the
// checks claim the due events of blocked endpoints only once unblocked.
func TestUpgradeFromReleasedSchema(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, FileName)+"?_foreign_keys=1")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := migrateTo(ctx, db, func() int64 { return 0 }, releasedVersion); err != nil {
		t.Fatalf("migrating to version %d: %v", releasedVersion, err)
	}
	f := upgradetest.New()
	if err := writeReleased(db, f); err != nil {
		t.Fatalf("writing the fixture at version %d: %v", releasedVersion, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatalf("upgrading: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if v, err := schemaVersion(ctx, s.r); err != nil || v != LatestVersion() {
		t.Fatalf("schema version after Open = %d, %v; want %d", v, err, LatestVersion())
	}
	upgradetest.Check(t, s, f)
}

// writeReleased writes the fixture's rows in the SQL of schema version 1, in
// one transaction. f.Held does not apply: version 1 holds nothing.
func writeReleased(db *sql.DB, f *upgradetest.Fixture) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	exec := func(query string, args ...any) {
		if err == nil {
			_, err = tx.Exec(query, args...)
		}
	}
	for _, tn := range f.Tenants {
		exec(`INSERT INTO tenants (id, name, api_key_hash, rate_limit, rate_burst, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			tn.ID, tn.Name, tn.APIKeyHash, tn.RateLimit, tn.RateBurst, tn.CreatedAt.UnixMicro())
	}
	for _, e := range f.Endpoints {
		secrets := []map[string]any{}
		for _, s := range e.SigningSecrets {
			m := map[string]any{"secret": s.Secret}
			if !s.ExpiresAt.IsZero() {
				m["expires_at_us"] = s.ExpiresAt.UnixMicro()
			}
			secrets = append(secrets, m)
		}
		v, p := e.IngestVerifier, e.RetryPolicy
		config := map[string]any{
			"ingest_verifier": map[string]any{"Scheme": v.Scheme, "Secrets": v.Secrets, "Header": v.Header},
			"signing_secrets": secrets,
			"retry_policy": map[string]any{
				"MaxAttempts": p.MaxAttempts, "InitialInterval": int64(p.InitialInterval), "Multiplier": p.Multiplier,
				"Jitter": p.Jitter, "MaxInterval": int64(p.MaxInterval), "MaxAge": int64(p.MaxAge), "Retry4xx": p.Retry4xx,
			},
			"timeout_ns": int64(e.Timeout),
		}
		if e.Headers != nil {
			config["headers"] = e.Headers
		}
		exec(`INSERT INTO endpoints (id, tenant_id, name, url, state, disabled_reason, config, created_at, updated_at, deleted_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			e.ID, e.TenantID, e.Name, e.URL, e.State, e.DisabledReason, jsonText(config),
			e.CreatedAt.UnixMicro(), e.UpdatedAt.UnixMicro(), micros(f.DeletedAt[e.ID]))
	}
	for _, e := range f.Events {
		var token any
		if e.LeaseToken != "" {
			token = e.LeaseToken
		}
		exec(`INSERT INTO events (id, tenant_id, endpoint_id, status, attempts, next_attempt_at, next_trigger,
			lease_token, lease_expires_at, last_error, idempotency_key, content_type, headers, body_hash, size,
			created_at, delivered_at, body)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			e.ID, e.TenantID, e.EndpointID, e.Status, e.Attempts, e.NextAttemptAt.UnixMicro(), e.NextTrigger,
			token, micros(e.LeaseExpiresAt), e.LastError, e.IdempotencyKey, e.ContentType, jsonText(e.Headers),
			e.BodyHash, e.Size, e.CreatedAt.UnixMicro(), micros(e.DeliveredAt), e.Body)
	}
	for _, k := range f.Keys {
		exec(`INSERT INTO idempotency_keys (endpoint_id, key, event_id, body_hash, expires_at) VALUES (?, ?, ?, ?, ?)`,
			k.EndpointID, k.Key, k.EventID, k.BodyHash, k.ExpiresAt.UnixMicro())
	}
	for _, a := range f.Attempts {
		exec(`INSERT INTO attempts (id, event_id, endpoint_id, tenant_id, number, trigger, started_at,
			duration_ns, status_code, error_code, error, response_body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			a.ID, a.EventID, a.EndpointID, a.TenantID, a.Number, a.Trigger, a.StartedAt.UnixMicro(),
			int64(a.Duration), a.StatusCode, a.ErrorCode, a.Error, a.ResponseBody)
	}
	for _, b := range f.Breakers {
		exec(`INSERT INTO breakers (endpoint_id, status, trips, open_until, probe_until, failing_since,
			last_success_at, last_failure_at, version, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			b.EndpointID, b.Status, b.Trips, micros(b.OpenUntil), micros(b.ProbeUntil), micros(b.FailingSince),
			micros(b.LastSuccessAt), micros(b.LastFailureAt), b.Version, b.UpdatedAt.UnixMicro())
	}
	if err != nil {
		return err
	}
	return tx.Commit()
}

// jsonText is v as JSON text.
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
