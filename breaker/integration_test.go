package breaker_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/breaker"
	"github.com/kapsel-dev/kapsel/delivery"
)

// TestDispatcherSpendsNoAttemptsWhileOpen: a dead destination trips the
// breaker after three attempts; for the whole cool-down nothing is sent and
// no attempt is recorded; then one probe succeeds and every delivery is
// delivered.
func TestDispatcherSpendsNoAttemptsWhileOpen(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dest := newDestination(t, http.StatusServiceUnavailable)
	a := e.endpoint(dest.srv.URL, 5*time.Second)
	ids := e.insert(a, 5, e.clock.Now())
	set, hooks := e.set(breaker.Config{ConsecutiveFailures: 3})
	// One attempt at a time to the endpoint, so the trip comes after
	// exactly three.
	d, w := e.dispatcher(set, 1)

	open := e.tripped(a, d)
	if n := dest.hits.Load(); n != 3 {
		t.Fatalf("%d requests before the trip, want 3", n)
	}
	claimedBefore := w.claims(a)
	// Through the cool-down, in 5 s steps: no request, no attempt record,
	// nothing of the endpoint even claimed.
	e.stepThrough(open.OpenUntil.Add(-time.Millisecond), 5*time.Second, []*delivery.Dispatcher{d}, []*claimWatcher{w}, func() {
		if n := dest.hits.Load(); n != 3 {
			t.Fatalf("at %s, while open: %d requests, want 3", e.clock.Now(), n)
		}
	})
	if total, _ := e.attempts(ids); total != 3 {
		t.Fatalf("%d attempts recorded while open, want 3", total)
	}
	if n := w.claims(a); n != claimedBefore {
		t.Fatalf("%d deliveries of the open endpoint claimed during the cool-down", n-claimedBefore)
	}

	// The destination recovers; at OpenUntil one probe goes, succeeds, and
	// everything follows.
	dest.status.Store(http.StatusOK)
	e.clock.Set(open.OpenUntil)
	e.waitFor("every delivery made", func() bool { return e.count(kapsel.DeliveryDelivered) == len(ids) }, d)
	if n := dest.hits.Load(); n != 3+5 {
		t.Fatalf("%d requests in all, want 8 (3 failures, then each delivery once)", n)
	}
	total, per := e.attempts(ids)
	slices.Sort(per)
	if total != 8 || !slices.Equal(per, []int{1, 1, 2, 2, 2}) {
		t.Fatalf("attempts per delivery %v, want the three failed deliveries twice and the others once", per)
	}
	if got, want := hooks.transitions(), []string{"closed>open", "open>half_open", "half_open>closed"}; !slices.Equal(got, want) {
		t.Fatalf("transitions %v, want %v", got, want)
	}
}

// TestDispatcherRestartKeepsTheBreakerOpen: a dispatcher trips the breaker
// and stops; a new one, with a new Set, on the same store does not send
// until the cool-down is over.
func TestDispatcherRestartKeepsTheBreakerOpen(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dest := newDestination(t, http.StatusInternalServerError)
	a := e.endpoint(dest.srv.URL, 5*time.Second)
	ids := e.insert(a, 4, e.clock.Now())
	cfg := breaker.Config{ConsecutiveFailures: 2}

	set1, _ := e.set(cfg)
	d1, _ := e.dispatcher(set1, 1)
	open := e.tripped(a, d1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d1.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	before := dest.hits.Load()

	// The restart: a new Set knows nothing in memory, yet refuses.
	set2, hooks2 := e.set(cfg)
	if p, at, err := set2.Allow(e.ctx, a, e.clock.Now()); p.Allowed || err != nil || !at.Equal(open.OpenUntil) {
		t.Fatalf("new Set: Allow = %v, %s, %v; want false until %s", p.Allowed, at, err, open.OpenUntil)
	}
	d2, w2 := e.dispatcher(set2, 1)
	e.stepThrough(open.OpenUntil.Add(-time.Millisecond), 10*time.Second, []*delivery.Dispatcher{d2}, []*claimWatcher{w2}, func() {
		if n := dest.hits.Load(); n != before {
			t.Fatalf("after the restart, while open: %d requests, want %d", n, before)
		}
	})
	dest.status.Store(http.StatusOK)
	e.clock.Set(open.OpenUntil)
	e.waitFor("every delivery made", func() bool { return e.count(kapsel.DeliveryDelivered) == len(ids) }, d2)
	if got := hooks2.transitions(); !slices.Equal(got, []string{"open>half_open", "half_open>closed"}) {
		t.Fatalf("the restarted Set's transitions: %v", got)
	}
}

// TestTwoDispatchersSendOneProbe: two dispatchers, each with its own Set, on
// one store; after the cool-down exactly one probe reaches the destination
// while it is out, whatever both dispatchers claim meanwhile.
func TestTwoDispatchersSendOneProbe(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dest := newDestination(t, http.StatusServiceUnavailable)
	a := e.endpoint(dest.srv.URL, 30*time.Second)
	e.insert(a, 20, e.clock.Now())
	cfg := breaker.Config{ConsecutiveFailures: 3}
	set1, h1 := e.set(cfg)
	set2, h2 := e.set(cfg)
	d1, w1 := e.dispatcher(set1, 4)
	d2, w2 := e.dispatcher(set2, 4)
	ds, ws := []*delivery.Dispatcher{d1, d2}, []*claimWatcher{w1, w2}

	open := e.tripped(a, d1, d2)
	before := dest.hits.Load()

	// The probe hangs at the destination.
	dest.hang.Store(true)
	e.clock.Set(open.OpenUntil)
	e.waitFor("the probe", func() bool { return dest.hits.Load() == before+1 }, d1, d2)
	// A minute of both dispatchers claiming: nothing else is sent.
	probeAt := e.clock.Now()
	for range 6 {
		next := e.clock.Now().Add(10 * time.Second)
		e.clock.Set(next)
		for _, w := range ws {
			e.waitFor("claims", func() bool { return w.claimedSince(next) }, ds...)
		}
		if n := dest.hits.Load(); n != before+1 {
			t.Fatalf("%d requests while the probe is out, want 1", n-before)
		}
	}
	if st := e.breaker(a); st.Status != kapsel.BreakerHalfOpen || !st.ProbeUntil.Equal(probeAt.Add(breaker.DefaultProbeLease)) {
		t.Fatalf("while probing: %+v", st)
	}
	// The probe fails: open again, for twice as long.
	dest.unhang()
	e.waitFor("the breaker to reopen", func() bool {
		st := e.breaker(a)
		return st.Status == kapsel.BreakerOpen && st.Trips == 2 && e.idle()
	}, ds...)
	if st := e.breaker(a); !st.OpenUntil.Equal(e.clock.Now().Add(2 * breaker.DefaultCoolDown)) {
		t.Fatalf("after the failed probe: %+v", st)
	}
	if n := dest.hits.Load(); n != before+1 {
		t.Fatalf("%d requests since the trip, want the probe only", n-before)
	}
	// Each transition was reported once, by whichever Set made it.
	all := append(h1.transitions(), h2.transitions()...)
	slices.Sort(all)
	if want := []string{"closed>open", "half_open>open", "open>half_open"}; !slices.Equal(all, want) {
		t.Fatalf("transitions reported %v, want %v", all, want)
	}
}

// TestFanOutBreakerOpenForOneEndpointOnly: the same five events fan out to
// a dead endpoint and a healthy one. The dead one's breaker trips after
// three attempts and its deliveries wait, unattempted, for the whole
// cool-down; the healthy endpoint's deliveries of the very same events are
// all made meanwhile, each once, and its breaker never leaves closed.
func TestFanOutBreakerOpenForOneEndpointOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dead := newDestination(t, http.StatusServiceUnavailable)
	healthy := newDestination(t, http.StatusOK)
	a := e.endpoint(dead.srv.URL, 5*time.Second)
	b := e.endpoint(healthy.srv.URL, 5*time.Second)
	ids := e.insertTo([]kapsel.EndpointID{a, b}, 5, e.clock.Now())
	set, hooks := e.set(breaker.Config{ConsecutiveFailures: 3})
	d, w := e.dispatcher(set, 1)

	open := e.tripped(a, d)
	e.waitFor("the healthy endpoint's deliveries", func() bool { return e.count(kapsel.DeliveryDelivered) == len(ids[b]) }, d)
	if n := dead.hits.Load(); n != 3 {
		t.Fatalf("%d requests to the dead endpoint before the trip, want 3", n)
	}
	claimedBefore := w.claims(a)
	e.stepThrough(open.OpenUntil.Add(-time.Millisecond), 10*time.Second, []*delivery.Dispatcher{d}, []*claimWatcher{w}, func() {
		if n := dead.hits.Load(); n != 3 {
			t.Fatalf("at %s, while open: %d requests to the dead endpoint, want 3", e.clock.Now(), n)
		}
	})
	if n := w.claims(a); n != claimedBefore {
		t.Fatalf("%d deliveries of the open endpoint claimed during the cool-down", n-claimedBefore)
	}
	if total, _ := e.attempts(ids[a]); total != 3 {
		t.Fatalf("%d attempts of the dead endpoint's deliveries, want 3", total)
	}
	total, per := e.attempts(ids[b])
	if total != 5 || healthy.hits.Load() != 5 || slices.Max(per) != 1 {
		t.Fatalf("healthy endpoint: %d attempts (%v), %d requests; want each delivery once", total, per, healthy.hits.Load())
	}
	if st := e.breaker(b); st != nil && st.Status != kapsel.BreakerClosed {
		t.Fatalf("the healthy endpoint's breaker: %+v", st)
	}
	if got := hooks.transitions(); !slices.Equal(got, []string{"closed>open"}) {
		t.Fatalf("transitions %v, want the dead endpoint's trip only", got)
	}
	// Each delivery of the dead endpoint is still pending: waiting visibly.
	for _, id := range ids[a] {
		dl, err := e.store.DeliveryGet(e.ctx, &kapsel.DeliveryGetParams{ID: id})
		if err != nil || dl.Status != kapsel.DeliveryPending {
			t.Fatalf("dead endpoint's delivery %s: %+v, %v; want pending", id, dl, err)
		}
	}
}
