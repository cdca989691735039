package breaker

import (
	"context"
	"errors"
	"fmt"
	"time"

	circuitbreaker "github.com/mercari/go-circuitbreaker"

	"github.com/kapsel-dev/kapsel"
)

// The transitions below are the only writes to the store. Each is a
// compare-and-set on the version of the cached state: a Set that loses one
// (another dispatcher changed the state first) re-reads the state and adopts
// it rather than insisting. All are called with e.mu held.

// sync replaces the cached state by the stored one.
func (s *Set) sync(ctx context.Context, e *entry, now time.Time) error {
	st, err := s.store.BreakerGet(ctx, &kapsel.BreakerGetParams{EndpointID: e.id})
	switch {
	case errors.Is(err, kapsel.ErrNotFound):
		st = nil
	case err != nil:
		return fmt.Errorf("reading breaker of endpoint %s: %w", e.id, err)
	}
	e.adopt(st, now)
	return nil
}

// save writes next if the stored version is still that of the cached state,
// and returns what was stored. On a conflict it re-reads the state and
// returns a nil state, with the re-read's error if that failed.
func (s *Set) save(ctx context.Context, e *entry, next *kapsel.BreakerState, now time.Time) (saved *kapsel.BreakerState, err error) {
	var version int64
	if e.state != nil {
		version = e.state.Version
	}
	saved, err = s.store.BreakerSave(ctx, &kapsel.BreakerSaveParams{State: next, ExpectedVersion: version, Now: now})
	if errors.Is(err, kapsel.ErrConflict) {
		return nil, s.sync(ctx, e, now)
	}
	if err != nil {
		return nil, fmt.Errorf("saving breaker of endpoint %s: %w", e.id, err)
	}
	return saved, nil
}

// trip persists the opening that go-circuitbreaker just decided on.
func (s *Set) trip(ctx context.Context, e *entry, now time.Time) error {
	reason := s.tripReason(e.cb.Counters())
	failingSince, lastSuccess := e.runStart, e.lastSuccess
	if failingSince.IsZero() {
		failingSince = now
	}
	if !e.loaded {
		if err := s.sync(ctx, e, now); err != nil {
			e.startWindow(now)
			return err
		}
	}
	if !isClosed(e.state) {
		return nil // opened meanwhile by another dispatcher; adopted by sync
	}
	if e.state != nil && e.state.LastSuccessAt.After(lastSuccess) {
		lastSuccess = e.state.LastSuccessAt
	}
	next := &kapsel.BreakerState{
		EndpointID:    e.id,
		Status:        kapsel.BreakerOpen,
		Trips:         1,
		OpenUntil:     now.Add(s.cfg.coolDown(1)),
		FailingSince:  failingSince,
		LastSuccessAt: lastSuccess,
		LastFailureAt: now,
	}
	saved, err := s.save(ctx, e, next, now)
	if err != nil || saved == nil {
		if err != nil {
			// Not persisted: start counting afresh rather than stay open in
			// this Set alone.
			e.startWindow(now)
		}
		return err
	}
	e.adopt(saved, now)
	s.emit(ctx, e.id, kapsel.BreakerClosed, kapsel.BreakerOpen, reason)
	return s.maybeDisable(ctx, e, saved, now)
}

func (s *Set) tripReason(c circuitbreaker.Counters) string {
	if s.cfg.ConsecutiveFailures > 0 && c.ConsecutiveFailures >= int64(s.cfg.ConsecutiveFailures) {
		return fmt.Sprintf("%d consecutive failures", c.ConsecutiveFailures)
	}
	return fmt.Sprintf("%d of %d attempts failed", c.Failures, c.Failures+c.Successes)
}

// takeProbe tries to turn the due open (or abandoned half-open) state into
// a half-open state whose probe this Set owns. Pushing OpenUntil to the end
// of the probe lease makes every other dispatcher's claim skip the endpoint
// meanwhile.
func (s *Set) takeProbe(ctx context.Context, e *entry, now time.Time) (won bool, err error) {
	prev := e.state
	next := *prev
	next.Status = kapsel.BreakerHalfOpen
	next.ProbeUntil = now.Add(s.cfg.ProbeLease)
	next.OpenUntil = next.ProbeUntil
	saved, err := s.save(ctx, e, &next, now)
	if err != nil || saved == nil {
		return false, err
	}
	e.probing, e.probeVersion = true, saved.Version
	e.adopt(saved, now)
	if prev.Status == kapsel.BreakerHalfOpen {
		s.cfg.Logger.InfoContext(ctx, "breaker: probe taken over after its lease ended", "endpoint_id", e.id)
		return true, nil
	}
	s.emit(ctx, e.id, prev.Status, kapsel.BreakerHalfOpen, "cool-down over; one probe let through")
	return true, nil
}

// settleProbe applies the probe's outcome: go-circuitbreaker, half-open,
// closes on the success and reopens on the failure; the reopening doubles
// the cool-down.
func (s *Set) settleProbe(ctx context.Context, e *entry, success bool, now time.Time) error {
	e.changed = ""
	if success {
		e.lastSuccess = now
		e.cb.Success()
	} else {
		e.cb.Fail()
	}
	to := e.changed
	e.changed = ""
	prev := e.state
	next := *prev
	next.ProbeUntil = time.Time{}
	var reason string
	switch to {
	case circuitbreaker.StateClosed:
		next.Status, next.Trips = kapsel.BreakerClosed, 0
		next.OpenUntil, next.FailingSince = time.Time{}, time.Time{}
		next.LastSuccessAt = now
		reason = "probe succeeded"
	case circuitbreaker.StateOpen:
		next.Status, next.Trips = kapsel.BreakerOpen, prev.Trips+1
		next.OpenUntil = now.Add(s.cfg.coolDown(next.Trips))
		if next.FailingSince.IsZero() {
			next.FailingSince = now
		}
		next.LastFailureAt = now
		reason = fmt.Sprintf("probe failed; next probe in %s", s.cfg.coolDown(next.Trips))
	default:
		return fmt.Errorf("breaker of endpoint %s: probe outcome left it %s", e.id, to)
	}
	e.probing = false
	saved, err := s.save(ctx, e, &next, now)
	if err != nil {
		// The stored probe stays out until its lease ends, then is taken
		// over; read the state again before deciding anything.
		e.loaded = false
		return err
	}
	if saved == nil {
		return nil // taken over or reset meanwhile; adopted by save
	}
	e.adopt(saved, now)
	if saved.Status == kapsel.BreakerClosed {
		e.startWindow(now)
	}
	s.emit(ctx, e.id, kapsel.BreakerHalfOpen, saved.Status, reason)
	if saved.Status == kapsel.BreakerOpen {
		return s.maybeDisable(ctx, e, saved, now)
	}
	return nil
}

// maybeDisable disables the endpoint, reason failing, once its failures have
// run for DisableAfter. It is checked on every opening, so on every failed
// probe: at most MaxCoolDown after the window ends while deliveries wait.
func (s *Set) maybeDisable(ctx context.Context, e *entry, st *kapsel.BreakerState, now time.Time) error {
	if s.cfg.DisableAfter < 0 || st.FailingSince.IsZero() || now.Sub(st.FailingSince) < s.cfg.DisableAfter {
		return nil
	}
	_, err := s.store.EndpointSetState(ctx, &kapsel.EndpointSetStateParams{
		ID:             e.id,
		State:          kapsel.EndpointDisabled,
		DisabledReason: kapsel.DisabledFailing,
		Now:            now,
	})
	if errors.Is(err, kapsel.ErrNotFound) {
		return nil // deleted meanwhile
	}
	if err != nil {
		return fmt.Errorf("disabling failing endpoint %s: %w", e.id, err)
	}
	s.cfg.Logger.InfoContext(ctx, "breaker: endpoint disabled",
		"endpoint_id", e.id, "reason", kapsel.DisabledFailing, "failing_since", st.FailingSince)
	if h := s.cfg.Hooks.OnEndpointDisabled; h != nil {
		h(ctx, kapsel.EndpointDisabledInfo{EndpointID: e.id, Reason: kapsel.DisabledFailing})
	}
	return nil
}

// emit reports a transition this Set persisted.
func (s *Set) emit(ctx context.Context, id kapsel.EndpointID, from, to kapsel.BreakerStatus, reason string) {
	s.cfg.Logger.InfoContext(ctx, "breaker: state changed",
		"endpoint_id", id, "from", from, "to", to, "reason", reason)
	if h := s.cfg.Hooks.OnBreaker; h != nil {
		h(ctx, kapsel.BreakerInfo{EndpointID: id, From: from, To: to, Reason: reason})
	}
}
