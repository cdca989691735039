package memstore

import (
	"container/heap"
	"context"
	"fmt"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// EventClaim leases up to Limit due events, earliest NextAttemptAt first
// (ties broken by id), and returns them with their bodies.
func (s *Store) EventClaim(ctx context.Context, params *kapsel.EventClaimParams) ([]*kapsel.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("claiming events: %w: %w", kapsel.ErrUnavailable, err)
	}
	if params.Limit <= 0 {
		return nil, nil
	}
	now := ts(params.Now)
	exclude := make(map[kapsel.EndpointID]bool, len(params.ExcludeEndpoints))
	for _, id := range params.ExcludeEndpoints {
		exclude[id] = true
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	// Keep the Limit earliest due events in a max-heap while scanning, so a
	// claim over a large backlog costs O(n log Limit), not a full sort.
	due := &claimHeap{}
	for _, e := range s.events {
		if !s.due(e, now) || exclude[e.EndpointID] {
			continue
		}
		if !s.claimable(e.EndpointID, now) {
			if e.Status == kapsel.EventDelivering {
				s.endExpiredLease(e)
			}
			continue
		}
		if due.Len() < params.Limit {
			heap.Push(due, e)
		} else if claimsBefore(e, (*due)[0]) {
			(*due)[0] = e
			heap.Fix(due, 0)
		}
	}
	out := make([]*kapsel.Event, due.Len())
	for i, e := range *due {
		e.Status = kapsel.EventDelivering
		e.LeaseToken = newLeaseToken()
		e.LeaseExpiresAt = ts(now.Add(params.LeaseDuration))
		out[i] = copyEvent(e, true)
	}
	return out, nil
}

// due reports whether e waits for an attempt at now: pending and due, or
// delivering with a lease that has expired (LeaseExpiresAt <= now).
func (s *Store) due(e *kapsel.Event, now time.Time) bool {
	switch e.Status {
	case kapsel.EventPending:
		return !e.NextAttemptAt.After(now)
	case kapsel.EventDelivering:
		return !e.LeaseExpiresAt.After(now)
	}
	return false
}

// claimable reports whether the endpoint's events may be attempted at now:
// it is active, not deleted, and its breaker is not open. The durable stores
// also move the due events of a blocked endpoint out of their claim index
// (pgstore's claimable_at, sqlitestore's held_until) so that claims do not
// walk them again; memstore walks every event on every claim anyway, so it
// keeps no holds and asks this each time.
func (s *Store) claimable(id kapsel.EndpointID, now time.Time) bool {
	r, ok := s.endpoints[id]
	if !ok || r.deleted() || r.endpoint.State != kapsel.EndpointActive {
		return false
	}
	b, ok := s.breakers[id]
	return !ok || !b.OpenUntil.After(now)
}

// deletedEndpointError is the LastError of an event whose lease ran out
// after its endpoint was deleted.
const deletedEndpointError = "endpoint deleted: the delivery was ended unattempted"

// endExpiredLease deals with a delivering event whose lease has expired
// while its endpoint is blocked: it must not stay delivering (I3 of
// docs/guarantees.md). It goes back to pending with its lease cleared — or,
// when its endpoint was deleted, ends as failed.
func (s *Store) endExpiredLease(e *kapsel.Event) {
	e.LeaseToken, e.LeaseExpiresAt = "", time.Time{}
	if r, ok := s.endpoints[e.EndpointID]; !ok || r.deleted() {
		e.Status, e.LastError = kapsel.EventFailed, deletedEndpointError
		return
	}
	e.Status = kapsel.EventPending
}

// leased returns the event when token still owns it; ErrLeaseLost otherwise.
// s.mu is held.
func (s *Store) leased(id kapsel.EventID, token string) (*kapsel.Event, error) {
	e, ok := s.events[id]
	if !ok || token == "" || e.Status != kapsel.EventDelivering || e.LeaseToken != token {
		return nil, fmt.Errorf("event %s: %w", id, kapsel.ErrLeaseLost)
	}
	return e, nil
}

// EventComplete records each completion's attempt and applies its outcome.
// A lease still owned by its token completes even after LeaseExpiresAt, as
// long as no other claimer took the event over.
func (s *Store) EventComplete(ctx context.Context, params *kapsel.EventCompleteParams) ([]error, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("completing events: %w: %w", kapsel.ErrUnavailable, err)
	}
	now := ts(params.Now)
	s.mu.Lock()
	defer s.mu.Unlock()
	errs := make([]error, len(params.Completions))
	for i := range params.Completions {
		errs[i] = s.complete(&params.Completions[i], now)
	}
	return errs, nil
}

func (s *Store) complete(c *kapsel.EventCompletion, now time.Time) error {
	switch c.Status {
	case kapsel.EventDelivered, kapsel.EventFailed, kapsel.EventPending:
	default:
		return fmt.Errorf("completing event %s: %w: status %q", c.EventID, kapsel.ErrInvalid, c.Status)
	}
	switch c.DisableEndpoint {
	case kapsel.DisabledNone, kapsel.DisabledManual, kapsel.DisabledGone, kapsel.DisabledFailing:
	default:
		return fmt.Errorf("completing event %s: %w: disable reason %q", c.EventID, kapsel.ErrInvalid, c.DisableEndpoint)
	}
	e, err := s.leased(c.EventID, c.LeaseToken)
	if err != nil {
		return fmt.Errorf("completing %w", err)
	}
	a := copyAttempt(&c.Attempt)
	a.ID, a.EventID, a.EndpointID, a.TenantID = kapsel.NewAttemptID(), e.ID, e.EndpointID, e.TenantID
	a.Number = e.Attempts + 1
	if a.Trigger == "" {
		a.Trigger = e.NextTrigger
	}
	a.StartedAt = ts(a.StartedAt)
	a.Error = kapsel.SafeText(a.Error)
	if len(a.ResponseBody) > kapsel.MaxResponseBody {
		a.ResponseBody = a.ResponseBody[:kapsel.MaxResponseBody]
	}
	s.attempts[e.ID] = append(s.attempts[e.ID], a)

	e.Attempts++
	e.Status = c.Status
	e.LastError = kapsel.SafeText(c.LastError)
	e.NextTrigger = kapsel.TriggerScheduled
	e.LeaseToken, e.LeaseExpiresAt = "", time.Time{}
	switch c.Status {
	case kapsel.EventDelivered:
		e.DeliveredAt = now
	case kapsel.EventPending:
		e.NextAttemptAt = ts(c.NextAttemptAt)
	}
	if c.DisableEndpoint != kapsel.DisabledNone {
		if r, ok := s.endpoints[e.EndpointID]; ok {
			setState(r.endpoint, kapsel.EndpointDisabled, c.DisableEndpoint)
			r.endpoint.UpdatedAt = now
		}
	}
	return nil
}

// EventRelease gives leased events back without an attempt; stale tokens are
// skipped.
func (s *Store) EventRelease(ctx context.Context, params *kapsel.EventReleaseParams) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("releasing events: %w: %w", kapsel.ErrUnavailable, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range params.Releases {
		e, err := s.leased(r.EventID, r.LeaseToken)
		if err != nil {
			continue
		}
		e.Status = kapsel.EventPending
		e.NextAttemptAt = ts(r.NextAttemptAt)
		e.LeaseToken, e.LeaseExpiresAt = "", time.Time{}
		n++
	}
	return n, nil
}

// claimsBefore reports whether a is claimed before b: earlier NextAttemptAt,
// then lower id.
func claimsBefore(a, b *kapsel.Event) bool {
	if !a.NextAttemptAt.Equal(b.NextAttemptAt) {
		return a.NextAttemptAt.Before(b.NextAttemptAt)
	}
	return a.ID < b.ID
}

// claimHeap is a max-heap of events by claim order: its root is the event
// that would be claimed last.
type claimHeap []*kapsel.Event

func (h claimHeap) Len() int           { return len(h) }
func (h claimHeap) Less(i, j int) bool { return claimsBefore(h[j], h[i]) }
func (h claimHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *claimHeap) Push(x any)        { *h = append(*h, x.(*kapsel.Event)) }
func (h *claimHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
