package pgstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/internal/testdb"
	"github.com/kapsel-dev/kapsel/store/pgstore"
)

// appliedVersions returns the rows of kapsel_schema_migrations.
func appliedVersions(t *testing.T, s *pgstore.Store) []int {
	t.Helper()
	rows, err := s.Pool().Query(t.Context(), `SELECT version FROM kapsel_schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatalf("reading kapsel_schema_migrations: %v", err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func requireVersions(t *testing.T, s *pgstore.Store) {
	t.Helper()
	got := appliedVersions(t, s)
	if len(got) != pgstore.LatestSchemaVersion() {
		t.Fatalf("applied versions %v, want 1…%d once each", got, pgstore.LatestSchemaVersion())
	}
	for i, v := range got {
		if v != i+1 {
			t.Fatalf("applied versions %v, want 1…%d once each", got, pgstore.LatestSchemaVersion())
		}
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	s := newStore(t) // migrated once
	ctx := t.Context()
	ten, err := s.TenantInsert(ctx, &kapsel.TenantInsertParams{Name: "kept", APIKeyHash: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("Migrate again: %v", err)
		}
	}
	requireVersions(t, s)
	if _, err := s.TenantGet(ctx, &kapsel.TenantGetParams{ID: ten.ID}); err != nil {
		t.Fatalf("data written before the re-migration: %v", err)
	}
}

func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	url := testdb.New(t)
	// Separate pools, as separate kapseld processes would have.
	stores := []*pgstore.Store{openStore(t, url), openStore(t, url), openStore(t, url)}
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, s := range stores {
		wg.Go(func() {
			<-start
			errs[i] = s.Migrate(t.Context())
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Migrate %d: %v", i, err)
		}
	}
	requireVersions(t, stores[0])
}

func TestSchemaVersionAndPing(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openStore(t, testdb.New(t))

	cur, latest, err := s.SchemaVersion(ctx)
	if err != nil || cur != 0 || latest != pgstore.LatestSchemaVersion() {
		t.Fatalf("SchemaVersion of an empty schema = %d, %d, %v; want 0, %d, nil", cur, latest, err, pgstore.LatestSchemaVersion())
	}
	requireBehind(t, s.Ping(ctx), 0)

	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	cur, latest, err = s.SchemaVersion(ctx)
	if err != nil || cur != latest {
		t.Fatalf("SchemaVersion after Migrate = %d, %d, %v; want equal", cur, latest, err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping of a current schema: %v", err)
	}

	// A database left one version behind (a newer binary's first start).
	if _, err := s.Pool().Exec(ctx, `DELETE FROM kapsel_schema_migrations WHERE version = $1`, latest); err != nil {
		t.Fatal(err)
	}
	requireBehind(t, s.Ping(ctx), latest-1)

	// A schema ahead of this binary (rolling upgrade) stays usable.
	if _, err := s.Pool().Exec(ctx, `INSERT INTO kapsel_schema_migrations (version, name) VALUES ($1, 'a'), ($2, 'b')`,
		latest, latest+1); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping of a schema ahead: %v", err)
	}
}

func requireBehind(t *testing.T, err error, current int) {
	t.Helper()
	var sv *pgstore.SchemaVersionError
	if !errors.As(err, &sv) || sv.Current != current || sv.Latest != pgstore.LatestSchemaVersion() {
		t.Fatalf("Ping = %v, want a SchemaVersionError{%d, %d}", err, current, pgstore.LatestSchemaVersion())
	}
	if !errors.Is(err, pgstore.ErrSchemaBehind) || !errors.Is(err, kapsel.ErrUnavailable) {
		t.Fatalf("Ping = %v, want it to wrap ErrSchemaBehind and kapsel.ErrUnavailable", err)
	}
}

func TestPingUnreachable(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1; the pool connects lazily, so Open succeeds.
	s, err := pgstore.Open(t.Context(), "postgres://root@127.0.0.1:1/kapsel?sslmode=disable&connect_timeout=2", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	err = s.Ping(ctx)
	if !errors.Is(err, kapsel.ErrUnavailable) || errors.Is(err, pgstore.ErrSchemaBehind) {
		t.Fatalf("Ping of an unreachable server = %v, want ErrUnavailable and not ErrSchemaBehind", err)
	}
	_, err = s.EventInsertMany(ctx, &kapsel.EventInsertManyParams{
		Events: []*kapsel.EventInsertParams{{TenantID: "ten_x", Body: []byte("b")}},
	})
	if !errors.Is(err, kapsel.ErrUnavailable) {
		t.Fatalf("EventInsertMany on an unreachable server = %v, want ErrUnavailable", err)
	}
}

// TestDeliveriesVacuumSettings: migration 9 gives deliveries their own
// autovacuum thresholds (docs/operations.md, "Vacuuming deliveries").
func TestDeliveriesVacuumSettings(t *testing.T) {
	t.Parallel()
	s := openStore(t, testdb.New(t))
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	var opts []string
	if err := s.Pool().QueryRow(t.Context(),
		`SELECT coalesce(reloptions, '{}') FROM pg_class WHERE oid = 'deliveries'::regclass`).Scan(&opts); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"autovacuum_vacuum_scale_factor=0": true, "autovacuum_vacuum_threshold=50000": true, "vacuum_index_cleanup=on": true}
	for _, o := range opts {
		delete(want, o)
	}
	if len(want) != 0 {
		t.Fatalf("deliveries' reloptions %v lack %v", opts, want)
	}
}
