// Package memstore is an in-memory [kapsel.Store] for unit tests, examples
// and experiments.
//
// It is NOT durable: everything it holds is lost when the process exits, so
// it breaks Kapsel's durable-acceptance promise (I1 of docs/guarantees.md) by design. Use
// store/pgstore in production, or store/sqlitestore for a single durable
// process.
//
// It follows the same contract as the durable stores — the store/storetest
// conformance suite runs against it — including fan-out at insert, one
// delivery per (event, endpoint), idempotency windows per (tenant, source),
// lease fencing, tenant scoping and breaker compare-and-set. Like Postgres it keeps
// times at microsecond precision, so code tested against it behaves the same
// on a real database. Values are copied on the way in and on the way out:
// changing a value a method returned never changes what the store holds.
//
// One mutex guards all state; that is ample for tests and examples.
package memstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/kapsel-dev/kapsel"
)

var (
	_ kapsel.Store          = (*Store)(nil)
	_ kapsel.RetentionStore = (*Store)(nil)
)

// Store is an in-memory kapsel.Store. The zero value is not usable; call New.
// It is safe for concurrent use.
type Store struct {
	mu          sync.Mutex
	tenants     map[kapsel.TenantID]*tenantRow
	tenantByKey map[string]kapsel.TenantID
	sources     map[kapsel.SourceID]*sourceRow
	endpoints   map[kapsel.EndpointID]*endpointRow
	events      map[kapsel.EventID]*kapsel.Event
	idempotency map[idempotencyKey]idempotencyEntry
	deliveries  map[kapsel.DeliveryID]*kapsel.Delivery
	// byEvent holds each event's deliveries by endpoint: the unique
	// (event, endpoint) pair, and the event's summary.
	byEvent  map[kapsel.EventID]map[kapsel.EndpointID]*kapsel.Delivery
	attempts map[kapsel.DeliveryID][]*kapsel.Attempt
	breakers map[kapsel.EndpointID]*kapsel.BreakerState
}

// tenantRow is a stored tenant and its soft-delete mark. A deleted tenant
// keeps its row, and its API key hash stays taken, as in the SQL stores.
type tenantRow struct {
	tenant    *kapsel.Tenant
	deletedAt time.Time
}

func (r *tenantRow) deleted() bool { return !r.deletedAt.IsZero() }

// sourceRow is a stored source and its soft-delete mark.
type sourceRow struct {
	source    *kapsel.Source
	deletedAt time.Time
}

func (r *sourceRow) deleted() bool { return !r.deletedAt.IsZero() }

// endpointRow is a stored endpoint and its soft-delete mark.
type endpointRow struct {
	endpoint  *kapsel.Endpoint
	deletedAt time.Time
}

func (r *endpointRow) deleted() bool { return !r.deletedAt.IsZero() }

// New returns an empty store.
func New() *Store {
	return &Store{
		tenants:     map[kapsel.TenantID]*tenantRow{},
		tenantByKey: map[string]kapsel.TenantID{},
		sources:     map[kapsel.SourceID]*sourceRow{},
		endpoints:   map[kapsel.EndpointID]*endpointRow{},
		events:      map[kapsel.EventID]*kapsel.Event{},
		idempotency: map[idempotencyKey]idempotencyEntry{},
		deliveries:  map[kapsel.DeliveryID]*kapsel.Delivery{},
		byEvent:     map[kapsel.EventID]map[kapsel.EndpointID]*kapsel.Delivery{},
		attempts:    map[kapsel.DeliveryID][]*kapsel.Attempt{},
		breakers:    map[kapsel.EndpointID]*kapsel.BreakerState{},
	}
}

// Ping always succeeds: memory is always reachable.
func (s *Store) Ping(ctx context.Context) error { return ctx.Err() }

// ts keeps t at microsecond precision, as Postgres does.
func ts(t time.Time) time.Time { return t.Truncate(time.Microsecond) }

// newLeaseToken returns a fresh random lease token.
func newLeaseToken() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("memstore: crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}
