package delivery

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/kapseltest"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

// fakeTimekeeper is a store whose clock is the fake clock moved by offset.
// Each StoreNow takes the next of rtts (the last one repeats) on the fake
// clock, and reads the store's clock at readAt of the way through it (0:
// as it arrives, 1: just before it answers).
type fakeTimekeeper struct {
	kapsel.Store
	clock  *kapseltest.Clock
	mu     sync.Mutex
	offset time.Duration
	rtts   []time.Duration
	readAt float64
	err    error
	calls  int
	claims []time.Time // the Now of each DeliveryClaim
}

func (f *fakeTimekeeper) StoreNow(context.Context) (time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return time.Time{}, f.err
	}
	rtt := f.rtts[min(f.calls-1, len(f.rtts)-1)]
	before := time.Duration(float64(rtt) * f.readAt)
	f.clock.Advance(before)
	t := f.clock.Now().Add(f.offset)
	f.clock.Advance(rtt - before)
	return t, nil
}

func (f *fakeTimekeeper) DeliveryClaim(ctx context.Context, p *kapsel.DeliveryClaimParams) ([]*kapsel.Delivery, error) {
	f.mu.Lock()
	f.claims = append(f.claims, p.Now)
	f.mu.Unlock()
	return f.Store.DeliveryClaim(ctx, p)
}

func (f *fakeTimekeeper) set(offset time.Duration, rtts ...time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.offset, f.rtts, f.calls = offset, rtts, 0
}

func newFakeTimekeeper(clock *kapseltest.Clock, offset time.Duration, rtts ...time.Duration) *fakeTimekeeper {
	return &fakeTimekeeper{Store: memstore.New(), clock: clock, offset: offset, rtts: rtts, readAt: 0.5}
}

func TestStoreClockMeasuresTheMidpoint(t *testing.T) {
	for _, tc := range []struct {
		name   string
		readAt float64
	}{{"read mid-way", 0.5}, {"read as the request arrives", 0}, {"read just before the answer", 1}} {
		t.Run(tc.name, func(t *testing.T) {
			clock := kapseltest.NewClock(time.Time{})
			store := newFakeTimekeeper(clock, 42*time.Second, 20*time.Millisecond)
			store.readAt = tc.readAt
			sc := &storeClock{base: clock, store: store}
			if got := sc.Now(); !got.Equal(clock.Now()) || sc.synced() {
				t.Fatalf("before a measurement Now = %v, want the base clock's %v", got, clock.Now())
			}
			if _, err := sc.sync(context.Background(), 1); err != nil {
				t.Fatal(err)
			}
			// Half the round trip, and the drift allowed since its midpoint.
			if u, want := sc.uncertainty(), 10*time.Millisecond+drift(10*time.Millisecond); u != want {
				t.Fatalf("uncertainty = %v, want %v", u, want)
			}
			// The error is at most half the round trip, whenever the store
			// read its clock during it; exact when mid-way.
			want := clock.Now().Add(42 * time.Second)
			errAbs := sc.Now().Sub(want).Abs()
			if errAbs > sc.uncertainty() || tc.readAt == 0.5 && errAbs != 0 {
				t.Fatalf("Now is %v off the store's clock, uncertainty %v", errAbs, sc.uncertainty())
			}
			// Time elapsed on the base clock moves it; the uncertainty grows
			// by the drift allowance.
			clock.Advance(ClockSyncInterval)
			if got := sc.Now().Sub(want.Add(ClockSyncInterval)).Abs(); got != errAbs {
				t.Fatalf("after %v Now is %v off, want %v", ClockSyncInterval, got, errAbs)
			}
			if u, want := sc.uncertainty(), 10*time.Millisecond+drift(ClockSyncInterval+10*time.Millisecond); u != want || drift(ClockSyncInterval) != 3*time.Millisecond {
				t.Fatalf("uncertainty after %v = %v, want %v", ClockSyncInterval, u, want)
			}
		})
	}
}

func TestStoreClockKeepsTheBestSample(t *testing.T) {
	clock := kapseltest.NewClock(time.Time{})
	store := newFakeTimekeeper(clock, -time.Hour, 50*time.Millisecond, 4*time.Millisecond, 30*time.Millisecond)
	sc := &storeClock{base: clock, store: store}
	// The first measurement keeps the shortest of its round trips.
	if _, err := sc.sync(context.Background(), clockSyncSamples); err != nil {
		t.Fatal(err)
	}
	if u := sc.uncertainty(); store.calls != clockSyncSamples || u < 2*time.Millisecond || u > 2*time.Millisecond+drift(time.Second) {
		t.Fatalf("%d round trips, uncertainty %v; want %d and 2ms", store.calls, sc.uncertainty(), clockSyncSamples)
	}
	// A later, slower sample that agrees is not adopted while the aged
	// current one is more precise…
	store.set(-time.Hour, 200*time.Millisecond)
	clock.Advance(ClockSyncInterval)
	if adopted, err := sc.sync(context.Background(), 1); err != nil || adopted {
		t.Fatalf("slower consistent sample: adopted %v, %v; want kept the current one", adopted, err)
	}
	if u := sc.uncertainty(); u >= 10*time.Millisecond {
		t.Fatalf("uncertainty %v after keeping a 2ms sample for 30 s", u)
	}
	// …a faster one is…
	store.set(-time.Hour, time.Millisecond)
	if adopted, err := sc.sync(context.Background(), 1); err != nil || !adopted {
		t.Fatalf("faster sample: adopted %v, %v", adopted, err)
	}
	// …and so is a slower one that disagrees beyond both uncertainties:
	// the store's clock was stepped.
	store.set(-time.Hour+5*time.Second, 200*time.Millisecond)
	if adopted, err := sc.sync(context.Background(), 1); err != nil || !adopted {
		t.Fatalf("stepped store clock: adopted %v, %v", adopted, err)
	}
	if got := sc.offset(); got != -time.Hour+5*time.Second {
		t.Fatalf("offset after the step = %v, want -55m", got)
	}
	// A failing store keeps the last measurement.
	store.err = kapsel.ErrUnavailable
	if _, err := sc.sync(context.Background(), 1); !errors.Is(err, kapsel.ErrUnavailable) {
		t.Fatalf("sync on a failing store: %v", err)
	}
	if got := sc.offset(); got != -time.Hour+5*time.Second {
		t.Fatalf("offset after a failed measurement = %v, want kept", got)
	}
}

func TestAnchoredClockModes(t *testing.T) {
	fake := kapseltest.NewClock(time.Time{})
	tk := newFakeTimekeeper(fake, 0, time.Millisecond)
	plain := memstore.New()
	anchored := func(c kapsel.Clock) bool { _, ok := c.(*storeClock); return ok }
	for _, tc := range []struct {
		name     string
		store    kapsel.DispatcherStore
		clock    kapsel.Clock
		mode     ClockSync
		anchored bool
		invalid  bool
	}{
		{"auto, system clock (nil), Timekeeper", tk, nil, ClockSyncAuto, true, false},
		{"auto, kapsel.SystemClock(), Timekeeper", tk, kapsel.SystemClock(), ClockSyncAuto, true, false},
		{"auto, injected clock", tk, fake, ClockSyncAuto, false, false},
		{"auto, store without a clock", plain, nil, ClockSyncAuto, false, false},
		{"on, injected clock", tk, fake, ClockSyncOn, true, false},
		{"on, store without a clock", plain, nil, ClockSyncOn, false, true},
		{"off", tk, nil, ClockSyncOff, false, false},
		{"unknown mode", tk, nil, ClockSync(9), false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := AnchoredClock(tc.store, tc.clock, tc.mode)
			if tc.invalid {
				if !errors.Is(err, kapsel.ErrInvalid) {
					t.Fatalf("err = %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil || c == nil || anchored(c) != tc.anchored {
				t.Fatalf("AnchoredClock = %T, %v; want anchored %v", c, err, tc.anchored)
			}
			// An anchored clock passes through unchanged (the front door
			// anchors once, the dispatcher finds it anchored).
			if again, err := AnchoredClock(tc.store, c, tc.mode); err != nil || again != c && anchored(c) {
				t.Fatalf("AnchoredClock of its own result = %v, %v", again, err)
			}
		})
	}
}

// TestDispatcherClaimsOnStoreTime: a dispatcher with clock sync on claims
// nothing until the store's clock has answered, then passes the store's
// time to its claims, and measures again every ClockSyncInterval.
func TestDispatcherClaimsOnStoreTime(t *testing.T) {
	clock := kapseltest.NewClock(time.Time{})
	store := newFakeTimekeeper(clock, time.Hour, 2*time.Millisecond)
	store.err = kapsel.ErrUnavailable
	d, err := New(store, &Config{Clock: clock, ClockSync: ClockSyncOn, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	claims := func() []time.Time {
		store.mu.Lock()
		defer store.mu.Unlock()
		return append([]time.Time(nil), store.claims...)
	}
	calls := func() int {
		store.mu.Lock()
		defer store.mu.Unlock()
		return store.calls
	}
	// The store's clock does not answer: polls claim nothing.
	waitUntil(t, func() bool { d.Wake(); clock.Advance(DefaultPollInterval); return calls() >= 3 })
	if n := len(claims()); n != 0 {
		t.Fatalf("%d claims before the store's clock answered", n)
	}
	// It answers: the next retry anchors the clock and wakes the claim loop,
	// whose claims carry the store's time.
	store.mu.Lock()
	store.err = nil
	store.mu.Unlock()
	waitUntil(t, func() bool { clock.Advance(DefaultPollInterval); return len(claims()) > 0 })
	got := claims()[0]
	if off := got.Sub(clock.Now()); off < time.Hour-time.Minute || off > time.Hour {
		t.Fatalf("claim Now is %v from the dispatcher's clock, want the store's (+1h)", off)
	}
	// Every ClockSyncInterval it measures again: the store's clock moved.
	store.set(2*time.Hour, 2*time.Millisecond)
	waitUntil(t, func() bool {
		clock.Advance(ClockSyncInterval)
		return d.Clock().Now().Sub(clock.Now()) > time.Hour+time.Minute
	})
}

// drift is the drift allowance over d.
func drift(d time.Duration) time.Duration {
	return time.Duration(d.Seconds() * float64(ClockDriftAllowance))
}

// waitUntil polls cond (which may move a fake clock) for at most 10 s.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for range 5000 {
		if cond() {
			return
		}
		<-tick.C
	}
	t.Fatal("condition not met within 10 s")
}
