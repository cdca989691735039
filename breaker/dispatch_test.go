package breaker_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/breaker"
	"github.com/kapsel-dev/kapsel/delivery"
	"github.com/kapsel-dev/kapsel/kapseltest"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

// These tests run real dispatchers (package delivery) with the breaker
// against httptest destinations.

// destination is an httptest server whose behaviour the test switches.
type destination struct {
	srv     *httptest.Server
	hits    atomic.Int64
	status  atomic.Int64  // answered when not hanging
	hang    atomic.Bool   // hold each request until release is closed or it is cancelled
	release chan struct{} // closed to let hanging requests answer
	once    sync.Once
}

func newDestination(t *testing.T, status int) *destination {
	d := &destination{release: make(chan struct{})}
	d.status.Store(int64(status))
	d.srv = newServer(d)
	t.Cleanup(d.srv.Close)
	t.Cleanup(d.unhang) // runs before srv.Close and before dispatchers stop
	return d
}

func newServer(d *destination) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.hits.Add(1)
		if d.hang.Load() {
			select {
			case <-d.release:
			case <-r.Context().Done():
				return
			}
		}
		w.WriteHeader(int(d.status.Load()))
	}))
}

func (d *destination) unhang() { d.once.Do(func() { close(d.release) }) }

// claimWatcher is a store that notes the time of every completed claim, so
// that a test knows a dispatcher has looked at the queue at a given time.
type claimWatcher struct {
	*memstore.Store
	mu      sync.Mutex
	claimed time.Time // latest Now of a completed claim
	got     map[kapsel.EndpointID]int
}

func (c *claimWatcher) DeliveryClaim(ctx context.Context, p *kapsel.DeliveryClaimParams) ([]*kapsel.Delivery, error) {
	dls, err := c.Store.DeliveryClaim(ctx, p)
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.Now.After(c.claimed) {
		c.claimed = p.Now
	}
	for _, d := range dls {
		c.got[d.EndpointID]++
	}
	return dls, err
}

func (c *claimWatcher) claimedSince(t time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.claimed.Before(t)
}

func (c *claimWatcher) claims(id kapsel.EndpointID) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.got[id]
}

// env is a store with one tenant, a fake clock, and helpers.
type env struct {
	t      testing.TB
	ctx    context.Context
	store  *memstore.Store
	clock  *kapseltest.Clock
	tenant kapsel.TenantID
}

func newEnv(t *testing.T) *env {
	e := &env{t: t, ctx: context.Background(), store: memstore.New(), clock: kapseltest.NewClock(time.Time{})}
	ten, err := e.store.TenantInsert(e.ctx, &kapsel.TenantInsertParams{Name: "t", APIKeyHash: []byte("k"), Now: e.clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	e.tenant = ten.ID
	return e
}

func (e *env) endpoint(url string, timeout time.Duration) kapsel.EndpointID {
	e.t.Helper()
	ep, err := e.store.EndpointInsert(e.ctx, &kapsel.EndpointInsertParams{
		Endpoint: &kapsel.Endpoint{TenantID: e.tenant, Name: "e", URL: url, Timeout: timeout, RetryPolicy: kapsel.DefaultRetryPolicy()},
		Now:      e.clock.Now(),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return ep.ID
}

// insert stores n events sent to the endpoint alone, created at now, and
// returns their deliveries.
func (e *env) insert(id kapsel.EndpointID, n int, now time.Time) []kapsel.DeliveryID {
	e.t.Helper()
	return e.insertTo([]kapsel.EndpointID{id}, n, now)[id]
}

// insertTo stores n events, each sent to all the endpoints, created at
// now, and returns their deliveries by endpoint.
func (e *env) insertTo(eps []kapsel.EndpointID, n int, now time.Time) map[kapsel.EndpointID][]kapsel.DeliveryID {
	e.t.Helper()
	params := &kapsel.EventInsertManyParams{Now: now}
	for i := range n {
		body := fmt.Appendf(nil, `{"n":%d}`, i)
		sum := sha256.Sum256(body)
		params.Events = append(params.Events, &kapsel.EventInsertParams{
			TenantID: e.tenant, EndpointIDs: eps, Body: body, BodyHash: sum[:], ContentType: "application/json",
		})
	}
	res, err := e.store.EventInsertMany(e.ctx, params)
	if err != nil {
		e.t.Fatal(err)
	}
	ids := map[kapsel.EndpointID][]kapsel.DeliveryID{}
	for _, r := range res {
		if r.Err != nil {
			e.t.Fatal(r.Err)
		}
		dls, err := e.store.DeliveryList(e.ctx, &kapsel.DeliveryListParams{EventID: r.Event.ID})
		if err != nil || len(dls) != len(eps) {
			e.t.Fatalf("deliveries of event %s: %d, %v; want %d", r.Event.ID, len(dls), err, len(eps))
		}
		for _, d := range dls {
			ids[d.EndpointID] = append(ids[d.EndpointID], d.ID)
		}
	}
	return ids
}

// dispatcher starts a dispatcher on its own claimWatcher over the shared
// store, with breakers, on the fake clock; it is stopped at the end.
//
// Its lease is a minute, longer than any single step these tests take on
// the fake clock (the 30 s cool-down, then 10 s more): a real clock passes
// through every instant, so the keep-alive renews a lease every third of it,
// but a fake clock set 40 s ahead in one step would expire a 25 s lease
// before the keep-alive could run, fencing out the attempt that was still
// running — a lease loss no real run has.
func (e *env) dispatcher(set *breaker.Set, per int) (*delivery.Dispatcher, *claimWatcher) {
	e.t.Helper()
	w := &claimWatcher{Store: e.store, got: map[kapsel.EndpointID]int{}}
	d, err := delivery.New(w, &delivery.Config{
		Workers: 8, PerEndpointConcurrency: per, Breakers: set, Clock: e.clock,
		LeaseDuration:            time.Minute,
		AllowPrivateDestinations: true, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := d.Start(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.Stop(ctx); err != nil {
			e.t.Errorf("Stop: %v", err)
		}
	})
	return d, w
}

func (e *env) set(cfg breaker.Config) (*breaker.Set, *hookLog) {
	h := &hookLog{}
	cfg.Clock, cfg.Hooks, cfg.Logger = e.clock, h.hooks(), slog.New(slog.DiscardHandler)
	return mustNew(e.t, e.store, &cfg), h
}

// waitFor polls cond (waking the dispatchers each time) until it holds or
// ten seconds of real time pass.
func (e *env) waitFor(what string, cond func() bool, wake ...*delivery.Dispatcher) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		for _, d := range wake {
			d.Wake()
		}
		<-tick.C
	}
}

func (e *env) breaker(id kapsel.EndpointID) *kapsel.BreakerState {
	st, err := e.store.BreakerGet(e.ctx, &kapsel.BreakerGetParams{EndpointID: id})
	if err != nil {
		return nil
	}
	return st
}

// idle reports whether no delivery is leased.
func (e *env) idle() bool {
	st, err := e.store.DeliveryStats(e.ctx, &kapsel.DeliveryStatsParams{Now: e.clock.Now()})
	return err == nil && st.Count[kapsel.DeliveryDelivering] == 0
}

// count returns how many deliveries have the status, paging through
// DeliveryList (DeliveryStats counts only pending and delivering ones).
func (e *env) count(status kapsel.DeliveryStatus) int {
	n := 0
	p := &kapsel.DeliveryListParams{Status: status, Limit: kapsel.MaxPageLimit}
	for range 10_000 {
		page, err := e.store.DeliveryList(e.ctx, p)
		if err != nil {
			e.t.Fatal(err)
		}
		n += len(page)
		if len(page) < p.Limit {
			return n
		}
		p.Cursor = page[len(page)-1].ID
	}
	e.t.Fatal("too many pages of deliveries")
	return n
}

func (e *env) attempts(ids []kapsel.DeliveryID) (total int, per []int) {
	e.t.Helper()
	for _, id := range ids {
		as, err := e.store.AttemptList(e.ctx, &kapsel.AttemptListParams{DeliveryID: id, Limit: kapsel.MaxPageLimit})
		if err != nil {
			e.t.Fatal(err)
		}
		total += len(as)
		per = append(per, len(as))
	}
	return total, per
}

// tripped waits until the endpoint's breaker is open and nothing is in
// flight, and returns the open state.
func (e *env) tripped(id kapsel.EndpointID, ds ...*delivery.Dispatcher) *kapsel.BreakerState {
	e.t.Helper()
	e.waitFor("the breaker to open", func() bool {
		st := e.breaker(id)
		return st != nil && st.Status == kapsel.BreakerOpen && e.idle()
	}, ds...)
	return e.breaker(id)
}

// stepThrough moves the fake time to until in steps, and after each step
// waits for every watcher to have claimed at the new time.
func (e *env) stepThrough(until time.Time, step time.Duration, ds []*delivery.Dispatcher, ws []*claimWatcher, check func()) {
	e.t.Helper()
	for e.clock.Now().Before(until) {
		next := e.clock.Now().Add(step)
		if next.After(until) {
			next = until
		}
		e.clock.Set(next)
		for _, w := range ws {
			e.waitFor("a claim at "+next.String(), func() bool { return w.claimedSince(next) && e.idle() }, ds...)
		}
		check()
	}
}
