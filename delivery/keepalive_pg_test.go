package delivery_test

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/delivery"
	"github.com/kapsel-dev/kapsel/internal/testdb"
	"github.com/kapsel-dev/kapsel/kapseltest"
)

// TestKeepAliveOnPostgres: two dispatchers, each with its own pool (two
// kapseld processes), on one Postgres, in real time with a short lease.
// Dispatcher A claims two deliveries whose destinations hang. While one
// attempt runs for more than three leases, B polls the same store and never
// takes it; A records it. Then A crashes (its store calls fail from then
// on) with the other attempt in flight: B re-claims that delivery once the
// lease A last extended ends — at most a lease and a poll after the crash —
// and makes it. KAPSEL_TEST_LEASE_DURATION sets the lease (2.5 s by
// default; docs/delivery.md quotes a run with the default 30 s).
func TestKeepAliveOnPostgres(t *testing.T) {
	t.Parallel()
	lease := 2500 * time.Millisecond
	if v := os.Getenv("KAPSEL_TEST_LEASE_DURATION"); v != "" {
		var err error
		if lease, err = time.ParseDuration(v); err != nil {
			t.Fatalf("KAPSEL_TEST_LEASE_DURATION: %v", err)
		}
	}
	const poll = 250 * time.Millisecond
	url := testdb.New(t)
	sA, sB := openPG(t, url, true), openPG(t, url, false)
	secret := newSecret(t)
	destLong, destCrash := kapseltest.NewDestination(t), kapseltest.NewDestination(t)
	destLong.Respond(kapseltest.Response{Hang: true})
	destCrash.Respond(kapseltest.Response{Hang: true})
	epLong := pgEndpoint(t, sA, destLong, secret)
	epCrash := pgEndpointOf(t, sA, epLong.TenantID, destCrash, secret)
	for _, ep := range []*kapsel.Endpoint{epLong, epCrash} {
		// Attempts may take as long as the test needs them to.
		if _, err := sA.EndpointUpdate(context.Background(), &kapsel.EndpointUpdateParams{
			ID: ep.ID, Now: time.Now(), Update: func(e *kapsel.Endpoint) error { e.Timeout = kapsel.MaxAttemptTimeout; return nil },
		}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := sA.EventInsertMany(context.Background(), &kapsel.EventInsertManyParams{Now: time.Now(), Events: []*kapsel.EventInsertParams{
		{TenantID: epLong.TenantID, EndpointIDs: []kapsel.EndpointID{epLong.ID}, Body: []byte(`{"n":1}`)},
		{TenantID: epLong.TenantID, EndpointIDs: []kapsel.EndpointID{epCrash.ID}, Body: []byte(`{"n":2}`)},
	}})
	if err != nil || res[0].Err != nil || res[1].Err != nil {
		t.Fatalf("insert: %v %+v", err, res)
	}
	deliveryOf := func(ev kapsel.EventID) *kapsel.Delivery {
		t.Helper()
		dls, err := sB.DeliveryList(context.Background(), &kapsel.DeliveryListParams{EventID: ev})
		if err != nil || len(dls) != 1 {
			t.Fatalf("deliveries of %s: %v, %d", ev, err, len(dls))
		}
		return dls[0]
	}
	long, crashed := deliveryOf(res[0].Event.ID), deliveryOf(res[1].Event.ID)

	cfg := delivery.Config{
		LeaseDuration: lease,
		PollInterval:  poll,
		AllowedCIDRs:  kapseltest.Loopback,
		Logger:        slog.New(slog.DiscardHandler),
	}
	crash := &crashStore{testStore: sA}
	cfgA := cfg
	a := startDoomed(t, crash, &cfgA)
	a.Wake()
	destLong.WaitForRequests(t, 1, waitLong)
	destCrash.WaitForRequests(t, 1, waitLong)
	claimed := deliveryOf(long.EventID)
	cfgB := cfg
	startDispatcher(t, sB, &cfgB)

	// The long attempt runs for more than three leases; the lease keeps
	// moving, and B, polling all along, never takes the delivery.
	start := time.Now()
	var latest time.Time
	tick := time.NewTicker(poll / 2)
	for time.Since(start) < 3*lease+lease/4 {
		<-tick.C
		got := deliveryOf(long.EventID)
		if got.Status != kapsel.DeliveryDelivering || got.LeaseToken != claimed.LeaseToken {
			t.Fatalf("after %v the long attempt's delivery is %s under lease %q, want A's", time.Since(start), got.Status, got.LeaseToken)
		}
		if n := destLong.Count(); n != 1 {
			t.Fatalf("after %v the destination got %d requests", time.Since(start), n)
		}
		latest = got.LeaseExpiresAt
	}
	tick.Stop()
	if latest.Sub(claimed.LeaseExpiresAt) < 2*lease {
		t.Fatalf("the lease moved from %v to %v over %v", claimed.LeaseExpiresAt, latest, time.Since(start))
	}
	destLong.Release()
	got := kapseltest.RequireDelivered(t, sB, long.EventID, long.EndpointID, waitLong)
	if got.Attempts != 1 || destLong.Count() != 1 {
		t.Fatalf("long attempt: %d attempt records, %d requests; want 1 and 1", got.Attempts, destLong.Count())
	}
	took := time.Since(start)

	// A crashes with the other attempt in flight, at a random point between
	// two of its renewals.
	time.Sleep(rand.N(lease / 3))
	crashedAt := time.Now()
	crash.crash()
	reqs := destCrash.WaitForRequests(t, 2, 2*lease+waitLong)
	delay := reqs[1].ReceivedAt.Sub(crashedAt)
	got = kapseltest.RequireDelivered(t, sB, crashed.EventID, crashed.EndpointID, waitLong)
	if got.Attempts != 1 {
		t.Fatalf("re-claimed delivery: %d attempt records, want B's only", got.Attempts)
	}
	destCrash.Release() // A's attempt ends; its outcome cannot be recorded
	t.Logf("lease %v, poll %v: a %v attempt kept its delivery; re-claimed and re-sent %v after the crash",
		lease, poll, took.Round(time.Millisecond), delay.Round(time.Millisecond))
	// Real time on a shared machine: the bound has some slack for the
	// re-claim's own round trips and the request.
	if max := lease + poll + time.Second; delay > max {
		t.Fatalf("re-sent %v after the crash, want at most %v", delay, max)
	}
	if delay < lease/2 {
		t.Fatalf("re-sent %v after the crash, before a renewed lease could have ended", delay)
	}
}
