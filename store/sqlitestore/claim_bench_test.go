package sqlitestore_test

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/store/sqlitestore"
)

// BenchmarkClaimPausedBacklog measures one claim of 10 due events of an
// active endpoint while a paused endpoint has 0 or 100,000 due events
// waiting: a claim must not walk the paused backlog (docs/benchmarks.md: claim costs
// what it costs on an empty database). Each round claims the 10 events and
// gives them back due again, outside the timer. The first 20 claims, which
// move the paused backlog out of the way once, run before the timer starts;
// their total and their slowest (the longest the writer is held) are
// reported as first-20-claims-ms and slowest-first-claim-ms.
//
//	go test -run '^$' -bench BenchmarkClaimPausedBacklog -benchtime 200x ./store/sqlitestore/
func BenchmarkClaimPausedBacklog(b *testing.B) {
	for _, paused := range []int{0, 100_000} {
		b.Run(fmt.Sprintf("paused=%d", paused), func(b *testing.B) {
			ctx := b.Context()
			s, err := sqlitestore.Open(ctx, b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			ten, err := s.TenantInsert(ctx, &kapsel.TenantInsertParams{Name: "t", APIKeyHash: []byte("bench"), Now: now})
			if err != nil {
				b.Fatal(err)
			}
			endpoint := func(state kapsel.EndpointState) *kapsel.Endpoint {
				ep, err := s.EndpointInsert(ctx, &kapsel.EndpointInsertParams{Endpoint: &kapsel.Endpoint{
					TenantID: ten.ID, Name: "e", URL: "https://example.com/", State: state,
					RetryPolicy: kapsel.DefaultRetryPolicy(), Timeout: kapsel.DefaultAttemptTimeout,
				}, Now: now})
				if err != nil {
					b.Fatal(err)
				}
				return ep
			}
			insert := func(ep *kapsel.Endpoint, n int, at time.Time) {
				for n > 0 {
					in := make([]*kapsel.EventInsertParams, min(n, 1000))
					for i := range in {
						body := []byte(fmt.Sprintf(`{"i":%d}`, i))
						sum := sha256.Sum256(body)
						in[i] = &kapsel.EventInsertParams{EndpointID: ep.ID, Body: body, BodyHash: sum[:], ContentType: "application/json"}
					}
					if _, err := s.EventInsertMany(ctx, &kapsel.EventInsertManyParams{Events: in, Now: at}); err != nil {
						b.Fatal(err)
					}
					n -= len(in)
				}
			}
			// The paused backlog is older, so it sits in front of the
			// active endpoint's events in claim order.
			insert(endpoint(kapsel.EndpointPaused), paused, now.Add(-time.Hour))
			insert(endpoint(kapsel.EndpointActive), 10, now)
			claimAt := now.Add(time.Minute)
			round := func() {
				evs, err := s.EventClaim(ctx, &kapsel.EventClaimParams{Limit: 10, LeaseDuration: time.Minute, Now: claimAt})
				if err != nil {
					b.Fatal(err)
				}
				if len(evs) != 10 {
					b.Fatalf("claimed %d events, want the active endpoint's 10", len(evs))
				}
				b.StopTimer()
				rel := make([]kapsel.EventRelease, len(evs))
				for i, e := range evs {
					rel[i] = kapsel.EventRelease{EventID: e.ID, LeaseToken: e.LeaseToken, NextAttemptAt: now}
				}
				if _, err := s.EventRelease(ctx, &kapsel.EventReleaseParams{Releases: rel, Now: claimAt}); err != nil {
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
