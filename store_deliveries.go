package kapsel

import (
	"context"
	"time"
)

// DeliveryQueue is the dispatcher's view of deliveries: claim, complete,
// release, and extend the leases of attempts in flight.
//
// For store implementers: a role interface of [Store].
type DeliveryQueue interface {
	// DeliveryClaim leases up to Limit due deliveries and returns them with
	// a fresh LeaseToken, status delivering and LeaseExpiresAt =
	// Now+LeaseDuration, each with its Event (body and headers included).
	// Due means: pending with NextAttemptAt <= Now, or delivering with an
	// expired lease; of an active, undeleted endpoint whose breaker is not
	// open at Now (no BreakerState, or OpenUntil <= Now) and that is not in
	// ExcludeEndpoints. Earliest NextAttemptAt first. Concurrent claimers
	// never get the same delivery.
	//
	// Deliveries of one event returned by one call share its Event (the
	// same pointer): a body fanned out to N endpoints is held once, not N
	// times. Callers must treat the Event, and its Body and Headers, as
	// read-only.
	DeliveryClaim(ctx context.Context, params *DeliveryClaimParams) ([]*Delivery, error)
	// DeliveryComplete records each completion's attempt and applies its
	// outcome in one transaction per call; the lease is cleared. The result
	// has one error per completion: nil, or ErrLeaseLost when its token no
	// longer owns the delivery (then nothing of that completion is
	// written). The returned error is for the whole call.
	//
	// A delivery ended by its endpoint's deletion while its attempt was in
	// flight is still owned by its token (I5: the request was made, so it
	// is recorded): the attempt is written, a delivered outcome is written
	// as delivered, and any other stays failed with LastError
	// [LastErrorEndpointDeleted]; DisableEndpoint is then ignored.
	DeliveryComplete(ctx context.Context, params *DeliveryCompleteParams) ([]error, error)
	// DeliveryRelease gives leased deliveries back without an attempt:
	// status pending, NextAttemptAt as given, lease cleared, Attempts
	// unchanged. Stale tokens are skipped, and so is a delivery its
	// endpoint's deletion ended while it was leased: it stays failed and
	// keeps its lease token, so a completion with that token is still
	// recorded. It returns how many were released.
	DeliveryRelease(ctx context.Context, params *DeliveryReleaseParams) (int, error)
	// DeliveryExtend keeps leases alive while their attempts run: each
	// lease whose token still owns a delivering delivery gets
	// LeaseExpiresAt = Now+LeaseDuration, whether or not it has expired
	// meanwhile — the token is the fence, as for DeliveryComplete, and a
	// lease that expired and was re-claimed has another token. Nothing else
	// of the delivery changes. The result has one bool per lease, in order:
	// false when it was not extended, because the token is stale or not a
	// token (the delivery was completed, released, or re-claimed after its
	// lease expired), or because the delivery is no longer delivering. A
	// delivery ended by its endpoint's deletion while its attempt was in
	// flight is failed, and answers false although its token still
	// completes it (see DeliveryComplete): it needs no lease, since nothing
	// re-claims a failed delivery. One transaction (or one statement) per
	// call. The returned error is for the whole call, and then nothing was
	// extended; a LeaseDuration that is not positive is ErrInvalid.
	DeliveryExtend(ctx context.Context, params *DeliveryExtendParams) ([]bool, error)
}

// DeliveryStore keeps deliveries.
//
// For store implementers: a role interface of [Store]. Applications do not
// call it to create or change anything; the front door (package service)
// does, after validating.
type DeliveryStore interface {
	DeliveryQueue
	// DeliveryGet returns the delivery (Event nil); ErrNotFound when it
	// does not exist or (TenantID set) is another tenant's.
	DeliveryGet(ctx context.Context, params *DeliveryGetParams) (*Delivery, error)
	// DeliveryList lists deliveries in id order after Cursor (Event nil).
	DeliveryList(ctx context.Context, params *DeliveryListParams) ([]*Delivery, error)
	// DeliveryRetry puts one delivered or failed delivery back in the
	// queue: status pending, NextAttemptAt = Now, NextTrigger manual,
	// LastError kept. ErrNotFound as DeliveryGet, and when its endpoint is
	// deleted; ErrIllegalTransition when it is pending or delivering.
	DeliveryRetry(ctx context.Context, params *DeliveryRetryParams) (*Delivery, error)
	// DeliveryRetryEvent does DeliveryRetry for every delivered or failed
	// delivery of the event whose endpoint is not deleted, and returns how
	// many. ErrNotFound when the event is not visible to TenantID.
	DeliveryRetryEvent(ctx context.Context, params *DeliveryRetryEventParams) (int, error)
	// DeliveryReplay does DeliveryRetry for every delivery of the endpoint
	// with the given status whose event was created in [Since, Until), and
	// returns how many. ErrNotFound when the endpoint is not visible.
	DeliveryReplay(ctx context.Context, params *DeliveryReplayParams) (int, error)
	// DeliveryBackfill creates the deliveries the endpoint would have had
	// for the past events of its tenant created in [Since, Until) that its
	// Subscription matches — at most one per event: events that already
	// have a delivery to it are left alone, so a backfill repeated, or
	// concurrent with another, creates nothing twice. New deliveries are
	// pending at Now with NextTrigger manual. Events are looked at in id
	// order after Cursor, at most Limit of them (DefaultBackfillLimit when
	// zero, at most MaxBackfillLimit); it returns how many deliveries it
	// created and, when events in range were left for another call, the
	// Cursor to continue from. ErrNotFound when the endpoint is not
	// visible.
	DeliveryBackfill(ctx context.Context, params *DeliveryBackfillParams) (*DeliveryBackfillResult, error)
	// DeliveryStats returns the depth of the queue's live part (pending and
	// delivering deliveries), for metrics. It costs the same whatever the
	// number of delivered and failed deliveries, and reads at most Limit
	// deliveries per status: past that, a count is a lower bound and says
	// so. Deliveries of deleted endpoints are not counted.
	DeliveryStats(ctx context.Context, params *DeliveryStatsParams) (*DeliveryStats, error)
}

// DeliveryClaimParams are the arguments of DeliveryClaim.
type DeliveryClaimParams struct {
	Limit         int
	LeaseDuration time.Duration
	// ExcludeEndpoints are skipped (the dispatcher's saturated endpoints).
	ExcludeEndpoints []EndpointID
	Now              time.Time
}

// DeliveryCompleteParams are the arguments of DeliveryComplete.
type DeliveryCompleteParams struct {
	Completions []DeliveryCompletion
	Now         time.Time
}

// DeliveryCompletion is the outcome of one attempt.
type DeliveryCompletion struct {
	DeliveryID DeliveryID
	LeaseToken string
	// Attempt is recorded as the delivery's next attempt: its ID,
	// DeliveryID, EventID, EndpointID and TenantID are filled in by the
	// store; Number must be the delivery's Attempts+1.
	Attempt Attempt
	// Status is delivered, failed, or pending (retry at NextAttemptAt).
	Status        DeliveryStatus
	NextAttemptAt time.Time
	// LastError is stored on the delivery ("" on success).
	LastError string
	// DisableEndpoint, when set, disables the delivery's endpoint with this
	// reason in the same transaction (410 Gone).
	DisableEndpoint DisabledReason
}

// DeliveryReleaseParams are the arguments of DeliveryRelease.
type DeliveryReleaseParams struct {
	Releases []DeliveryRelease
	Now      time.Time
}

// DeliveryRelease gives one leased delivery back.
type DeliveryRelease struct {
	DeliveryID    DeliveryID
	LeaseToken    string
	NextAttemptAt time.Time
}

// DeliveryExtendParams are the arguments of DeliveryExtend.
type DeliveryExtendParams struct {
	Leases []DeliveryLease
	// LeaseDuration is how long each lease lasts from Now.
	LeaseDuration time.Duration
	Now           time.Time
}

// DeliveryLease names one lease: a delivery and the token it was claimed
// with.
type DeliveryLease struct {
	DeliveryID DeliveryID
	LeaseToken string
}

// DeliveryGetParams are the arguments of DeliveryGet.
type DeliveryGetParams struct {
	ID       DeliveryID
	TenantID TenantID
}

// DeliveryListParams are the arguments of DeliveryList. Empty filters match
// all.
type DeliveryListParams struct {
	TenantID   TenantID
	EndpointID EndpointID
	EventID    EventID
	Status     DeliveryStatus
	Limit      int
	Cursor     DeliveryID
}

// DeliveryRetryParams are the arguments of DeliveryRetry.
type DeliveryRetryParams struct {
	ID       DeliveryID
	TenantID TenantID
	Now      time.Time
}

// DeliveryRetryEventParams are the arguments of DeliveryRetryEvent.
type DeliveryRetryEventParams struct {
	EventID  EventID
	TenantID TenantID
	Now      time.Time
}

// DeliveryReplayParams are the arguments of DeliveryReplay.
type DeliveryReplayParams struct {
	TenantID   TenantID
	EndpointID EndpointID
	// Status is delivered or failed.
	Status DeliveryStatus
	// Since and Until bound the event's CreatedAt; a zero bound is open.
	Since, Until time.Time
	Now          time.Time
}

// DeliveryBackfillParams are the arguments of DeliveryBackfill.
type DeliveryBackfillParams struct {
	TenantID   TenantID
	EndpointID EndpointID
	// Since and Until bound the event's CreatedAt; a zero bound is open.
	Since, Until time.Time
	// Cursor is the Next of the previous call; empty for the first.
	Cursor EventID
	Limit  int
	Now    time.Time
}

// Bounds of DeliveryBackfillParams.Limit.
const (
	DefaultBackfillLimit = 10_000
	MaxBackfillLimit     = 100_000
)

// BackfillLimit returns Limit bounded to [1, MaxBackfillLimit], with
// DefaultBackfillLimit for zero or less.
func (p *DeliveryBackfillParams) BackfillLimit() int {
	switch {
	case p.Limit <= 0:
		return DefaultBackfillLimit
	case p.Limit > MaxBackfillLimit:
		return MaxBackfillLimit
	}
	return p.Limit
}

// DeliveryBackfillResult is what DeliveryBackfill did.
type DeliveryBackfillResult struct {
	// Created is the number of deliveries created.
	Created int
	// More is set when events in range were not looked at because of the
	// limit; Next is then the id of the last event looked at, the Cursor
	// of the next call.
	More bool
	Next EventID
}

// DeliveryStatsParams are the arguments of DeliveryStats.
type DeliveryStatsParams struct {
	// Limit bounds the work: a store reads at most Limit deliveries per
	// status, and at most Limit of the first due deliveries to find
	// OldestDue. Defaults to DefaultStatsLimit; at most MaxStatsLimit.
	Limit int
	Now   time.Time
}

// Bounds of DeliveryStatsParams.Limit.
const (
	DefaultStatsLimit = 10_000
	MaxStatsLimit     = 1_000_000
)

// DeliveryStats are the depths of the queue's live part. Delivered and
// failed deliveries are not counted: they are the history, which only
// grows, and counting it would make every read cost O(history). Count them
// from Hooks.OnAttempt instead (prommetrics' kapsel_attempts_total).
type DeliveryStats struct {
	// Count is the number of pending and delivering deliveries (those two
	// keys only, zero included).
	Count map[DeliveryStatus]int64
	// Capped is set for a status whose count stopped at Limit: there are at
	// least Count[status] such deliveries, maybe many more.
	Capped map[DeliveryStatus]bool
	// OldestDue is the NextAttemptAt of the earliest due pending delivery,
	// due as DeliveryClaim means it (its endpoint active, undeleted, its
	// breaker not open at Now): the delivery a claim would take first.
	// Deliveries waiting for a paused or disabled endpoint or an open
	// breaker wait visibly in Count, not here. Zero when none is due, or
	// when none of the first Limit due deliveries in the store's claim
	// order can be claimed.
	OldestDue time.Time
}

// StatsLimit returns Limit bounded to [1, MaxStatsLimit], with
// DefaultStatsLimit for zero or less.
func (p *DeliveryStatsParams) StatsLimit() int {
	switch {
	case p.Limit <= 0:
		return DefaultStatsLimit
	case p.Limit > MaxStatsLimit:
		return MaxStatsLimit
	}
	return p.Limit
}
