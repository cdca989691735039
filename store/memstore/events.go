package memstore

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// idempotencyKey is what an idempotency key is unique over.
type idempotencyKey struct {
	endpoint kapsel.EndpointID
	key      string
}

// idempotencyEntry says which event holds a key, and until when.
type idempotencyEntry struct {
	event     kapsel.EventID
	expiresAt time.Time
}

// EventInsertMany inserts events atomically. An unknown or deleted endpoint,
// or a TenantID that does not own the endpoint, fails the whole call with
// ErrNotFound and nothing is written (as a foreign key would in SQL). An
// empty TenantID is taken from the endpoint.
func (s *Store) EventInsertMany(ctx context.Context, params *kapsel.EventInsertManyParams) ([]kapsel.EventInsertResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("inserting events: %w: %w", kapsel.ErrUnavailable, err)
	}
	window := params.IdempotencyWindow
	if window <= 0 {
		window = kapsel.DefaultIdempotencyWindow
	}
	now := ts(params.Now)
	events := make([]*kapsel.EventInsertParams, len(params.Events))
	for i, in := range params.Events {
		var err error
		if events[i], err = in.Storable(); err != nil {
			return nil, fmt.Errorf("inserting events: %w", err)
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	owners := make([]kapsel.TenantID, len(events))
	for i, in := range events {
		r, err := s.endpoint(in.EndpointID, in.TenantID)
		if err != nil {
			return nil, fmt.Errorf("inserting events: %w", err)
		}
		owners[i] = r.endpoint.TenantID
	}

	results := make([]kapsel.EventInsertResult, len(events))
	for i, in := range events {
		ik := idempotencyKey{in.EndpointID, in.IdempotencyKey}
		if in.IdempotencyKey != "" {
			if held, ok := s.idempotency[ik]; ok && now.Before(held.expiresAt) {
				first := s.events[held.event]
				if !bytes.Equal(first.BodyHash, in.BodyHash) {
					results[i].Err = fmt.Errorf("inserting event with idempotency key %q: %w (first event %s)",
						in.IdempotencyKey, kapsel.ErrIdempotencyConflict, first.ID)
					continue
				}
				results[i] = kapsel.EventInsertResult{Event: copyEvent(first, false), Duplicate: true}
				continue
			}
		}
		e := &kapsel.Event{
			ID:             kapsel.NewEventID(),
			TenantID:       owners[i],
			EndpointID:     in.EndpointID,
			Type:           in.Type,
			Channels:       in.Channels,
			Body:           cloneBytes(in.Body),
			ContentType:    in.ContentType,
			Headers:        copyHeader(in.Headers),
			IdempotencyKey: in.IdempotencyKey,
			BodyHash:       cloneBytes(in.BodyHash),
			Size:           len(in.Body),
			Status:         kapsel.EventPending,
			NextAttemptAt:  now,
			NextTrigger:    kapsel.TriggerScheduled,
			CreatedAt:      now,
		}
		s.events[e.ID] = e
		if in.IdempotencyKey != "" {
			s.idempotency[ik] = idempotencyEntry{event: e.ID, expiresAt: now.Add(window)}
		}
		results[i] = kapsel.EventInsertResult{Event: copyEvent(e, true)}
	}
	return results, nil
}

// event returns the event visible to tenant (any when empty); ErrNotFound
// otherwise. Events of deleted endpoints stay readable (the audit trail).
// s.mu is held.
func (s *Store) event(id kapsel.EventID, tenant kapsel.TenantID) (*kapsel.Event, error) {
	e, ok := s.events[id]
	if !ok || (tenant != "" && e.TenantID != tenant) {
		return nil, fmt.Errorf("event %s: %w", id, kapsel.ErrNotFound)
	}
	return e, nil
}

// EventGet returns the event, with its body only when IncludeBody is set.
func (s *Store) EventGet(ctx context.Context, params *kapsel.EventGetParams) (*kapsel.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.event(params.ID, params.TenantID)
	if err != nil {
		return nil, fmt.Errorf("getting %w", err)
	}
	return copyEvent(e, params.IncludeBody), nil
}

// EventList lists events in id order after Cursor, without bodies.
func (s *Store) EventList(ctx context.Context, params *kapsel.EventListParams) ([]*kapsel.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	matching := func(yield func(*kapsel.Event) bool) {
		for _, e := range s.events {
			switch {
			case params.TenantID != "" && e.TenantID != params.TenantID,
				params.EndpointID != "" && e.EndpointID != params.EndpointID,
				params.Status != "" && e.Status != params.Status,
				params.Type != "" && e.Type != params.Type:
				continue
			}
			if !yield(e) {
				return
			}
		}
	}
	return page(matching, func(e *kapsel.Event) kapsel.EventID { return e.ID }, params.Cursor, params.Limit, func(e *kapsel.Event) *kapsel.Event { return copyEvent(e, false) }), nil
}

// EventRetry puts one delivered or failed event back in the queue for a
// manual attempt now.
func (s *Store) EventRetry(ctx context.Context, params *kapsel.EventRetryParams) (*kapsel.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.event(params.ID, params.TenantID)
	if err != nil {
		return nil, fmt.Errorf("retrying %w", err)
	}
	if !e.Status.Terminal() {
		return nil, fmt.Errorf("retrying event %s: %w: it is %s", e.ID, kapsel.ErrIllegalTransition, e.Status)
	}
	requeue(e, ts(params.Now))
	return copyEvent(e, false), nil
}

func requeue(e *kapsel.Event, now time.Time) {
	e.Status = kapsel.EventPending
	e.NextAttemptAt = now
	e.NextTrigger = kapsel.TriggerManual
	e.LeaseToken, e.LeaseExpiresAt = "", time.Time{}
}

// EventReplay retries every event of the endpoint with the given status
// created in [Since, Until). ErrNotFound when the endpoint is not visible to
// TenantID; ErrInvalid when Status is not delivered or failed.
func (s *Store) EventReplay(ctx context.Context, params *kapsel.EventReplayParams) (int, error) {
	if !params.Status.Terminal() {
		return 0, fmt.Errorf("replaying events: %w: status must be delivered or failed, got %q", kapsel.ErrInvalid, params.Status)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.endpoint(params.EndpointID, params.TenantID); err != nil {
		return 0, fmt.Errorf("replaying events of %w", err)
	}
	since, until, now := ts(params.Since), ts(params.Until), ts(params.Now)
	n := 0
	for _, e := range s.events {
		if e.EndpointID != params.EndpointID || e.Status != params.Status ||
			(!since.IsZero() && e.CreatedAt.Before(since)) ||
			(!until.IsZero() && !e.CreatedAt.Before(until)) {
			continue
		}
		requeue(e, now)
		n++
	}
	return n, nil
}
