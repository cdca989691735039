package service

import (
	"context"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// Replay selects the deliveries of [Service.ReplayEndpoint].
type Replay struct {
	// Status is kapsel.DeliveryFailed or kapsel.DeliveryDelivered.
	Status kapsel.DeliveryStatus
	// Since and Until bound the creation time of the deliveries' events,
	// [Since, Until); a zero bound is open.
	Since, Until time.Time
}

// ReplayEndpoint queues again, for a manual attempt with the same
// webhook-id, every delivery to the endpoint with r.Status whose event was
// created in [r.Since, r.Until), and returns how many. Errors: E1009 for
// another status or an empty range; E1011 as GetEndpoint.
func (s *Service) ReplayEndpoint(ctx context.Context, tenant kapsel.TenantID, id kapsel.EndpointID, r Replay) (int, error) {
	if r.Status != kapsel.DeliveryFailed && r.Status != kapsel.DeliveryDelivered {
		return 0, invalid(`status must be "failed" or "delivered"`)
	}
	if err := checkRange(r.Since, r.Until); err != nil {
		return 0, err
	}
	n, err := s.store.DeliveryReplay(ctx, &kapsel.DeliveryReplayParams{
		TenantID: tenant, EndpointID: id, Status: r.Status, Since: r.Since, Until: r.Until, Now: s.now(),
	})
	if err != nil {
		return 0, notFoundErr(err, "endpoint", string(id))
	}
	if n > 0 {
		s.Wake()
	}
	return n, nil
}

// Backfill selects the past events of [Service.BackfillEndpoint].
type Backfill struct {
	// Since and Until bound the events' creation time, [Since, Until); a
	// zero bound is open.
	Since, Until time.Time
	// Cursor continues a backfill that stopped with More: the Next it
	// returned. Empty for the first call.
	Cursor kapsel.EventID
}

// MaxBackfillEvents bounds the events one [Service.BackfillEndpoint] call
// looks at; a range with more is done in several calls
// (BackfillResult.More and Next).
const MaxBackfillEvents = 100_000

// backfillRound is how many events one store call looks at.
const backfillRound = kapsel.DefaultBackfillLimit

// backfillBounds are the round and the budget of a backfill call: the
// constants, which tests change.
type backfillBounds struct{ round, budget int }

// BackfillResult is what [Service.BackfillEndpoint] did.
type BackfillResult struct {
	// Created is the number of deliveries created.
	Created int
	// More is set when events of the range were left for another call,
	// after MaxBackfillEvents; Next is then the Cursor to call with.
	More bool
	Next kapsel.EventID
}

// BackfillEndpoint gives the endpoint the deliveries it would have had for
// the tenant's past events created in [b.Since, b.Until) that its
// subscription filter matches, as if it had existed when they were stored:
// one per event at most — events that already have a delivery to it are
// left alone, so repeating a backfill, or running two at once, creates
// nothing twice. The new deliveries are due at once, with trigger manual.
// One call looks at up to MaxBackfillEvents events, oldest first; when the
// range holds more, the result says where to continue. Errors: E1009 for an
// empty range or a malformed cursor; E1011 as GetEndpoint; a storage error
// may come after part of the range was done, which calling again completes.
func (s *Service) BackfillEndpoint(ctx context.Context, tenant kapsel.TenantID, id kapsel.EndpointID, b Backfill) (*BackfillResult, error) {
	if err := checkRange(b.Since, b.Until); err != nil {
		return nil, err
	}
	if b.Cursor != "" {
		if _, err := kapsel.ParseEventID(string(b.Cursor)); err != nil {
			return nil, invalid("cursor is malformed; pass the next_cursor of the previous backfill")
		}
	}
	out := &BackfillResult{}
	cursor := b.Cursor
	bounds := s.backfill
	for looked := 0; looked < bounds.budget; looked += bounds.round {
		res, err := s.store.DeliveryBackfill(ctx, &kapsel.DeliveryBackfillParams{
			TenantID: tenant, EndpointID: id, Since: b.Since, Until: b.Until, Cursor: cursor,
			Limit: bounds.round, Now: s.now(),
		})
		if err != nil {
			if out.Created > 0 {
				s.Wake()
			}
			return nil, notFoundErr(err, "endpoint", string(id))
		}
		out.Created += res.Created
		out.More, out.Next = res.More, res.Next
		if !res.More {
			out.Next = ""
			break
		}
		cursor = res.Next
	}
	if out.Created > 0 {
		s.Wake()
	}
	return out, nil
}

// checkRange refuses a time range [since, until) that is empty (E1009).
func checkRange(since, until time.Time) error {
	if !since.IsZero() && !until.IsZero() && !since.Before(until) {
		return invalid("since must be before until")
	}
	return nil
}
