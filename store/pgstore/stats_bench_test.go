package pgstore_test

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// BenchmarkEventStats measures what one /metrics scrape costs the database
// (prommetrics reads EventStats once per scrape, or once per cache period),
// on an empty table, then with KAPSEL_BENCH_EVENTS delivered events (default
// 1,000,000), then with a paused endpoint's backlog of 100,000 pending
// events on top — first as no claim has met it yet, then after claims moved
// it out of the claim index's way, as a running dispatcher does. docs/operations.md: a scrape costs the same whatever the size of the
// tables, so the three should be alike.
//
// The rows are written by one INSERT … SELECT FROM generate_series (about
// 10–20 s for 1 M rows) and vacuumed, as autovacuum would have; it runs only
// with -bench and is skipped with -short:
//
//	KAPSEL_TEST_DATABASE_URL='postgres://root@127.0.0.1:5432/kapsel_test?sslmode=disable' \
//	  go test ./store/pgstore/ -run '^$' -bench EventStats -benchtime 20x
func BenchmarkEventStats(b *testing.B) {
	if testing.Short() {
		b.Skip("seeds a million rows; not with -short")
	}
	rows := 1_000_000
	if v := os.Getenv("KAPSEL_BENCH_EVENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			b.Fatalf("KAPSEL_BENCH_EVENTS=%q: want a non-negative integer", v)
		}
		rows = n
	}
	f := benchFixture(b)
	ctx := b.Context()
	paused, err := f.s.EndpointInsert(ctx, &kapsel.EndpointInsertParams{Endpoint: &kapsel.Endpoint{
		TenantID: f.ep.TenantID, Name: "paused", URL: "https://example.com/", RetryPolicy: kapsel.DefaultRetryPolicy(),
	}, Now: f.now})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.s.EndpointSetState(ctx, &kapsel.EndpointSetStateParams{
		ID: paused.ID, TenantID: f.ep.TenantID, State: kapsel.EndpointPaused, Now: f.now,
	}); err != nil {
		b.Fatal(err)
	}
	// seed writes n events of ep with the given status, created an hour
	// before f.now and due then, with ids that sort after every earlier
	// seed's (prefix).
	seed := func(prefix string, ep *kapsel.Endpoint, n int, status kapsel.EventStatus) {
		b.Helper()
		delivered := "NULL"
		if status == kapsel.EventDelivered {
			delivered = "$4::timestamptz"
		}
		if _, err := f.s.Pool().Exec(ctx, `
			INSERT INTO events (id, tenant_id, endpoint_id, status, attempts, next_attempt_at, claimable_at,
				next_trigger, last_error, content_type, headers, body_hash, size, created_at, delivered_at, body)
			SELECT 'evt_'||$5||lpad(i::text, 20, '0'), $1, $2, $3, 1, $4, $4,
				'scheduled', '', 'application/json', '{}', '\x00', 64, $4, `+delivered+`,
				convert_to('{"seq":'||i||',"payload":"0000000000000000000000000000000000"}', 'UTF8')
			FROM generate_series(1, $6) AS i`,
			string(ep.TenantID), string(ep.ID), string(status), f.now.Add(-time.Hour), prefix, n); err != nil {
			b.Fatal(err)
		}
		if _, err := f.s.Pool().Exec(ctx, `VACUUM ANALYZE events`); err != nil {
			b.Fatal(err)
		}
	}
	run := func(name string) {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				st, err := f.s.EventStats(ctx, &kapsel.EventStatsParams{Now: f.now})
				if err != nil {
					b.Fatal(err)
				}
				if st.Count[kapsel.EventDelivering] != 0 {
					b.Fatalf("delivering %d, want 0", st.Count[kapsel.EventDelivering])
				}
			}
		})
	}
	run("events=0")
	seed("0000", f.ep, rows, kapsel.EventDelivered)
	run("events=" + strconv.Itoa(rows) + "_delivered")
	seed("0001", paused, 100_000, kapsel.EventPending)
	run("events=" + strconv.Itoa(rows) + "_delivered+100000_paused_pending")
	// A running dispatcher's claims move the paused backlog out of the
	// claim index's way (pgstore's holding): the steady state.
	for range 10 {
		if _, err := f.s.EventClaim(ctx, &kapsel.EventClaimParams{Limit: 10, LeaseDuration: time.Minute, Now: f.now}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := f.s.Pool().Exec(ctx, `VACUUM ANALYZE events`); err != nil {
		b.Fatal(err)
	}
	run("events=" + strconv.Itoa(rows) + "_delivered+100000_paused_pending_held")
}
