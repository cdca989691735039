package delivery

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// Keeping leases alive (SPEC §5). Every delivery this dispatcher claimed is
// held in its lease set until its outcome has been recorded or released —
// while it waits in its endpoint's queue, while its attempt runs, and while
// the completer records it. Every LeaseDuration/3 (on Config.Clock) the
// keep-alive extends all of them in one DeliveryExtend call, to
// Now+LeaseDuration. So a lease no longer bounds an attempt (an endpoint
// may take 120 s over a 30 s lease), yet a crashed dispatcher's deliveries
// are re-claimed by another one once the lease it last extended ends:
// between 2/3 of LeaseDuration and LeaseDuration after the crash, plus up
// to a PollInterval until that dispatcher's next claim.
//
//   - A lease the store answers false for is dropped from the set: its
//     token no longer owns the delivery (re-claimed after the lease ran
//     out, or ended by its endpoint's deletion, which needs no lease). An
//     attempt in flight still ends and hands its outcome over; the store
//     fences its completion as ever (ErrLeaseLost, or recorded on a
//     delivery its endpoint's deletion ended). A queued delivery whose
//     lease was lost is given back unattempted (a no-op release).
//   - A failed DeliveryExtend (store unavailable, or slower than a third of
//     the lease) is logged and tried again at the next tick; the leases
//     keep the end they were last extended to. When the store stays away
//     longer than what is left of a lease, the lease ends: once the store
//     is back another dispatcher may re-claim the delivery and attempt it
//     again while this one's attempt may still run. That is the
//     at-least-once duplicate of I4 in docs/guarantees.md; fencing keeps
//     the audit trail right, since only the new owner's completion is
//     recorded.
//   - An attempt is started only while its lease, as last extended, has at
//     least a third of LeaseDuration left (startable): with a working
//     keep-alive it always has about two thirds or more, and one missed
//     renewal leaves a third or more; less means the store has missed two
//     in a row, and an attempt started then could outlive the lease and be
//     made twice.
//   - The completer retries an unavailable store until shortly before the
//     lease as last extended ends (giveUpAtOf); a renewed lease keeps its
//     outcome worth recording.

// lease is one delivery this dispatcher holds, from its claim until its
// outcome has been recorded or released.
type lease struct {
	key leaseKey
	// expires is the lease's end as last extended; under leaseMu.
	expires time.Time
	// settling is set once the completer records the delivery's outcome:
	// a lost answer is then expected (the record may just have committed)
	// and not logged. Under leaseMu.
	settling bool
}

// leaseKey names a lease: a delivery and its token. A delivery this
// dispatcher lost and claimed again has a new token, so a new key.
type leaseKey struct {
	id    kapsel.DeliveryID
	token string
}

// hold adds the leases of claimed deliveries to the lease set.
func (d *Dispatcher) hold(claimed []*kapsel.Delivery, now time.Time) {
	d.leaseMu.Lock()
	defer d.leaseMu.Unlock()
	for _, dl := range claimed {
		expires := dl.LeaseExpiresAt
		if expires.IsZero() { // a store that did not say: as asked
			expires = now.Add(d.cfg.LeaseDuration)
		}
		k := leaseKey{dl.ID, dl.LeaseToken}
		d.leases[k] = &lease{key: k, expires: expires}
	}
}

// leaseKey is the key of the lease an outcome settles.
func (o *outcome) leaseKey() leaseKey {
	if c := o.completion; c != nil {
		return leaseKey{c.DeliveryID, c.LeaseToken}
	}
	return leaseKey{o.release.DeliveryID, o.release.LeaseToken}
}

// leaseEndOf returns the end of a claimed delivery's lease as last
// extended, or as claimed when this dispatcher no longer holds it.
func (d *Dispatcher) leaseEndOf(dl *kapsel.Delivery) time.Time {
	d.leaseMu.Lock()
	defer d.leaseMu.Unlock()
	if l, ok := d.leases[leaseKey{dl.ID, dl.LeaseToken}]; ok {
		return l.expires
	}
	return dl.LeaseExpiresAt
}

// startable reports whether an attempt of dl may start at now: this
// dispatcher still holds its lease, with at least a third of LeaseDuration
// left, plus the uncertainty of its clock against the store's
// (clocksync.go).
func (d *Dispatcher) startable(dl *kapsel.Delivery, now time.Time) bool {
	d.leaseMu.Lock()
	defer d.leaseMu.Unlock()
	l, ok := d.leases[leaseKey{dl.ID, dl.LeaseToken}]
	return ok && l.expires.Sub(now) >= d.cfg.LeaseDuration/3+d.clockUncertainty()
}

// giveUpAtOf returns when the completer gives up recording o: shortly
// before its lease ends as last extended (Config.giveUpAt), or at
// o.giveUpAt when the lease is no longer held (lost: its end no longer
// moves).
func (d *Dispatcher) giveUpAtOf(o *outcome, now time.Time) time.Time {
	d.leaseMu.Lock()
	l, ok := d.leases[o.leaseKey()]
	var end time.Time
	if ok {
		end = l.expires
	}
	d.leaseMu.Unlock()
	if !ok {
		return o.giveUpAt
	}
	return d.cfg.giveUpAt(end, now).Add(-d.clockUncertainty())
}

// settle marks the leases of a batch the completer is about to record: a
// lost answer for them is expected from now on (the record may just have
// committed).
func (d *Dispatcher) settle(batch []*outcome) {
	d.leaseMu.Lock()
	defer d.leaseMu.Unlock()
	for _, o := range batch {
		if l, ok := d.leases[o.leaseKey()]; ok {
			l.settling = true
		}
	}
}

// forget drops the leases of a batch that was recorded, released or given
// up: this dispatcher needs them no more.
func (d *Dispatcher) forget(batch []*outcome) {
	d.leaseMu.Lock()
	defer d.leaseMu.Unlock()
	for _, o := range batch {
		delete(d.leases, o.leaseKey())
	}
}

// keepAliveEvery is the keep-alive's period: a third of the lease, so that
// a lease survives one failed renewal with a third of it to spare.
func (c *Config) keepAliveEvery() time.Duration { return c.LeaseDuration / 3 }

// keepAliveRetry is the keep-alive's period after a failed renewal, until
// one succeeds: a store back for a few seconds between two outages renews
// every lease (a tick every lease/3 slept through such a window).
const keepAliveRetry = time.Second

// keepAlive extends the leases of the lease set every keepAliveEvery until
// Stop has recorded every outcome.
func (d *Dispatcher) keepAlive() {
	defer close(d.keepDone)
	every := d.cfg.keepAliveEvery()
	timer := d.cfg.Clock.NewTimer(every)
	defer timer.Stop()
	for {
		select {
		case <-d.keepCtx.Done():
			return
		case <-timer.C():
		}
		if d.extendLeases() {
			timer.Reset(every)
		} else {
			timer.Reset(min(every, keepAliveRetry))
		}
	}
}

// extendLeases makes one DeliveryExtend call for every lease held, and
// drops those the store no longer gives this dispatcher. It reports false
// when the call failed (the store is unavailable).
func (d *Dispatcher) extendLeases() bool {
	d.leaseMu.Lock()
	held := make([]*lease, 0, len(d.leases))
	for _, l := range d.leases {
		held = append(held, l)
	}
	d.leaseMu.Unlock()
	if len(held) == 0 {
		return true
	}
	params := &kapsel.DeliveryExtendParams{
		Leases:        make([]kapsel.DeliveryLease, len(held)),
		LeaseDuration: d.cfg.LeaseDuration,
		Now:           d.cfg.Clock.Now(),
	}
	for i, l := range held {
		params.Leases[i] = kapsel.DeliveryLease{DeliveryID: l.key.id, LeaseToken: l.key.token}
	}
	// A renewal slower than a tick is worth less than the next one.
	ctx, cancel := context.WithTimeout(d.keepCtx, min(d.cfg.StoreTimeout, d.cfg.keepAliveEvery()))
	ok, err := d.store.DeliveryExtend(ctx, params)
	cancel()
	if err == nil && len(ok) != len(held) {
		err = errExtendAnswers
	}
	if err != nil {
		if d.keepCtx.Err() == nil {
			d.log.Warn("extending leases failed; retrying in a second",
				slog.Int("count", len(held)), slog.Any("error", err))
		}
		return false
	}
	until := params.Now.Add(params.LeaseDuration)
	d.leaseMu.Lock()
	defer d.leaseMu.Unlock()
	for i, l := range held {
		if ok[i] {
			if until.After(l.expires) {
				l.expires = until
			}
			continue
		}
		if _, still := d.leases[l.key]; !still {
			continue // recorded meanwhile
		}
		delete(d.leases, l.key)
		if !l.settling {
			d.log.Info("lease no longer held (re-claimed after it ran out, or its delivery ended); the outcome's record is fenced",
				slog.String("delivery_id", string(l.key.id)))
		}
	}
	return true
}

// errExtendAnswers marks a store that broke DeliveryExtend's contract.
var errExtendAnswers = errors.New("delivery: DeliveryExtend returned a wrong number of answers")
