package pgstore_test

import (
	"crypto/rand"
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
// committing client, each event fanned out to every endpoint of its tenant
// (1, or 10). rows/s is the events one committer sustains at that batch
// size, deliveries/s the deliveries.
func BenchmarkEventInsertMany(b *testing.B) {
	for _, fan := range []int{1, 10} {
		for _, size := range []int{1, 10, 100} {
			b.Run(fmt.Sprint("fanout=", fan, "/batch=", size), func(b *testing.B) {
				f := benchFixture(b)
				f.endpoints(b, fan-1)
				sum := sha256.Sum256(benchBody)
				seq := 0
				b.ResetTimer()
				for b.Loop() {
					in := make([]*kapsel.EventInsertParams, size)
					for i := range in {
						seq++
						in[i] = &kapsel.EventInsertParams{
							TenantID: f.ep.TenantID, SourceID: benchSource, Type: "push", Body: benchBody, BodyHash: sum[:],
							ContentType: "application/json", IdempotencyKey: fmt.Sprint("delivery-", seq),
						}
					}
					res, err := f.s.EventInsertMany(b.Context(), &kapsel.EventInsertManyParams{Events: in, Now: time.Now()})
					if err != nil {
						b.Fatal(err)
					}
					if res[0].Event.Deliveries.Total != fan {
						b.Fatalf("fanned out to %d endpoints, want %d", res[0].Event.Deliveries.Total, fan)
					}
				}
				b.ReportMetric(float64(seq)/b.Elapsed().Seconds(), "rows/s")
				b.ReportMetric(float64(seq*fan)/b.Elapsed().Seconds(), "deliveries/s")
			})
		}
	}
}

// benchSource is the source of the benchmarks' events.
const benchSource = kapsel.SourceID("src_01J00000000000000000000000")

// BenchmarkClaimComplete measures the dispatcher's store round: claim 100
// due deliveries (with their events' bodies), complete them all as
// delivered in one call. deliveries/s is the store's share of a backlog
// drain.
func BenchmarkClaimComplete(b *testing.B) {
	f := benchFixture(b)
	sum := sha256.Sum256(benchBody)
	const batch = 100
	fill := func(n int) {
		for n > 0 {
			in := make([]*kapsel.EventInsertParams, min(n, 500))
			for i := range in {
				in[i] = &kapsel.EventInsertParams{TenantID: f.ep.TenantID, Body: benchBody, BodyHash: sum[:]}
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
		ds, err := f.s.DeliveryClaim(b.Context(), &kapsel.DeliveryClaimParams{Limit: batch, LeaseDuration: time.Minute, Now: now})
		if err != nil || len(ds) != batch {
			b.Fatalf("claimed %d deliveries, err %v", len(ds), err)
		}
		cs := make([]kapsel.DeliveryCompletion, len(ds))
		for i, d := range ds {
			cs[i] = kapsel.DeliveryCompletion{DeliveryID: d.ID, LeaseToken: d.LeaseToken, Status: kapsel.DeliveryDelivered,
				Attempt: kapsel.Attempt{Number: 1, StartedAt: now, Duration: time.Millisecond, StatusCode: 200}}
		}
		errs, err := f.s.DeliveryComplete(b.Context(), &kapsel.DeliveryCompleteParams{Completions: cs, Now: now})
		if err != nil {
			b.Fatal(err)
		}
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		delivered += len(ds)
	}
	b.ReportMetric(float64(delivered)/b.Elapsed().Seconds(), "deliveries/s")
}

// BenchmarkClaimFannedOut measures the claim of one event fanned out to 50
// endpoints, with a 1 MiB body: run with -benchmem, B/op is what one claim
// allocates (its body once, since the claim reads each event's body once).
func BenchmarkClaimFannedOut(b *testing.B) {
	const fan = 50
	f := benchFixture(b)
	f.endpoints(b, fan-1)
	body := make([]byte, 1<<20)
	_, _ = rand.Read(body)
	sum := sha256.Sum256(body)
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		if _, err := f.s.EventInsertMany(b.Context(), &kapsel.EventInsertManyParams{
			Events: []*kapsel.EventInsertParams{{TenantID: f.ep.TenantID, Body: body, BodyHash: sum[:]}}, Now: f.now,
		}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		now := time.Now()
		ds, err := f.s.DeliveryClaim(b.Context(), &kapsel.DeliveryClaimParams{Limit: 128, LeaseDuration: time.Minute, Now: now})
		if err != nil || len(ds) != fan {
			b.Fatalf("claimed %d deliveries, err %v", len(ds), err)
		}
		b.StopTimer()
		cs := make([]kapsel.DeliveryCompletion, len(ds))
		for i, d := range ds {
			cs[i] = kapsel.DeliveryCompletion{DeliveryID: d.ID, LeaseToken: d.LeaseToken, Status: kapsel.DeliveryDelivered,
				Attempt: kapsel.Attempt{Number: 1, StartedAt: now, StatusCode: 200}}
		}
		if _, err := f.s.DeliveryComplete(b.Context(), &kapsel.DeliveryCompleteParams{Completions: cs, Now: now}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
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

// endpoints adds n endpoints to the fixture's tenant, subscribed to all its
// events.
func (f *fixture) endpoints(tb testing.TB, n int) {
	tb.Helper()
	for i := range n {
		if _, err := f.s.EndpointInsert(tb.Context(), &kapsel.EndpointInsertParams{Endpoint: &kapsel.Endpoint{
			TenantID: f.ep.TenantID, Name: fmt.Sprint("bench-", i), URL: "https://example.com/", RetryPolicy: kapsel.DefaultRetryPolicy(),
		}, Now: f.now}); err != nil {
			tb.Fatal(err)
		}
	}
}
