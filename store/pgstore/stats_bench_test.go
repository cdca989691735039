package pgstore_test

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// BenchmarkDeliveryStats measures what one /metrics scrape costs the
// database (prommetrics reads DeliveryStats once per scrape, or once per
// cache period), on an empty table, then with KAPSEL_BENCH_EVENTS delivered
// deliveries (default 1,000,000), then with a paused endpoint's backlog of
// 100,000 pending deliveries on top — first as no claim has met it yet,
// then after claims moved it out of the claim index's way, as a running
// dispatcher does. docs/operations.md: a scrape costs the same whatever the
// size of the tables, so the three should be alike. Stats read deliveries
// only, so their events are not written.
//
// The rows are written by one INSERT … SELECT FROM generate_series (about
// 10–20 s for 1 M rows) and vacuumed, as autovacuum would have; it runs only
// with -bench and is skipped with -short:
//
//	KAPSEL_TEST_DATABASE_URL='postgres://root@127.0.0.1:5432/kapsel_test?sslmode=disable' \
//	  go test ./store/pgstore/ -run '^$' -bench DeliveryStats -benchtime 20x
func BenchmarkDeliveryStats(b *testing.B) {
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
	// seed writes n deliveries to ep with the given status, created an hour
	// before f.now and due then, with ids that sort after every earlier
	// seed's (prefix).
	seed := func(prefix string, ep *kapsel.Endpoint, n int, status kapsel.DeliveryStatus) {
		b.Helper()
		delivered := "NULL"
		if status == kapsel.DeliveryDelivered {
			delivered = "$4::timestamptz"
		}
		if _, err := f.s.Pool().Exec(ctx, `
			INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, status, attempts, next_attempt_at, claimable_at,
				next_trigger, last_error, created_at, delivered_at)
			SELECT 'dlv_'||$5||lpad(i::text, 20, '0'), $1, 'evt_'||$5||lpad(i::text, 20, '0'), $2, $3, 1, $4, $4,
				'scheduled', '', $4, `+delivered+`
			FROM generate_series(1, $6) AS i`,
			string(ep.TenantID), string(ep.ID), string(status), f.now.Add(-time.Hour), prefix, n); err != nil {
			b.Fatal(err)
		}
		if _, err := f.s.Pool().Exec(ctx, `VACUUM ANALYZE deliveries`); err != nil {
			b.Fatal(err)
		}
	}
	run := func(name string) {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				st, err := f.s.DeliveryStats(ctx, &kapsel.DeliveryStatsParams{Now: f.now})
				if err != nil {
					b.Fatal(err)
				}
				if st.Count[kapsel.DeliveryDelivering] != 0 {
					b.Fatalf("delivering %d, want 0", st.Count[kapsel.DeliveryDelivering])
				}
			}
		})
	}
	run("deliveries=0")
	seed("0000", f.ep, rows, kapsel.DeliveryDelivered)
	run("deliveries=" + strconv.Itoa(rows) + "_delivered")
	seed("0001", paused, 100_000, kapsel.DeliveryPending)
	run("deliveries=" + strconv.Itoa(rows) + "_delivered+100000_paused_pending")
	// A running dispatcher's claims move the paused backlog out of the
	// claim index's way (pgstore's holding): the steady state.
	for range 10 {
		if _, err := f.s.DeliveryClaim(ctx, &kapsel.DeliveryClaimParams{Limit: 10, LeaseDuration: time.Minute, Now: f.now}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := f.s.Pool().Exec(ctx, `VACUUM ANALYZE deliveries`); err != nil {
		b.Fatal(err)
	}
	run("deliveries=" + strconv.Itoa(rows) + "_delivered+100000_paused_pending_held")
}
