package delivery

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// Time: the store is the time authority for leases (docs/delivery.md,
// "Time"). Every time the dispatcher passes to the store — claims, lease
// renewals, completions, releases, breaker windows — is compared there with
// times other processes wrote: lease ends above all. Taken from each node's
// own clock, a node 30 s ahead of another sees that node's 25 s leases as
// expired the moment they are taken, and attempts their deliveries a second
// time while the first attempt runs (fencing keeps the records right, not
// the destination). So, with clock sync on, the dispatcher's clock is
// Config.Clock anchored to the store's: it measures the offset between the
// two at Start and every ClockSyncInterval, and reads "now" as the store's
// time at the last measurement plus the time elapsed since on its own
// clock (the monotonic clock for the system clock, so a step of the node's
// wall clock changes nothing). Timers are durations, unaffected.
//
// A measurement is one StoreNow round trip: the store read its clock at
// some point during it, so taking the midpoint leaves an error of at most
// half the round trip, plus the drift of the two clocks since
// (ClockDriftAllowance). That uncertainty is added to the dispatcher's own
// lease checks (startable, the completer's give-up point); the store's
// comparisons tolerate it through the third of a lease the keep-alive
// keeps in hand (keepalive.go).

// ClockSync says whether a dispatcher anchors its time to the store's
// ([Config].ClockSync).
type ClockSync int

const (
	// ClockSyncAuto (the zero value) turns clock sync on when Config.Clock
	// is the system clock (nil, or kapsel.SystemClock()) and the store is a
	// kapsel.Timekeeper (pgstore), and off otherwise: an injected clock (a
	// test's fake one) is left alone, and single-process stores (sqlitestore,
	// memstore) have only one clock anyway.
	ClockSyncAuto ClockSync = iota
	// ClockSyncOn anchors Config.Clock, whatever it is, to the store's; New
	// fails when the store is not a kapsel.Timekeeper.
	ClockSyncOn
	// ClockSyncOff uses Config.Clock as it is: the clocks of all the nodes
	// sharing the store must then agree to well within a third of the
	// lease.
	ClockSyncOff
)

// ClockSyncInterval is how often a dispatcher with clock sync on measures
// its offset to the store's clock again: one StoreNow round trip per
// interval per dispatcher. Until the first measurement succeeds it tries
// every Config.PollInterval, and claims nothing.
const ClockSyncInterval = 30 * time.Second

// ClockDriftAllowance is how fast the uncertainty of a measurement grows
// with its age: 100 µs a second (100 ppm, twice what a poor quartz drifts),
// 3 ms over a ClockSyncInterval.
const ClockDriftAllowance = 100 * time.Microsecond

// clockSyncSamples is how many round trips the first measurement makes,
// keeping the shortest.
const clockSyncSamples = 3

// AnchoredClock returns the clock a dispatcher on store with Config.Clock
// clock and Config.ClockSync mode uses: clock itself when clock sync is
// off, or clock anchored to the store's time. The front door (package
// service) calls it once and hands the result to every component, so that
// ingest (an event's due time, the idempotency window), the management API
// (retries, replays) and the breakers read the same time as the
// dispatcher; a clock it returned is passed through unchanged. The anchored
// clock reads clock itself until the dispatcher using it has made its first
// measurement, at Start. It returns an error wrapping kapsel.ErrInvalid for
// ClockSyncOn on a store that is not a kapsel.Timekeeper.
func AnchoredClock(store kapsel.DispatcherStore, clock kapsel.Clock, mode ClockSync) (kapsel.Clock, error) {
	if sc, ok := clock.(*storeClock); ok {
		return sc, nil
	}
	system := clock == nil || clock == kapsel.SystemClock()
	if clock == nil {
		clock = kapsel.SystemClock()
	}
	tk, ok := kapsel.StoreAs[kapsel.Timekeeper](store)
	switch mode {
	case ClockSyncAuto:
		if !system || !ok {
			return clock, nil
		}
	case ClockSyncOn:
		if !ok {
			return nil, fmt.Errorf("%w: delivery config: ClockSync is on but the store does not tell its time (kapsel.Timekeeper)", kapsel.ErrInvalid)
		}
	case ClockSyncOff:
		return clock, nil
	default:
		return nil, fmt.Errorf("%w: delivery config: unknown ClockSync %d", kapsel.ErrInvalid, mode)
	}
	return &storeClock{base: clock, store: tk}, nil
}

// storeClock is a kapsel.Clock anchored to a store's: Now is the store's
// time at the last measurement plus the base clock's time since.
type storeClock struct {
	base  kapsel.Clock
	store kapsel.Timekeeper
	at    atomic.Pointer[clockSample] // nil until the first measurement
}

// clockSample is one measurement: at local (the midpoint of the round
// trip, on the base clock) the store read stored; the error is at most
// halfRTT then.
type clockSample struct {
	local   time.Time
	stored  time.Time
	halfRTT time.Duration
}

// project returns the store's time at local time now, by this sample.
func (s *clockSample) project(now time.Time) time.Time { return s.stored.Add(now.Sub(s.local)) }

// uncertainty bounds the error of project(now): half the round trip, plus
// the drift allowed since.
func (s *clockSample) uncertainty(now time.Time) time.Duration {
	age := max(now.Sub(s.local), 0)
	return s.halfRTT + time.Duration(age.Seconds()*float64(ClockDriftAllowance))
}

// Now returns the store's time as last measured, or the base clock's before
// the first measurement.
func (c *storeClock) Now() time.Time {
	now := c.base.Now()
	if s := c.at.Load(); s != nil {
		return s.project(now)
	}
	return now
}

// NewTimer returns the base clock's timer: durations need no anchor.
func (c *storeClock) NewTimer(d time.Duration) kapsel.Timer { return c.base.NewTimer(d) }

// synced reports whether a measurement was made.
func (c *storeClock) synced() bool { return c.at.Load() != nil }

// uncertainty bounds the error of Now: zero before the first measurement
// (nothing is claimed then).
func (c *storeClock) uncertainty() time.Duration {
	if s := c.at.Load(); s != nil {
		return s.uncertainty(c.base.Now())
	}
	return 0
}

// offset returns the store's clock minus the base clock, as last measured.
func (c *storeClock) offset() time.Duration {
	if s := c.at.Load(); s != nil {
		return s.stored.Sub(s.local)
	}
	return 0
}

// measure makes one round trip to the store's clock.
func (c *storeClock) measure(ctx context.Context) (*clockSample, error) {
	sent := c.base.Now()
	stored, err := c.store.StoreNow(ctx)
	if err != nil {
		return nil, err
	}
	rtt := max(c.base.Now().Sub(sent), 0)
	return &clockSample{local: sent.Add(rtt / 2), stored: stored, halfRTT: rtt / 2}, nil
}

// sync makes n measurements and adopts the best one (the shortest round
// trip) when it is better than the current one as aged by the drift
// allowance, or when the two disagree by more than their uncertainties (the
// store's clock was stepped). It reports whether it adopted the new one.
func (c *storeClock) sync(ctx context.Context, n int) (bool, error) {
	var best *clockSample
	for range n {
		s, err := c.measure(ctx)
		if err != nil && best == nil {
			return false, err
		}
		if err != nil {
			break
		}
		if best == nil || s.halfRTT < best.halfRTT {
			best = s
		}
	}
	cur := c.at.Load()
	if cur != nil && best.halfRTT > cur.uncertainty(best.local) {
		gap := best.stored.Sub(cur.project(best.local)).Abs()
		if gap <= cur.uncertainty(best.local)+best.halfRTT {
			return false, nil // consistent, and less precise: keep the current one
		}
	}
	c.at.Store(best)
	return true, nil
}

// clockSync measures the offset to the store's clock every
// ClockSyncInterval until Stop, after start made the first measurement;
// while none has succeeded it tries every PollInterval, and the claim loop
// claims nothing (clockReady). The first success wakes the claim loop.
func (d *Dispatcher) clockSync(sc *storeClock) {
	defer close(d.syncDone)
	// Stop does not wait for a measurement under way.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-d.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	wait := func() time.Duration {
		if sc.synced() {
			return ClockSyncInterval
		}
		return d.cfg.PollInterval
	}
	timer := d.cfg.Clock.NewTimer(wait())
	defer timer.Stop()
	for {
		select {
		case <-d.quit:
			return
		case <-timer.C():
		}
		d.syncClock(ctx, sc)
		timer.Reset(wait())
	}
}

// syncClock makes one measurement round, bounded by ctx and
// Config.StoreTimeout, and logs its result.
func (d *Dispatcher) syncClock(ctx context.Context, sc *storeClock) {
	first := !sc.synced()
	n := 1
	if first {
		n = clockSyncSamples
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.StoreTimeout)
	defer cancel()
	adopted, err := sc.sync(ctx, n)
	switch {
	case err != nil && first:
		d.log.Warn("reading the store's clock failed; claiming nothing until it answers", slog.Any("error", err))
	case err != nil:
		d.log.Warn("reading the store's clock failed; keeping the last offset",
			slog.Duration("offset", sc.offset()), slog.Duration("uncertainty", sc.uncertainty()), slog.Any("error", err))
	case first:
		d.log.Info("clock anchored to the store's", slog.Duration("offset", sc.offset()), slog.Duration("uncertainty", sc.uncertainty()))
		d.Wake()
	case adopted:
		d.log.Debug("clock offset to the store's measured", slog.Duration("offset", sc.offset()), slog.Duration("uncertainty", sc.uncertainty()))
	}
}

// clockReady reports whether the dispatcher may claim: its clock is not
// anchored, or has been measured.
func (d *Dispatcher) clockReady() bool {
	sc, ok := d.cfg.Clock.(*storeClock)
	return !ok || sc.synced()
}

// clockUncertainty bounds the error of the dispatcher's clock against the
// store's: zero when it is not anchored (the store's time is then the
// dispatcher's by definition).
func (d *Dispatcher) clockUncertainty() time.Duration {
	if sc, ok := d.cfg.Clock.(*storeClock); ok {
		return sc.uncertainty()
	}
	return 0
}

// Clock returns the dispatcher's clock: Config.Clock, anchored to the
// store's when clock sync is on (Config.ClockSync). Components that write
// times the dispatcher compares — an ingester's due times, say — should use
// it when they share the dispatcher's process (the front door does).
func (d *Dispatcher) Clock() kapsel.Clock { return d.cfg.Clock }
