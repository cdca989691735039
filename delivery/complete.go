package delivery

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// completeRetries is how many times a failed EventComplete or EventRelease
// call is retried, and completeRetryWait the first wait (doubled each time).
// The waits are real time: they pace a struggling store, they are not part
// of any schedule. The outcome is safe to retry: a completion that was in
// fact written comes back as ErrLeaseLost and changes nothing.
const (
	completeRetries   = 3
	completeRetryWait = 50 * time.Millisecond
)

// completer records outcomes: it takes whatever outcomes are waiting, up to
// Config.CompleteBatch, and records them in one EventComplete (and one
// EventRelease) call. Under load many outcomes share a transaction; at low
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
func (d *Dispatcher) flush(batch []*outcome) {
	var comps []kapsel.EventCompletion
	var owners []*outcome
	var rels []kapsel.EventRelease
	for _, o := range batch {
		if o.completion != nil {
			comps = append(comps, *o.completion)
			owners = append(owners, o)
		} else {
			rels = append(rels, *o.release)
		}
	}
	if len(comps) > 0 {
		d.complete(comps, owners)
	}
	if len(rels) > 0 {
		d.release(rels)
	}
}

func (d *Dispatcher) complete(comps []kapsel.EventCompletion, owners []*outcome) {
	var errs []error
	err := d.retryStore(func(ctx context.Context) error {
		var err error
		errs, err = d.store.EventComplete(ctx, &kapsel.EventCompleteParams{Completions: comps, Now: d.cfg.Clock.Now()})
		return err
	})
	if err != nil {
		d.noteRecordErr(err)
		d.log.Error("recording attempts failed; their leases will expire and the events be retried",
			slog.Int("count", len(comps)), slog.Any("error", err))
	}
	now := d.cfg.Clock.Now()
	for i, o := range owners {
		info := o.info
		var itemErr error
		switch {
		case err != nil:
			itemErr = err
		case i < len(errs):
			itemErr = errs[i]
		}
		if itemErr != nil {
			if err == nil && !errors.Is(itemErr, kapsel.ErrLeaseLost) {
				d.log.Error("recording attempt failed", slog.String("event_id", string(info.EventID)), slog.Any("error", itemErr))
			} else if err == nil {
				d.log.Info("lease lost before the attempt was recorded; another worker owns the event",
					slog.String("event_id", string(info.EventID)), slog.Int("attempt", info.Number))
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
				h(kapsel.EndpointDisabledInfo{EndpointID: info.EndpointID, Reason: kapsel.DisabledGone})
			}
		}
	}
}

func (d *Dispatcher) release(rels []kapsel.EventRelease) {
	err := d.retryStore(func(ctx context.Context) error {
		_, err := d.store.EventRelease(ctx, &kapsel.EventReleaseParams{Releases: rels, Now: d.cfg.Clock.Now()})
		return err
	})
	if err != nil {
		d.noteRecordErr(err)
		d.log.Error("releasing leases failed; they will expire instead", slog.Int("count", len(rels)), slog.Any("error", err))
	}
}

// retryStore runs one store call with Config.StoreTimeout, retrying it a
// few times when it fails.
func (d *Dispatcher) retryStore(call func(ctx context.Context) error) error {
	wait := completeRetryWait
	var err error
	for try := 0; ; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), d.cfg.StoreTimeout)
		err = call(ctx)
		cancel()
		if err == nil || try == completeRetries {
			return err
		}
		t := time.NewTimer(wait)
		<-t.C
		wait *= 2
	}
}

// noteRecordErr keeps the first recording failure after Stop began, for
// Stop to return.
func (d *Dispatcher) noteRecordErr(err error) {
	d.mu.Lock()
	if d.stopStarted && d.recordErr == nil {
		d.recordErr = err
	}
	d.mu.Unlock()
}
