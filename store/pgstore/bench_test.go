package pgstore_test

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// benchBody is a 1 KiB JSON webhook body.
var benchBody = []byte(fmt.Sprintf(`{"action":"opened","payload":"%0990d"}`, 0))

// BenchmarkEventInsertMany measures the group-commit hot path: one call per
// batch, every event with its own idempotency key (as providers send), one
// committing client. rows/s is what one committer sustains at that batch
// size.
func BenchmarkEventInsertMany(b *testing.B) {
	for _, size := range []int{1, 10, 100} {
		b.Run(fmt.Sprint("batch=", size), func(b *testing.B) {
			f := benchFixture(b)
			sum := sha256.Sum256(benchBody)
			seq := 0
			b.ResetTimer()
			for b.Loop() {
				in := make([]*kapsel.EventInsertParams, size)
				for i := range in {
					seq++
					in[i] = &kapsel.EventInsertParams{
						TenantID: f.ep.TenantID, EndpointID: f.ep.ID, Body: benchBody, BodyHash: sum[:],
						ContentType: "application/json", IdempotencyKey: fmt.Sprint("delivery-", seq),
					}
				}
				if _, err := f.s.EventInsertMany(b.Context(), &kapsel.EventInsertManyParams{Events: in, Now: time.Now()}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(seq)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkClaimComplete measures the dispatcher's store round: claim 100
// due events, complete them all as delivered in one call. deliveries/s is
// the store's share of a backlog drain.
func BenchmarkClaimComplete(b *testing.B) {
	f := benchFixture(b)
	sum := sha256.Sum256(benchBody)
	const batch = 100
	fill := func(n int) {
		for n > 0 {
			in := make([]*kapsel.EventInsertParams, min(n, 500))
			for i := range in {
				in[i] = &kapsel.EventInsertParams{EndpointID: f.ep.ID, Body: benchBody, BodyHash: sum[:]}
			}
			if _, err := f.s.EventInsertMany(b.Context(), &kapsel.EventInsertManyParams{Events: in, Now: f.now}); err != nil {
				b.Fatal(err)
			}
			n -= len(in)
		}
	}
	delivered := 0
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		fill(batch)
		b.StartTimer()
		now := time.Now()
		evs, err := f.s.EventClaim(b.Context(), &kapsel.EventClaimParams{Limit: batch, LeaseDuration: time.Minute, Now: now})
		if err != nil || len(evs) != batch {
			b.Fatalf("claimed %d events, err %v", len(evs), err)
		}
		cs := make([]kapsel.EventCompletion, len(evs))
		for i, e := range evs {
			cs[i] = kapsel.EventCompletion{EventID: e.ID, LeaseToken: e.LeaseToken, Status: kapsel.EventDelivered,
				Attempt: kapsel.Attempt{Number: 1, StartedAt: now, Duration: time.Millisecond, StatusCode: 200}}
		}
		errs, err := f.s.EventComplete(b.Context(), &kapsel.EventCompleteParams{Completions: cs, Now: now})
		if err != nil {
			b.Fatal(err)
		}
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		delivered += len(evs)
	}
	b.ReportMetric(float64(delivered)/b.Elapsed().Seconds(), "deliveries/s")
}

// benchFixture is newFixture for benchmarks.
func benchFixture(b *testing.B) *fixture {
	b.Helper()
	s, url := newStoreURL(b)
	f := &fixture{s: s, url: url, now: time.Now()}
	ten, err := s.TenantInsert(b.Context(), &kapsel.TenantInsertParams{Name: "bench", APIKeyHash: []byte(b.Name()), Now: f.now})
	if err != nil {
		b.Fatal(err)
	}
	f.ep, err = s.EndpointInsert(b.Context(), &kapsel.EndpointInsertParams{Endpoint: &kapsel.Endpoint{
		TenantID: ten.ID, Name: "bench", URL: "https://example.com/", RetryPolicy: kapsel.DefaultRetryPolicy(),
	}, Now: f.now})
	if err != nil {
		b.Fatal(err)
	}
	return f
}
