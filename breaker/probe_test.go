package breaker_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/breaker"
)

// scriptedDestination answers its first request (the straggler) with a 500
// once straggler is closed, its second and third with a 500 at once, its
// fourth (the probe) with a 200 once probe is closed, and every later one
// with a 200.
type scriptedDestination struct {
	srv                *httptest.Server
	hits               atomic.Int64
	straggler, probe   chan struct{}
	stragglerAnswered  atomic.Bool
	releaseStraggler   func()
	releaseProbeAnswer func()
}

func newScriptedDestination(t *testing.T) *scriptedDestination {
	d := &scriptedDestination{straggler: make(chan struct{}), probe: make(chan struct{})}
	d.releaseStraggler = sync1(d.straggler)
	d.releaseProbeAnswer = sync1(d.probe)
	d.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := d.hits.Add(1)
		wait := func(ch chan struct{}) bool {
			select {
			case <-ch:
				return true
			case <-r.Context().Done():
				return false
			}
		}
		switch n {
		case 1:
			if wait(d.straggler) {
				d.stragglerAnswered.Store(true)
				w.WriteHeader(http.StatusInternalServerError)
			}
		case 2, 3:
			w.WriteHeader(http.StatusInternalServerError)
		case 4:
			if wait(d.probe) {
				w.WriteHeader(http.StatusOK)
			}
		default:
			w.WriteHeader(http.StatusOK)
		}
	}))
	t.Cleanup(d.srv.Close)
	t.Cleanup(d.releaseStraggler)
	t.Cleanup(d.releaseProbeAnswer)
	return d
}

func sync1(ch chan struct{}) func() {
	var done atomic.Bool
	return func() {
		if done.CompareAndSwap(false, true) {
			close(ch)
		}
	}
}

// TestProbeAloneSettlesAndReleasesWaitingEvents runs a real dispatcher with
// an endpoint timeout (60 s) above the cool-down (30 s).
//
// Issue 9 item 5: an attempt that started before the trip (the straggler)
// fails after the probe was taken. It must not decide the probe: the probe's
// success closes the breaker. Before the fix the straggler's failure reopened
// it with a doubled cool-down and the probe's success was ignored.
//
// Issue 9 item 4: an event that fell due while the probe was out was held by
// the claim until the probe lease's end (3 min); when the probe's success
// closes the breaker it is delivered at once, without the clock moving.
func TestProbeAloneSettlesAndReleasesWaitingEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dest := newScriptedDestination(t)
	a := e.endpoint(dest.srv.URL, 60*time.Second)
	ids := e.insert(a, 3, e.clock.Now())
	set, hooks := e.set(breaker.Config{ConsecutiveFailures: 2})
	d, w := e.dispatcher(set, 4)

	// Three attempts at once: the first hangs, the other two fail and trip.
	e.waitFor("the trip", func() bool {
		st := e.breaker(a)
		return st != nil && st.Status == kapsel.BreakerOpen && dest.hits.Load() == 3
	}, d)
	open := e.breaker(a)

	// Cool-down over: the two failed events are due; one is the probe,
	// which hangs; the other is refused.
	e.clock.Set(open.OpenUntil)
	e.waitFor("the probe", func() bool { return dest.hits.Load() == 4 }, d)
	if st := e.breaker(a); st.Status != kapsel.BreakerHalfOpen {
		t.Fatalf("while probing: %+v", st)
	}
	// Ten seconds into the probe, a claim finds the refused event due again
	// and holds it back while the breaker is half-open.
	during := open.OpenUntil.Add(10 * time.Second)
	e.clock.Set(during)
	e.waitFor("a claim during the probe", func() bool { return w.claimedSince(during) }, d)

	// The straggler fails now. Its attempt is recorded (so Record was
	// called: it precedes the completion)…
	dest.releaseStraggler()
	e.waitFor("the straggler's attempt", func() bool {
		total, _ := e.attempts(ids)
		return dest.stragglerAnswered.Load() && total == 3
	}, d)
	// …and the breaker is still waiting for its probe.
	if st := e.breaker(a); st.Status != kapsel.BreakerHalfOpen || st.Trips != 1 {
		t.Fatalf("after the straggler failed: %+v, want half-open, 1 trip", st)
	}
	// The probe succeeds: closed, and the held event follows at once.
	dest.releaseProbeAnswer()
	e.waitFor("the breaker to close", func() bool {
		st := e.breaker(a)
		return st != nil && st.Status == kapsel.BreakerClosed
	}, d)
	e.waitFor("the held delivery made without the clock moving", func() bool {
		return e.count(kapsel.DeliveryDelivered) == 2
	}, d)
	if now := e.clock.Now(); !now.Equal(during) {
		t.Fatalf("the clock moved to %s", now)
	}
	// The straggler's delivery is retried after its backoff.
	e.clock.Set(during.Add(time.Minute))
	e.waitFor("every delivery made", func() bool { return e.count(kapsel.DeliveryDelivered) == len(ids) }, d)
	if got, want := hooks.transitions(), []string{"closed>open", "open>half_open", "half_open>closed"}; !slices.Equal(got, want) {
		t.Fatalf("transitions %v, want %v", got, want)
	}
}
