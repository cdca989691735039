package sqlitestore

import (
	"database/sql"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kapsel-dev/kapsel/internal/upgradetest"
)

// releasedVersion is the schema version of the last release (0.1).
const releasedVersion = 1

// devVersion is the last schema version before migration 0005 (0.2's
// development: holds, event types, channels, subscription filters).
const devVersion = 4

// TestUpgradeFromReleasedSchema builds a database at an older version,
// fills it with upgradetest's rows in every state using that schema's SQL,
// opens it as kapseld does (which migrates it to 0.2), and checks through
// the store what the migrations made of it (upgradetest.Check: a source
// per 0.1 endpoint and the endpoint subscribed to it, a delivery per event,
// attempts and idempotency keys moved over, the queue worked on migrated
// rows, new events of a legacy source fanned out to its endpoint), then
// what only SQLite shows: the dropped columns are gone, and the holds moved
// to the deliveries.
//
// "from 1" is 0.1's schema. "from 4" first migrates to the schema before
// 0005 and adds what it could hold besides (held events, event types and
// channels, endpoint filters).
func TestUpgradeFromReleasedSchema(t *testing.T) {
	t.Parallel()
	for _, from := range []int{releasedVersion, devVersion} {
		t.Run("from "+string(rune('0'+from)), func(t *testing.T) {
			t.Parallel()
			f := upgradetest.New()
			if from == devVersion {
				f.WithRouting()
			}
			dir := t.TempDir()
			db := openRaw(t, dir)
			if err := migrateTo(t.Context(), db, func() int64 { return 0 }, releasedVersion); err != nil {
				t.Fatalf("migrating to version %d: %v", releasedVersion, err)
			}
			if err := writeReleased(db, f); err != nil {
				t.Fatalf("writing the fixture at version %d: %v", releasedVersion, err)
			}
			if from == devVersion {
				if err := migrateTo(t.Context(), db, func() int64 { return 0 }, devVersion); err != nil {
					t.Fatalf("migrating to version %d: %v", devVersion, err)
				}
				if err := writeDev(db, f); err != nil {
					t.Fatalf("writing the fixture at version %d: %v", devVersion, err)
				}
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}

			s, err := Open(t.Context(), dir)
			if err != nil {
				t.Fatalf("upgrading: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			if v, err := schemaVersion(t.Context(), s.r); err != nil || v != LatestVersion() {
				t.Fatalf("schema version after Open = %d, %v; want %d", v, err, LatestVersion())
			}
			checkUpgradedSchema(t, s)
			if from == devVersion {
				checkUpgradedHolds(t, s, f)
			}
			upgradetest.Check(t, s, f)
		})
	}
}

// TestUpgradeFailureKeepsOldSchema checks that migration 0005 is one
// transaction: when it fails half-way (here: a table it creates after
// rewriting sources and endpoints exists already), the database stays at
// version 4 with its events, queue state and endpoint verifiers untouched,
// and Open says why.
func TestUpgradeFailureKeepsOldSchema(t *testing.T) {
	t.Parallel()
	f := upgradetest.New()
	dir := t.TempDir()
	db := openRaw(t, dir)
	if err := migrateTo(t.Context(), db, func() int64 { return 0 }, releasedVersion); err != nil {
		t.Fatal(err)
	}
	if err := writeReleased(db, f); err != nil {
		t.Fatal(err)
	}
	if err := migrateTo(t.Context(), db, func() int64 { return 0 }, devVersion); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE deliveries (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(t.Context(), dir); err == nil || !strings.Contains(err.Error(), "migration 5") {
		if s != nil {
			_ = s.Close()
		}
		t.Fatalf("Open with a failing migration 5 = %v, want its error", err)
	}

	db = openRaw(t, dir)
	if v, err := schemaVersion(t.Context(), db); err != nil || v != devVersion {
		t.Fatalf("schema version after the failed upgrade = %d, %v; want %d", v, err, devVersion)
	}
	for _, c := range []struct {
		what, query string
		want        int
	}{
		{"events with their queue state", `SELECT count(*) FROM events WHERE endpoint_id <> '' AND status <> ''`, len(f.Events)},
		{"endpoints with their verifier and no source filter", `SELECT count(*) FROM endpoints
			WHERE json_extract(config, '$.ingest_verifier') IS NOT NULL AND source_ids = '[]'`, len(f.Endpoints)},
		{"idempotency keys by endpoint", `SELECT count(*) FROM idempotency_keys WHERE endpoint_id <> ''`, len(f.Keys)},
		{"sources tables", `SELECT count(*) FROM sqlite_schema WHERE name = 'sources'`, 0},
		{"triggers on events", `SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND name LIKE 'events_%'`, 4},
	} {
		var n int
		if err := db.QueryRow(c.query).Scan(&n); err != nil || n != c.want {
			t.Errorf("%s after the failed upgrade: %d, %v; want %d", c.what, n, err, c.want)
		}
	}
}

// openRaw opens the database file in dir without migrating, on one
// connection that begins IMMEDIATE transactions, as the writer does.
func openRaw(t *testing.T, dir string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, FileName)+"?_foreign_keys=1&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// checkUpgradedSchema checks that the columns 0005 moves are gone from
// events and idempotency_keys, that no endpoint config document holds a
// verifier any more, and that the foreign keys and the file are sound
// after the table rebuilds.
func checkUpgradedSchema(t *testing.T, s *Store) {
	t.Helper()
	ctx := t.Context()
	columns := func(table string) []string {
		rows, err := s.r.QueryContext(ctx, `SELECT name FROM pragma_table_info(?)`, table)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var c string
			if err := rows.Scan(&c); err != nil {
				t.Fatal(err)
			}
			out = append(out, c)
		}
		return out
	}
	for table, gone := range map[string][]string{
		"events": {"endpoint_id", "status", "attempts", "next_attempt_at", "next_trigger", "lease_token",
			"lease_expires_at", "last_error", "delivered_at", "held_until"},
		"idempotency_keys": {"endpoint_id"},
	} {
		have := columns(table)
		for _, c := range gone {
			if slices.Contains(have, c) {
				t.Errorf("%s still has column %s after the upgrade: %v", table, c, have)
			}
		}
	}
	for what, query := range map[string]string{
		"endpoints holding a verifier":  `SELECT count(*) FROM endpoints WHERE json_extract(config, '$.ingest_verifier') IS NOT NULL`,
		"foreign key violations":        `SELECT count(*) FROM pragma_foreign_key_check`,
		"triggers naming events":        `SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND sql LIKE '%UPDATE events%'`,
		"triggers releasing deliveries": `SELECT 4 - count(*) FROM sqlite_schema WHERE type = 'trigger' AND name LIKE 'deliveries_release_%'`,
	} {
		var n int
		if err := s.r.QueryRowContext(ctx, query).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s after the upgrade: %d, %v", what, n, err)
		}
	}
	var integrity string
	if err := s.r.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&integrity); err != nil || integrity != "ok" {
		t.Errorf("integrity check after the upgrade: %q, %v", integrity, err)
	}
}

// checkUpgradedHolds checks that the holds of schema 4's events are on
// their deliveries, except for the deliveries the upgrade failed (a deleted
// endpoint's): the claim behaves the same whether they moved or not (it
// would hold them again), so this reads the column.
func checkUpgradedHolds(t *testing.T, s *Store, f *upgradetest.Fixture) {
	t.Helper()
	for id, until := range f.Held {
		want := sql.NullInt64{Int64: 9223372036854775807, Valid: true} // forever
		if !until.IsZero() {
			want.Int64 = until.UnixMicro()
		}
		var status string
		var got sql.NullInt64
		err := s.r.QueryRowContext(t.Context(), `SELECT status, held_until FROM deliveries WHERE event_id = ?`, id).Scan(&status, &got)
		if status == "failed" {
			want = sql.NullInt64{}
		}
		if err != nil || got != want {
			t.Fatalf("held_until of the %s delivery of event %s = %v, %v; want %v", status, id, got, err, want)
		}
	}
}

// writeReleased writes the fixture's rows in the SQL of schema version 1,
// in one transaction. f.Held, types, channels and filters do not apply:
// version 1 has none of them (writeDev adds them).
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
			// 0.1 wrote kapsel.VerifierConfig with Go's default field names.
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

// writeDev adds, to a database written by writeReleased and migrated to
// version 4, what versions 2 to 4 hold besides: the holds of f.Held, the
// events' types and channels, the endpoints' subscription filters.
func writeDev(db *sql.DB, f *upgradetest.Fixture) error {
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
	for id, until := range f.Held {
		v := int64(9223372036854775807) // forever
		if !until.IsZero() {
			v = until.UnixMicro()
		}
		exec(`UPDATE events SET held_until = ? WHERE id = ?`, v, id)
	}
	for _, e := range f.Events {
		exec(`UPDATE events SET type = ?, channels = ? WHERE id = ?`, e.Type, encodeList(e.Channels), e.ID)
	}
	for _, e := range f.Endpoints {
		sub := e.Subscription
		exec(`UPDATE endpoints SET event_types = ?, source_ids = ?, channels = ? WHERE id = ?`,
			encodeList(sub.EventTypes), encodeList(sub.SourceIDs), encodeList(sub.Channels), e.ID)
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
