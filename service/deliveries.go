package service

import (
	"context"
	"errors"

	"github.com/kapsel-dev/kapsel"
)

// DeliveryFilter selects the deliveries of [Service.ListDeliveries]. Empty
// fields match all.
type DeliveryFilter struct {
	// EndpointID keeps the deliveries to one of the tenant's endpoints
	// (deleted or not).
	EndpointID kapsel.EndpointID
	// EventID keeps the deliveries of one of the tenant's events.
	EventID kapsel.EventID
	// Status keeps the deliveries in one status.
	Status kapsel.DeliveryStatus
	ListOptions
}

// ListDeliveries lists the tenant's deliveries in id (= creation) order.
// Errors: E1009 for a malformed endpoint or event id, an unknown status, a
// bad limit or a malformed cursor; E1011 for an endpoint or event id that
// is not the tenant's (unknown, another tenant's, or an endpoint deleted
// with no delivery left to list), as for any foreign id (I9).
func (s *Service) ListDeliveries(ctx context.Context, tenant kapsel.TenantID, f DeliveryFilter) (*Page[*kapsel.Delivery], error) {
	limit, err := f.check(func(c string) error { _, err := kapsel.ParseDeliveryID(c); return err })
	if err != nil {
		return nil, err
	}
	if f.EndpointID != "" {
		if _, err := kapsel.ParseEndpointID(string(f.EndpointID)); err != nil {
			return nil, invalid("endpoint_id is not an endpoint id")
		}
	}
	if f.EventID != "" {
		if _, err := kapsel.ParseEventID(string(f.EventID)); err != nil {
			return nil, invalid("event_id is not an event id")
		}
	}
	if f.Status != "" && !f.Status.Valid() {
		return nil, invalid("status must be one of pending, delivering, delivered, failed")
	}
	if f.EventID != "" {
		if _, err := s.store.EventGet(ctx, &kapsel.EventGetParams{ID: f.EventID, TenantID: tenant}); err != nil {
			return nil, notFoundErr(err, "event", string(f.EventID))
		}
	}
	if f.EndpointID != "" {
		if err := s.checkEndpointFilter(ctx, tenant, f.EndpointID); err != nil {
			return nil, err
		}
	}
	params := kapsel.DeliveryListParams{TenantID: tenant, EndpointID: f.EndpointID, EventID: f.EventID, Status: f.Status}
	return list(limit, f.Cursor, func(limit int, cursor string) ([]*kapsel.Delivery, error) {
		params.Limit, params.Cursor = limit, kapsel.DeliveryID(cursor)
		return s.store.DeliveryList(ctx, &params)
	}, func(d *kapsel.Delivery) string { return string(d.ID) })
}

// GetDelivery returns one of the tenant's deliveries. Errors: E1011 when it
// is not the tenant's.
func (s *Service) GetDelivery(ctx context.Context, tenant kapsel.TenantID, id kapsel.DeliveryID) (*kapsel.Delivery, error) {
	d, err := s.store.DeliveryGet(ctx, &kapsel.DeliveryGetParams{ID: id, TenantID: tenant})
	if err != nil {
		return nil, notFoundErr(err, "delivery", string(id))
	}
	return d, nil
}

// RetryDelivery queues a delivered or failed delivery for one more, manual
// attempt with the same webhook-id, due at once, and returns it (pending).
// Errors: E1011 when it is not the tenant's or its endpoint was deleted;
// E1009 when it is pending or delivering (it will be attempted anyway).
func (s *Service) RetryDelivery(ctx context.Context, tenant kapsel.TenantID, id kapsel.DeliveryID) (*kapsel.Delivery, error) {
	d, err := s.store.DeliveryRetry(ctx, &kapsel.DeliveryRetryParams{ID: id, TenantID: tenant, Now: s.now()})
	switch {
	case errors.Is(err, kapsel.ErrIllegalTransition):
		return nil, invalid("delivery %s is neither delivered nor failed; only finished deliveries can be retried", id)
	case err != nil:
		return nil, notFoundErr(err, "delivery", string(id))
	}
	s.Wake()
	return d, nil
}

// checkEndpointFilter answers E1011 unless endpoint id, used as a list
// filter, is the tenant's: an endpoint of the tenant that is not deleted,
// or a deleted one whose deliveries the tenant still has (stores do not
// read deleted endpoints, so one with no delivery reads as unknown).
func (s *Service) checkEndpointFilter(ctx context.Context, tenant kapsel.TenantID, id kapsel.EndpointID) error {
	_, err := s.store.EndpointGet(ctx, &kapsel.EndpointGetParams{ID: id, TenantID: tenant})
	if !errors.Is(err, kapsel.ErrNotFound) {
		return err
	}
	dls, lerr := s.store.DeliveryList(ctx, &kapsel.DeliveryListParams{TenantID: tenant, EndpointID: id, Limit: 1})
	if lerr != nil || len(dls) > 0 {
		return lerr
	}
	return notFoundErr(err, "endpoint", string(id))
}
