package delivery_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/delivery"
	"github.com/kapsel-dev/kapsel/kapseltest"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

// queuedBehind makes one delivery of the fixture's endpoint hang in flight
// and claims a second one, which waits in the endpoint's queue
// (PerEndpointConcurrency 1). It returns the dispatcher that holds them and
// both deliveries. The destination answers 200 to everything after the
// hanging request, so a queued delivery that is attempted is seen at once.
func queuedBehind(t *testing.T, edit func(*delivery.Config)) (f *fixture, d *delivery.Dispatcher, running, queued *kapsel.Delivery) {
	t.Helper()
	f = setup(t, func(c *delivery.Config) {
		c.Workers = 4
		c.PerEndpointConcurrency = 1
		c.PollInterval = time.Hour
		if edit != nil {
			edit(c)
		}
	})
	if err := f.d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.dest.Respond(kapseltest.Response{Hang: true})
	first, second := f.insert(nil, `{"n":1}`), f.insert(nil, `{"n":2}`)
	cfg := f.cfg
	d = f.newDispatcher(&cfg)
	d.Wake()
	reqs := f.dest.WaitForRequests(t, 1, waitLong)
	if _, claimed := f.spy.counts(); claimed != 2 {
		t.Fatalf("%d deliveries claimed, want both (one running, one queued)", claimed)
	}
	running, queued = first, second
	if reqs[0].WebhookID == string(second.EventID) {
		running, queued = second, first
	}
	return f, d, running, queued
}

// stopAndCount stops d (its attempts are all answered by then) and returns
// how many requests the destination received.
func stopAndCount(t *testing.T, f *fixture, d *delivery.Dispatcher) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	return f.dest.Count()
}

// waitIdle waits until d holds no running or queued delivery, which also
// proves its per-endpoint accounting came back to zero.
func waitIdle(t *testing.T, d *delivery.Dispatcher) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		running, queued, endpoints := d.Held()
		if running == 0 && queued == 0 && endpoints == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("dispatcher still holds %d running, %d queued, %d endpoints", running, queued, endpoints)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestNoAttemptAfterEndpointDeleted (SPEC §3): once EndpointDeleted has
// returned, a delivery claimed and queued behind the endpoint's running
// attempt is never attempted; the attempt in flight is still recorded.
func TestNoAttemptAfterEndpointDeleted(t *testing.T) {
	t.Parallel()
	f, d, running, queued := queuedBehind(t, nil)
	if err := f.store.EndpointDelete(context.Background(), &kapsel.EndpointDeleteParams{ID: f.ep.ID, Now: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	d.EndpointDeleted(f.ep.ID)
	f.dest.Release()

	// The attempt in flight answered 200: recorded, and delivered stays
	// delivered (DeliveryComplete's contract).
	if got := f.waitAttempts(running, 1); got.Status != kapsel.DeliveryDelivered || len(f.attemptsOf(running.ID)) != 1 {
		t.Fatalf("delivery in flight at the delete: %s with %d attempts, want delivered with its attempt recorded", got.Status, got.Attempts)
	}
	waitIdle(t, d)
	if n := stopAndCount(t, f, d); n != 1 {
		t.Fatalf("destination got %d requests, want 1: an attempt started after the delete was answered", n)
	}
	got := f.delivery(queued.ID)
	if got.Status != kapsel.DeliveryFailed || got.LastError != kapsel.LastErrorEndpointDeleted || got.Attempts != 0 || len(f.attemptsOf(queued.ID)) != 0 {
		t.Fatalf("queued delivery: %s (%q) with %d attempts, want failed by the delete, unattempted", got.Status, got.LastError, got.Attempts)
	}
	if n := f.spy.releases(queued.ID); n != 0 {
		t.Fatalf("queued delivery released %d times; the store already ended it", n)
	}
}

// TestQueuedDeliveryDroppedWhenEndpointDeletedElsewhere: a delete made
// through another node (the store alone) reaches a queued delivery whose
// endpoint was read longer ago than EndpointRecheckAfter: it reads the
// endpoint again and is not attempted.
func TestQueuedDeliveryDroppedWhenEndpointDeletedElsewhere(t *testing.T) {
	t.Parallel()
	f, d, running, queued := queuedBehind(t, nil)
	if err := f.store.EndpointDelete(context.Background(), &kapsel.EndpointDeleteParams{ID: f.ep.ID, Now: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(delivery.DefaultEndpointRecheckAfter + time.Millisecond)
	f.dest.Release()

	f.waitAttempts(running, 1)
	waitIdle(t, d)
	if n := stopAndCount(t, f, d); n != 1 {
		t.Fatalf("destination got %d requests, want 1", n)
	}
	if got := f.delivery(queued.ID); got.Status != kapsel.DeliveryFailed || got.Attempts != 0 || f.spy.releases(queued.ID) != 0 {
		t.Fatalf("queued delivery: %s with %d attempts and %d releases, want failed, unattempted, dropped", got.Status, got.Attempts, f.spy.releases(queued.ID))
	}
}

// TestQueuedDeliveryOfChangedEndpoint: a queued delivery of an endpoint
// paused meanwhile is released (it waits, pending, for the resume) and not
// attempted — whether the pause was reported in-process (EndpointChanged)
// or made elsewhere and found by the re-read; one of an endpoint whose URL
// changed goes to the new URL.
func TestQueuedDeliveryOfChangedEndpoint(t *testing.T) {
	t.Parallel()
	pause := func(f *fixture) {
		if _, err := f.store.EndpointSetState(context.Background(), &kapsel.EndpointSetStateParams{ID: f.ep.ID, State: kapsel.EndpointPaused, Now: f.clock.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name     string
		inProc   bool
		recheck  time.Duration
		advance  time.Duration
		paused   bool
		toNewURL bool
	}{
		{name: "paused, reported", inProc: true, paused: true},
		// The re-read is off: only the report can stop the attempt.
		{name: "paused, reported, no recheck", inProc: true, recheck: -1, paused: true},
		{name: "paused elsewhere", advance: delivery.DefaultEndpointRecheckAfter, paused: true},
		{name: "new URL, reported", inProc: true, toNewURL: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, d, running, queued := queuedBehind(t, func(c *delivery.Config) { c.EndpointRecheckAfter = tc.recheck })
			dest2 := kapseltest.NewDestination(t)
			if tc.paused {
				pause(f)
			}
			if tc.toNewURL {
				if _, err := f.store.EndpointUpdate(context.Background(), &kapsel.EndpointUpdateParams{
					ID: f.ep.ID, Now: f.clock.Now(),
					Update: func(ep *kapsel.Endpoint) error { ep.URL = dest2.URL + "/new"; return nil },
				}); err != nil {
					t.Fatal(err)
				}
			}
			if tc.inProc {
				d.EndpointChanged(f.ep.ID)
			}
			f.clock.Advance(tc.advance)
			f.dest.Release()
			f.waitAttempts(running, 1)

			if tc.toNewURL {
				f.requireDelivered(queued)
				if dest2.Count() != 1 || f.dest.Count() != 1 {
					t.Fatalf("old URL got %d requests, new URL %d; want 1 and 1", f.dest.Count(), dest2.Count())
				}
				return
			}
			f.waitFor(queued, func(*kapsel.Delivery) bool { return f.spy.releases(queued.ID) > 0 })
			waitIdle(t, d)
			if n := stopAndCount(t, f, d); n != 1 {
				t.Fatalf("destination got %d requests, want 1: the paused endpoint's queued delivery was attempted", n)
			}
			if got := f.delivery(queued.ID); got.Status != kapsel.DeliveryPending || got.Attempts != 0 || got.LeaseToken != "" {
				t.Fatalf("queued delivery: %s, %d attempts, lease %q; want pending, unattempted, released", got.Status, got.Attempts, got.LeaseToken)
			}
		})
	}
}

// gatedStore holds the dispatcher's first EndpointGet, after the store
// answered, until the test opens the gate.
type gatedStore struct {
	testStore
	entered chan struct{}
	gate    chan struct{}
	once    sync.Once
}

func (s *gatedStore) EndpointGet(ctx context.Context, p *kapsel.EndpointGetParams) (*kapsel.Endpoint, error) {
	ep, err := s.testStore.EndpointGet(ctx, p)
	s.once.Do(func() {
		close(s.entered)
		<-s.gate
	})
	return ep, err
}

// TestNoAttemptAfterEndpointDeletedDuringClaim: a delivery claimed, whose
// endpoint the claim read as active just before the delete, is not
// attempted once EndpointDeleted has returned.
func TestNoAttemptAfterEndpointDeletedDuringClaim(t *testing.T) {
	t.Parallel()
	gs := &gatedStore{testStore: memstore.New(), entered: make(chan struct{}), gate: make(chan struct{})}
	f := setupOn(t, gs, kapseltest.NewClock(time.Time{}), func(c *delivery.Config) { c.PollInterval = time.Hour })
	dl := f.insert(nil, `{}`)
	select {
	case <-gs.entered:
	case <-time.After(waitLong):
		t.Fatal("the claim never read the endpoint")
	}
	if err := f.store.EndpointDelete(context.Background(), &kapsel.EndpointDeleteParams{ID: f.ep.ID, Now: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	f.d.EndpointDeleted(f.ep.ID)
	close(gs.gate)

	waitIdle(t, f.d)
	if n := stopAndCount(t, f, f.d); n != 0 {
		t.Fatalf("destination got %d requests after the delete was answered, want 0", n)
	}
	if got := f.delivery(dl.ID); got.Status != kapsel.DeliveryFailed || got.Attempts != 0 {
		t.Fatalf("delivery: %s with %d attempts, want failed by the delete, unattempted", got.Status, got.Attempts)
	}
}

// slowGetStore counts EndpointGet calls once armed and makes each take a
// while, so that workers needing the same endpoint pile up behind it.
type slowGetStore struct {
	testStore
	armed atomic.Bool
	gets  atomic.Int32
}

func (s *slowGetStore) EndpointGet(ctx context.Context, p *kapsel.EndpointGetParams) (*kapsel.Endpoint, error) {
	if s.armed.Load() {
		s.gets.Add(1)
		time.Sleep(50 * time.Millisecond)
	}
	return s.testStore.EndpointGet(ctx, p)
}

// TestQueuedDeliveriesShareOneReRead: the deliveries queued behind an
// endpoint's attempts, all with a view older than EndpointRecheckAfter when
// their turns come at once, read the endpoint once between them.
func TestQueuedDeliveriesShareOneReRead(t *testing.T) {
	t.Parallel()
	s := &slowGetStore{testStore: memstore.New()}
	f := setupOn(t, s, kapseltest.NewClock(time.Time{}), func(c *delivery.Config) {
		c.Workers = 8
		c.PerEndpointConcurrency = 4
		c.PollInterval = time.Hour
	})
	if err := f.d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.dest.Respond(kapseltest.Response{Hang: true}, kapseltest.Response{Hang: true}, kapseltest.Response{Hang: true}, kapseltest.Response{Hang: true})
	var dls []*kapsel.Delivery
	for range 8 {
		dls = append(dls, f.insert(nil, `{}`))
	}
	cfg := f.cfg
	d := f.newDispatcher(&cfg)
	d.Wake()
	f.dest.WaitForRequests(t, 4, waitLong)
	if _, claimed := f.spy.counts(); claimed != 8 {
		t.Fatalf("%d deliveries claimed, want 8 (4 running, 4 queued)", claimed)
	}
	s.armed.Store(true)
	f.clock.Advance(delivery.DefaultEndpointRecheckAfter)
	f.dest.Release()
	for _, dl := range dls {
		f.requireDelivered(dl)
	}
	if n := s.gets.Load(); n != 1 {
		t.Fatalf("%d endpoint reads for the 4 queued deliveries, want 1", n)
	}
}
