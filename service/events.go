package service

import (
	"context"
	"errors"

	"github.com/kapsel-dev/kapsel"
)

// EventFilter selects the events of [Service.ListEvents].
type EventFilter struct {
	// EndpointID keeps the events of one endpoint; "" for all.
	EndpointID kapsel.EndpointID
	// Status keeps the events in one status; "" for all.
	Status kapsel.EventStatus
	ListOptions
}

// ListEvents lists the tenant's events, newest last, without bodies.
// Errors: E1009 for an unknown status, a bad limit or a malformed cursor;
// E1011 when the endpoint is not the tenant's.
func (s *Service) ListEvents(ctx context.Context, tenant kapsel.TenantID, f EventFilter) (*Page[*kapsel.Event], error) {
	limit, err := f.check(func(c string) error { _, err := kapsel.ParseEventID(c); return err })
	if err != nil {
		return nil, err
	}
	if f.Status != "" && !f.Status.Valid() {
		return nil, invalid("status must be one of pending, delivering, delivered, failed")
	}
	params := kapsel.EventListParams{TenantID: tenant, Status: f.Status}
	if f.EndpointID != "" {
		if _, err := s.GetEndpoint(ctx, tenant, f.EndpointID); err != nil {
			return nil, err
		}
		params.EndpointID = f.EndpointID
	}
	return list(limit, f.Cursor, func(limit int, cursor string) ([]*kapsel.Event, error) {
		params.Limit, params.Cursor = limit, kapsel.EventID(cursor)
		return s.store.EventList(ctx, &params)
	}, func(e *kapsel.Event) string { return string(e.ID) })
}

// GetEvent returns one of the tenant's events, with its body when
// includeBody is set. Errors: E1011 when it is not the tenant's.
func (s *Service) GetEvent(ctx context.Context, tenant kapsel.TenantID, id kapsel.EventID, includeBody bool) (*kapsel.Event, error) {
	e, err := s.store.EventGet(ctx, &kapsel.EventGetParams{ID: id, TenantID: tenant, IncludeBody: includeBody})
	if err != nil {
		return nil, notFoundErr(err, "event", string(id))
	}
	return e, nil
}

// ListAttempts lists an event's attempts, oldest first. Errors: E1009 for a
// bad limit or cursor; E1011 when the event is not the tenant's.
func (s *Service) ListAttempts(ctx context.Context, tenant kapsel.TenantID, id kapsel.EventID, o ListOptions) (*Page[*kapsel.Attempt], error) {
	limit, err := o.check(func(c string) error { _, err := kapsel.ParseAttemptID(c); return err })
	if err != nil {
		return nil, err
	}
	p, err := list(limit, o.Cursor, func(limit int, cursor string) ([]*kapsel.Attempt, error) {
		return s.store.AttemptList(ctx, &kapsel.AttemptListParams{
			EventID: id, TenantID: tenant, Limit: limit, Cursor: kapsel.AttemptID(cursor),
		})
	}, func(a *kapsel.Attempt) string { return string(a.ID) })
	if err != nil {
		return nil, notFoundErr(err, "event", string(id))
	}
	return p, nil
}

// RetryEvent queues a delivered or failed event for one more, manual
// attempt with the same webhook-id, due at once. Errors: E1011 when the
// event is not the tenant's; E1009 when it is pending or delivering.
func (s *Service) RetryEvent(ctx context.Context, tenant kapsel.TenantID, id kapsel.EventID) (*kapsel.Event, error) {
	e, err := s.store.EventRetry(ctx, &kapsel.EventRetryParams{ID: id, TenantID: tenant, Now: s.now()})
	switch {
	case errors.Is(err, kapsel.ErrIllegalTransition):
		return nil, invalid("event %s is neither delivered nor failed; only finished events can be retried", id)
	case err != nil:
		return nil, notFoundErr(err, "event", string(id))
	}
	s.Wake()
	return e, nil
}
