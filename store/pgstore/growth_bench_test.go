package pgstore_test

import (
	"crypto/sha256"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/store/pgstore"
)

// BenchmarkGrowth measures SPEC §9's growth figure: with 10 million
// delivered events in the tables, claim, ingest and a /metrics read cost
// what they cost on an empty database (within 20 %). It runs the same store
// round on two databases, interleaved so that the machine's load hits both
// alike: an empty one (a fresh schema in KAPSEL_TEST_DATABASE_URL's
// database) and KAPSEL_GROWTH_DATABASE_URL, a migrated database seeded
// with history (store/pgstore/testdata/growth_seed.sql writes 10 million
// delivered events of another tenant with their deliveries, attempts and
// the last day's idempotency keys, by generate_series, in ~10 minutes).
// Each round, on each database: one EventInsertMany of 64 events with
// their idempotency keys (ingest's group commit), one DeliveryClaim of
// those 64 deliveries, one DeliveryComplete of them, one DeliveryStats
// (what a /metrics scrape reads). It reports each operation's median in
// ms per database and the full ÷ empty ratio. Skipped without
// KAPSEL_GROWTH_DATABASE_URL:
//
//	psql "$KAPSEL_GROWTH_DATABASE_URL" -f store/pgstore/testdata/growth_seed.sql   # once, after kapseld migrate up
//	KAPSEL_TEST_DATABASE_URL='postgres://root@127.0.0.1:5432/kapsel_test?sslmode=disable' \
//	KAPSEL_GROWTH_DATABASE_URL='postgres://root@127.0.0.1:5432/kapsel_growth?sslmode=disable' \
//	  go test ./store/pgstore/ -run '^$' -bench Growth -benchtime 200x
func BenchmarkGrowth(b *testing.B) {
	full := os.Getenv("KAPSEL_GROWTH_DATABASE_URL")
	if full == "" {
		b.Skip("KAPSEL_GROWTH_DATABASE_URL is not set (a database seeded by testdata/growth_seed.sql)")
	}
	empty := benchFixture(b)
	fs, err := pgstore.Open(b.Context(), full, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(fs.Close)
	var seeded int64
	if err := fs.Pool().QueryRow(b.Context(), `SELECT count(*) FROM deliveries WHERE status = 'delivered'`).Scan(&seeded); err != nil {
		b.Fatal(err)
	}
	if seeded < 1_000_000 {
		b.Fatalf("KAPSEL_GROWTH_DATABASE_URL holds %d delivered deliveries: seed it with testdata/growth_seed.sql", seeded)
	}
	b.Logf("full database: %d delivered deliveries", seeded)
	grown := &fixture{s: fs, now: time.Now()}
	ten, err := fs.TenantInsert(b.Context(), &kapsel.TenantInsertParams{Name: "growth", APIKeyHash: []byte(time.Now().String()), Now: grown.now})
	if err != nil {
		b.Fatal(err)
	}
	if grown.ep, err = fs.EndpointInsert(b.Context(), &kapsel.EndpointInsertParams{Endpoint: &kapsel.Endpoint{
		TenantID: ten.ID, Name: "growth", URL: "https://example.com/", RetryPolicy: kapsel.DefaultRetryPolicy(),
	}, Now: grown.now}); err != nil {
		b.Fatal(err)
	}

	const batch = 64
	ops := []string{"ingest", "claim", "complete", "stats"}
	times := map[string][]time.Duration{} // "empty/ingest" → durations
	sum := sha256.Sum256(benchBody)
	seq := 0
	round := func(name string, f *fixture) {
		ctx := b.Context()
		in := make([]*kapsel.EventInsertParams, batch)
		for i := range in {
			seq++
			in[i] = &kapsel.EventInsertParams{
				TenantID: f.ep.TenantID, SourceID: benchSource, Type: "push", Body: benchBody, BodyHash: sum[:],
				ContentType: "application/json", IdempotencyKey: fmt.Sprintf("growth-%d-%d", time.Now().UnixNano(), seq),
			}
		}
		t0 := time.Now()
		if _, err := f.s.EventInsertMany(ctx, &kapsel.EventInsertManyParams{Events: in, Now: t0}); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		ds, err := f.s.DeliveryClaim(ctx, &kapsel.DeliveryClaimParams{Limit: batch, LeaseDuration: time.Minute, Now: t1})
		if err != nil || len(ds) != batch {
			b.Fatalf("%s: claimed %d deliveries, want %d (err %v)", name, len(ds), batch, err)
		}
		t2 := time.Now()
		cs := make([]kapsel.DeliveryCompletion, len(ds))
		for i, d := range ds {
			cs[i] = kapsel.DeliveryCompletion{DeliveryID: d.ID, LeaseToken: d.LeaseToken, Status: kapsel.DeliveryDelivered,
				Attempt: kapsel.Attempt{Number: 1, StartedAt: t1, Duration: time.Millisecond, StatusCode: 200}}
		}
		errs, err := f.s.DeliveryComplete(ctx, &kapsel.DeliveryCompleteParams{Completions: cs, Now: t2})
		if err != nil {
			b.Fatal(err)
		}
		for _, err := range errs {
			if err != nil {
				b.Fatalf("%s: %v", name, err)
			}
		}
		t3 := time.Now()
		if _, err := f.s.DeliveryStats(ctx, &kapsel.DeliveryStatsParams{Now: t3}); err != nil {
			b.Fatal(err)
		}
		t4 := time.Now()
		for i, d := range []time.Duration{t1.Sub(t0), t2.Sub(t1), t3.Sub(t2), t4.Sub(t3)} {
			times[name+"/"+ops[i]] = append(times[name+"/"+ops[i]], d)
		}
	}
	b.ResetTimer()
	i := 0
	for b.Loop() {
		// Alternate which goes first, so neither always gets the warmer
		// cache or the quieter moment.
		if i%2 == 0 {
			round("empty", empty)
			round("full", grown)
		} else {
			round("full", grown)
			round("empty", empty)
		}
		i++
	}
	median := func(ds []time.Duration) float64 {
		s := slices.Clone(ds)
		slices.Sort(s)
		return float64(s[len(s)/2]) / float64(time.Millisecond)
	}
	for _, op := range ops {
		e, f := median(times["empty/"+op]), median(times["full/"+op])
		b.ReportMetric(e, "empty_"+op+"_ms")
		b.ReportMetric(f, "full_"+op+"_ms")
		b.ReportMetric(f/e, "full/empty_"+op)
	}
}
