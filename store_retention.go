package kapsel

import (
	"context"
	"time"
)

// RetentionStore removes what retention and expunges remove
// (docs/operations.md, "Retention"). Each call is one short, bounded
// batch, in its own transaction: a pass over a large backlog is many calls,
// so that no call holds locks (or SQLite's single writer) for long. The
// runner (package retention) and the expunge operations of the front door
// drive it.
//
// The sweeps walk events in id order (ids sort by creation time), from
// From (inclusive), examining at most Limit of them, and say where to go on
// (Next) and where the next pass must start again (Blocked), so that a pass
// never re-reads what an earlier batch already dealt with.
//
// An event is in use, and is neither erased by a sweep nor removed, while
// one of its deliveries has not ended: it is pending or delivering, or it
// ended while an attempt was in flight (failed with a lease kept) and that
// lease had not run out by Before.
//
// For store implementers: an optional capability, not part of [Store]
// (a store written for 0.1 keeps compiling), discovered by type
// assertion. Without it the front door runs no retention (service.New
// refuses a Retention config) and its expunge operations fail with
// [ErrInvalid] ("the store does not support expunge"). The three stores
// of this module implement it. Applications use the front door
// (service.Service's ExpungeEvent and ExpungeTenantBodies, the retention
// runner).
type RetentionStore interface {
	// RetentionEraseBodies erases the body and forwarded headers of the
	// examined events created before Before whose body is still stored and
	// that are not in use: Body becomes empty, Headers empty, BodyErasure
	// BodyExpired and BodyErasedAt Now. Size, BodyHash and the rest of the
	// event stay. Result.Events counts the events erased, Result.Bytes
	// their body bytes.
	RetentionEraseBodies(ctx context.Context, params *RetentionSweepParams) (*RetentionSweepResult, error)
	// RetentionDeleteEvents removes the examined events created before
	// Before that are not in use, whose every delivery was last due
	// (NextAttemptAt) before Before, and whose idempotency key, if any, is
	// no longer taken at Now — with their deliveries and attempts.
	RetentionDeleteEvents(ctx context.Context, params *RetentionSweepParams) (*RetentionSweepResult, error)
	// RetentionDeleteIdempotencyKeys removes up to Limit idempotency keys
	// whose window has ended at Now (they are free already: an insert takes
	// an expired key over). Result.Done is set when fewer than Limit were
	// left.
	RetentionDeleteIdempotencyKeys(ctx context.Context, params *RetentionKeysParams) (*RetentionSweepResult, error)
	// RetentionOldest returns the creation time of the oldest row of the
	// events, deliveries and attempts tables (an attempt's StartedAt), by
	// id order; zero for an empty table. It costs an index probe per
	// table, whatever their size.
	RetentionOldest(ctx context.Context) (*RetentionOldest, error)
	// EventExpunge erases bodies and headers at once, whatever their age,
	// and marks them BodyExpunged at Now: the event ID of TenantID, or,
	// with ID empty, the examined events of TenantID (From, Limit, as a
	// sweep; Result.Done when the tenant has no more). The deliveries of
	// an erased event that have not ended become failed with LastError
	// LastErrorBodyExpunged (a delivering one keeps its lease, so that the
	// attempt in flight is still recorded, as for a deleted endpoint). An
	// event whose body was erased already is left as it is. ErrNotFound
	// when ID is set and the event does not exist or is another tenant's;
	// ErrInvalid when TenantID is empty.
	EventExpunge(ctx context.Context, params *EventExpungeParams) (*RetentionSweepResult, error)
}

// RetentionSweepParams are the arguments of a retention sweep.
type RetentionSweepParams struct {
	// TenantID, when set, restricts the sweep to that tenant's events.
	TenantID TenantID
	// ExcludeTenantIDs are tenants whose events are skipped (those with a
	// policy of their own, swept separately); only without TenantID.
	ExcludeTenantIDs []TenantID
	// Before is the cut-off: events created before it have expired.
	Before time.Time
	// From is the first event id to examine; empty for the first one.
	From EventID
	// Limit is the most events examined. Defaults to DefaultRetentionBatch.
	Limit int
	Now   time.Time
}

// DefaultRetentionBatch is how many events a retention batch examines. A
// batch is one short transaction: 250 events hold SQLite's single writer
// for at most ~0.2 s on a loaded 2-core machine (1,000: 0.8 s), and on
// Postgres shorter batches are shorter bursts of the WAL and CPU the hot
// path competes for (docs/benchmarks.md, "Retention").
const DefaultRetentionBatch = 250

// RetentionKeysParams are the arguments of RetentionDeleteIdempotencyKeys.
type RetentionKeysParams struct {
	// Limit is the most keys removed. Defaults to DefaultRetentionBatch.
	Limit int
	Now   time.Time
}

// EventExpungeParams are the arguments of EventExpunge.
type EventExpungeParams struct {
	TenantID TenantID
	// ID is the event to expunge; empty for all of the tenant's.
	ID EventID
	// From and Limit page through the tenant's events when ID is empty, as
	// in a sweep.
	From  EventID
	Limit int
	Now   time.Time
}

// RetentionSweepResult is what a batch did.
type RetentionSweepResult struct {
	// Events, Deliveries and Attempts count the rows removed (for
	// RetentionEraseBodies and EventExpunge, Events counts the bodies
	// erased; for RetentionDeleteIdempotencyKeys, Events counts keys).
	Events, Deliveries, Attempts int
	// Bytes are the bytes of bodies and response bodies removed.
	Bytes int64
	// DeliveriesEnded counts the deliveries an expunge ended as failed.
	DeliveriesEnded int
	// Next is the first event id the next batch of this pass examines;
	// when Done, where the next pass may start (the last event examined
	// when the events ran out, the first newer one otherwise).
	Next EventID
	// Blocked is the first examined event that was old enough but kept
	// because it was in use; empty when none. The next pass starts again
	// from the earlier of Blocked and where this pass stopped.
	Blocked EventID
	// Done is set when the pass is over: no event is left after the
	// examined ones, or the last one examined was created at or after
	// Before (ids sort by creation time, so the rest are newer).
	Done bool
}

// RetentionOldest is the oldest row kept per table.
type RetentionOldest struct {
	Events, Deliveries, Attempts time.Time
}

// RetentionLimit applies DefaultRetentionBatch to limit.
func RetentionLimit(limit int) int {
	if limit <= 0 {
		return DefaultRetentionBatch
	}
	return limit
}

// RetentionScanned is one event a sweep examined, in id order.
//
// For store implementers: the input of PlanRetentionBatch.
type RetentionScanned struct {
	ID        EventID
	CreatedAt time.Time
	Erasure   BodyErasure
}

// PlanRetentionBatch decides a sweep's batch from the events it read: up to
// limit+1 of them from From, in id order. It returns the ids to act on —
// those of the first limit created before before that want accepts — and
// the result's Next and Done; the store then acts on the ids, counts into
// the result, and calls SetBlocked.
//
// For store implementers: the paging rule every store follows.
func PlanRetentionBatch(rows []RetentionScanned, limit int, before time.Time, want func(RetentionScanned) bool) ([]EventID, *RetentionSweepResult) {
	res := &RetentionSweepResult{Done: true}
	if len(rows) > 0 {
		// The rows ran out: the next pass starts again at the last one
		// (From is inclusive), not at the first event of the table.
		res.Next = rows[len(rows)-1].ID
	}
	var ids []EventID
	for i, r := range rows {
		if i == limit {
			res.Next, res.Done = r.ID, false
			break
		}
		if !r.CreatedAt.Before(before) {
			res.Next = r.ID
			break
		}
		if want == nil || want(r) {
			ids = append(ids, r.ID)
		}
	}
	return ids, res
}

// SetBlocked sets Blocked to the first of planned that acted does not hold:
// the first event the store kept because it was in use.
//
// For store implementers: see PlanRetentionBatch.
func (r *RetentionSweepResult) SetBlocked(planned, acted []EventID) {
	done := make(map[EventID]bool, len(acted))
	for _, id := range acted {
		done[id] = true
	}
	for _, id := range planned {
		if !done[id] {
			r.Blocked = id
			return
		}
	}
}

// RetentionNever is a cut-off after every event's creation, for a sweep
// that is not bounded by age (a tenant's expunge).
var RetentionNever = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
