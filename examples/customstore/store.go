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
// (tenants, endpoints, events inserted, claimed, completed…) and how many
// calls failed. Reads pass straight through the embedded store.
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

// EventInsertMany passes the call on and counts what it wrote.
func (s *Store) EventInsertMany(ctx context.Context, params *kapsel.EventInsertManyParams) ([]kapsel.EventInsertResult, error) {
	res, err := s.Store.EventInsertMany(ctx, params)
	n := 0
	for _, r := range res {
		if r.Err == nil && !r.Duplicate {
			n++
		}
	}
	s.record("EventInsertMany", n, err)
	return res, err
}

// EventClaim passes the call on and counts what it wrote.
func (s *Store) EventClaim(ctx context.Context, params *kapsel.EventClaimParams) ([]*kapsel.Event, error) {
	evs, err := s.Store.EventClaim(ctx, params)
	s.record("EventClaim", len(evs), err)
	return evs, err
}

// EventComplete passes the call on and counts what it wrote.
func (s *Store) EventComplete(ctx context.Context, params *kapsel.EventCompleteParams) ([]error, error) {
	errs, err := s.Store.EventComplete(ctx, params)
	n := 0
	for _, e := range errs {
		if e == nil {
			n++
		}
	}
	s.record("EventComplete", n, err)
	return errs, err
}

// EventRelease passes the call on and counts what it wrote.
func (s *Store) EventRelease(ctx context.Context, params *kapsel.EventReleaseParams) (int, error) {
	n, err := s.Store.EventRelease(ctx, params)
	s.record("EventRelease", n, err)
	return n, err
}

// EventRetry passes the call on and counts what it wrote.
func (s *Store) EventRetry(ctx context.Context, params *kapsel.EventRetryParams) (*kapsel.Event, error) {
	e, err := s.Store.EventRetry(ctx, params)
	s.record("EventRetry", one(err), err)
	return e, err
}

// EventReplay passes the call on and counts what it wrote.
func (s *Store) EventReplay(ctx context.Context, params *kapsel.EventReplayParams) (int, error) {
	n, err := s.Store.EventReplay(ctx, params)
	s.record("EventReplay", n, err)
	return n, err
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
