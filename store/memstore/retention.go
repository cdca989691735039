package memstore

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// RetentionEraseBodies erases the bodies of the expired events of one batch
// that are not in use (kapsel.RetentionStore).
func (s *Store) RetentionEraseBodies(ctx context.Context, params *kapsel.RetentionSweepParams) (*kapsel.RetentionSweepResult, error) {
	return s.sweep(ctx, "erasing expired bodies", params, func(e *kapsel.Event, now time.Time, res *kapsel.RetentionSweepResult) bool {
		if e.BodyErasure != kapsel.BodyKept {
			return true
		}
		if s.inUse(e.ID, params.Before) {
			return false
		}
		res.Events++
		res.Bytes += int64(len(e.Body))
		s.erase(e, kapsel.BodyExpired, now)
		return true
	})
}

// RetentionDeleteEvents removes the expired events of one batch, with their
// deliveries and attempts, that are not in use (kapsel.RetentionStore).
func (s *Store) RetentionDeleteEvents(ctx context.Context, params *kapsel.RetentionSweepParams) (*kapsel.RetentionSweepResult, error) {
	return s.sweep(ctx, "removing expired events", params, func(e *kapsel.Event, now time.Time, res *kapsel.RetentionSweepResult) bool {
		if s.inUse(e.ID, params.Before) || s.keyTaken(e, now) {
			return false
		}
		for _, d := range s.byEvent[e.ID] {
			if !d.NextAttemptAt.Before(ts(params.Before)) {
				return false
			}
		}
		res.Events++
		res.Bytes += int64(len(e.Body))
		for _, d := range s.byEvent[e.ID] {
			res.Deliveries++
			for _, a := range s.attempts[d.ID] {
				res.Attempts++
				res.Bytes += int64(len(a.ResponseBody))
			}
			delete(s.attempts, d.ID)
			delete(s.deliveries, d.ID)
		}
		delete(s.byEvent, e.ID)
		delete(s.events, e.ID)
		return true
	})
}

// sweep runs one batch: it examines up to Limit events in id order from
// From, in scope, calling do on those created before Before; do reports
// whether it dealt with the event (false: blocked).
func (s *Store) sweep(ctx context.Context, what string, params *kapsel.RetentionSweepParams,
	do func(e *kapsel.Event, now time.Time, res *kapsel.RetentionSweepResult) bool) (*kapsel.RetentionSweepResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", what, kapsel.ErrUnavailable, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	exclude := map[kapsel.TenantID]bool{}
	for _, id := range params.ExcludeTenantIDs {
		exclude[id] = true
	}
	ids := s.eventIDsFrom(params.From, func(e *kapsel.Event) bool {
		if params.TenantID != "" {
			return e.TenantID == params.TenantID
		}
		return !exclude[e.TenantID]
	})
	limit := kapsel.RetentionLimit(params.Limit)
	before, now := ts(params.Before), ts(params.Now)
	res := &kapsel.RetentionSweepResult{Done: true}
	if len(ids) > 0 {
		res.Next = ids[min(len(ids), limit+1)-1] // the rows ran out: start again at the last one
	}
	for i, id := range ids {
		if i == limit {
			res.Next, res.Done = id, false
			break
		}
		e := s.events[id]
		if !e.CreatedAt.Before(before) {
			res.Next = id
			break
		}
		if !do(e, now, res) && res.Blocked == "" {
			res.Blocked = id
		}
	}
	return res, nil
}

// eventIDsFrom returns the ids of the events that keep returns true for,
// from from on, in order. s.mu is held.
func (s *Store) eventIDsFrom(from kapsel.EventID, keep func(*kapsel.Event) bool) []kapsel.EventID {
	var ids []kapsel.EventID
	for id, e := range s.events {
		if id >= from && keep(e) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// inUse reports whether a delivery of the event has not ended: pending,
// delivering, or ended with a lease that had not run out by before. s.mu
// is held.
func (s *Store) inUse(id kapsel.EventID, before time.Time) bool {
	for _, d := range s.byEvent[id] {
		if !d.Status.Terminal() || (d.LeaseToken != "" && !d.LeaseExpiresAt.Before(ts(before))) {
			return true
		}
	}
	return false
}

// keyTaken reports whether the event holds an idempotency key that is
// still taken at now. s.mu is held.
func (s *Store) keyTaken(e *kapsel.Event, now time.Time) bool {
	if e.IdempotencyKey == "" {
		return false
	}
	held, ok := s.idempotency[idempotencyKey{e.TenantID, e.SourceID, e.IdempotencyKey}]
	return ok && held.event == e.ID && now.Before(held.expiresAt)
}

// erase drops the event's body and headers and records why and when. s.mu
// is held.
func (s *Store) erase(e *kapsel.Event, why kapsel.BodyErasure, now time.Time) {
	e.Body, e.Headers = []byte{}, http.Header{}
	e.BodyErasure, e.BodyErasedAt = why, now
}

// RetentionDeleteIdempotencyKeys removes keys whose window has ended
// (kapsel.RetentionStore).
func (s *Store) RetentionDeleteIdempotencyKeys(ctx context.Context, params *kapsel.RetentionKeysParams) (*kapsel.RetentionSweepResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("removing expired idempotency keys: %w: %w", kapsel.ErrUnavailable, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	limit, now := kapsel.RetentionLimit(params.Limit), ts(params.Now)
	res := &kapsel.RetentionSweepResult{Done: true}
	for k, v := range s.idempotency {
		if now.Before(v.expiresAt) {
			continue
		}
		if res.Events == limit {
			res.Done = false
			break
		}
		delete(s.idempotency, k)
		res.Events++
	}
	return res, nil
}

// RetentionOldest returns the oldest row of each table, by id order
// (kapsel.RetentionStore).
func (s *Store) RetentionOldest(ctx context.Context) (*kapsel.RetentionOldest, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("reading the oldest rows: %w: %w", kapsel.ErrUnavailable, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := &kapsel.RetentionOldest{}
	var ev kapsel.EventID
	for id, e := range s.events {
		if ev == "" || id < ev {
			ev, out.Events = id, e.CreatedAt
		}
	}
	var dl kapsel.DeliveryID
	var at kapsel.AttemptID
	for id, d := range s.deliveries {
		if dl == "" || id < dl {
			dl, out.Deliveries = id, d.CreatedAt
		}
		for _, a := range s.attempts[id] {
			if at == "" || a.ID < at {
				at, out.Attempts = a.ID, a.StartedAt
			}
		}
	}
	return out, nil
}

// EventExpunge erases bodies at once: one event, or a batch of a tenant's
// (kapsel.RetentionStore).
func (s *Store) EventExpunge(ctx context.Context, params *kapsel.EventExpungeParams) (*kapsel.RetentionSweepResult, error) {
	if params.TenantID == "" {
		return nil, fmt.Errorf("expunging: %w: a tenant is required", kapsel.ErrInvalid)
	}
	if params.ID == "" {
		sp := &kapsel.RetentionSweepParams{TenantID: params.TenantID, Before: maxTime, From: params.From, Limit: params.Limit, Now: params.Now}
		return s.sweep(ctx, "expunging the tenant's bodies", sp, func(e *kapsel.Event, now time.Time, res *kapsel.RetentionSweepResult) bool {
			s.expunge(e, now, res)
			return true
		})
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("expunging event %s: %w: %w", params.ID, kapsel.ErrUnavailable, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.events[params.ID]
	if !ok || e.TenantID != params.TenantID {
		return nil, fmt.Errorf("expunging event %s: %w", params.ID, kapsel.ErrNotFound)
	}
	res := &kapsel.RetentionSweepResult{Done: true}
	s.expunge(e, ts(params.Now), res)
	return res, nil
}

// maxTime is after every event's creation.
var maxTime = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// expunge erases e's body unless it was erased already, and ends its
// unfinished deliveries. s.mu is held.
func (s *Store) expunge(e *kapsel.Event, now time.Time, res *kapsel.RetentionSweepResult) {
	if e.BodyErasure != kapsel.BodyKept {
		return
	}
	res.Events++
	res.Bytes += int64(len(e.Body))
	s.erase(e, kapsel.BodyExpunged, now)
	e.Trace.State = "" // the sender's: erased with the body
	for _, d := range s.byEvent[e.ID] {
		if !d.Status.Terminal() {
			d.Status, d.LastError = kapsel.DeliveryFailed, kapsel.LastErrorBodyExpunged
			res.DeliveriesEnded++
		}
	}
}
