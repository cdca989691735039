package memstore

import (
	"context"
	"fmt"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// delivery returns the delivery visible to tenant (any when empty);
// ErrNotFound otherwise. Deliveries of deleted endpoints stay readable (the
// audit trail). s.mu is held.
func (s *Store) delivery(id kapsel.DeliveryID, tenant kapsel.TenantID) (*kapsel.Delivery, error) {
	d, ok := s.deliveries[id]
	if !ok || (tenant != "" && d.TenantID != tenant) {
		return nil, fmt.Errorf("delivery %s: %w", id, kapsel.ErrNotFound)
	}
	return d, nil
}

// liveEndpoint reports whether the endpoint exists and is not deleted.
// s.mu is held.
func (s *Store) liveEndpoint(id kapsel.EndpointID) bool {
	r, ok := s.endpoints[id]
	return ok && !r.deleted()
}

// DeliveryGet returns the delivery, without its event.
func (s *Store) DeliveryGet(ctx context.Context, params *kapsel.DeliveryGetParams) (*kapsel.Delivery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.delivery(params.ID, params.TenantID)
	if err != nil {
		return nil, fmt.Errorf("getting %w", err)
	}
	return copyDelivery(d), nil
}

// DeliveryList lists deliveries in id order after Cursor, without their
// events.
func (s *Store) DeliveryList(ctx context.Context, params *kapsel.DeliveryListParams) ([]*kapsel.Delivery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	matching := func(yield func(*kapsel.Delivery) bool) {
		for _, d := range s.deliveries {
			switch {
			case params.TenantID != "" && d.TenantID != params.TenantID,
				params.EndpointID != "" && d.EndpointID != params.EndpointID,
				params.EventID != "" && d.EventID != params.EventID,
				params.Status != "" && d.Status != params.Status:
				continue
			}
			if !yield(d) {
				return
			}
		}
	}
	return page(matching, func(d *kapsel.Delivery) kapsel.DeliveryID { return d.ID }, params.Cursor, params.Limit, copyDelivery), nil
}

// DeliveryRetry puts one delivered or failed delivery back in the queue for
// a manual attempt now.
func (s *Store) DeliveryRetry(ctx context.Context, params *kapsel.DeliveryRetryParams) (*kapsel.Delivery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.delivery(params.ID, params.TenantID)
	if err != nil {
		return nil, fmt.Errorf("retrying %w", err)
	}
	if !s.liveEndpoint(d.EndpointID) {
		return nil, fmt.Errorf("retrying delivery %s: endpoint %s: %w", d.ID, d.EndpointID, kapsel.ErrNotFound)
	}
	if !d.Status.Terminal() {
		return nil, fmt.Errorf("retrying delivery %s: %w: it is %s", d.ID, kapsel.ErrIllegalTransition, d.Status)
	}
	requeue(d, ts(params.Now))
	return copyDelivery(d), nil
}

// requeue puts a finished delivery back in the queue for a manual attempt
// at now; its LastError is kept.
func requeue(d *kapsel.Delivery, now time.Time) {
	d.Status = kapsel.DeliveryPending
	d.NextAttemptAt = now
	d.NextTrigger = kapsel.TriggerManual
	d.LeaseToken, d.LeaseExpiresAt = "", time.Time{}
}

// DeliveryRetryEvent retries every delivered or failed delivery of the
// event whose endpoint is not deleted.
func (s *Store) DeliveryRetryEvent(ctx context.Context, params *kapsel.DeliveryRetryEventParams) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.event(params.EventID, params.TenantID); err != nil {
		return 0, fmt.Errorf("retrying the deliveries of %w", err)
	}
	now, n := ts(params.Now), 0
	for _, d := range s.byEvent[params.EventID] {
		if d.Status.Terminal() && s.liveEndpoint(d.EndpointID) {
			requeue(d, now)
			n++
		}
	}
	return n, nil
}

// DeliveryReplay retries every delivery of the endpoint with the given
// status whose event was created in [Since, Until). ErrNotFound when the
// endpoint is not visible to TenantID; ErrInvalid when Status is not
// delivered or failed.
func (s *Store) DeliveryReplay(ctx context.Context, params *kapsel.DeliveryReplayParams) (int, error) {
	if !params.Status.Terminal() {
		return 0, fmt.Errorf("replaying deliveries: %w: status must be delivered or failed, got %q", kapsel.ErrInvalid, params.Status)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.endpoint(params.EndpointID, params.TenantID); err != nil {
		return 0, fmt.Errorf("replaying deliveries of %w", err)
	}
	since, until, now := ts(params.Since), ts(params.Until), ts(params.Now)
	n := 0
	for _, d := range s.deliveries {
		if d.EndpointID != params.EndpointID || d.Status != params.Status ||
			!inRange(s.events[d.EventID].CreatedAt, since, until) {
			continue
		}
		requeue(d, now)
		n++
	}
	return n, nil
}

// inRange reports whether t is in [since, until); a zero bound is open.
func inRange(t, since, until time.Time) bool {
	return (since.IsZero() || !t.Before(since)) && (until.IsZero() || t.Before(until))
}
