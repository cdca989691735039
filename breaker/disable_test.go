package breaker_test

import (
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/breaker"
)

// failUntil lets every probe fail until the endpoint is disabled or the time
// passes until, and returns when it was disabled (zero: not disabled).
func (f *fixture) failUntil(until time.Time) time.Time {
	f.t.Helper()
	for i := 0; i < 10_000 && f.now().Before(until); i++ {
		st := f.state()
		if st.OpenUntil.After(until) {
			break
		}
		f.clock.Set(st.OpenUntil)
		f.attempt(f.set, false)
		if s, ok := f.store.endpointState(ep); ok && s.State == kapsel.EndpointDisabled {
			return f.now()
		}
	}
	return time.Time{}
}

func TestAutoDisableAfterTheWindow(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	start := f.now()
	for range breaker.DefaultConsecutiveFailures {
		f.attempt(f.set, false)
	}
	// Probes fail for five days, every ten minutes once the cool-down is
	// capped: no disable before the window ends…
	window := start.Add(breaker.DefaultDisableAfter)
	if at := f.failUntil(window.Add(-time.Nanosecond)); !at.IsZero() {
		t.Fatalf("disabled at %s, before the window ends at %s", at, window)
	}
	if len(f.hooks.disables()) != 0 {
		t.Fatal("OnEndpointDisabled fired before the window")
	}
	// …and at the first failed probe after it, within one capped cool-down.
	at := f.failUntil(window.Add(breaker.DefaultMaxCoolDown))
	if at.IsZero() || at.Before(window) {
		t.Fatalf("disabled at %v, want in [%s, %s]", at, window, window.Add(breaker.DefaultMaxCoolDown))
	}
	s, _ := f.store.endpointState(ep)
	if s.DisabledReason != kapsel.DisabledFailing || !s.Now.Equal(at) {
		t.Fatalf("EndpointSetState called with %+v", s)
	}
	if d := f.hooks.disables(); len(d) != 1 || d[0] != (kapsel.EndpointDisabledInfo{EndpointID: ep, Reason: kapsel.DisabledFailing}) {
		t.Fatalf("OnEndpointDisabled = %+v", d)
	}
	if st := f.state(); !st.FailingSince.Equal(start) {
		t.Fatalf("FailingSince = %s, want the first failure %s", st.FailingSince, start)
	}

	// Resume: the endpoint is set active (by the API) and its breaker reset;
	// events flow again, and the next failure starts a new run.
	if err := f.set.Reset(f.ctx, ep); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Second)
	f.attempt(f.set, true)
	f.clock.Advance(time.Second)
	runStart := f.now()
	for i := 0; i < breaker.DefaultConsecutiveFailures; i++ {
		if _, tripped := f.store.breaker(ep); tripped {
			break
		}
		f.attempt(f.set, false)
	}
	if st := f.state(); !st.FailingSince.Equal(runStart) || st.Trips != 1 {
		t.Fatalf("after resume, a new run: %+v", st)
	}
	if len(f.hooks.disables()) != 1 {
		t.Fatal("disabled again right after resume")
	}
}

func TestSuccessfulProbeRestartsTheDisableClock(t *testing.T) {
	t.Parallel()
	f := setup(t, &breaker.Config{ConsecutiveFailures: 1})
	f.attempt(f.set, false)
	start := f.now()
	f.failUntil(start.Add(3 * 24 * time.Hour))
	// One probe succeeds on day 3; the endpoint fails again afterwards.
	f.clock.Set(f.state().OpenUntil)
	f.attempt(f.set, true)
	f.attempt(f.set, false)
	if at := f.failUntil(start.Add(breaker.DefaultDisableAfter + time.Hour)); !at.IsZero() {
		t.Fatalf("disabled at %s, five days after a run that a success interrupted", at)
	}
}

func TestAutoDisableOff(t *testing.T) {
	t.Parallel()
	f := setup(t, &breaker.Config{ConsecutiveFailures: 1, DisableAfter: -1})
	f.attempt(f.set, false)
	if at := f.failUntil(f.now().Add(30 * 24 * time.Hour)); !at.IsZero() {
		t.Fatalf("disabled at %s with DisableAfter < 0", at)
	}
}
