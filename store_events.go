package kapsel

import (
	"context"
	"net/http"
	"time"
)

// EventInserter inserts events.
//
// For store implementers: a role interface of [Store]. Applications do not
// call it to create or change anything; the front door (package service)
// does, after validating.
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
//
// For store implementers: a role interface of [Store]. Applications do not
// call it to create or change anything; the front door (package service)
// does, after validating.
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
//
// For store implementers: a role interface of [Store]. Applications do not
// call it to create or change anything; the front door (package service)
// does, after validating.
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
	// EventStats returns the depth of the queue's live part (pending and
	// delivering events), for metrics. It costs the same whatever the number
	// of delivered and failed events, and reads at most Limit events per
	// status: past that, a count is a lower bound and says so. Events of
	// deleted endpoints are not counted: they will never be attempted.
	EventStats(ctx context.Context, params *EventStatsParams) (*EventStats, error)
}

// EventInsertParams describe one event to insert.
type EventInsertParams struct {
	TenantID   TenantID
	EndpointID EndpointID
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
	// Type keeps the events of exactly this type (byte for byte, as
	// stored).
	Type   string
	Limit  int
	Cursor EventID
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
	// Limit bounds the work: a store reads at most Limit events per status,
	// and at most Limit of the first due events to find OldestDue. Defaults
	// to DefaultEventStatsLimit; at most MaxEventStatsLimit.
	Limit int
	Now   time.Time
}

// Bounds of EventStatsParams.Limit.
const (
	DefaultEventStatsLimit = 10_000
	MaxEventStatsLimit     = 1_000_000
)

// EventStats are the depths of the queue's live part. Delivered and failed
// events are not counted: they are the history, which only grows, and
// counting it would make every read cost O(history). Count them from
// Hooks.OnAttempt instead (prommetrics' kapsel_attempts_total).
type EventStats struct {
	// Count is the number of pending and delivering events (those two keys
	// only, zero included).
	Count map[EventStatus]int64
	// Capped is set for a status whose count stopped at Limit: there are at
	// least Count[status] such events, maybe many more.
	Capped map[EventStatus]bool
	// OldestDue is the NextAttemptAt of the earliest due pending event, due
	// as EventClaim means it (its endpoint active, undeleted, its breaker
	// not open at Now): the event a claim would take first. Events waiting
	// for a paused or disabled endpoint or an open breaker wait visibly in
	// Count, not here. Zero when none is due, or when none of the first
	// Limit due events in the store's claim order can be claimed.
	OldestDue time.Time
}

// StatsLimit returns Limit bounded to [1, MaxEventStatsLimit], with
// DefaultEventStatsLimit for zero or less.
func (p *EventStatsParams) StatsLimit() int {
	switch {
	case p.Limit <= 0:
		return DefaultEventStatsLimit
	case p.Limit > MaxEventStatsLimit:
		return MaxEventStatsLimit
	}
	return p.Limit
}
