package delivery_test

import (
	"context"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/delivery"
	"github.com/kapsel-dev/kapsel/kapseltest"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

// TestPerEndpointConcurrency: a hanging endpoint holds at most
// PerEndpointConcurrency workers — by default half of the pool, whatever its
// size — and another endpoint's deliveries are made meanwhile.
func TestPerEndpointConcurrency(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name           string
		workers, per   int
		wantConcurrent int
	}{
		{"explicit", 8, 2, 2},
		{"default is half the pool", 8, 0, 4},
		{"default of a pool of three", 3, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, func(c *delivery.Config) {
				c.Workers = tc.workers
				c.PerEndpointConcurrency = tc.per
			})
			f.dest.SetDefault(kapseltest.Response{Hang: true})
			for range 10 {
				f.insert(nil, `{"slow":true}`)
			}
			f.dest.WaitForRequests(t, tc.wantConcurrent, waitLong)

			fast := kapseltest.NewDestination(t)
			ep := f.newEndpoint(fast.URL + "/fast")
			var dls []*kapsel.Delivery
			for range 12 {
				dls = append(dls, f.insert(ep, `{"fast":true}`))
			}
			for _, dl := range dls {
				f.requireDelivered(dl)
			}
			if n := f.dest.Count(); n != tc.wantConcurrent {
				t.Fatalf("the hanging endpoint received %d concurrent requests, want %d", n, tc.wantConcurrent)
			}
			f.dest.SetDefault(kapseltest.Response{})
			f.dest.Release()
			f.dest.WaitForRequests(t, 10, waitLong)
		})
	}
}

// TestBacklogDrainsInBatches: a backlog larger than a claim batch is claimed
// again and again without waiting for a poll (the fake clock never moves).
func TestBacklogDrainsInBatches(t *testing.T) {
	t.Parallel()
	f := setup(t, func(c *delivery.Config) {
		c.Workers = 16
		c.PerEndpointConcurrency = 16
		c.ClaimBatch = 8
		c.CompleteBatch = 8
	})
	if err := f.d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	const n = 300
	params := &kapsel.EventInsertManyParams{Now: f.clock.Now()}
	for range n {
		params.Events = append(params.Events, &kapsel.EventInsertParams{TenantID: f.tenant.ID, Body: []byte(`{}`)})
	}
	res, err := f.store.EventInsertMany(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	cfg := f.cfg
	d := f.newDispatcher(&cfg)
	d.Wake()
	for _, r := range res {
		kapseltest.RequireDelivered(t, f.store, r.Event.ID, f.ep.ID, waitLong)
	}
	if c := f.dest.Count(); c != n {
		t.Fatalf("destination got %d requests for %d deliveries", c, n)
	}
}

// notifyingStore is a memstore with the Notifier capability, fed by the test.
type notifyingStore struct {
	*memstore.Store
	ch chan struct{}
}

func (s *notifyingStore) DeliveryListen(ctx context.Context) (<-chan struct{}, error) {
	out := make(chan struct{}, 1)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.ch:
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out, nil
}

// TestNotifierWakes: with a Notifier store, a notification alone (no Wake,
// no poll: the fake clock never moves) gets a new delivery made.
func TestNotifierWakes(t *testing.T) {
	t.Parallel()
	store := &notifyingStore{Store: memstore.New(), ch: make(chan struct{}, 1)}
	f := setupOn(t, store, kapseltest.NewClock(time.Time{}), nil)
	f.spy.waitClaims(t, 0) // the start-up claim is over

	// Insert behind the dispatcher's back: no Wake.
	res, err := store.EventInsertMany(context.Background(), &kapsel.EventInsertManyParams{
		Events: []*kapsel.EventInsertParams{{TenantID: f.tenant.ID, Body: []byte(`{}`)}},
		Now:    f.clock.Now(),
	})
	if err != nil {
		t.Fatal(err)
	}
	store.ch <- struct{}{}
	kapseltest.RequireDelivered(t, f.store, res[0].Event.ID, f.ep.ID, waitLong)
}

// TestManyEndpointsConcurrently: deliveries spread over several endpoints, with
// a pool smaller than the work, are all delivered exactly once.
func TestManyEndpointsConcurrently(t *testing.T) {
	t.Parallel()
	f := setup(t, func(c *delivery.Config) {
		c.Workers = 6
		c.PerEndpointConcurrency = 3
		c.ClaimBatch = 5
	})
	var dls []*kapsel.Delivery
	dests := make([]*kapseltest.Destination, 4)
	for i := range dests {
		dests[i] = kapseltest.NewDestination(t)
		ep := f.newEndpoint(dests[i].URL)
		for range 25 {
			dls = append(dls, f.insert(ep, `{}`))
		}
	}
	for _, dl := range dls {
		f.requireDelivered(dl)
	}
	for i, d := range dests {
		seen := map[string]int{}
		for _, r := range d.Requests() {
			seen[r.WebhookID]++
		}
		if len(seen) != 25 || d.Count() != 25 {
			t.Errorf("destination %d: %d requests for %d distinct events, want 25/25", i, d.Count(), len(seen))
		}
	}
}

// TestQueuedDeliveriesReleasedAtStop: deliveries claimed for an endpoint whose slots
// are all busy wait in its queue; Stop gives them back unattempted.
func TestQueuedDeliveriesReleasedAtStop(t *testing.T) {
	t.Parallel()
	f := setup(t, func(c *delivery.Config) {
		c.Workers = 4
		c.PerEndpointConcurrency = 1
		c.ClaimBatch = 2
	})
	if err := f.d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.dest.SetDefault(kapseltest.Response{Hang: true})
	first, second := f.insert(nil, `{"n":1}`), f.insert(nil, `{"n":2}`)
	cfg := f.cfg
	d := f.newDispatcher(&cfg)
	d.Wake()
	f.dest.WaitForRequests(t, 1, waitLong)
	if _, claimed := f.spy.counts(); claimed != 2 {
		t.Fatalf("%d deliveries claimed, want both (one running, one queued)", claimed)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if f.dest.Count() != 1 {
		t.Fatalf("destination got %d requests, want 1 (the queued delivery is never sent)", f.dest.Count())
	}
	for _, dl := range []*kapsel.Delivery{first, second} {
		got := f.delivery(dl.ID)
		if got.Status != kapsel.DeliveryPending || got.LeaseToken != "" {
			t.Fatalf("delivery %s after Stop: %s, lease %q", dl.ID, got.Status, got.LeaseToken)
		}
	}
	// Claims are not ordered among equal due times: the queued delivery is
	// the one whose event the destination did not see.
	queued := first
	if f.dest.Requests()[0].WebhookID == string(first.EventID) {
		queued = second
	}
	if got := f.delivery(queued.ID); got.Attempts != 0 || f.spy.releases(queued.ID) != 1 {
		t.Fatalf("queued delivery: %d attempts, %d releases; want 0 and 1", got.Attempts, f.spy.releases(queued.ID))
	}
}
