package kapsel

import (
	"context"
	"net/http"
	"time"
)

// EventInserter inserts events and fans them out.
//
// For store implementers: a role interface of [Store]. Applications do not
// call it to create or change anything; the front door (package service)
// does, after validating.
type EventInserter interface {
	// EventInsertMany inserts events, and their deliveries, in one
	// transaction: all rows commit together or none do. Each input gets
	// one result, in order.
	//
	// Fan-out (I10 of docs/guarantees.md): each new event gets, in the same
	// transaction, exactly one delivery (status pending, NextAttemptAt =
	// Now, NextTrigger scheduled) per endpoint of its tenant that is not
	// deleted and whose Subscription matches the event's routing
	// ([Event.Routing]) — or, when EndpointIDs is set, per endpoint named
	// there (duplicates ignored), whatever their filters. State does not
	// matter: paused and disabled endpoints get theirs, which wait. An event
	// that matches no endpoint is stored with no delivery. Concurrent
	// endpoint changes are seen either before or after, never half: in
	// particular a delivery is never left pending for an endpoint whose
	// EndpointDelete has returned.
	//
	// Per-row outcomes, which do not fail their neighbours: a row whose
	// TenantID names no tenant, or a deleted one, gets Err wrapping
	// ErrNotFound and is not written. Otherwise a row whose idempotency key
	// is already taken in its scope within its window — the scope is
	// (TenantID, SourceID), so the source for ingest and the tenant for
	// sends — gets the existing event with Duplicate set, and no delivery
	// is created; or Err wrapping ErrIdempotencyConflict when the body hash
	// differs. The key is looked at first, so a retry gets the first
	// answer even when an endpoint it names has been deleted since.
	// Otherwise a row whose EndpointIDs names an endpoint that does not
	// exist, is deleted or is another tenant's gets Err wrapping
	// ErrNotFound and is not written. Two inputs with the same scope and key
	// in one call behave as if inserted one after the other. The returned
	// error is for the whole call (storage failure: nothing was written;
	// an input that Storable refuses: nothing was written).
	EventInsertMany(ctx context.Context, params *EventInsertManyParams) ([]EventInsertResult, error)
}

// EventStore keeps events.
//
// For store implementers: a role interface of [Store]. Applications do not
// call it to create or change anything; the front door (package service)
// does, after validating.
type EventStore interface {
	EventInserter
	// EventGet returns the event with its Deliveries summary (Body only
	// with IncludeBody); ErrNotFound when it does not exist or (TenantID
	// set) is another tenant's.
	EventGet(ctx context.Context, params *EventGetParams) (*Event, error)
	// EventList lists events in id order after Cursor, without bodies,
	// each with its Deliveries summary; Trace may be left zero.
	EventList(ctx context.Context, params *EventListParams) ([]*Event, error)
}

// EventInsertParams describe one event to insert.
type EventInsertParams struct {
	TenantID TenantID
	// SourceID is the source the event was ingested by; empty for a send.
	// It scopes the idempotency key and is matched by subscriptions.
	SourceID SourceID
	// EndpointIDs, when not empty, are the endpoints the event is sent to,
	// instead of its subscribers (a send naming its endpoints). At most
	// MaxSendEndpoints.
	EndpointIDs []EndpointID
	// Type is the event type; empty for none. Outside text: it is stored as
	// StorableEventType makes it (see Storable).
	Type string
	// Channels are the channels the event is sent on; empty for none.
	// Refused (ErrInvalid) unless CheckEventChannels accepts them (see
	// Storable).
	Channels    []string
	Body        []byte
	ContentType string
	Headers     http.Header
	// IdempotencyKey is optional; with one, the event is unique per scope
	// (TenantID, SourceID) and key until Now+IdempotencyWindow.
	IdempotencyKey string
	// BodyHash is the SHA-256 of Body (compared for idempotency).
	BodyHash []byte
	// Trace is the trace context kept with the event; one that is not
	// valid is dropped, never refused (TraceContext.Storable, via
	// Storable).
	Trace TraceContext
}

// MaxSendEndpoints is the most endpoints one send may name.
const MaxSendEndpoints = 100

// EventInsertManyParams are the arguments of EventInsertMany.
type EventInsertManyParams struct {
	Events []*EventInsertParams
	// IdempotencyWindow is how long a key stays taken. Defaults to 24 h.
	IdempotencyWindow time.Duration
	Now               time.Time
}

// DefaultIdempotencyWindow is how long an idempotency key stays taken.
const DefaultIdempotencyWindow = 24 * time.Hour

// EventInsertResult is the outcome of one row of EventInsertMany.
type EventInsertResult struct {
	// Event is the new event, or the first one when Duplicate; without its
	// body when Duplicate. Its Deliveries summary counts the deliveries
	// created (all pending) for a new event; for a duplicate it is zero.
	Event     *Event
	Duplicate bool
	// Err is nil, or wraps ErrIdempotencyConflict or ErrNotFound.
	Err error
}

// EventGetParams are the arguments of EventGet.
type EventGetParams struct {
	ID          EventID
	TenantID    TenantID
	IncludeBody bool
}

// EventListParams are the arguments of EventList. Empty filters match all.
type EventListParams struct {
	TenantID TenantID
	SourceID SourceID
	// Type keeps the events of exactly this type (byte for byte, as
	// stored).
	Type   string
	Limit  int
	Cursor EventID
}
