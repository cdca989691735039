package breaker

import (
	"sync"
	"time"

	"github.com/benbjohnson/clock"
	circuitbreaker "github.com/mercari/go-circuitbreaker"

	"github.com/kapsel-dev/kapsel"
)

// entry is one endpoint's in-memory breaker: a go-circuitbreaker instance
// that counts outcomes and decides when to trip, and the cached copy of the
// persisted state that decides everything else.
//
// The go-circuitbreaker instance mirrors the persisted status: closed while
// the endpoint is closed (it counts and trips), half-open while this Set owns
// the probe (its next outcome closes or reopens it), open otherwise (outcomes
// are ignored). Its own timers are not used — the cool-down must be shared by
// every dispatcher and survive restarts, so it lives in the store's OpenUntil
// — which is why each instance runs on a frozen mock clock: its open timer
// never fires, and nothing is left behind when the entry is dropped.
type entry struct {
	id kapsel.EndpointID

	mu sync.Mutex
	cb *circuitbreaker.CircuitBreaker
	// changed is the last state go-circuitbreaker moved to; cleared by
	// whoever acts on it.
	changed circuitbreaker.State

	// state is the cached persisted state; nil when none is stored (closed).
	// It is valid only when loaded.
	state    *kapsel.BreakerState
	loaded   bool
	syncedAt time.Time
	// probing: this Set owns the probe of the persisted half-open state whose
	// version is probeVersion.
	probing      bool
	probeVersion int64
	// runStart is when the current run of failures began (zero after a
	// success); it becomes FailingSince when the breaker trips.
	runStart    time.Time
	windowStart time.Time
	lastSuccess time.Time

	lastUsed time.Time // guarded by Set.mu
}

func newEntry(id kapsel.EndpointID, cfg *Config, now time.Time) *entry {
	e := &entry{id: id, windowStart: now}
	e.cb = circuitbreaker.New(
		circuitbreaker.WithTripFunc(tripFunc(cfg)),
		circuitbreaker.WithHalfOpenMaxSuccesses(1),
		// No counter-reset ticker (it would be one goroutine per endpoint on
		// the wall clock); windows are rolled by Record on the injected time.
		circuitbreaker.WithCounterResetInterval(-1),
		circuitbreaker.WithClock(clock.NewMock()),
		circuitbreaker.WithOpenTimeout(time.Hour),
		circuitbreaker.WithOnStateChangeHookFn(func(_, to circuitbreaker.State) { e.changed = to }),
	)
	return e
}

// tripFunc combines go-circuitbreaker's consecutive-failures and
// failure-rate trip functions as configured.
func tripFunc(cfg *Config) circuitbreaker.TripFunc {
	var fns []circuitbreaker.TripFunc
	if cfg.ConsecutiveFailures > 0 {
		fns = append(fns, circuitbreaker.NewTripFuncConsecutiveFailures(int64(cfg.ConsecutiveFailures)))
	}
	if cfg.FailureRate >= 0 {
		fns = append(fns, circuitbreaker.NewTripFuncFailureRate(int64(cfg.MinRequests), cfg.FailureRate))
	}
	return func(c *circuitbreaker.Counters) bool {
		for _, f := range fns {
			if f(c) {
				return true
			}
		}
		return false
	}
}

// adopt makes st (nil: none stored) the cached persisted state and brings
// the go-circuitbreaker instance in line with it, silently.
func (e *entry) adopt(st *kapsel.BreakerState, now time.Time) {
	e.state, e.loaded, e.syncedAt = st, true, now
	if e.probing && (st == nil || st.Status != kapsel.BreakerHalfOpen || st.Version != e.probeVersion) {
		e.probing = false
	}
	want := circuitbreaker.StateOpen
	switch {
	case e.probing:
		want = circuitbreaker.StateHalfOpen
	case isClosed(st):
		want = circuitbreaker.StateClosed
	}
	if e.cb.State() != want {
		e.cb.SetState(want)
		if want == circuitbreaker.StateClosed {
			e.startWindow(now)
		}
	}
	e.changed = ""
}

// startWindow starts the failure-rate counters afresh.
func (e *entry) startWindow(now time.Time) {
	e.cb.Reset()
	e.changed = ""
	e.windowStart = now
	e.runStart = time.Time{}
}

// count feeds one outcome of a closed breaker to go-circuitbreaker and
// reports whether it tripped. The window is rolled first when it has
// expired, unless a run of failures is going on: a slow run on a quiet
// endpoint must not be cut by the window.
func (e *entry) count(success bool, now time.Time, window time.Duration) (tripped bool) {
	if now.Sub(e.windowStart) >= window && e.cb.Counters().ConsecutiveFailures == 0 {
		e.startWindow(now)
	}
	e.changed = ""
	if success {
		e.runStart = time.Time{}
		e.lastSuccess = now
		e.cb.Success()
		return false
	}
	if e.cb.Counters().ConsecutiveFailures == 0 {
		e.runStart = now
	}
	e.cb.Fail()
	tripped = e.changed == circuitbreaker.StateOpen
	e.changed = ""
	return tripped
}

// isClosed reports whether a persisted state lets every attempt through.
func isClosed(st *kapsel.BreakerState) bool {
	return st == nil || st.Status == kapsel.BreakerClosed || st.Status == ""
}

// status is the persisted status, closed when none is stored.
func status(st *kapsel.BreakerState) kapsel.BreakerStatus {
	if isClosed(st) {
		return kapsel.BreakerClosed
	}
	return st.Status
}
