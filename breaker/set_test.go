package breaker_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/breaker"
	"github.com/kapsel-dev/kapsel/kapseltest"
)

const ep = kapsel.EndpointID("ep_test")

type fixture struct {
	t     *testing.T
	ctx   context.Context
	store *fakeStore
	clock *kapseltest.Clock
	hooks *hookLog
	cfg   *breaker.Config
	set   *breaker.Set
}

// setup returns a Set with the default configuration (plus cfg's fields) on
// a fresh fake store, hooks recorded.
func setup(t *testing.T, cfg *breaker.Config) *fixture {
	t.Helper()
	if cfg == nil {
		cfg = &breaker.Config{}
	}
	f := &fixture{t: t, ctx: context.Background(), store: newFakeStore(), clock: kapseltest.NewClock(time.Time{}), hooks: &hookLog{}}
	cfg.Clock = f.clock
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Hooks = f.hooks.hooks()
	f.cfg = cfg
	f.set = mustNew(t, f.store, cfg)
	return f
}

// another returns a second Set on the same store: a second dispatcher, or
// the same one after a restart.
func (f *fixture) another() *breaker.Set { return mustNew(f.t, f.store, f.cfg) }

func (f *fixture) now() time.Time { return f.clock.Now() }

// allow calls Allow at the fake time and fails the test on an error.
func (f *fixture) allow(s *breaker.Set) (kapsel.BreakerPermit, time.Time) {
	f.t.Helper()
	p, at, err := s.Allow(f.ctx, ep, f.now())
	if err != nil {
		f.t.Fatalf("Allow: %v", err)
	}
	return p, at
}

// record calls Record at the fake time and fails the test on an error.
func (f *fixture) record(s *breaker.Set, p kapsel.BreakerPermit, success bool) {
	f.t.Helper()
	if err := s.Record(f.ctx, ep, p, success, f.now()); err != nil {
		f.t.Fatalf("Record: %v", err)
	}
}

// attempt is Allow (which must allow) then Record of the outcome.
func (f *fixture) attempt(s *breaker.Set, success bool) {
	f.t.Helper()
	p, at := f.allow(s)
	if !p.Allowed {
		f.t.Fatalf("at %s: Allow = false (retry at %s), want true", f.now(), at)
	}
	f.record(s, p, success)
}

func (f *fixture) wantDenied(s *breaker.Set, retryAt time.Time) {
	f.t.Helper()
	p, at := f.allow(s)
	if p.Allowed || !at.Equal(retryAt) {
		f.t.Fatalf("at %s: Allow = %v, retry at %s; want false, retry at %s", f.now(), p.Allowed, at, retryAt)
	}
}

func (f *fixture) state() kapsel.BreakerState {
	f.t.Helper()
	st, ok := f.store.breaker(ep)
	if !ok {
		f.t.Fatal("no breaker state stored")
	}
	return st
}

func (f *fixture) wantTransitions(want ...string) {
	f.t.Helper()
	if got := f.hooks.transitions(); !slices.Equal(got, want) {
		f.t.Fatalf("OnBreaker transitions = %v, want %v", got, want)
	}
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	start := f.now()

	// Nine failures in a row, a second apart: still closed, nothing written.
	for range breaker.DefaultConsecutiveFailures - 1 {
		f.attempt(f.set, false)
		f.clock.Advance(time.Second)
	}
	if _, saves := f.store.counts(); saves != 0 {
		t.Fatalf("%d saves before the trip, want 0", saves)
	}
	// The tenth trips it: open for the base cool-down.
	f.attempt(f.set, false)
	tripped := f.now()
	st := f.state()
	if st.Status != kapsel.BreakerOpen || st.Trips != 1 || !st.OpenUntil.Equal(tripped.Add(30*time.Second)) ||
		!st.FailingSince.Equal(start) || !st.LastFailureAt.Equal(tripped) {
		t.Fatalf("after the trip: %+v", st)
	}
	f.wantTransitions("closed>open")
	if r := f.hooks.breaker[0]; r.EndpointID != ep || r.Reason != "10 consecutive failures" {
		t.Fatalf("trip hook = %+v", r)
	}

	// Open until exactly OpenUntil.
	f.clock.Set(st.OpenUntil.Add(-time.Nanosecond))
	f.wantDenied(f.set, st.OpenUntil)

	// At OpenUntil one probe goes; the next caller is refused.
	f.clock.Set(st.OpenUntil)
	permit, _ := f.allow(f.set)
	if !permit.Allowed || permit.Probe == 0 {
		t.Fatalf("probe permit at OpenUntil = %+v, want allowed with a probe token", permit)
	}
	probe := f.state()
	if probe.Status != kapsel.BreakerHalfOpen || !probe.ProbeUntil.Equal(f.now().Add(breaker.DefaultProbeLease)) ||
		!probe.OpenUntil.Equal(probe.ProbeUntil) {
		t.Fatalf("while probing: %+v", probe)
	}
	f.wantDenied(f.set, f.now().Add(breaker.DefaultSyncInterval))
	f.wantTransitions("closed>open", "open>half_open")

	// The probe fails a second later: open again for twice as long.
	f.clock.Advance(time.Second)
	f.record(f.set, permit, false)
	st = f.state()
	if st.Status != kapsel.BreakerOpen || st.Trips != 2 || !st.OpenUntil.Equal(f.now().Add(time.Minute)) ||
		!st.ProbeUntil.IsZero() || !st.FailingSince.Equal(start) {
		t.Fatalf("after a failed probe: %+v", st)
	}
	f.clock.Set(st.OpenUntil.Add(-time.Nanosecond))
	f.wantDenied(f.set, st.OpenUntil)

	// The second probe succeeds: closed, history cleared.
	f.clock.Set(st.OpenUntil)
	f.attempt(f.set, true)
	st = f.state()
	if st.Status != kapsel.BreakerClosed || st.Trips != 0 || !st.OpenUntil.IsZero() || !st.FailingSince.IsZero() ||
		!st.LastSuccessAt.Equal(f.now()) {
		t.Fatalf("after a successful probe: %+v", st)
	}
	f.wantTransitions("closed>open", "open>half_open", "half_open>open", "open>half_open", "half_open>closed")

	// Closed again: attempts flow, and a fresh run of nine failures does not
	// trip it (the counters started afresh).
	for range breaker.DefaultConsecutiveFailures - 1 {
		f.attempt(f.set, false)
	}
	if _, saves := f.store.counts(); saves != 5 {
		t.Fatalf("%d saves, want 5 (one per transition)", saves)
	}
}

func TestCoolDownGrowsAndCaps(t *testing.T) {
	t.Parallel()
	f := setup(t, &breaker.Config{ConsecutiveFailures: 1, CoolDown: 10 * time.Second, MaxCoolDown: time.Minute})
	f.attempt(f.set, false) // trips at once
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, time.Minute, time.Minute, time.Minute}
	for i, d := range want {
		st := f.state()
		if st.Trips != i+1 || st.OpenUntil.Sub(f.now()) != d {
			t.Fatalf("opening %d: trips %d, open for %s; want %d, %s", i+1, st.Trips, st.OpenUntil.Sub(f.now()), i+1, d)
		}
		f.clock.Set(st.OpenUntil)
		f.attempt(f.set, false) // the probe fails
	}
}

func TestFailureRateTrips(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		outcomes string // s = success, f = failure
		tripAt   int    // 1-based attempt that trips; 0 = never
	}{
		{"70% of 10", "sffsffsfff", 10},
		{"7 failures but only 9 attempts", "sffsffsfff"[1:], 0},
		{"60% of 10", "sffsffsffs", 0},
		{"90% of 10", "ffffsfffff", 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Consecutive trigger off, so only the rate can trip.
			f := setup(t, &breaker.Config{ConsecutiveFailures: -1})
			for i, c := range tt.outcomes {
				f.attempt(f.set, c == 's')
				_, tripped := f.store.breaker(ep)
				if tripped != (i+1 == tt.tripAt) {
					t.Fatalf("after attempt %d: tripped %v, want trip at %d", i+1, tripped, tt.tripAt)
				}
				if tripped {
					return
				}
			}
		})
	}
}

func TestFailureRateWindow(t *testing.T) {
	t.Parallel()
	f := setup(t, &breaker.Config{ConsecutiveFailures: -1})
	// A hundred successes, then the window passes: they no longer dilute
	// the failures that follow.
	for range 100 {
		f.attempt(f.set, true)
	}
	f.clock.Advance(breaker.DefaultWindow)
	for i, c := range "sffsffsfff" {
		f.attempt(f.set, c == 's')
		if _, tripped := f.store.breaker(ep); tripped != (i == 9) {
			t.Fatalf("attempt %d after the window: tripped %v", i+1, tripped)
		}
	}
	if r := f.hooks.breaker[0].Reason; r != "7 of 10 attempts failed" {
		t.Fatalf("reason %q", r)
	}
}

func TestSlowRunIsNotCutByTheWindow(t *testing.T) {
	t.Parallel()
	// A quiet endpoint whose every attempt fails, an hour apart: the window
	// rolls many times over, but never in the middle of the run.
	f := setup(t, &breaker.Config{FailureRate: -1})
	for i := range breaker.DefaultConsecutiveFailures {
		f.attempt(f.set, false)
		if _, tripped := f.store.breaker(ep); tripped != (i == breaker.DefaultConsecutiveFailures-1) {
			t.Fatalf("failure %d: tripped %v", i+1, tripped)
		}
		f.clock.Advance(time.Hour)
	}
}

func TestSuccessBreaksTheRun(t *testing.T) {
	t.Parallel()
	f := setup(t, &breaker.Config{FailureRate: -1})
	for range 5 {
		for range breaker.DefaultConsecutiveFailures - 1 {
			f.attempt(f.set, false)
		}
		f.attempt(f.set, true)
	}
	if _, tripped := f.store.breaker(ep); tripped {
		t.Fatal("tripped without a run of 10 failures")
	}
}

func TestStragglersDoNotDecide(t *testing.T) {
	t.Parallel()
	f := setup(t, &breaker.Config{ConsecutiveFailures: 1})
	// Two attempts allowed while closed; the first fails and trips.
	var permits [2]kapsel.BreakerPermit
	for i := range permits {
		if permits[i], _ = f.allow(f.set); !permits[i].Allowed || permits[i].Probe != 0 {
			t.Fatalf("permit while closed = %+v, want allowed, no probe", permits[i])
		}
	}
	f.record(f.set, permits[0], false)
	before := f.state()
	// The second finishes late, successfully: the breaker stays open; only
	// the probe can close it.
	f.clock.Advance(time.Second)
	f.record(f.set, permits[1], true)
	if after := f.state(); after != before {
		t.Fatalf("a straggler changed the state: %+v → %+v", before, after)
	}
	f.wantDenied(f.set, before.OpenUntil)
}

func TestHotPathDoesNotWrite(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	// 10,000 attempts over 100 s, nine in ten successful.
	for i := range 10_000 {
		f.attempt(f.set, i%10 != 0)
		f.clock.Advance(10 * time.Millisecond)
	}
	gets, saves := f.store.counts()
	if saves != 0 {
		t.Fatalf("%d saves, want 0", saves)
	}
	// One read per SyncInterval at most: 100 s / 1 s, plus the first.
	if gets > 101 {
		t.Fatalf("%d reads for 10,000 attempts, want at most 101", gets)
	}
}

func TestResetClosesAndForgets(t *testing.T) {
	t.Parallel()
	f := setup(t, &breaker.Config{ConsecutiveFailures: 2})
	f.attempt(f.set, false)
	f.attempt(f.set, false)
	f.wantDenied(f.set, f.state().OpenUntil)
	if err := f.set.Reset(f.ctx, ep); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.store.breaker(ep); ok {
		t.Fatal("state still stored after Reset")
	}
	f.wantTransitions("closed>open", "open>closed")
	if r := f.hooks.breaker[1].Reason; r != "reset" {
		t.Fatalf("reset reason %q", r)
	}
	// Flows again, and one failure is not a run of two.
	f.attempt(f.set, false)
	if _, ok := f.store.breaker(ep); ok {
		t.Fatal("one failure after Reset tripped the breaker")
	}
	// Resetting a closed breaker reports nothing.
	if err := f.set.Reset(f.ctx, ep); err != nil {
		t.Fatal(err)
	}
	f.wantTransitions("closed>open", "open>closed")
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cfg   breaker.Config
		field string
	}{
		{breaker.Config{}, ""},
		{breaker.Config{ConsecutiveFailures: -1, FailureRate: -1}, "ConsecutiveFailures"},
		{breaker.Config{FailureRate: 1.5}, "FailureRate"},
		{breaker.Config{MinRequests: -3}, "MinRequests"},
		{breaker.Config{CoolDown: time.Minute, MaxCoolDown: time.Second}, "MaxCoolDown"},
		{breaker.Config{SyncInterval: time.Minute}, "SyncInterval"},
		{breaker.Config{ProbeLease: -time.Second}, "ProbeLease"},
		{breaker.Config{MaxEndpoints: -1}, "MaxEndpoints"},
		{breaker.Config{CoolDown: time.Second}, ""}, // SyncInterval defaults below it
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		switch {
		case tt.field == "" && err != nil:
			t.Errorf("%+v: %v", tt.cfg, err)
		case tt.field != "" && (err == nil || !strings.Contains(err.Error(), "Config."+tt.field)):
			t.Errorf("%+v: error %v, want one naming %s", tt.cfg, err, tt.field)
		}
	}
	var nilCfg *breaker.Config
	if err := nilCfg.Validate(); err != nil {
		t.Errorf("nil config: %v", err)
	}
	if _, err := breaker.New(newFakeStore(), &breaker.Config{FailureRate: 2}); !errors.Is(err, kapsel.ErrInvalid) || !strings.Contains(err.Error(), "Config.FailureRate") {
		t.Errorf("New with an invalid config: %v, want ErrInvalid naming Config.FailureRate", err)
	}
	if _, err := breaker.New(nil, nil); !errors.Is(err, kapsel.ErrInvalid) {
		t.Errorf("New with a nil store: %v, want ErrInvalid", err)
	}
}

// TestStragglerDoesNotSettleTheProbe (issue 9 item 5): an attempt allowed
// while the breaker was closed finishes, failing, after the cool-down, while
// this same Set's probe is out. Only the probe settles the half-open state:
// the straggler's failure changes nothing, and the probe's success closes
// the breaker.
func TestStragglerDoesNotSettleTheProbe(t *testing.T) {
	t.Parallel()
	f := setup(t, &breaker.Config{ConsecutiveFailures: 1})
	straggler, _ := f.allow(f.set) // a slow attempt starts
	f.attempt(f.set, false)        // another one fails: the breaker trips
	open := f.state()
	f.clock.Set(open.OpenUntil)
	probe, _ := f.allow(f.set)
	if !probe.Allowed || probe.Probe == 0 {
		t.Fatalf("probe permit = %+v", probe)
	}
	halfOpen := f.state()

	// The straggler, with an endpoint timeout above the cool-down, fails now.
	f.clock.Advance(10 * time.Second)
	f.record(f.set, straggler, false)
	if st := f.state(); st != halfOpen {
		t.Fatalf("the straggler's failure moved the half-open breaker: %+v → %+v", halfOpen, st)
	}
	// The probe succeeds: closed.
	f.clock.Advance(time.Second)
	f.record(f.set, probe, true)
	if st := f.state(); st.Status != kapsel.BreakerClosed || st.Trips != 0 {
		t.Fatalf("after the probe succeeded: %+v, want closed", st)
	}
	f.wantTransitions("closed>open", "open>half_open", "half_open>closed")
}

// mustNew is breaker.New for a config the test knows to be valid.
func mustNew(t testing.TB, store breaker.Store, cfg *breaker.Config) *breaker.Set {
	t.Helper()
	s, err := breaker.New(store, cfg)
	if err != nil {
		t.Fatalf("breaker.New: %v", err)
	}
	return s
}
