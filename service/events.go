package service

import (
	"context"
	"errors"

	"github.com/kapsel-dev/kapsel"
)

// EventFilter selects the events of [Service.ListEvents].
type EventFilter struct {
	// SourceID keeps the events ingested by one of the tenant's sources
	// (deleted or not); "" for all.
	SourceID kapsel.SourceID
	// Type keeps the events of exactly this type (no wildcard; case
	// matters); "" for all. At most 255 bytes of UTF-8 text.
	Type string
	ListOptions
}

// ListEvents lists the tenant's events, oldest first, without bodies, each
// with the summary of its deliveries by status. Errors: E1009 for a
// malformed source id, a type no event can have (over 255 bytes, invalid
// UTF-8 or NUL), a bad limit or a malformed cursor; E1011 for a source id
// that is not one of the tenant's (unknown, another tenant's, or deleted
// with no event left to list), as for any foreign id (I9).
func (s *Service) ListEvents(ctx context.Context, tenant kapsel.TenantID, f EventFilter) (*Page[*kapsel.Event], error) {
	limit, err := f.check(func(c string) error { _, err := kapsel.ParseEventID(c); return err })
	if err != nil {
		return nil, err
	}
	if f.SourceID != "" {
		if _, err := kapsel.ParseSourceID(string(f.SourceID)); err != nil {
			return nil, invalid("source_id is not a source id")
		}
	}
	if len(f.Type) > kapsel.MaxEventTypeLen || kapsel.SafeText(f.Type) != f.Type {
		return nil, invalid("type must be at most %d bytes of UTF-8 text", kapsel.MaxEventTypeLen)
	}
	if f.SourceID != "" {
		if err := s.checkSourceFilter(ctx, tenant, f.SourceID); err != nil {
			return nil, err
		}
	}
	params := kapsel.EventListParams{TenantID: tenant, SourceID: f.SourceID, Type: f.Type}
	return list(limit, f.Cursor, func(limit int, cursor string) ([]*kapsel.Event, error) {
		params.Limit, params.Cursor = limit, kapsel.EventID(cursor)
		return s.store.EventList(ctx, &params)
	}, func(e *kapsel.Event) string { return string(e.ID) })
}

// GetEvent returns one of the tenant's events with the summary of its
// deliveries by status, and its body when includeBody is set. Errors: E1011
// when it is not the tenant's.
func (s *Service) GetEvent(ctx context.Context, tenant kapsel.TenantID, id kapsel.EventID, includeBody bool) (*kapsel.Event, error) {
	e, err := s.store.EventGet(ctx, &kapsel.EventGetParams{ID: id, TenantID: tenant, IncludeBody: includeBody})
	if err != nil {
		return nil, notFoundErr(err, "event", string(id))
	}
	return e, nil
}

// RetryEvent queues each delivered or failed delivery of the event (to an
// endpoint not deleted) for one more, manual attempt with the same
// webhook-id, due at once, and returns how many; pending and delivering
// ones are left as they are. Errors: E1011 when the event is not the
// tenant's.
func (s *Service) RetryEvent(ctx context.Context, tenant kapsel.TenantID, id kapsel.EventID) (int, error) {
	n, err := s.store.DeliveryRetryEvent(ctx, &kapsel.DeliveryRetryEventParams{EventID: id, TenantID: tenant, Now: s.now()})
	if err != nil {
		return 0, notFoundErr(err, "event", string(id))
	}
	if n > 0 {
		s.Wake()
	}
	return n, nil
}

// checkSourceFilter answers E1011 unless source id, used as a list filter,
// is the tenant's: a source of the tenant that is not deleted, or a deleted
// one whose events the tenant still has (the filter keeps the events of a
// deleted source; stores do not read deleted sources, so one with no event
// left reads as unknown).
func (s *Service) checkSourceFilter(ctx context.Context, tenant kapsel.TenantID, id kapsel.SourceID) error {
	_, err := s.store.SourceGet(ctx, &kapsel.SourceGetParams{ID: id, TenantID: tenant})
	if !errors.Is(err, kapsel.ErrNotFound) {
		return err
	}
	evs, lerr := s.store.EventList(ctx, &kapsel.EventListParams{TenantID: tenant, SourceID: id, Limit: 1})
	if lerr != nil || len(evs) > 0 {
		return lerr
	}
	return notFoundErr(err, "source", string(id))
}
