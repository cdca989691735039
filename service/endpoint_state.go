package service

import (
	"context"
	"errors"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// GetEndpoint returns one of the tenant's endpoints. Errors: E1011 when it
// is unknown, deleted or another tenant's.
func (s *Service) GetEndpoint(ctx context.Context, tenant kapsel.TenantID, id kapsel.EndpointID) (*kapsel.Endpoint, error) {
	e, err := s.store.EndpointGet(ctx, &kapsel.EndpointGetParams{ID: id, TenantID: tenant})
	if err != nil {
		return nil, notFoundErr(err, "endpoint", string(id))
	}
	return e, nil
}

// ListEndpoints lists the tenant's endpoints in id order. Errors: E1009 for
// a bad limit or a malformed cursor.
func (s *Service) ListEndpoints(ctx context.Context, tenant kapsel.TenantID, o ListOptions) (*Page[*kapsel.Endpoint], error) {
	limit, err := o.check(func(c string) error { _, err := kapsel.ParseEndpointID(c); return err })
	if err != nil {
		return nil, err
	}
	return list(limit, o.Cursor, func(limit int, cursor string) ([]*kapsel.Endpoint, error) {
		return s.store.EndpointList(ctx, &kapsel.EndpointListParams{TenantID: tenant, Limit: limit, Cursor: kapsel.EndpointID(cursor)})
	}, func(e *kapsel.Endpoint) string { return string(e.ID) })
}

// DeleteEndpoint deletes an endpoint: no new delivery is made to it, and
// in the same store operation its pending and delivering deliveries end as
// failed with last error "endpoint deleted" (kapsel.LastErrorEndpointDeleted;
// an attempt already in flight is still recorded). Before it returns, the
// service's dispatcher drops the deliveries of it already claimed
// (delivery.Dispatcher.EndpointDeleted): no new attempt starts in this
// process once it has returned; dispatchers of other processes stop within
// delivery.Config.EndpointRecheckAfter (docs/delivery.md). Its deliveries
// and their attempts stay readable. Errors: E1011 as GetEndpoint.
func (s *Service) DeleteEndpoint(ctx context.Context, tenant kapsel.TenantID, id kapsel.EndpointID) error {
	err := s.store.EndpointDelete(ctx, &kapsel.EndpointDeleteParams{ID: id, TenantID: tenant, Now: s.now()})
	if err != nil {
		return notFoundErr(err, "endpoint", string(id))
	}
	s.dispatcher.EndpointDeleted(id)
	return nil
}

// PauseEndpoint pauses an endpoint: its events keep getting deliveries to
// it, which wait until it is resumed. Deliveries of it that the service's
// dispatcher already claimed are given back unattempted
// (delivery.Dispatcher.EndpointChanged). Errors: E1011 as GetEndpoint.
func (s *Service) PauseEndpoint(ctx context.Context, tenant kapsel.TenantID, id kapsel.EndpointID) (*kapsel.Endpoint, error) {
	return s.setState(ctx, tenant, id, kapsel.EndpointPaused)
}

// ResumeEndpoint makes a paused or disabled endpoint active again: it
// resets its circuit breaker, and its waiting deliveries are due at once.
// Errors: E1011 as GetEndpoint. Ownership is checked before the breaker is
// touched.
func (s *Service) ResumeEndpoint(ctx context.Context, tenant kapsel.TenantID, id kapsel.EndpointID) (*kapsel.Endpoint, error) {
	if _, err := s.GetEndpoint(ctx, tenant, id); err != nil {
		return nil, err
	}
	if err := s.breakers.Reset(ctx, id); err != nil && !errors.Is(err, kapsel.ErrNotFound) {
		return nil, err
	}
	e, err := s.setState(ctx, tenant, id, kapsel.EndpointActive)
	if err != nil {
		return nil, err
	}
	s.Wake()
	return e, nil
}

func (s *Service) setState(ctx context.Context, tenant kapsel.TenantID, id kapsel.EndpointID, state kapsel.EndpointState) (*kapsel.Endpoint, error) {
	e, err := s.store.EndpointSetState(ctx, &kapsel.EndpointSetStateParams{ID: id, TenantID: tenant, State: state, Now: s.now()})
	if err != nil {
		return nil, notFoundErr(err, "endpoint", string(id))
	}
	s.dispatcher.EndpointChanged(id)
	return e, nil
}

// Health is an endpoint's state, breaker and recent attempts.
type Health struct {
	Endpoint *kapsel.Endpoint
	// Breaker is the endpoint's circuit breaker; a closed one with no
	// history when it never failed.
	Breaker kapsel.BreakerState
	// Window is the period the attempt figures cover, up to now.
	Window time.Duration
	// Attempts are the attempts of the window and how many succeeded, with
	// the last success and failure ever seen in it.
	Attempts kapsel.AttemptStats
}

// SuccessRate is the share of the window's attempts that succeeded, and
// false when there were none.
func (h *Health) SuccessRate() (float64, bool) {
	if h.Attempts.Total == 0 {
		return 0, false
	}
	return float64(h.Attempts.Succeeded) / float64(h.Attempts.Total), true
}

// EndpointHealth returns the endpoint's health over the last
// Config.HealthWindow. Errors: E1011 as GetEndpoint.
func (s *Service) EndpointHealth(ctx context.Context, tenant kapsel.TenantID, id kapsel.EndpointID) (*Health, error) {
	e, err := s.GetEndpoint(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	h := &Health{Endpoint: e, Breaker: kapsel.BreakerState{EndpointID: id, Status: kapsel.BreakerClosed}, Window: s.cfg.HealthWindow}
	b, err := s.store.BreakerGet(ctx, &kapsel.BreakerGetParams{EndpointID: id})
	switch {
	case err == nil:
		h.Breaker = *b
	case !errors.Is(err, kapsel.ErrNotFound):
		return nil, err
	}
	st, err := s.store.AttemptStats(ctx, &kapsel.AttemptStatsParams{EndpointID: id, Since: s.now().Add(-h.Window)})
	if err != nil {
		return nil, err
	}
	h.Attempts = *st
	return h, nil
}
