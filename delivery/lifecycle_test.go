package delivery_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/delivery"
	"github.com/kapsel-dev/kapsel/kapseltest"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

func TestStartStopLifecycle(t *testing.T) {
	t.Parallel()
	store := memstore.New()
	if _, err := delivery.New(nil, nil); !errors.Is(err, kapsel.ErrInvalid) {
		t.Fatalf("New(nil store) = %v, want ErrInvalid", err)
	}
	if _, err := delivery.New(store, &delivery.Config{LeaseDuration: time.Second}); !errors.Is(err, kapsel.ErrInvalid) {
		t.Fatalf("New with a 1 s lease = %v, want ErrInvalid", err)
	}
	if _, err := delivery.New(store, &delivery.Config{Workers: -1}); !errors.Is(err, kapsel.ErrInvalid) {
		t.Fatalf("New with -1 workers = %v, want ErrInvalid", err)
	}

	// Stop before Start is safe.
	d, err := delivery.New(store, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	d, err = delivery.New(store, &delivery.Config{Clock: kapseltest.NewClock(time.Time{})})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); !errors.Is(err, delivery.ErrStarted) {
		t.Fatalf("second Start = %v, want ErrStarted", err)
	}
	for range 2 {
		if err := d.Stop(context.Background()); err != nil {
			t.Fatalf("Stop: %v", err)
		}
	}
	if err := d.Start(context.Background()); err == nil {
		t.Fatal("Start after Stop succeeded")
	}
}

// TestStopLetsInFlightFinish: Stop waits for in-flight attempts, which are
// delivered and recorded before it returns.
func TestStopLetsInFlightFinish(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	dls := f.insertHanging(5)

	stopped := make(chan error, 1)
	go func() { stopped <- f.d.Stop(context.Background()) }()
	// Stop must be waiting for the hung attempts.
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) while attempts were in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	f.dest.Release()
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	for _, dl := range dls {
		if got := f.delivery(dl.ID); got.Status != kapsel.DeliveryDelivered || got.Attempts != 1 {
			t.Errorf("delivery %s after Stop: %s, %d attempts", dl.ID, got.Status, got.Attempts)
		}
	}
}

// TestStopDeadlineLosesNothing: attempts still hanging when Stop's deadline
// passes are cut short, recorded (E3003) and put back for now; another
// dispatcher then makes every delivery.
func TestStopDeadlineLosesNothing(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	dls := f.insertHanging(5)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := f.d.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	now := f.clock.Now()
	for _, dl := range dls {
		got := f.delivery(dl.ID)
		if got.Status != kapsel.DeliveryPending || got.LeaseToken != "" || got.NextAttemptAt.After(now) {
			t.Fatalf("delivery after a cut-short Stop: status %s lease %q next %s", got.Status, got.LeaseToken, got.NextAttemptAt)
		}
		as := f.attemptsOf(dl.ID)
		if len(as) != 1 || as[0].ErrorCode != kapsel.CodeShuttingDown {
			t.Fatalf("attempts after a cut-short Stop: %+v", as)
		}
	}

	// Another dispatcher takes them at once — no lease to wait for.
	f.dest.SetDefault(kapseltest.Response{Status: 200})
	cfg := f.cfg
	d2 := f.newDispatcher(&cfg)
	d2.Wake()
	for _, dl := range dls {
		f.requireDelivered(dl)
	}
}

// TestStaleCompletionChangesNothing: a worker whose lease expired and whose
// delivery was claimed and made by another worker cannot record anything.
func TestStaleCompletionChangesNothing(t *testing.T) {
	t.Parallel()
	f := setup(t, func(c *delivery.Config) {
		c.LeaseDuration = 10 * time.Second
		c.PollInterval = time.Hour // only the test's wake-up claims
	})
	f.dest.Respond(kapseltest.Response{Hang: true})
	dl := f.insert(nil, `{}`)
	f.dest.WaitForRequests(t, 1, waitLong)

	// The store refuses the renewals and the lease expires; another worker
	// (here: the test) claims the delivery and makes it.
	f.spy.failExtend.Store(true)
	f.clock.Advance(11 * time.Second)
	claimed, err := f.store.DeliveryClaim(context.Background(), &kapsel.DeliveryClaimParams{Limit: 10, LeaseDuration: time.Minute, Now: f.clock.Now()})
	if err != nil || len(claimed) != 1 || claimed[0].ID != dl.ID {
		t.Fatalf("re-claim: %v, %d deliveries", err, len(claimed))
	}
	errs, err := f.store.DeliveryComplete(context.Background(), &kapsel.DeliveryCompleteParams{
		Completions: []kapsel.DeliveryCompletion{{
			DeliveryID: dl.ID, LeaseToken: claimed[0].LeaseToken, Status: kapsel.DeliveryDelivered,
			Attempt: kapsel.Attempt{Number: 1, StatusCode: 200, StartedAt: f.clock.Now()},
		}},
		Now: f.clock.Now(),
	})
	if err != nil || errs[0] != nil {
		t.Fatalf("completing the re-claim: %v %v", err, errs)
	}

	// The stale worker's attempt now ends with a 200 and tries to record it.
	f.dest.Release()
	info := <-f.attempt
	if info.Outcome != kapsel.OutcomeLeaseLost {
		t.Fatalf("stale attempt outcome %s, want lease_lost", info.Outcome)
	}
	got := f.delivery(dl.ID)
	if got.Status != kapsel.DeliveryDelivered || got.Attempts != 1 {
		t.Fatalf("delivery %s with %d attempts, want delivered with 1", got.Status, got.Attempts)
	}
	if as := f.attemptsOf(dl.ID); len(as) != 1 {
		t.Fatalf("%d attempts recorded, want only the live worker's", len(as))
	}
}

// TestLeaseRescue: a worker that died mid-attempt (here: a claim nobody
// completes) leaves a lease that expires; the dispatcher then re-claims and
// makes the delivery.
func TestLeaseRescue(t *testing.T) {
	t.Parallel()
	f := setup(t, func(c *delivery.Config) { c.PollInterval = time.Hour })
	if err := f.d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	dl := f.insert(nil, `{}`)
	dead, err := f.store.DeliveryClaim(context.Background(), &kapsel.DeliveryClaimParams{Limit: 1, LeaseDuration: 30 * time.Second, Now: f.clock.Now()})
	if err != nil || len(dead) != 1 {
		t.Fatalf("claim by the doomed worker: %v, %d", err, len(dead))
	}

	cfg := f.cfg
	cfg.PollInterval = time.Second
	d := f.newDispatcher(&cfg)
	claims, _ := f.spy.counts()
	d.Wake()
	f.spy.waitClaims(t, claims)
	if f.dest.Count() != 0 || f.delivery(dl.ID).Status != kapsel.DeliveryDelivering {
		t.Fatal("the delivery was taken while its lease was live")
	}
	f.advanceUntil(dead[0].LeaseExpiresAt, func() bool { return f.dest.Count() > 0 })
	got := f.requireDelivered(dl)
	if got.Attempts != 1 {
		t.Fatalf("attempts %d, want 1", got.Attempts)
	}
}

// fakeBreakers refuses every attempt until a time; the permits it gives
// carry probe token 7, and it notes what Record is told.
type fakeBreakers struct {
	mu      sync.Mutex
	until   time.Time
	records []bool
	permits []kapsel.BreakerPermit
}

func (b *fakeBreakers) Allow(_ context.Context, _ kapsel.EndpointID, now time.Time) (kapsel.BreakerPermit, time.Time, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.Before(b.until) {
		return kapsel.BreakerPermit{}, b.until, nil
	}
	return kapsel.BreakerPermit{Allowed: true, Probe: 7}, b.until, nil
}

func (b *fakeBreakers) Record(_ context.Context, _ kapsel.EndpointID, permit kapsel.BreakerPermit, success bool, _ time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.records = append(b.records, success)
	b.permits = append(b.permits, permit)
	return nil
}

// TestBreakerRefusalSpendsNoAttempt: while the breaker refuses, the delivery
// is released to the breaker's retry time without an attempt; then it is
// attempted and the outcome reported to the breaker.
func TestBreakerRefusalSpendsNoAttempt(t *testing.T) {
	t.Parallel()
	b := &fakeBreakers{until: time.Date(2026, 1, 1, 0, 5, 0, 0, time.UTC)}
	f := setup(t, func(c *delivery.Config) { c.Breakers = b })
	dl := f.insert(nil, `{}`)
	got := f.waitFor(dl, func(d *kapsel.Delivery) bool {
		return d.Status == kapsel.DeliveryPending && d.NextAttemptAt.Equal(b.until)
	})
	if got.Attempts != 0 || f.dest.Count() != 0 {
		t.Fatalf("refused by the breaker, yet %d attempts and %d requests", got.Attempts, f.dest.Count())
	}
	f.advanceUntil(b.until, func() bool { return f.dest.Count() > 0 })
	f.requireDelivered(dl)
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.records) != 1 || !b.records[0] {
		t.Fatalf("breaker told %v, want one success", b.records)
	}
	if b.permits[0] != (kapsel.BreakerPermit{Allowed: true, Probe: 7}) {
		t.Fatalf("Record got permit %+v, want the one Allow gave", b.permits[0])
	}
}
