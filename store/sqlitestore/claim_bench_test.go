package sqlitestore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/store/sqlitestore"
)

// openBench opens a store in a fresh directory for a benchmark.
func openBench(b *testing.B) *sqlitestore.Store {
	s, err := sqlitestore.Open(b.Context(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// BenchmarkEventInsertMany measures group-committed ingest: b.N batches of
// 100 events of 512 bytes, one transaction and one fsync each, fanned out
// to 1 or 10 endpoints. deliveries/s counts the deliveries created.
func BenchmarkEventInsertMany(b *testing.B) {
	for _, endpoints := range []int{1, 10} {
		b.Run(fmt.Sprintf("endpoints=%d", endpoints), func(b *testing.B) {
			s := openBench(b)
			src := seed(b, s, endpoints, 0).source
			in := make([]*kapsel.EventInsertParams, 100)
			for i := range in {
				in[i] = &kapsel.EventInsertParams{TenantID: src.TenantID, SourceID: src.ID, Body: make([]byte, 512), ContentType: "application/json"}
			}
			for b.Loop() {
				if _, err := s.EventInsertMany(b.Context(), &kapsel.EventInsertManyParams{Events: in, Now: base}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(in))/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(b.N*len(in)*endpoints)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

// BenchmarkClaimComplete measures the dispatcher's loop over a backlog:
// claim 50 deliveries, complete them as delivered.
func BenchmarkClaimComplete(b *testing.B) {
	s := openBench(b)
	seed(b, s, 1, 20000)
	done := 0
	for b.Loop() {
		ds, err := s.DeliveryClaim(b.Context(), &kapsel.DeliveryClaimParams{Limit: 50, LeaseDuration: time.Minute, Now: base})
		if err != nil || len(ds) == 0 {
			b.Fatalf("claim: %v, %d deliveries (backlog too small for b.N)", err, len(ds))
		}
		cs := make([]kapsel.DeliveryCompletion, len(ds))
		for i, d := range ds {
			cs[i] = kapsel.DeliveryCompletion{DeliveryID: d.ID, LeaseToken: d.LeaseToken, Status: kapsel.DeliveryDelivered,
				Attempt: kapsel.Attempt{StatusCode: 200, StartedAt: base}}
		}
		if _, err := s.DeliveryComplete(b.Context(), &kapsel.DeliveryCompleteParams{Completions: cs, Now: base}); err != nil {
			b.Fatal(err)
		}
		done += len(ds)
	}
	b.ReportMetric(float64(done)/b.Elapsed().Seconds(), "deliveries/s")
}

// BenchmarkClaimPausedBacklog measures one claim of 10 due deliveries of an
// active endpoint while a paused endpoint has 0 or 100,000 due deliveries
// waiting: a claim must not walk the paused backlog (docs/benchmarks.md:
// claim costs what it costs on an empty database). Each round claims the 10
// deliveries and gives them back due again, outside the timer. The first 20
// claims, which move the paused backlog out of the way once, run before the
// timer starts; their total and their slowest (the longest the writer is
// held) are reported as first-20-claims-ms and slowest-first-claim-ms.
//
//	go test -run '^$' -bench BenchmarkClaimPausedBacklog -benchtime 200x ./store/sqlitestore/
func BenchmarkClaimPausedBacklog(b *testing.B) {
	for _, paused := range []int{0, 100_000} {
		b.Run(fmt.Sprintf("paused=%d", paused), func(b *testing.B) {
			ctx := b.Context()
			s := openBench(b)
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			ten, err := s.TenantInsert(ctx, &kapsel.TenantInsertParams{Name: "t", APIKeyHash: []byte("bench"), Now: now})
			if err != nil {
				b.Fatal(err)
			}
			// One source per endpoint, each endpoint subscribed to its own.
			pair := func(state kapsel.EndpointState) *kapsel.Source {
				src, err := s.SourceInsert(ctx, &kapsel.SourceInsertParams{Source: &kapsel.Source{TenantID: ten.ID, Name: "s"}, Now: now})
				if err != nil {
					b.Fatal(err)
				}
				_, err = s.EndpointInsert(ctx, &kapsel.EndpointInsertParams{Endpoint: &kapsel.Endpoint{
					TenantID: ten.ID, Name: "e", URL: "https://example.com/", State: state,
					RetryPolicy: kapsel.DefaultRetryPolicy(), Timeout: kapsel.DefaultAttemptTimeout,
					Subscription: kapsel.Subscription{SourceIDs: []kapsel.SourceID{src.ID}},
				}, Now: now})
				if err != nil {
					b.Fatal(err)
				}
				return src
			}
			// The paused backlog is older, so it sits in front of the
			// active endpoint's deliveries in claim order.
			insert(b, s, pair(kapsel.EndpointPaused), paused, 7, now.Add(-time.Hour))
			insert(b, s, pair(kapsel.EndpointActive), 10, 7, now)
			claimAt := now.Add(time.Minute)
			round := func() {
				ds, err := s.DeliveryClaim(ctx, &kapsel.DeliveryClaimParams{Limit: 10, LeaseDuration: time.Minute, Now: claimAt})
				if err != nil {
					b.Fatal(err)
				}
				if len(ds) != 10 {
					b.Fatalf("claimed %d deliveries, want the active endpoint's 10", len(ds))
				}
				b.StopTimer()
				rel := make([]kapsel.DeliveryRelease, len(ds))
				for i, d := range ds {
					rel[i] = kapsel.DeliveryRelease{DeliveryID: d.ID, LeaseToken: d.LeaseToken, NextAttemptAt: now}
				}
				if _, err := s.DeliveryRelease(ctx, &kapsel.DeliveryReleaseParams{Releases: rel, Now: claimAt}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			var first, slowest time.Duration
			for range 20 {
				start := time.Now()
				round()
				d := time.Since(start)
				first, slowest = first+d, max(slowest, d)
			}
			b.ResetTimer()
			for range b.N {
				round()
			}
			b.ReportMetric(float64(first.Microseconds())/1000, "first-20-claims-ms")
			b.ReportMetric(float64(slowest.Microseconds())/1000, "slowest-first-claim-ms")
		})
	}
}
