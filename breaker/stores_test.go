package breaker_test

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/breaker"
	"github.com/kapsel-dev/kapsel/internal/testdb"
	"github.com/kapsel-dev/kapsel/kapseltest"
	"github.com/kapsel-dev/kapsel/store/memstore"
	"github.com/kapsel-dev/kapsel/store/pgstore"
)

// storeFactories are the real stores the breaker is checked against, beyond
// the fake one of the unit tests.
var storeFactories = map[string]func(t *testing.T) kapsel.Store{
	"memstore": func(*testing.T) kapsel.Store { return memstore.New() },
	"pgstore": func(t *testing.T) kapsel.Store {
		s, err := pgstore.Open(t.Context(), testdb.New(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		return s
	},
}

// TestOnStores runs the breaker's whole cycle, shared by four Sets, on each
// real store: the trip, one probe among concurrent askers, a restart, the
// auto-disable through EndpointSetState, and the resume.
func TestOnStores(t *testing.T) {
	t.Parallel()
	for name, newStore := range storeFactories {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testCycle(t, newStore(t))
		})
	}
}

func testCycle(t *testing.T, store kapsel.Store) {
	ctx := context.Background()
	clock := kapseltest.NewClock(time.Time{})
	tenant, err := store.TenantInsert(ctx, &kapsel.TenantInsertParams{Name: "t", APIKeyHash: []byte("h"), Now: clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	endpoint, err := store.EndpointInsert(ctx, &kapsel.EndpointInsertParams{
		Endpoint: &kapsel.Endpoint{TenantID: tenant.ID, Name: "e", URL: "http://127.0.0.1:1/"},
		Now:      clock.Now(),
	})
	if err != nil {
		t.Fatal(err)
	}
	id := endpoint.ID
	hooks := &hookLog{}
	cfg := &breaker.Config{
		ConsecutiveFailures: 3, DisableAfter: time.Hour,
		Clock: clock, Hooks: hooks.hooks(), Logger: slog.New(slog.DiscardHandler),
	}
	sets := []*breaker.Set{mustNew(t, store, cfg), mustNew(t, store, cfg), mustNew(t, store, cfg), mustNew(t, store, cfg)}
	get := func() *kapsel.BreakerState {
		t.Helper()
		st, err := store.BreakerGet(ctx, &kapsel.BreakerGetParams{EndpointID: id})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	attempt := func(s *breaker.Set, success bool) {
		t.Helper()
		p, at, err := s.Allow(ctx, id, clock.Now())
		if !p.Allowed || err != nil {
			t.Fatalf("Allow = %v, %s, %v", p.Allowed, at, err)
		}
		if err := s.Record(ctx, id, p, success, clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	// concurrentProbe has every Set ask eight times at once and returns
	// which Set won the single probe.
	concurrentProbe := func() (*breaker.Set, kapsel.BreakerPermit) {
		t.Helper()
		var wins atomic.Int32
		var winner atomic.Pointer[breaker.Set]
		var permit atomic.Pointer[kapsel.BreakerPermit]
		var wg sync.WaitGroup
		for _, s := range sets {
			for range 8 {
				wg.Go(func() {
					p, _, err := s.Allow(ctx, id, clock.Now())
					if err != nil {
						t.Error(err)
					}
					if p.Allowed {
						wins.Add(1)
						winner.Store(s)
						permit.Store(&p)
					}
				})
			}
		}
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Fatalf("%d probes allowed, want 1", n)
		}
		return winner.Load(), *permit.Load()
	}

	start := clock.Now()
	for range 3 {
		attempt(sets[0], false)
	}
	if st := get(); st.Status != kapsel.BreakerOpen || !st.OpenUntil.Equal(start.Add(breaker.DefaultCoolDown)) {
		t.Fatalf("after the trip: %+v", st)
	}
	// A restart keeps it open.
	restarted := mustNew(t, store, cfg)
	if p, at, err := restarted.Allow(ctx, id, clock.Now()); p.Allowed || err != nil || !at.Equal(start.Add(breaker.DefaultCoolDown)) {
		t.Fatalf("restarted Set: Allow = %v, %s, %v", p.Allowed, at, err)
	}

	// Probes fail, one at a time however many ask, until the hour is up.
	for i := 0; ; i++ {
		if i > 100 {
			t.Fatal("never disabled")
		}
		clock.Set(get().OpenUntil)
		w, p := concurrentProbe()
		if err := w.Record(ctx, id, p, false, clock.Now()); err != nil {
			t.Fatal(err)
		}
		ep, err := store.EndpointGet(ctx, &kapsel.EndpointGetParams{ID: id})
		if err != nil {
			t.Fatal(err)
		}
		if ep.State == kapsel.EndpointDisabled {
			if ep.DisabledReason != kapsel.DisabledFailing || clock.Now().Sub(start) < time.Hour {
				t.Fatalf("disabled at %s with %+v", clock.Now().Sub(start), ep)
			}
			break
		}
	}
	if len(hooks.disables()) != 1 {
		t.Fatalf("OnEndpointDisabled calls: %v", hooks.disables())
	}

	// Resume: active again and reset; attempts flow from every Set.
	if _, err := store.EndpointSetState(ctx, &kapsel.EndpointSetStateParams{ID: id, State: kapsel.EndpointActive, Now: clock.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := sets[0].Reset(ctx, id); err != nil {
		t.Fatal(err)
	}
	clock.Advance(breaker.DefaultSyncInterval)
	for _, s := range sets {
		attempt(s, true)
	}
	if _, err := store.BreakerGet(ctx, &kapsel.BreakerGetParams{EndpointID: id}); err == nil {
		t.Fatal("breaker state stored after the reset and successes")
	}
}
