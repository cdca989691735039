package memstore

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// idempotencyKey is what an idempotency key is unique over: its scope
// (tenant, source; the source is empty for sends) and the key.
type idempotencyKey struct {
	tenant kapsel.TenantID
	source kapsel.SourceID
	key    string
}

// idempotencyEntry says which event holds a key, and until when.
type idempotencyEntry struct {
	event     kapsel.EventID
	expiresAt time.Time
}

// EventInsertMany inserts events atomically and fans each new one out: one
// pending delivery per live endpoint of its tenant whose subscription
// matches it, or per endpoint of EndpointIDs. A row whose tenant does not
// exist or was deleted gets Err wrapping ErrNotFound and writes nothing.
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
	results := make([]kapsel.EventInsertResult, len(events))
	for i, in := range events {
		if r, ok := s.tenants[in.TenantID]; !ok || r.deleted() {
			results[i].Err = fmt.Errorf("inserting event: tenant %q: %w", in.TenantID, kapsel.ErrNotFound)
			continue
		}
		results[i] = s.insertEvent(in, now, window)
	}
	return results, nil
}

// insertEvent inserts one event and its deliveries, or finds its duplicate:
// the idempotency key is looked at before the endpoints named, so a retry
// gets its first answer whatever happened to them since. s.mu is held.
func (s *Store) insertEvent(in *kapsel.EventInsertParams, now time.Time, window time.Duration) kapsel.EventInsertResult {
	ik := idempotencyKey{in.TenantID, in.SourceID, in.IdempotencyKey}
	if in.IdempotencyKey != "" {
		if held, ok := s.idempotency[ik]; ok && now.Before(held.expiresAt) {
			first := s.events[held.event]
			if !bytes.Equal(first.BodyHash, in.BodyHash) {
				return kapsel.EventInsertResult{Err: fmt.Errorf("inserting event with idempotency key %q: %w (first event %s)",
					in.IdempotencyKey, kapsel.ErrIdempotencyConflict, first.ID)}
			}
			return kapsel.EventInsertResult{Event: copyEvent(first, false), Duplicate: true}
		}
	}
	e := &kapsel.Event{
		ID:             kapsel.NewEventID(),
		TenantID:       in.TenantID,
		SourceID:       in.SourceID,
		Type:           in.Type,
		Channels:       in.Channels,
		Body:           cloneBytes(in.Body),
		ContentType:    in.ContentType,
		Headers:        copyHeader(in.Headers),
		IdempotencyKey: in.IdempotencyKey,
		BodyHash:       cloneBytes(in.BodyHash),
		Size:           len(in.Body),
		Trace:          in.Trace,
		CreatedAt:      now,
	}
	var targets []kapsel.EndpointID
	if len(in.EndpointIDs) > 0 {
		for _, id := range in.EndpointIDs {
			if _, err := s.endpoint(id, e.TenantID); err != nil {
				return kapsel.EventInsertResult{Err: fmt.Errorf("inserting event: %w", err)}
			}
		}
		targets = in.EndpointIDs
	} else {
		routing := e.Routing()
		for id, r := range s.endpoints {
			if !r.deleted() && r.endpoint.Receives(routing) {
				targets = append(targets, id)
			}
		}
		slices.Sort(targets)
	}
	s.events[e.ID] = e
	s.byEvent[e.ID] = make(map[kapsel.EndpointID]*kapsel.Delivery, len(targets))
	for _, id := range targets {
		s.addDelivery(e, id, kapsel.TriggerScheduled, now)
	}
	if in.IdempotencyKey != "" {
		s.idempotency[ik] = idempotencyEntry{event: e.ID, expiresAt: now.Add(window)}
	}
	out := copyEvent(e, true)
	out.Deliveries.Add(kapsel.DeliveryPending, len(targets))
	return kapsel.EventInsertResult{Event: out}
}

// addDelivery creates the pending delivery of event e to endpoint id, due
// at now, unless the pair already has one; it reports whether it did.
// s.mu is held.
func (s *Store) addDelivery(e *kapsel.Event, id kapsel.EndpointID, trigger kapsel.AttemptTrigger, now time.Time) bool {
	if _, ok := s.byEvent[e.ID][id]; ok {
		return false
	}
	d := &kapsel.Delivery{
		ID:            kapsel.NewDeliveryID(),
		TenantID:      e.TenantID,
		EventID:       e.ID,
		EndpointID:    id,
		Status:        kapsel.DeliveryPending,
		NextAttemptAt: now,
		NextTrigger:   trigger,
		CreatedAt:     now,
	}
	s.deliveries[d.ID] = d
	if s.byEvent[e.ID] == nil {
		s.byEvent[e.ID] = map[kapsel.EndpointID]*kapsel.Delivery{}
	}
	s.byEvent[e.ID][id] = d
	return true
}

// event returns the event visible to tenant (any when empty); ErrNotFound
// otherwise. Events stay readable whatever happens to their source and
// endpoints (the audit trail). s.mu is held.
func (s *Store) event(id kapsel.EventID, tenant kapsel.TenantID) (*kapsel.Event, error) {
	e, ok := s.events[id]
	if !ok || (tenant != "" && e.TenantID != tenant) {
		return nil, fmt.Errorf("event %s: %w", id, kapsel.ErrNotFound)
	}
	return e, nil
}

// eventOut copies e for a caller, with its body only when withBody is set,
// and its deliveries summary. s.mu is held.
func (s *Store) eventOut(e *kapsel.Event, withBody bool) *kapsel.Event {
	c := copyEvent(e, withBody)
	for _, d := range s.byEvent[e.ID] {
		c.Deliveries.Add(d.Status, 1)
	}
	return c
}

// EventGet returns the event with its deliveries summary, and its body only
// when IncludeBody is set.
func (s *Store) EventGet(ctx context.Context, params *kapsel.EventGetParams) (*kapsel.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.event(params.ID, params.TenantID)
	if err != nil {
		return nil, fmt.Errorf("getting %w", err)
	}
	return s.eventOut(e, params.IncludeBody), nil
}

// EventList lists events in id order after Cursor, without bodies, each with
// its deliveries summary.
func (s *Store) EventList(ctx context.Context, params *kapsel.EventListParams) ([]*kapsel.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	matching := func(yield func(*kapsel.Event) bool) {
		for _, e := range s.events {
			switch {
			case params.TenantID != "" && e.TenantID != params.TenantID,
				params.SourceID != "" && e.SourceID != params.SourceID,
				params.Type != "" && e.Type != params.Type:
				continue
			}
			if !yield(e) {
				return
			}
		}
	}
	return page(matching, func(e *kapsel.Event) kapsel.EventID { return e.ID }, params.Cursor, params.Limit,
		func(e *kapsel.Event) *kapsel.Event { return s.eventOut(e, false) }), nil
}
