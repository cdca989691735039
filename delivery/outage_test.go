package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/delivery"
	"github.com/kapsel-dev/kapsel/kapseltest"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

// outageStore fails DeliveryComplete with ErrUnavailable while down reports
// true, as a database restart does, and counts the failed calls.
type outageStore struct {
	testStore
	down func() bool

	mu        sync.Mutex
	failed    int
	firstFail chan struct{} // closed at the first failed call
	// now, when set, dates the failed calls (on the test's clock).
	now                      func() time.Time
	failedAt, failedExtendAt []time.Time
	failExtends              bool // DeliveryExtend fails while down too
}

func newOutageStore(down func() bool) *outageStore {
	return &outageStore{testStore: memstore.New(), down: down, firstFail: make(chan struct{})}
}

func (s *outageStore) DeliveryComplete(ctx context.Context, p *kapsel.DeliveryCompleteParams) ([]error, error) {
	if s.down() {
		s.mu.Lock()
		s.failed++
		if s.failed == 1 {
			close(s.firstFail)
		}
		if s.now != nil {
			s.failedAt = append(s.failedAt, s.now())
		}
		s.mu.Unlock()
		return nil, fmt.Errorf("completing deliveries: %w: connection refused", kapsel.ErrUnavailable)
	}
	return s.testStore.DeliveryComplete(ctx, p)
}

func (s *outageStore) DeliveryExtend(ctx context.Context, p *kapsel.DeliveryExtendParams) ([]bool, error) {
	if s.failExtends && s.down() {
		s.mu.Lock()
		if s.now != nil {
			s.failedExtendAt = append(s.failedExtendAt, s.now())
		}
		s.mu.Unlock()
		return nil, fmt.Errorf("extending leases: %w: connection refused", kapsel.ErrUnavailable)
	}
	return s.testStore.DeliveryExtend(ctx, p)
}

// longestGap returns the longest time between two consecutive times.
func longestGap(ts []time.Time) time.Duration {
	var g time.Duration
	for i := 1; i < len(ts); i++ {
		g = max(g, ts[i].Sub(ts[i-1]))
	}
	return g
}

func (s *outageStore) failedCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// auditEqualsReality requires the destination to have received exactly one
// request per attempt record of the deliveries, and each delivery to be
// delivered.
func (f *fixture) auditEqualsReality(dls []*kapsel.Delivery) {
	f.t.Helper()
	records := 0
	for _, dl := range dls {
		got := f.waitAttempts(dl, 1)
		if got.Status != kapsel.DeliveryDelivered {
			f.t.Fatalf("delivery %s: status %s", dl.ID, got.Status)
		}
		records += len(f.attemptsOf(dl.ID))
	}
	if n := f.dest.Count(); n != records {
		f.t.Fatalf("the destination received %d requests, the audit trail has %d attempts (I5 of docs/guarantees.md)", n, records)
	}
}

// TestStoreOutageOfOneSecondLosesNoAttempt: the store refuses every
// completion for one second of real time (a database restart); each request
// that reached the destination still gets its attempt record, because the
// completer retries until shortly before the lease ends (issue 9 item 2).
func TestStoreOutageOfOneSecondLosesNoAttempt(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var until time.Time
	store := newOutageStore(func() bool {
		mu.Lock()
		defer mu.Unlock()
		return time.Now().Before(until)
	})
	f := setupOn(t, store, kapseltest.NewClock(time.Time{}), func(c *delivery.Config) {
		c.Clock = kapsel.SystemClock() // the outage is real time
		c.LeaseDuration = 3 * time.Second
	})
	mu.Lock()
	until = time.Now().Add(time.Second)
	mu.Unlock()
	start := time.Now()
	dls := make([]*kapsel.Delivery, 20)
	for i := range dls {
		dls[i] = f.insert(nil, `{}`)
	}
	f.dest.WaitForRequests(t, len(dls), waitLong)
	f.auditEqualsReality(dls)
	if store.failedCalls() == 0 {
		t.Fatal("no completion failed: the outage did not happen")
	}
	t.Logf("recorded after %v; %d completion calls failed during the outage", time.Since(start).Round(time.Millisecond), store.failedCalls())
}

// TestStoreOutageOfTenSecondsLosesNoAttempt: as above for a 10 s outage,
// measured on the fake clock that the completer's backoff waits on; the test
// runs the clock from one timer to the next.
func TestStoreOutageOfTenSecondsLosesNoAttempt(t *testing.T) {
	t.Parallel()
	clock := kapseltest.NewClock(time.Time{})
	end := clock.Now().Add(10 * time.Second)
	store := newOutageStore(func() bool { return clock.Now().Before(end) })
	f := setupOn(t, store, clock, func(c *delivery.Config) { c.LeaseDuration = 30 * time.Second })
	dls := make([]*kapsel.Delivery, 20)
	for i := range dls {
		dls[i] = f.insert(nil, `{}`)
	}
	f.dest.WaitForRequests(t, len(dls), waitLong)
	// The claim loop's poll timer, the keep-alive's timer and the
	// completer's backoff timer: the completer failed and waits for the
	// store.
	for clock.Now().Before(end) {
		if !clock.WaitForTimers(3, waitLong) {
			t.Fatalf("the completer did not wait for the store at %v", clock.Now())
		}
		next, _ := clock.NextDeadline()
		clock.Set(next)
	}
	// The last step may have fired the poll timer only: move on until the
	// completer's last wait (at most 5 s) has ended and everything is
	// recorded.
	f.advanceUntil(clock.Now(), func() bool {
		for _, dl := range dls {
			if f.delivery(dl.ID).Status != kapsel.DeliveryDelivered {
				return false
			}
		}
		return true
	})
	f.auditEqualsReality(dls)
	if store.failedCalls() < 5 {
		t.Fatalf("only %d completion calls failed during the outage", store.failedCalls())
	}
	t.Logf("%d completion calls failed during the 10 s outage", store.failedCalls())
}

// TestStoreOutageRetriesCatchAShortWindow: the store is down for 20 s, up
// for 3 s, down for 1 s (renewals and completions alike), with a 30 s lease.
// The fault campaign lost 3 attempt records to this sequence: the
// completer's backoff had grown to ~6 s and the keep-alive ticks every
// lease/3 (10 s), so both slept through the 3 s window and the leases ran
// out in the second outage. While the store fails, both must retry at least
// every 1.25 s (1 s, jittered), so any window longer than that saves every
// record (I5).
func TestStoreOutageRetriesCatchAShortWindow(t *testing.T) {
	t.Parallel()
	clock := kapseltest.NewClock(time.Time{})
	t0 := clock.Now()
	down := func() bool {
		d := clock.Now().Sub(t0)
		return d < 20500*time.Millisecond || (d >= 23500*time.Millisecond && d < 24500*time.Millisecond)
	}
	store := newOutageStore(down)
	store.now, store.failExtends = clock.Now, true
	f := setupOn(t, store, clock, func(c *delivery.Config) { c.LeaseDuration = 30 * time.Second })
	dls := make([]*kapsel.Delivery, 20)
	for i := range dls {
		dls[i] = f.insert(nil, `{}`)
	}
	f.dest.WaitForRequests(t, len(dls), waitLong)
	delivered := func() bool {
		for _, dl := range dls {
			if f.delivery(dl.ID).Status != kapsel.DeliveryDelivered {
				return false
			}
		}
		return true
	}
	// The claim loop's poll timer, the keep-alive's timer and the
	// completer's backoff timer, from one to the next, until all is
	// recorded or the outages are over.
	end := t0.Add(24500 * time.Millisecond)
	stuck := time.Now().Add(waitLong)
	for clock.Now().Before(end) && !delivered() {
		if !clock.WaitForTimers(3, 20*time.Millisecond) {
			if time.Now().After(stuck) {
				t.Fatalf("the completer did not wait for the store at %v", clock.Now().Sub(t0))
			}
			continue // recording, or just recorded: delivered tells
		}
		next, _ := clock.NextDeadline()
		clock.Set(next)
		stuck = time.Now().Add(waitLong)
	}
	f.advanceUntil(clock.Now(), delivered)
	store.mu.Lock()
	gapC, gapE, nE := longestGap(store.failedAt), longestGap(store.failedExtendAt), len(store.failedExtendAt)
	store.mu.Unlock()
	if gapC > 1250*time.Millisecond {
		t.Errorf("the completer waited %v between two tries of an unavailable store, want at most 1.25 s", gapC)
	}
	if nE < 2 || gapE > 1250*time.Millisecond {
		t.Errorf("the keep-alive retried a failed renewal after %v (%d failures), want at most 1.25 s", gapE, nE)
	}
	f.auditEqualsReality(dls)
}

// TestStopBoundedWhileStoreUnavailable: with the store down for good, Stop
// returns soon after its context ends (not at the end of the lease),
// reporting the failure; the attempt is not recorded and the delivery's
// lease will expire.
func TestStopBoundedWhileStoreUnavailable(t *testing.T) {
	t.Parallel()
	var down atomic.Bool
	store := newOutageStore(down.Load)
	f := setupOn(t, store, kapseltest.NewClock(time.Time{}), nil)
	// The fixture's dispatcher stops cleanly; this test's own one does not.
	if err := f.d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	down.Store(true)
	d, err := delivery.New(f.store, &f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	dl := f.insert(nil, `{}`)
	d.Wake()
	f.dest.WaitForRequests(t, 1, waitLong)
	select {
	case <-store.firstFail:
	case <-time.After(waitLong):
		t.Fatal("the completer never tried to record the attempt")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = d.Stop(ctx)
	took := time.Since(start)
	if !errors.Is(err, kapsel.ErrUnavailable) {
		t.Fatalf("Stop = %v, want the recording failure", err)
	}
	if took > 2*time.Second {
		t.Fatalf("Stop took %v with a 200 ms context", took)
	}
	if got := f.delivery(dl.ID); got.Status != kapsel.DeliveryDelivering || got.Attempts != 0 {
		t.Fatalf("delivery: status %s, attempts %d; want delivering, 0 (its lease expires)", got.Status, got.Attempts)
	}
	t.Logf("Stop returned after %v: %v", took.Round(time.Millisecond), err)
}
