package main

import (
	"context"
	"maps"
	"sync"

	"github.com/kapsel-dev/kapsel"
)

var _ kapsel.Store = (*Store)(nil)

// Store is a [kapsel.Store] that wraps another one and counts what is
// written through it: for each write method, how many rows it wrote
// (tenants, sources, endpoints, events and the deliveries they fan out to,
// deliveries claimed, completed, retried…) and how many calls failed.
// Reads pass straight through the embedded store.
//
// It is the shape of any decorating store — metrics, audit logs, tracing,
// fault injection in tests. Two things to keep in mind when writing one:
//
//   - The wrapper must keep the contract: it returns the inner store's
//     values and errors unchanged, so the conformance suite
//     (storetest.Run, see store_test.go) passes on it as on the inner store.
//   - Embedding the kapsel.Store interface hides the inner store's optional
//     capabilities (kapsel.Notifier's instant wake-ups, service.TxStore for
//     Service.SendTx). Kapsel discovers them with kapsel.StoreAs, which
//     looks through a wrapper that has Unwrap (kapsel.Unwrapper), as this
//     one does: those calls then go to the inner store directly, uncounted.
//     A wrapper that must see them forwards them itself instead.
type Store struct {
	kapsel.Store

	mu     sync.Mutex
	rows   map[string]int
	failed map[string]int
}

// Unwrap returns the wrapped store (kapsel.Unwrapper), so that the inner
// store's optional capabilities stay discoverable through kapsel.StoreAs.
func (s *Store) Unwrap() kapsel.Store { return s.Store }

// Wrap returns a Store that counts the writes made through it to inner.
func Wrap(inner kapsel.Store) *Store {
	return &Store{Store: inner, rows: map[string]int{}, failed: map[string]int{}}
}

// Writes returns, per write method, how many rows it wrote so far. Methods
// that wrote nothing are left out.
func (s *Store) Writes() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.rows)
}

// Failures returns, per write method, how many calls failed so far.
func (s *Store) Failures() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.failed)
}

// record counts one call of method that wrote n rows or failed with err.
func (s *Store) record(method string, n int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err != nil:
		s.failed[method]++
	case n > 0:
		s.rows[method] += n
	}
}

// one is the row count of a call that writes one row when it succeeds.
func one(err error) int {
	if err != nil {
		return 0
	}
	return 1
}

// TenantInsert passes the call on and counts what it wrote.
func (s *Store) TenantInsert(ctx context.Context, params *kapsel.TenantInsertParams) (*kapsel.Tenant, error) {
	t, err := s.Store.TenantInsert(ctx, params)
	s.record("TenantInsert", one(err), err)
	return t, err
}

// TenantRotateAPIKey passes the call on and counts what it wrote.
func (s *Store) TenantRotateAPIKey(ctx context.Context, params *kapsel.TenantRotateAPIKeyParams) (*kapsel.Tenant, error) {
	t, err := s.Store.TenantRotateAPIKey(ctx, params)
	s.record("TenantRotateAPIKey", one(err), err)
	return t, err
}

// TenantUpdate passes the call on and counts what it wrote.
func (s *Store) TenantUpdate(ctx context.Context, params *kapsel.TenantUpdateParams) (*kapsel.Tenant, error) {
	t, err := s.Store.TenantUpdate(ctx, params)
	s.record("TenantUpdate", one(err), err)
	return t, err
}

// TenantDelete passes the call on and counts it as one row: the tenant.
// The store deletes its sources and endpoints, and ends their deliveries,
// in the same transaction; the wrapper does not see how many.
func (s *Store) TenantDelete(ctx context.Context, params *kapsel.TenantDeleteParams) error {
	err := s.Store.TenantDelete(ctx, params)
	s.record("TenantDelete", one(err), err)
	return err
}

// SourceInsert passes the call on and counts what it wrote.
func (s *Store) SourceInsert(ctx context.Context, params *kapsel.SourceInsertParams) (*kapsel.Source, error) {
	src, err := s.Store.SourceInsert(ctx, params)
	s.record("SourceInsert", one(err), err)
	return src, err
}

// SourceUpdate passes the call on and counts what it wrote. params.Update
// is passed on as it is, as for EndpointUpdate.
func (s *Store) SourceUpdate(ctx context.Context, params *kapsel.SourceUpdateParams) (*kapsel.Source, error) {
	src, err := s.Store.SourceUpdate(ctx, params)
	s.record("SourceUpdate", one(err), err)
	return src, err
}

// SourceSetState passes the call on and counts what it wrote.
func (s *Store) SourceSetState(ctx context.Context, params *kapsel.SourceSetStateParams) (*kapsel.Source, error) {
	src, err := s.Store.SourceSetState(ctx, params)
	s.record("SourceSetState", one(err), err)
	return src, err
}

// SourceDelete passes the call on and counts what it wrote.
func (s *Store) SourceDelete(ctx context.Context, params *kapsel.SourceDeleteParams) error {
	err := s.Store.SourceDelete(ctx, params)
	s.record("SourceDelete", one(err), err)
	return err
}

// EndpointInsert passes the call on and counts what it wrote.
func (s *Store) EndpointInsert(ctx context.Context, params *kapsel.EndpointInsertParams) (*kapsel.Endpoint, error) {
	e, err := s.Store.EndpointInsert(ctx, params)
	s.record("EndpointInsert", one(err), err)
	return e, err
}

// EndpointUpdate passes the call on and counts what it wrote. params.Update
// is passed on as it is: the inner store calls it with the endpoint locked,
// which is what makes the read-modify-write atomic, so a wrapper must not
// call it itself, nor read the endpoint first and write it back.
func (s *Store) EndpointUpdate(ctx context.Context, params *kapsel.EndpointUpdateParams) (*kapsel.Endpoint, error) {
	e, err := s.Store.EndpointUpdate(ctx, params)
	s.record("EndpointUpdate", one(err), err)
	return e, err
}

// EndpointRotateSecret passes the call on and counts what it wrote.
func (s *Store) EndpointRotateSecret(ctx context.Context, params *kapsel.EndpointRotateSecretParams) (*kapsel.Endpoint, error) {
	e, err := s.Store.EndpointRotateSecret(ctx, params)
	s.record("EndpointRotateSecret", one(err), err)
	return e, err
}

// EndpointSetState passes the call on and counts what it wrote.
func (s *Store) EndpointSetState(ctx context.Context, params *kapsel.EndpointSetStateParams) (*kapsel.Endpoint, error) {
	e, err := s.Store.EndpointSetState(ctx, params)
	s.record("EndpointSetState", one(err), err)
	return e, err
}

// EndpointDelete passes the call on and counts what it wrote.
func (s *Store) EndpointDelete(ctx context.Context, params *kapsel.EndpointDeleteParams) error {
	err := s.Store.EndpointDelete(ctx, params)
	s.record("EndpointDelete", one(err), err)
	return err
}

// EventInsertMany passes the call on and counts what it wrote: the new
// events, and apart the deliveries they were fanned out to (the same
// transaction wrote both).
func (s *Store) EventInsertMany(ctx context.Context, params *kapsel.EventInsertManyParams) ([]kapsel.EventInsertResult, error) {
	res, err := s.Store.EventInsertMany(ctx, params)
	events, deliveries := 0, 0
	for _, r := range res {
		if r.Err == nil && !r.Duplicate {
			events++
			deliveries += r.Event.Deliveries.Total
		}
	}
	s.record("EventInsertMany", events, err)
	if err == nil {
		s.record("EventInsertMany deliveries", deliveries, nil)
	}
	return res, err
}

// DeliveryClaim passes the call on and counts what it wrote: the
// deliveries it leased.
func (s *Store) DeliveryClaim(ctx context.Context, params *kapsel.DeliveryClaimParams) ([]*kapsel.Delivery, error) {
	dls, err := s.Store.DeliveryClaim(ctx, params)
	s.record("DeliveryClaim", len(dls), err)
	return dls, err
}

// DeliveryComplete passes the call on and counts what it wrote: the
// completions the store accepted (each an attempt and the delivery's new
// state).
func (s *Store) DeliveryComplete(ctx context.Context, params *kapsel.DeliveryCompleteParams) ([]error, error) {
	errs, err := s.Store.DeliveryComplete(ctx, params)
	n := 0
	for _, e := range errs {
		if e == nil {
			n++
		}
	}
	s.record("DeliveryComplete", n, err)
	return errs, err
}

// DeliveryRelease passes the call on and counts what it wrote.
func (s *Store) DeliveryRelease(ctx context.Context, params *kapsel.DeliveryReleaseParams) (int, error) {
	n, err := s.Store.DeliveryRelease(ctx, params)
	s.record("DeliveryRelease", n, err)
	return n, err
}

// DeliveryExtend passes the call on and counts what it wrote: the leases
// it extended.
func (s *Store) DeliveryExtend(ctx context.Context, params *kapsel.DeliveryExtendParams) ([]bool, error) {
	ok, err := s.Store.DeliveryExtend(ctx, params)
	n := 0
	for _, o := range ok {
		if o {
			n++
		}
	}
	s.record("DeliveryExtend", n, err)
	return ok, err
}

// DeliveryRetry passes the call on and counts what it wrote.
func (s *Store) DeliveryRetry(ctx context.Context, params *kapsel.DeliveryRetryParams) (*kapsel.Delivery, error) {
	d, err := s.Store.DeliveryRetry(ctx, params)
	s.record("DeliveryRetry", one(err), err)
	return d, err
}

// DeliveryRetryEvent passes the call on and counts what it wrote.
func (s *Store) DeliveryRetryEvent(ctx context.Context, params *kapsel.DeliveryRetryEventParams) (int, error) {
	n, err := s.Store.DeliveryRetryEvent(ctx, params)
	s.record("DeliveryRetryEvent", n, err)
	return n, err
}

// DeliveryReplay passes the call on and counts what it wrote.
func (s *Store) DeliveryReplay(ctx context.Context, params *kapsel.DeliveryReplayParams) (int, error) {
	n, err := s.Store.DeliveryReplay(ctx, params)
	s.record("DeliveryReplay", n, err)
	return n, err
}

// DeliveryBackfill passes the call on and counts what it wrote.
func (s *Store) DeliveryBackfill(ctx context.Context, params *kapsel.DeliveryBackfillParams) (*kapsel.DeliveryBackfillResult, error) {
	res, err := s.Store.DeliveryBackfill(ctx, params)
	n := 0
	if err == nil {
		n = res.Created
	}
	s.record("DeliveryBackfill", n, err)
	return res, err
}

// BreakerSave passes the call on and counts what it wrote.
func (s *Store) BreakerSave(ctx context.Context, params *kapsel.BreakerSaveParams) (*kapsel.BreakerState, error) {
	b, err := s.Store.BreakerSave(ctx, params)
	s.record("BreakerSave", one(err), err)
	return b, err
}

// BreakerDelete passes the call on and counts what it wrote.
func (s *Store) BreakerDelete(ctx context.Context, params *kapsel.BreakerDeleteParams) error {
	err := s.Store.BreakerDelete(ctx, params)
	s.record("BreakerDelete", one(err), err)
	return err
}
