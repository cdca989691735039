package kapsel

import (
	"context"
	"time"
)

// Store is everything Kapsel keeps: the contract a storage backend
// implements. It is for store implementers and for the components that sit
// on it (ingest, delivery, breaker); an application creates and changes
// things through the front door (package service), whose operations
// validate before they call the store. It is composed of small role interfaces;
// each consumer asks only for the part it needs ([IngestStore] for the
// ingester, [DispatcherStore] for the dispatcher). Implementations:
// store/pgstore (Postgres, production), store/sqlitestore (embedded, durable,
// kapseld's zero-config default) and store/memstore (in memory, for tests).
// store/storetest is the conformance suite every implementation passes.
//
// Every method that depends on the time takes it in its params (Now), so that
// all stores follow the injected [Clock] rather than their own.
//
// Errors: methods return errors wrapping the sentinels of this package —
// [ErrNotFound], [ErrDuplicate], [ErrIdempotencyConflict], [ErrLeaseLost],
// [ErrConflict], [ErrInvalid] — and wrap [ErrUnavailable] when the storage
// cannot be reached, in which case nothing was written.
type Store interface {
	TenantStore
	SourceStore
	EndpointStore
	EventStore
	DeliveryStore
	AttemptStore
	BreakerStore
	// Ping returns nil when the store is reachable and its schema current.
	Ping(ctx context.Context) error
}

// IngestStore is what the ingester needs.
//
// For component authors: the consumer view a component takes of a [Store].
type IngestStore interface {
	TenantGetter
	SourceGetter
	EventInserter
}

// DispatcherStore is what the dispatcher needs.
//
// For component authors: the consumer view a component takes of a [Store].
type DispatcherStore interface {
	EndpointGetter
	EndpointStateSetter
	DeliveryQueue
	BreakerStore
}

// Notifier is an optional store capability: a wake-up when any process
// commits new due deliveries (Postgres LISTEN/NOTIFY). The dispatcher discovers it
// by type assertion and falls back to polling without it.
//
// For store implementers: an optional capability, found by type assertion.
type Notifier interface {
	// DeliveryListen returns a channel that receives a value, coalesced,
	// each time deliveries were committed by any process. The channel is
	// closed when ctx ends or the listener fails for good.
	DeliveryListen(ctx context.Context) (<-chan struct{}, error)
}

// Timekeeper is an optional store capability: the store's own time, for
// processes on several machines that share one store (Postgres) and whose
// clocks disagree. The dispatcher discovers it by type assertion
// ([StoreAs]) and, when clock sync is on (delivery.Config.ClockSync),
// anchors every time it passes to the store — lease ends, due times,
// breaker windows — to it, so that one node's fast clock cannot make it see
// another's live leases as expired (docs/delivery.md, "Time"). Stores used
// by one process (sqlitestore, memstore) have a single clock already and
// need not offer it.
//
// For store implementers: an optional capability, found by type assertion.
type Timekeeper interface {
	// StoreNow returns the store's current time, read as late as possible
	// (Postgres: clock_timestamp()), or an error wrapping ErrUnavailable.
	StoreNow(ctx context.Context) (time.Time, error)
}

// Page limits. A list asks for Limit items after Cursor.
const (
	DefaultPageLimit = 50
	MaxPageLimit     = 500
)

// PageLimit applies a list's default and cap to limit: DefaultPageLimit when
// it is not positive, MaxPageLimit when it is larger.
func PageLimit(limit int) int {
	switch {
	case limit <= 0:
		return DefaultPageLimit
	case limit > MaxPageLimit:
		return MaxPageLimit
	}
	return limit
}

// Unwrapper is implemented by a store that wraps another (metrics, audit,
// fault injection): Unwrap returns the wrapped store, so that [StoreAs]
// still finds the optional capabilities of the store underneath.
type Unwrapper interface {
	Unwrap() Store
}

// StoreAs returns s as a T — an optional capability such as [Notifier], or
// service.TxStore — looking through wrapping stores ([Unwrapper]) until one
// has it. Components discover optional capabilities with it rather than
// with a type assertion, so that wrapping a store does not silently turn
// them off. A capability found underneath a wrapper is called on the
// wrapped store directly: the wrapper does not see those calls.
//
// s is a [Store] or one of its consumer views ([DispatcherStore], …). It
// follows at most maxUnwrap wrappers, so a wrapper whose Unwrap returns
// itself cannot make it loop.
func StoreAs[T any](s any) (T, bool) {
	for range maxUnwrap {
		if s == nil {
			break
		}
		if c, ok := s.(T); ok {
			return c, true
		}
		u, ok := s.(Unwrapper)
		if !ok {
			break
		}
		s = u.Unwrap()
	}
	var zero T
	return zero, false
}

// maxUnwrap bounds the chain of wrapping stores StoreAs looks through.
const maxUnwrap = 32
