package delivery_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/delivery"
	"github.com/kapsel-dev/kapsel/kapseltest"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

// DeliveryExtend fails while failExtend is set, as an unavailable store
// does, and otherwise notes how many leases it was given.
func (s *spyStore) DeliveryExtend(ctx context.Context, p *kapsel.DeliveryExtendParams) ([]bool, error) {
	if s.failExtend.Load() {
		return nil, fmt.Errorf("extending leases: %w: connection refused", kapsel.ErrUnavailable)
	}
	s.mu.Lock()
	s.extended = append(s.extended, len(p.Leases))
	s.mu.Unlock()
	return s.testStore.DeliveryExtend(ctx, p)
}

// extends returns the number of leases of each DeliveryExtend call that
// reached the store.
func (s *spyStore) extends() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.extended)
}

// crashStore is the store as one dispatcher sees it: once crash is called,
// each of that dispatcher's calls fails, as if its process had been killed
// (kill -9): no renewal, no record, no release reaches the store any more.
// Its attempts in flight go on until their destination answers; nothing of
// them is written.
type crashStore struct {
	testStore
	crashed atomic.Bool
}

var errCrashed = fmt.Errorf("%w: the process is gone", kapsel.ErrUnavailable)

func (s *crashStore) crash() { s.crashed.Store(true) }

func (s *crashStore) DeliveryClaim(ctx context.Context, p *kapsel.DeliveryClaimParams) ([]*kapsel.Delivery, error) {
	if s.crashed.Load() {
		return nil, errCrashed
	}
	return s.testStore.DeliveryClaim(ctx, p)
}

func (s *crashStore) DeliveryComplete(ctx context.Context, p *kapsel.DeliveryCompleteParams) ([]error, error) {
	if s.crashed.Load() {
		return nil, errCrashed
	}
	return s.testStore.DeliveryComplete(ctx, p)
}

func (s *crashStore) DeliveryRelease(ctx context.Context, p *kapsel.DeliveryReleaseParams) (int, error) {
	if s.crashed.Load() {
		return 0, errCrashed
	}
	return s.testStore.DeliveryRelease(ctx, p)
}

func (s *crashStore) DeliveryExtend(ctx context.Context, p *kapsel.DeliveryExtendParams) ([]bool, error) {
	if s.crashed.Load() {
		return nil, errCrashed
	}
	return s.testStore.DeliveryExtend(ctx, p)
}

func (s *crashStore) EndpointGet(ctx context.Context, p *kapsel.EndpointGetParams) (*kapsel.Endpoint, error) {
	if s.crashed.Load() {
		return nil, errCrashed
	}
	return s.testStore.EndpointGet(ctx, p)
}

// startDoomed starts a dispatcher on store whose Stop, when the test ends,
// may fail: it is the dispatcher a test crashes, or one that shares the
// fake clock with a test that leaves it outcomes it cannot record.
func startDoomed(t *testing.T, store kapsel.DispatcherStore, cfg *delivery.Config) *delivery.Dispatcher {
	t.Helper()
	d, err := delivery.New(store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = d.Stop(ctx)
	})
	return d
}

// keepAliveFixture is a fixture whose own dispatcher is stopped, with the
// lease given, and a dispatcher A on crash (over the fixture's memstore,
// not its spy: the spy counts the claims of the fixture's dispatchers
// only) that claims the deliveries inserted before it starts.
type keepAliveFixture struct {
	*fixture
	crash *crashStore
	a     *delivery.Dispatcher
}

func setupKeepAlive(t *testing.T, lease time.Duration, edit func(*delivery.Config)) *keepAliveFixture {
	t.Helper()
	mem := memstore.New()
	f := setupOn(t, mem, kapseltest.NewClock(time.Time{}), func(c *delivery.Config) {
		c.LeaseDuration = lease
		if edit != nil {
			edit(c)
		}
	})
	if err := f.d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &keepAliveFixture{fixture: f, crash: &crashStore{testStore: mem}}
}

// startA starts dispatcher A and waits until it has made n requests.
func (k *keepAliveFixture) startA(n int) {
	k.t.Helper()
	cfg := k.cfg
	k.a = startDoomed(k.t, k.crash, &cfg)
	k.a.Wake()
	k.dest.WaitForRequests(k.t, n, waitLong)
}

// step waits until the four timers of dispatchers A and B (poll and
// keep-alive each) are armed — every claim, renewal and record the last
// step caused is done — and then moves the fake clock by d.
func (k *keepAliveFixture) step(d time.Duration) {
	k.t.Helper()
	if !k.clock.WaitForTimers(4, waitLong) {
		k.t.Fatalf("at %v the dispatchers did not go back to sleep", k.clock.Now())
	}
	k.clock.Advance(d)
}

// noLeaseLost requires no hooked attempt to have lost its lease.
func (k *keepAliveFixture) noLeaseLost() {
	k.t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, a := range k.attempts {
		if a.Outcome == kapsel.OutcomeLeaseLost {
			k.t.Fatalf("attempt %d of %s lost its lease", a.Number, a.DeliveryID)
		}
	}
}

// TestLongAttemptKeepsItsLease: an attempt that runs for more than three
// leases keeps its delivery — the keep-alive renews the lease every third
// of it, so another dispatcher polling the same store all along never
// claims it — and its outcome is recorded. A delivery queued behind it for
// as long keeps its lease too, and is attempted once, not released.
func TestLongAttemptKeepsItsLease(t *testing.T) {
	t.Parallel()
	const lease = 6 * time.Second
	k := setupKeepAlive(t, lease, func(c *delivery.Config) {
		c.Workers = 2
		c.PerEndpointConcurrency = 1 // the second delivery waits behind the first
	})
	k.dest.Respond(kapseltest.Response{Hang: true}) // the first request hangs, the rest answer 200
	dls := []*kapsel.Delivery{k.insert(nil, `{"n":1}`), k.insert(nil, `{"n":2}`)}
	k.startA(1)
	for _, dl := range dls {
		if got := k.delivery(dl.ID); got.Status != kapsel.DeliveryDelivering {
			t.Fatalf("delivery %s is %s, want claimed by A", dl.ID, got.Status)
		}
	}
	cfg := k.cfg
	k.newDispatcher(&cfg) // B, on the spy
	start := k.clock.Now()
	steps := 0
	for k.clock.Now().Before(start.Add(3*lease + lease/2)) {
		k.step(time.Second)
		steps++
		now := k.clock.Now()
		for _, dl := range dls {
			// Renewed every 2 s while the clock moves by 1 s at a time: at
			// least half a lease is always left.
			got := k.waitFor(dl, func(d *kapsel.Delivery) bool { return d.LeaseExpiresAt.Sub(now) >= lease/2 })
			if got.Status != kapsel.DeliveryDelivering || got.Attempts != 0 {
				t.Fatalf("at %v: delivery %s is %s with %d attempts", now.Sub(start), dl.ID, got.Status, got.Attempts)
			}
		}
		if _, claimed := k.spy.counts(); claimed != 0 {
			t.Fatalf("at %v dispatcher B claimed %d deliveries", now.Sub(start), claimed)
		}
	}
	if claims, _ := k.spy.counts(); claims < steps/2 {
		t.Fatalf("dispatcher B made %d claims in %d polls", claims, steps)
	}

	k.dest.Release()
	for _, dl := range dls {
		got := k.requireDelivered(dl)
		if got.Attempts != 1 || len(k.attemptsOf(dl.ID)) != 1 {
			t.Fatalf("delivery %s: %d attempts, %d records; want 1", dl.ID, got.Attempts, len(k.attemptsOf(dl.ID)))
		}
	}
	if n := k.dest.Count(); n != 2 {
		t.Fatalf("the destination got %d requests, want 2", n)
	}
	if _, claimed := k.spy.counts(); claimed != 0 {
		t.Fatalf("dispatcher B claimed %d deliveries", claimed)
	}
	k.noLeaseLost()
	t.Logf("the attempt ran %v of fake time over a %v lease; B polled %d times", k.clock.Now().Sub(start), lease, steps)
}

// TestCrashedDispatcherReclaimedWithinLease: a dispatcher that dies in the
// middle of an attempt (its store calls fail from then on: no renewal, no
// record, no release) loses its delivery when the lease it last extended
// ends — not before, and at most LeaseDuration plus one poll after the
// crash — and another dispatcher makes it.
func TestCrashedDispatcherReclaimedWithinLease(t *testing.T) {
	t.Parallel()
	const lease = 6 * time.Second
	k := setupKeepAlive(t, lease, nil)
	k.dest.Respond(kapseltest.Response{Hang: true})
	dl := k.insert(nil, `{}`)
	k.startA(1)
	claimed := k.delivery(dl.ID)
	cfg := k.cfg
	k.newDispatcher(&cfg) // B
	// A runs a while, renewing its lease past the end it was claimed with.
	for range 4 {
		k.step(time.Second)
	}
	k.waitFor(dl, func(d *kapsel.Delivery) bool { return d.LeaseExpiresAt.After(claimed.LeaseExpiresAt) })
	if !k.clock.WaitForTimers(4, waitLong) {
		t.Fatal("the dispatchers did not go back to sleep")
	}
	crashedAt := k.clock.Now()
	k.crash.crash()
	leaseEnd := k.delivery(dl.ID).LeaseExpiresAt

	var reclaimedAt time.Time
	for i := 0; ; i++ {
		if !k.clock.WaitForTimers(4, waitLong) {
			t.Fatal("the dispatchers did not go back to sleep")
		}
		if got := k.delivery(dl.ID); got.LeaseToken != claimed.LeaseToken {
			reclaimedAt = k.clock.Now()
			break
		}
		if i > 3*int(lease/time.Second) {
			t.Fatalf("not re-claimed %v after the crash", k.clock.Now().Sub(crashedAt))
		}
		k.clock.Advance(time.Second)
	}
	delay := reclaimedAt.Sub(crashedAt)
	if reclaimedAt.Before(leaseEnd) {
		t.Fatalf("re-claimed at %v, before the lease A last extended ended (%v)", reclaimedAt, leaseEnd)
	}
	if max := lease + k.cfg.PollInterval; delay > max {
		t.Fatalf("re-claimed %v after the crash, want at most %v", delay, max)
	}
	got := k.requireDelivered(dl)
	if got.Attempts != 1 || k.dest.Count() != 2 {
		t.Fatalf("delivered with %d attempt records and %d requests; want B's record of the second of 2", got.Attempts, k.dest.Count())
	}
	if claims, claimed := k.spy.counts(); claimed != 1 {
		t.Fatalf("B claimed %d deliveries in %d claims, want 1", claimed, claims)
	}
	k.dest.Release() // A's attempt ends; its outcome cannot be recorded
	t.Logf("re-claimed %v of fake time after the crash (lease %v, extended until %v after the crash)",
		delay, lease, leaseEnd.Sub(crashedAt))
}

// TestQueuedDeliveryReleasedWhenLeaseNotRenewed: a delivery waiting in its
// endpoint's queue while the store refuses the renewals is released instead
// of attempted once less than a third of its lease is left, since an
// attempt could then outlive the lease.
func TestQueuedDeliveryReleasedWhenLeaseNotRenewed(t *testing.T) {
	t.Parallel()
	f := setup(t, func(c *delivery.Config) {
		c.PerEndpointConcurrency = 1
		c.LeaseDuration = 10 * time.Second // renewed every 3.3 s
		c.PollInterval = time.Hour
	})
	f.dest.Respond(kapseltest.Response{Hang: true})
	if err := f.d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	first, second := f.insert(nil, `{"n":1}`), f.insert(nil, `{"n":2}`)
	cfg := f.cfg
	d := f.newDispatcher(&cfg)
	d.Wake()
	reqs := f.dest.WaitForRequests(t, 1, waitLong)
	queued := first
	if reqs[0].WebhookID == string(first.EventID) {
		queued = second
	}

	f.spy.failExtend.Store(true)
	f.clock.Advance(7 * time.Second) // the renewal at 3.3 s fails: 3 s of lease left
	// Paused, the endpoint's released deliveries are not claimed again, so
	// what the queue did with its delivery stays visible.
	if _, err := f.store.EndpointSetState(context.Background(), &kapsel.EndpointSetStateParams{ID: f.ep.ID, State: kapsel.EndpointPaused, Now: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	f.dest.Release()
	f.waitFor(queued, func(*kapsel.Delivery) bool { return f.spy.releases(queued.ID) > 0 })
	if n := f.dest.Count(); n != 1 {
		t.Fatalf("destination got %d requests, want 1", n)
	}
	if got := f.delivery(queued.ID); got.Attempts != 0 {
		t.Fatalf("released delivery has %d attempts", got.Attempts)
	}
}

// TestLostLeaseNotRenewed: once the store says a lease is no longer this
// dispatcher's (re-claimed by another after it ran out while the store
// refused the renewals), the keep-alive stops renewing it, and the stale
// attempt's outcome is fenced.
func TestLostLeaseNotRenewed(t *testing.T) {
	t.Parallel()
	f := setup(t, func(c *delivery.Config) {
		c.LeaseDuration = 6 * time.Second // renewed every 2 s
		c.PollInterval = time.Hour
	})
	f.dest.Respond(kapseltest.Response{Hang: true})
	dl := f.insert(nil, `{}`)
	f.dest.WaitForRequests(t, 1, waitLong)
	sleep := func() {
		t.Helper()
		if !f.clock.WaitForTimers(2, waitLong) { // poll and keep-alive
			t.Fatal("the dispatcher did not go back to sleep")
		}
	}

	sleep()
	f.clock.Advance(2 * time.Second) // a renewal that works
	sleep()
	if got := f.spy.extends(); !slices.Equal(got, []int{1}) {
		t.Fatalf("DeliveryExtend calls with %v leases, want one with 1", got)
	}
	f.spy.failExtend.Store(true)
	for range 3 { // renewals at 4 s, 6 s and 8 s fail; the lease ends at 8 s
		f.clock.Advance(2 * time.Second)
		sleep()
	}
	re, err := f.store.DeliveryClaim(context.Background(), &kapsel.DeliveryClaimParams{Limit: 1, LeaseDuration: time.Minute, Now: f.clock.Now()})
	if err != nil || len(re) != 1 {
		t.Fatalf("re-claim: %v, %d deliveries", err, len(re))
	}
	f.spy.failExtend.Store(false)
	for range 3 { // the renewal at 10 s learns the lease is lost; none follows
		f.clock.Advance(2 * time.Second)
		sleep()
	}
	if got := f.spy.extends(); !slices.Equal(got, []int{1, 1}) {
		t.Fatalf("DeliveryExtend calls with %v leases, want [1 1]: none after the store answered lost", got)
	}
	got := f.delivery(dl.ID)
	if got.LeaseToken != re[0].LeaseToken || !got.LeaseExpiresAt.Equal(re[0].LeaseExpiresAt) {
		t.Fatalf("the new owner's lease changed: token %q until %v, want %q until %v",
			got.LeaseToken, got.LeaseExpiresAt, re[0].LeaseToken, re[0].LeaseExpiresAt)
	}
	f.dest.Release()
	if info := <-f.attempt; info.Outcome != kapsel.OutcomeLeaseLost {
		t.Fatalf("the stale attempt's outcome is %s, want lease_lost", info.Outcome)
	}
}

// TestRecordingOutlivesTheClaimedLease: the completer retries an
// unavailable store until shortly before the lease ends as last extended,
// not as claimed — so while the renewals still reach the store, an outcome
// whose DeliveryComplete fails for three leases is recorded at last, and
// the destination is not sent the delivery twice.
func TestRecordingOutlivesTheClaimedLease(t *testing.T) {
	t.Parallel()
	const lease = 6 * time.Second
	clock := kapseltest.NewClock(time.Time{})
	end := clock.Now().Add(3 * lease)
	store := newOutageStore(func() bool { return clock.Now().Before(end) })
	f := setupOn(t, store, clock, func(c *delivery.Config) { c.LeaseDuration = lease })
	dl := f.insert(nil, `{}`)
	f.dest.WaitForRequests(t, 1, waitLong)
	// The poll, the keep-alive and the completer's backoff: run the clock
	// from one timer to the next until the outage ends.
	for clock.Now().Before(end) {
		if !clock.WaitForTimers(3, waitLong) {
			t.Fatalf("the completer did not wait for the store at %v", clock.Now())
		}
		next, _ := clock.NextDeadline()
		clock.Set(next)
	}
	f.advanceUntil(clock.Now(), func() bool { return f.delivery(dl.ID).Status == kapsel.DeliveryDelivered })
	f.auditEqualsReality([]*kapsel.Delivery{dl})
	if n := f.dest.Count(); n != 1 {
		t.Fatalf("the destination got %d requests, want 1", n)
	}
	t.Logf("recorded after %d failed calls over %v of fake time (lease %v)", store.failedCalls(), clock.Now().Sub(end.Add(-3*lease)), lease)
}
