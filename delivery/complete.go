package delivery

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/kapsel-dev/kapsel"
)

// Recording outcomes. An attempt that reached its destination must get its
// attempt record (I5 of docs/guarantees.md), so the completer does not give an outcome up
// while its lease may still be saved:
//
//   - A store that is unavailable (kapsel.ErrUnavailable, a timed-out call)
//     is retried with backoff (retryBackoff, waited on Config.Clock) until
//     shortly before the outcome's lease ends as last extended
//     (Config.giveUpAt, giveUpAtOf): the keep-alive goes on extending it
//     while the outcome waits, so only an outage that also stops the
//     renewals ends it. Past that point the lease may be re-claimed and the
//     delivery attempted again by someone else; the completion would come
//     back as ErrLeaseLost anyway.
//   - A batch the store refuses for any other reason may be refused because
//     of one row (bytes Postgres cannot store, say): the batch is split in
//     halves and each half recorded on its own, down to the single row the
//     store refuses, which is given up at once. One bad outcome never takes
//     its neighbours down.
//   - Once Stop's context has ended, each outcome left is tried once more,
//     without waiting, so Stop stays bounded (by one Config.StoreTimeout per
//     store call it still makes).
//
// Retrying is safe: a completion that was in fact written comes back as
// ErrLeaseLost and changes nothing.
const (
	completeRetryWait = 50 * time.Millisecond
	// completeRetryMaxWait is short so that a store back for a moment
	// between two outages is not slept through: the fault campaign lost
	// records to 20 s down, 3 s up, 1 s down when it was 5 s (jittered to
	// ~6 s). One call a second per dispatcher costs an unavailable store
	// nothing.
	completeRetryMaxWait = time.Second
	// releaseRetries is how many times a failed DeliveryRelease is retried. A
	// release that fails for good costs only a wait for the lease to expire;
	// no attempt is lost.
	releaseRetries = 3
)

// giveUpAt is when the completion of an attempt whose delivery's lease ends
// at lease — as last extended by the keep-alive, which goes on extending it
// while the completion waits — is given up: before it by a tenth of the
// lease, at most Config.StoreTimeout (the longest a last store call can
// take). A delivery without a lease counts as leased for
// Config.LeaseDuration from now.
func (c *Config) giveUpAt(lease, now time.Time) time.Time {
	if lease.IsZero() {
		lease = now.Add(c.LeaseDuration)
	}
	return lease.Add(-min(c.LeaseDuration/10, c.StoreTimeout))
}

// retryBackoff paces the retries of one store call: completeRetryWait
// doubling up to completeRetryMaxWait, jittered, never ending by itself (the
// leases, or a retry count, decide).
func (d *Dispatcher) retryBackoff() *backoff.ExponentialBackOff {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     completeRetryWait,
		RandomizationFactor: 0.25,
		Multiplier:          2,
		MaxInterval:         completeRetryMaxWait,
		Stop:                backoff.Stop,
		Clock:               d.cfg.Clock,
	}
	b.Reset()
	return b
}

// waitRetry waits wait on Config.Clock, or until Stop's context ends.
func (d *Dispatcher) waitRetry(wait time.Duration) {
	t := d.cfg.Clock.NewTimer(wait)
	select {
	case <-t.C():
	case <-d.giveUpCh:
		t.Stop()
	}
}

// completer records outcomes: it takes whatever outcomes are waiting, up to
// Config.CompleteBatch, and records them in one DeliveryComplete (and one
// DeliveryRelease) call. Under load many outcomes share a transaction; at low
// load an outcome is recorded at once, with no timer to wait for.
func (d *Dispatcher) completer() {
	defer close(d.compDone)
	batch := make([]*outcome, 0, d.cfg.CompleteBatch)
	for first := range d.completeCh {
		batch = append(batch[:0], first)
	drain:
		for len(batch) < d.cfg.CompleteBatch {
			select {
			case o, ok := <-d.completeCh:
				if !ok {
					break drain
				}
				batch = append(batch, o)
			default:
				break drain
			}
		}
		d.flush(batch)
		clear(batch)
	}
}

// flush records one batch of outcomes and runs the hooks of those recorded.
// The batch's leases are kept alive until then (keepalive.go).
func (d *Dispatcher) flush(batch []*outcome) {
	d.settle(batch)
	defer d.forget(batch)
	var owners []*outcome
	var rels []kapsel.DeliveryRelease
	for _, o := range batch {
		if o.completion != nil {
			owners = append(owners, o)
		} else {
			rels = append(rels, *o.release)
		}
	}
	if len(owners) > 0 {
		d.complete(owners)
	}
	if len(rels) > 0 {
		d.release(rels)
	}
}

// complete records the outcomes and then runs their hooks.
func (d *Dispatcher) complete(owners []*outcome) {
	d.record(owners)
	now := d.cfg.Clock.Now()
	for _, o := range owners {
		d.report(o, now)
	}
}

// record writes the outcomes' completions, setting each outcome's recordErr:
// nil, the store's answer for that completion, or why it was given up. It
// retries and splits as described at the top of this file.
func (d *Dispatcher) record(owners []*outcome) {
	b := d.retryBackoff()
	for try := 0; ; try++ {
		if try > 0 {
			owners = d.dropExpired(owners)
			if len(owners) == 0 {
				return
			}
		}
		comps := make([]kapsel.DeliveryCompletion, len(owners))
		for i, o := range owners {
			comps[i] = *o.completion
		}
		ctx, cancel := context.WithTimeout(context.Background(), d.cfg.StoreTimeout)
		errs, err := d.store.DeliveryComplete(ctx, &kapsel.DeliveryCompleteParams{Completions: comps, Now: d.cfg.Clock.Now()})
		cancel()
		if err == nil {
			for i, o := range owners {
				if i < len(errs) {
					o.recordErr = errs[i]
				}
				if o.recordErr == nil && o.completion.Status == kapsel.DeliveryPending {
					d.dueAt(o.completion.NextAttemptAt)
				}
			}
			return
		}
		if !retryable(err) {
			if len(owners) > 1 {
				d.log.Warn("the store refused a batch of attempts; recording its halves apart",
					slog.Int("count", len(owners)), slog.Any("error", err))
				half := len(owners) / 2
				d.record(owners[:half])
				d.record(owners[half:])
				return
			}
			d.giveUp(owners, err, "the store refused the attempt record")
			return
		}
		if d.abandoned() {
			d.giveUp(owners, err, "stop deadline reached while the store was unavailable")
			return
		}
		wait := b.NextBackOff()
		if until := d.earliestGiveUp(owners).Sub(d.cfg.Clock.Now()); until < wait {
			wait = max(until, 0)
		}
		d.log.Warn("recording attempts failed; retrying",
			slog.Int("count", len(owners)), slog.Duration("wait", wait), slog.Any("error", err))
		d.waitRetry(wait)
	}
}

// retryable reports whether a failed store call may succeed if made again:
// the store is unavailable or the call timed out. Anything else is a
// refusal, possibly of one row.
func retryable(err error) bool {
	return errors.Is(err, kapsel.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
}

// dropExpired gives up the outcomes whose time has come and returns the
// others.
func (d *Dispatcher) dropExpired(owners []*outcome) []*outcome {
	now := d.cfg.Clock.Now()
	keep := owners[:0:0]
	var expired []*outcome
	for _, o := range owners {
		if now.Before(d.giveUpAtOf(o, now)) {
			keep = append(keep, o)
		} else {
			expired = append(expired, o)
		}
	}
	if len(expired) > 0 {
		d.giveUp(expired, errLeaseEnding, "the store stayed unavailable until the lease was about to end")
	}
	return keep
}

// errLeaseEnding is why an outcome was given up near the end of its lease.
var errLeaseEnding = errors.New("delivery: lease about to end before the attempt could be recorded")

func (d *Dispatcher) earliestGiveUp(owners []*outcome) time.Time {
	now := d.cfg.Clock.Now()
	t := d.giveUpAtOf(owners[0], now)
	for _, o := range owners[1:] {
		if g := d.giveUpAtOf(o, now); g.Before(t) {
			t = g
		}
	}
	return t
}

// giveUp marks outcomes as not recorded: their leases will expire and the
// deliveries be attempted again.
func (d *Dispatcher) giveUp(owners []*outcome, err error, why string) {
	d.noteRecordErr(err)
	for _, o := range owners {
		o.recordErr, o.givenUp = err, true
		d.log.Error("recording attempt failed; its lease will expire and the delivery be attempted again",
			slog.String("reason", why), slog.String("delivery_id", string(o.info.DeliveryID)),
			slog.String("event_id", string(o.info.EventID)),
			slog.Int("attempt", o.info.Number), slog.Any("error", err))
	}
}

// abandoned reports whether Stop's context has ended.
func (d *Dispatcher) abandoned() bool {
	select {
	case <-d.giveUpCh:
		return true
	default:
		return false
	}
}

// report runs the hooks of one outcome once the store has answered.
func (d *Dispatcher) report(o *outcome, now time.Time) {
	info := o.info
	if err := o.recordErr; err != nil {
		switch {
		case o.givenUp:
			// Logged by giveUp.
		case errors.Is(err, kapsel.ErrLeaseLost):
			d.log.Info("lease lost before the attempt was recorded; another worker owns the delivery",
				slog.String("delivery_id", string(info.DeliveryID)), slog.Int("attempt", info.Number))
		default:
			d.log.Error("recording attempt failed", slog.String("delivery_id", string(info.DeliveryID)), slog.Any("error", err))
		}
		info.Outcome = kapsel.OutcomeLeaseLost
	}
	if info.Outcome == kapsel.OutcomeDelivered {
		info.EndToEnd = now.Sub(o.createdAt)
	}
	if h := d.cfg.Hooks.OnAttempt; h != nil {
		h(info)
	}
	if info.Outcome == kapsel.OutcomeDisabled {
		d.log.Warn("destination answered 410 Gone; endpoint disabled", slog.String("endpoint_id", string(info.EndpointID)))
		if h := d.cfg.Hooks.OnEndpointDisabled; h != nil {
			h(context.Background(), kapsel.EndpointDisabledInfo{EndpointID: info.EndpointID, Reason: kapsel.DisabledGone})
		}
	}
}

// release gives back the leases of deliveries that were not attempted,
// retrying a failing store releaseRetries times.
func (d *Dispatcher) release(rels []kapsel.DeliveryRelease) {
	b := d.retryBackoff()
	var err error
	for try := 0; ; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), d.cfg.StoreTimeout)
		_, err = d.store.DeliveryRelease(ctx, &kapsel.DeliveryReleaseParams{Releases: rels, Now: d.cfg.Clock.Now()})
		cancel()
		if err == nil || try == releaseRetries || d.abandoned() {
			break
		}
		d.waitRetry(b.NextBackOff())
	}
	if err != nil {
		d.noteRecordErr(err)
		d.log.Error("releasing leases failed; they will expire instead", slog.Int("count", len(rels)), slog.Any("error", err))
	}
}

// noteRecordErr keeps the first recording failure after Stop began, for
// Stop to return.
func (d *Dispatcher) noteRecordErr(err error) {
	if !d.life.Stopping() {
		return
	}
	d.mu.Lock()
	if d.recordErr == nil {
		d.recordErr = err
	}
	d.mu.Unlock()
}
