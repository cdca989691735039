package breaker_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/breaker"
)

// These tests run several Sets on one store: several dispatchers, or one
// dispatcher before and after a restart.

func TestRestartKeepsTheBreakerOpen(t *testing.T) {
	t.Parallel()
	f := setup(t, &breaker.Config{ConsecutiveFailures: 3})
	for range 3 {
		f.attempt(f.set, false)
	}
	openUntil := f.state().OpenUntil
	_, savesBefore := f.store.counts()

	restarted := f.another()
	f.clock.Advance(10 * time.Second)
	f.wantDenied(restarted, openUntil)
	if _, saves := f.store.counts(); saves != savesBefore {
		t.Fatal("a refused Allow wrote to the store")
	}
	// After the cool-down, the restarted Set probes, and its verdict counts.
	f.clock.Set(openUntil)
	f.attempt(restarted, true)
	if st := f.state(); st.Status != kapsel.BreakerClosed {
		t.Fatalf("after the restarted Set's probe: %+v", st)
	}
}

func TestOneProbeAcrossDispatchers(t *testing.T) {
	t.Parallel()
	f := setup(t, &breaker.Config{ConsecutiveFailures: 1})
	sets := []*breaker.Set{f.set, f.another(), f.another(), f.another()}
	for _, s := range sets[1:] {
		f.attempt(s, true) // every Set has a cached, closed state
	}
	f.attempt(f.set, false) // the first trips it
	f.clock.Set(f.state().OpenUntil)

	// Every Set asks at once, many times: one probe in all.
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for _, s := range sets {
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p, at, err := s.Allow(f.ctx, ep, f.now())
				if err != nil {
					t.Error(err)
				}
				if p.Allowed {
					allowed.Add(1)
				} else if !at.After(f.now()) {
					t.Errorf("refused with retryAt %s, not after now %s", at, f.now())
				}
			}()
		}
	}
	wg.Wait()
	if n := allowed.Load(); n != 1 {
		t.Fatalf("%d probes allowed, want 1", n)
	}
	f.wantTransitions("closed>open", "open>half_open")
}

func TestTripIsSeenByOtherDispatchersWithinSyncInterval(t *testing.T) {
	t.Parallel()
	f := setup(t, &breaker.Config{ConsecutiveFailures: 1})
	other := f.another()
	f.attempt(other, true)
	f.attempt(f.set, false)
	openUntil := f.state().OpenUntil
	// The other dispatcher's cached copy is trusted for SyncInterval…
	f.clock.Advance(breaker.DefaultSyncInterval - time.Nanosecond)
	late, _ := f.allow(other)
	if !late.Allowed {
		t.Fatal("cached closed state not trusted within SyncInterval")
	}
	f.record(other, late, false)
	// …and no longer: it sees the open breaker. Its own late failure did
	// not trip the breaker a second time.
	f.clock.Advance(time.Nanosecond)
	f.wantDenied(other, openUntil)
	f.wantTransitions("closed>open")
}

func TestAbandonedProbeIsTakenOver(t *testing.T) {
	t.Parallel()
	f := setup(t, &breaker.Config{ConsecutiveFailures: 1})
	other := f.another()
	f.attempt(f.set, false)
	f.clock.Set(f.state().OpenUntil)
	// The first Set takes the probe and dies before recording it.
	first, _ := f.allow(f.set)
	if !first.Allowed {
		t.Fatal("probe refused")
	}
	probeUntil := f.state().ProbeUntil
	f.clock.Set(probeUntil.Add(-time.Nanosecond))
	f.wantDenied(other, probeUntil) // SyncInterval from now, at most the lease end
	// Once the lease is over the other takes it over.
	f.clock.Set(probeUntil)
	second, _ := f.allow(other)
	if !second.Allowed || second.Probe == first.Probe {
		t.Fatalf("abandoned probe not taken over at ProbeUntil: %+v (first %+v)", second, first)
	}
	// The first Set's verdict, arriving late, is not the probe's any more.
	f.record(f.set, first, true)
	if st := f.state(); st.Status != kapsel.BreakerHalfOpen {
		t.Fatalf("a stale probe verdict was applied: %+v", st)
	}
	f.record(other, second, false)
	if st := f.state(); st.Status != kapsel.BreakerOpen || st.Trips != 2 {
		t.Fatalf("after the taken-over probe failed: %+v", st)
	}
	// A takeover is not a state change: no extra hook.
	f.wantTransitions("closed>open", "open>half_open", "half_open>open")
}

func TestStoreErrors(t *testing.T) {
	t.Parallel()
	errDown := errors.New("down")
	f := setup(t, &breaker.Config{ConsecutiveFailures: 2})

	// Nothing cached: Allow cannot decide.
	f.store.setFail(errDown)
	p, _, err := f.set.Allow(f.ctx, ep, f.now())
	if p.Allowed || !errors.Is(err, errDown) {
		t.Fatalf("Allow with the store down and nothing cached = %v, %v", p.Allowed, err)
	}
	// Cached: Allow goes on with it.
	f.store.setFail(nil)
	f.attempt(f.set, true)
	f.store.setFail(errDown)
	f.clock.Advance(time.Minute)
	p, _, err = f.set.Allow(f.ctx, ep, f.now())
	if !p.Allowed || err != nil {
		t.Fatalf("Allow with the store down and a cached closed state = %v, %v", p.Allowed, err)
	}
	// A trip that cannot be saved is reported, and counting starts afresh.
	f.record(f.set, p, false)
	if err := f.set.Record(f.ctx, ep, p, false, f.now()); !errors.Is(err, errDown) {
		t.Fatalf("unsaved trip: Record = %v", err)
	}
	f.store.setFail(nil)
	f.attempt(f.set, false)
	if _, ok := f.store.breaker(ep); ok {
		t.Fatal("one failure after the lost trip tripped the breaker")
	}
	f.attempt(f.set, false)
	if st := f.state(); st.Status != kapsel.BreakerOpen {
		t.Fatalf("after two more failures: %+v", st)
	}
}

func TestIdleBreakersAreDropped(t *testing.T) {
	t.Parallel()
	f := setup(t, &breaker.Config{IdleTimeout: time.Minute, MaxEndpoints: 50})
	for i := range 20 {
		id := kapsel.EndpointID("ep_" + string(rune('a'+i)))
		if _, _, err := f.set.Allow(f.ctx, id, f.now()); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.set.Len(); n != 20 {
		t.Fatalf("Len = %d, want 20", n)
	}
	f.clock.Advance(time.Minute)
	if _, _, err := f.set.Allow(f.ctx, ep, f.now()); err != nil {
		t.Fatal(err)
	}
	if n := f.set.Len(); n != 1 {
		t.Fatalf("Len after the idle timeout = %d, want 1", n)
	}
	// Never more than MaxEndpoints, however many endpoints are busy.
	for i := range 500 {
		id := kapsel.EndpointID("ep_busy_" + string(rune('a'+i%26)) + string(rune('a'+i/26)))
		if _, _, err := f.set.Allow(f.ctx, id, f.now()); err != nil {
			t.Fatal(err)
		}
		if n := f.set.Len(); n > 50 {
			t.Fatalf("Len = %d, over MaxEndpoints", n)
		}
	}
}

func TestProbeOwnerIsNotDropped(t *testing.T) {
	t.Parallel()
	f := setup(t, &breaker.Config{ConsecutiveFailures: 1, IdleTimeout: time.Minute})
	f.attempt(f.set, false)
	f.clock.Set(f.state().OpenUntil)
	probe, _ := f.allow(f.set)
	if !probe.Allowed {
		t.Fatal("probe refused")
	}
	// The probe takes two minutes (within its lease); other endpoints come
	// and go meanwhile.
	f.clock.Advance(2 * time.Minute)
	if _, _, err := f.set.Allow(f.ctx, "ep_other", f.now()); err != nil {
		t.Fatal(err)
	}
	f.record(f.set, probe, true)
	if st := f.state(); st.Status != kapsel.BreakerClosed {
		t.Fatalf("the probe's verdict was lost: %+v", st)
	}
}
