package kapsel

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// Store is everything Kapsel keeps. It is composed of small role interfaces;
// each consumer asks only for the part it needs ([IngestStore] for the
// ingester, [DeliveryStore] for the dispatcher). Implementations:
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
	EndpointStore
	EventStore
	AttemptStore
	BreakerStore
	// Ping returns nil when the store is reachable and its schema current.
	Ping(ctx context.Context) error
}

// IngestStore is what the ingester needs.
type IngestStore interface {
	TenantGetter
	EndpointGetter
	EventInserter
}

// DeliveryStore is what the dispatcher needs.
type DeliveryStore interface {
	EndpointGetter
	EndpointStateSetter
	EventQueue
	BreakerStore
}

// Notifier is an optional store capability: a wake-up when any process
// commits new due events (Postgres LISTEN/NOTIFY). The dispatcher discovers it
// by type assertion and falls back to polling without it.
type Notifier interface {
	// EventListen returns a channel that receives a value, coalesced, each
	// time events were committed by any process. The channel is closed when
	// ctx ends or the listener fails for good.
	EventListen(ctx context.Context) (<-chan struct{}, error)
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

// ---- Tenants ----

// TenantGetter reads tenants.
type TenantGetter interface {
	// TenantGet returns the tenant; ErrNotFound when there is none.
	TenantGet(ctx context.Context, params *TenantGetParams) (*Tenant, error)
}

// TenantStore keeps tenants.
type TenantStore interface {
	TenantGetter
	// TenantInsert creates a tenant. ErrInvalid when params fail
	// [TenantInsertParams.Validate]; ErrDuplicate when the API key hash is
	// already used.
	TenantInsert(ctx context.Context, params *TenantInsertParams) (*Tenant, error)
	// TenantGetByAPIKey returns the tenant owning the API key hash;
	// ErrNotFound when none does.
	TenantGetByAPIKey(ctx context.Context, params *TenantGetByAPIKeyParams) (*Tenant, error)
}

// TenantInsertParams are the arguments of TenantInsert.
type TenantInsertParams struct {
	Name string
	// APIKeyHash is required: every tenant is an API principal, and the hash
	// is how its key finds it.
	APIKeyHash []byte
	RateLimit  float64
	RateBurst  int
	Now        time.Time
}

// Validate returns an error wrapping ErrInvalid when the API key hash is
// missing or the rate limit is negative. Every store checks it first.
func (p *TenantInsertParams) Validate() error {
	switch {
	case len(p.APIKeyHash) == 0:
		return fmt.Errorf("%w: tenant api key hash is required", ErrInvalid)
	case p.RateLimit < 0 || p.RateBurst < 0:
		return fmt.Errorf("%w: tenant rate limit and burst must not be negative", ErrInvalid)
	}
	return nil
}

// TenantGetParams are the arguments of TenantGet.
type TenantGetParams struct {
	ID TenantID
}

// TenantGetByAPIKeyParams are the arguments of TenantGetByAPIKey.
type TenantGetByAPIKeyParams struct {
	APIKeyHash []byte
}

// ---- Endpoints ----

// EndpointGetter reads endpoints.
type EndpointGetter interface {
	// EndpointGet returns the endpoint; ErrNotFound when it does not exist,
	// was deleted, or (TenantID set) belongs to another tenant.
	EndpointGet(ctx context.Context, params *EndpointGetParams) (*Endpoint, error)
}

// EndpointStateSetter changes an endpoint's state.
type EndpointStateSetter interface {
	// EndpointSetState sets State and DisabledReason (cleared unless the state
	// is disabled). ErrNotFound as EndpointGet.
	EndpointSetState(ctx context.Context, params *EndpointSetStateParams) (*Endpoint, error)
}

// EndpointStore keeps endpoints.
type EndpointStore interface {
	EndpointGetter
	EndpointStateSetter
	// EndpointInsert creates an endpoint; ErrNotFound when the tenant does not
	// exist.
	EndpointInsert(ctx context.Context, params *EndpointInsertParams) (*Endpoint, error)
	// EndpointList lists a tenant's endpoints in id order, after Cursor.
	EndpointList(ctx context.Context, params *EndpointListParams) ([]*Endpoint, error)
	// EndpointUpdate replaces the endpoint's configuration with Endpoint's
	// (Name, URL, IngestVerifier, SigningSecrets, RetryPolicy, Timeout,
	// Headers); state, ids and creation time are kept. ErrNotFound as
	// EndpointGet.
	EndpointUpdate(ctx context.Context, params *EndpointUpdateParams) (*Endpoint, error)
	// EndpointDelete deletes an endpoint softly: it disappears from gets,
	// lists and ingest, its events are no longer delivered, and its audit
	// trail is kept. ErrNotFound as EndpointGet.
	EndpointDelete(ctx context.Context, params *EndpointDeleteParams) error
}

// EndpointInsertParams are the arguments of EndpointInsert. Endpoint.ID,
// CreatedAt and UpdatedAt are assigned by the store; an empty State means
// active.
type EndpointInsertParams struct {
	Endpoint *Endpoint
	Now      time.Time
}

// EndpointGetParams are the arguments of EndpointGet. An empty TenantID
// skips the tenant check (for the ingester and the dispatcher).
type EndpointGetParams struct {
	ID       EndpointID
	TenantID TenantID
}

// EndpointListParams are the arguments of EndpointList.
type EndpointListParams struct {
	TenantID TenantID
	// Limit defaults to DefaultPageLimit and is capped at MaxPageLimit.
	Limit int
	// Cursor is the last id of the previous page; empty for the first page.
	Cursor EndpointID
}

// EndpointUpdateParams are the arguments of EndpointUpdate.
type EndpointUpdateParams struct {
	TenantID TenantID
	Endpoint *Endpoint
	Now      time.Time
}

// EndpointSetStateParams are the arguments of EndpointSetState.
type EndpointSetStateParams struct {
	ID             EndpointID
	TenantID       TenantID
	State          EndpointState
	DisabledReason DisabledReason
	Now            time.Time
}

// EndpointDeleteParams are the arguments of EndpointDelete.
type EndpointDeleteParams struct {
	ID       EndpointID
	TenantID TenantID
	Now      time.Time
}

// ---- Events ----

// EventInserter inserts events.
type EventInserter interface {
	// EventInsertMany inserts events in one transaction: all rows commit
	// together or none do. Each input gets one result, in order. A row whose
	// (endpoint, idempotency key) is already taken within its window gets the
	// existing event with Duplicate set — or Err wrapping
	// ErrIdempotencyConflict when the body hash differs; such rows do not fail
	// their neighbours. Two inputs with the same endpoint and key in one call
	// behave as if inserted one after the other. The returned error is for the
	// whole call (storage failure: nothing was written).
	EventInsertMany(ctx context.Context, params *EventInsertManyParams) ([]EventInsertResult, error)
}

// EventQueue is the dispatcher's view of events: claim, complete, release.
type EventQueue interface {
	// EventClaim leases up to Limit due events and returns them with a fresh
	// LeaseToken, status delivering and LeaseExpiresAt = Now+LeaseDuration.
	// Due means: pending with NextAttemptAt <= Now, or delivering with an
	// expired lease; of an active, undeleted endpoint whose breaker is not
	// open at Now (no BreakerState, or OpenUntil <= Now) and that is not in
	// ExcludeEndpoints. Earliest NextAttemptAt first. Concurrent claimers never
	// get the same event.
	EventClaim(ctx context.Context, params *EventClaimParams) ([]*Event, error)
	// EventComplete records each completion's attempt and applies its outcome
	// in one transaction per call. The result has one error per completion:
	// nil, or ErrLeaseLost when its token no longer owns the event (then
	// nothing of that completion is written). The returned error is for the
	// whole call.
	EventComplete(ctx context.Context, params *EventCompleteParams) ([]error, error)
	// EventRelease gives leased events back without an attempt: status
	// pending, NextAttemptAt as given, lease cleared, Attempts unchanged. Stale
	// tokens are skipped. It returns how many were released.
	EventRelease(ctx context.Context, params *EventReleaseParams) (int, error)
}

// EventStore keeps events.
type EventStore interface {
	EventInserter
	EventQueue
	// EventGet returns the event (Body only with IncludeBody); ErrNotFound as
	// for endpoints.
	EventGet(ctx context.Context, params *EventGetParams) (*Event, error)
	// EventList lists events in id order after Cursor, without bodies.
	EventList(ctx context.Context, params *EventListParams) ([]*Event, error)
	// EventRetry puts one delivered or failed event back in the queue: status
	// pending, NextAttemptAt = Now, NextTrigger manual, LastError kept.
	// ErrNotFound as EventGet; ErrIllegalTransition when it is pending or
	// delivering.
	EventRetry(ctx context.Context, params *EventRetryParams) (*Event, error)
	// EventReplay does EventRetry for every event of the endpoint with the
	// given status created in [Since, Until) and returns how many.
	EventReplay(ctx context.Context, params *EventReplayParams) (int, error)
	// EventStats returns queue depths, for metrics.
	EventStats(ctx context.Context, params *EventStatsParams) (*EventStats, error)
}

// EventInsertParams describe one event to insert.
type EventInsertParams struct {
	TenantID    TenantID
	EndpointID  EndpointID
	Body        []byte
	ContentType string
	Headers     http.Header
	// IdempotencyKey is optional; with one, the event is unique per endpoint
	// and key until Now+IdempotencyWindow.
	IdempotencyKey string
	// BodyHash is the SHA-256 of Body (compared for idempotency).
	BodyHash []byte
}

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
	// Event is the new event, or the first one when Duplicate. Without its
	// body when Duplicate.
	Event     *Event
	Duplicate bool
	// Err is nil, or wraps ErrIdempotencyConflict.
	Err error
}

// EventClaimParams are the arguments of EventClaim.
type EventClaimParams struct {
	Limit         int
	LeaseDuration time.Duration
	// ExcludeEndpoints are skipped (the dispatcher's saturated endpoints).
	ExcludeEndpoints []EndpointID
	Now              time.Time
}

// EventCompleteParams are the arguments of EventComplete.
type EventCompleteParams struct {
	Completions []EventCompletion
	Now         time.Time
}

// EventCompletion is the outcome of one attempt.
type EventCompletion struct {
	EventID    EventID
	LeaseToken string
	// Attempt is recorded as the event's next attempt: its ID, EventID,
	// EndpointID and TenantID are filled in by the store; Number must be the
	// event's Attempts+1.
	Attempt Attempt
	// Status is delivered, failed, or pending (retry at NextAttemptAt).
	Status        EventStatus
	NextAttemptAt time.Time
	// LastError is stored on the event ("" on success).
	LastError string
	// DisableEndpoint, when set, disables the event's endpoint with this
	// reason in the same transaction (410 Gone).
	DisableEndpoint DisabledReason
}

// EventReleaseParams are the arguments of EventRelease.
type EventReleaseParams struct {
	Releases []EventRelease
	Now      time.Time
}

// EventRelease gives one leased event back.
type EventRelease struct {
	EventID       EventID
	LeaseToken    string
	NextAttemptAt time.Time
}

// EventGetParams are the arguments of EventGet.
type EventGetParams struct {
	ID          EventID
	TenantID    TenantID
	IncludeBody bool
}

// EventListParams are the arguments of EventList. Empty filters match all.
type EventListParams struct {
	TenantID   TenantID
	EndpointID EndpointID
	Status     EventStatus
	Limit      int
	Cursor     EventID
}

// EventRetryParams are the arguments of EventRetry.
type EventRetryParams struct {
	ID       EventID
	TenantID TenantID
	Now      time.Time
}

// EventReplayParams are the arguments of EventReplay.
type EventReplayParams struct {
	TenantID   TenantID
	EndpointID EndpointID
	// Status is delivered or failed.
	Status EventStatus
	// Since and Until bound CreatedAt; a zero bound is open.
	Since, Until time.Time
	Now          time.Time
}

// EventStatsParams are the arguments of EventStats.
type EventStatsParams struct {
	Now time.Time
}

// EventStats are queue depths.
type EventStats struct {
	// Count is the number of events per status.
	Count map[EventStatus]int64
	// OldestDue is the NextAttemptAt of the earliest due pending event; zero
	// when none is due.
	OldestDue time.Time
}

// ---- Attempts ----

// AttemptStore reads the audit trail; attempts are written by EventComplete.
type AttemptStore interface {
	// AttemptList lists an event's attempts, oldest first. ErrNotFound when
	// the event is not visible to TenantID.
	AttemptList(ctx context.Context, params *AttemptListParams) ([]*Attempt, error)
	// AttemptStats summarises an endpoint's attempts since Since.
	AttemptStats(ctx context.Context, params *AttemptStatsParams) (*AttemptStats, error)
}

// AttemptListParams are the arguments of AttemptList.
type AttemptListParams struct {
	EventID  EventID
	TenantID TenantID
	Limit    int
	// Cursor is the last attempt id of the previous page.
	Cursor AttemptID
}

// AttemptStatsParams are the arguments of AttemptStats.
type AttemptStatsParams struct {
	EndpointID EndpointID
	Since      time.Time
}

// AttemptStats summarise attempts.
type AttemptStats struct {
	Total, Succeeded int64
	// LastSuccessAt and LastFailureAt are zero when there was none, over the
	// endpoint's whole history.
	LastSuccessAt, LastFailureAt time.Time
}

// ---- Breakers ----

// BreakerStore keeps circuit breaker state.
type BreakerStore interface {
	// BreakerGet returns the endpoint's breaker state; ErrNotFound when none
	// was saved (a closed breaker).
	BreakerGet(ctx context.Context, params *BreakerGetParams) (*BreakerState, error)
	// BreakerSave writes State if the stored version equals ExpectedVersion
	// (0: no state stored yet) and returns it with Version incremented;
	// ErrConflict otherwise.
	BreakerSave(ctx context.Context, params *BreakerSaveParams) (*BreakerState, error)
	// BreakerDelete forgets the endpoint's breaker state (a reset).
	BreakerDelete(ctx context.Context, params *BreakerDeleteParams) error
}

// BreakerGetParams are the arguments of BreakerGet.
type BreakerGetParams struct {
	EndpointID EndpointID
}

// BreakerSaveParams are the arguments of BreakerSave.
type BreakerSaveParams struct {
	State           *BreakerState
	ExpectedVersion int64
	Now             time.Time
}

// BreakerDeleteParams are the arguments of BreakerDelete.
type BreakerDeleteParams struct {
	EndpointID EndpointID
}
