package memstore

import (
	"container/heap"
	"context"
	"fmt"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// DeliveryClaim leases up to Limit due deliveries, earliest NextAttemptAt
// first (ties broken by id), and returns them with their events, bodies
// included: one copy of each event, shared by its deliveries.
func (s *Store) DeliveryClaim(ctx context.Context, params *kapsel.DeliveryClaimParams) ([]*kapsel.Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("claiming deliveries: %w: %w", kapsel.ErrUnavailable, err)
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
	// Keep the Limit earliest due deliveries in a max-heap while scanning,
	// so a claim over a large backlog costs O(n log Limit), not a full sort.
	due := &claimHeap{}
	for _, d := range s.deliveries {
		if !s.due(d, now) || exclude[d.EndpointID] {
			continue
		}
		if !s.claimable(d.EndpointID, now) {
			if d.Status == kapsel.DeliveryDelivering {
				// An expired lease of a blocked endpoint must not stay
				// delivering (I3 of docs/guarantees.md): it waits as
				// pending. (A deleted endpoint has no delivering delivery:
				// EndpointDelete ended them.)
				d.Status = kapsel.DeliveryPending
				d.LeaseToken, d.LeaseExpiresAt = "", time.Time{}
			}
			continue
		}
		if due.Len() < params.Limit {
			heap.Push(due, d)
		} else if claimsBefore(d, (*due)[0]) {
			(*due)[0] = d
			heap.Fix(due, 0)
		}
	}
	out := make([]*kapsel.Delivery, due.Len())
	// One copy of each event, shared by its deliveries: a body fanned out
	// to N endpoints is copied once, not N times.
	events := make(map[kapsel.EventID]*kapsel.Event, due.Len())
	for i, d := range *due {
		d.Status = kapsel.DeliveryDelivering
		d.LeaseToken = newLeaseToken()
		d.LeaseExpiresAt = ts(now.Add(params.LeaseDuration))
		out[i] = copyDelivery(d)
		e, ok := events[d.EventID]
		if !ok {
			e = copyEvent(s.events[d.EventID], true)
			events[d.EventID] = e
		}
		out[i].Event = e
	}
	return out, nil
}

// due reports whether d waits for an attempt at now: pending and due, or
// delivering with a lease that has expired (LeaseExpiresAt <= now).
func (s *Store) due(d *kapsel.Delivery, now time.Time) bool {
	switch d.Status {
	case kapsel.DeliveryPending:
		return !d.NextAttemptAt.After(now)
	case kapsel.DeliveryDelivering:
		return !d.LeaseExpiresAt.After(now)
	}
	return false
}

// claimable reports whether the endpoint's deliveries may be attempted at
// now: it is active, not deleted, and its breaker is not open. The durable
// stores also move the due deliveries of a blocked endpoint out of their
// claim index (pgstore's claimable_at, sqlitestore's held_until) so that
// claims do not walk them again; memstore walks every delivery on every
// claim anyway, so it keeps no holds and asks this each time.
func (s *Store) claimable(id kapsel.EndpointID, now time.Time) bool {
	r, ok := s.endpoints[id]
	if !ok || r.deleted() || r.endpoint.State != kapsel.EndpointActive {
		return false
	}
	b, ok := s.breakers[id]
	return !ok || !b.OpenUntil.After(now)
}

// leased returns the delivery when token still owns it: it is delivering
// under that token, or it was ended by its endpoint's deletion while
// delivering under it (failed, the token kept). ErrLeaseLost otherwise.
// s.mu is held.
func (s *Store) leased(id kapsel.DeliveryID, token string) (*kapsel.Delivery, error) {
	d, ok := s.deliveries[id]
	if !ok || token == "" || d.LeaseToken != token ||
		(d.Status != kapsel.DeliveryDelivering && d.Status != kapsel.DeliveryFailed) {
		return nil, fmt.Errorf("delivery %s: %w", id, kapsel.ErrLeaseLost)
	}
	return d, nil
}

// DeliveryComplete records each completion's attempt and applies its
// outcome. A lease still owned by its token completes even after
// LeaseExpiresAt, as long as no other claimer took the delivery over.
func (s *Store) DeliveryComplete(ctx context.Context, params *kapsel.DeliveryCompleteParams) ([]error, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("completing deliveries: %w: %w", kapsel.ErrUnavailable, err)
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

func (s *Store) complete(c *kapsel.DeliveryCompletion, now time.Time) error {
	switch c.Status {
	case kapsel.DeliveryDelivered, kapsel.DeliveryFailed, kapsel.DeliveryPending:
	default:
		return fmt.Errorf("completing delivery %s: %w: status %q", c.DeliveryID, kapsel.ErrInvalid, c.Status)
	}
	switch c.DisableEndpoint {
	case kapsel.DisabledNone, kapsel.DisabledManual, kapsel.DisabledGone, kapsel.DisabledFailing:
	default:
		return fmt.Errorf("completing delivery %s: %w: disable reason %q", c.DeliveryID, kapsel.ErrInvalid, c.DisableEndpoint)
	}
	d, err := s.leased(c.DeliveryID, c.LeaseToken)
	if err != nil {
		return fmt.Errorf("completing %w", err)
	}
	a := copyAttempt(&c.Attempt)
	a.ID, a.DeliveryID, a.EventID, a.EndpointID, a.TenantID = kapsel.NewAttemptID(), d.ID, d.EventID, d.EndpointID, d.TenantID
	a.Number = d.Attempts + 1
	if a.Trigger == "" {
		a.Trigger = d.NextTrigger
	}
	a.StartedAt = ts(a.StartedAt)
	a.Error = kapsel.SafeText(a.Error)
	if len(a.ResponseBody) > kapsel.MaxResponseBody {
		a.ResponseBody = a.ResponseBody[:kapsel.MaxResponseBody]
	}
	s.attempts[d.ID] = append(s.attempts[d.ID], a)

	d.Attempts++
	d.NextTrigger = kapsel.TriggerScheduled
	d.LeaseToken, d.LeaseExpiresAt = "", time.Time{}
	if d.Status == kapsel.DeliveryFailed {
		// Its endpoint was deleted while the attempt was in flight: the
		// attempt is recorded, a success is kept, anything else stays
		// failed as the deletion left it, and the endpoint is not touched.
		if c.Status == kapsel.DeliveryDelivered {
			d.Status, d.LastError, d.DeliveredAt = kapsel.DeliveryDelivered, kapsel.SafeText(c.LastError), now
		}
		return nil
	}
	d.Status = c.Status
	d.LastError = kapsel.SafeText(c.LastError)
	switch c.Status {
	case kapsel.DeliveryDelivered:
		d.DeliveredAt = now
	case kapsel.DeliveryPending:
		d.NextAttemptAt = ts(c.NextAttemptAt)
	}
	if c.DisableEndpoint != kapsel.DisabledNone {
		if r, ok := s.endpoints[d.EndpointID]; ok {
			setState(r.endpoint, kapsel.EndpointDisabled, c.DisableEndpoint)
			r.endpoint.UpdatedAt = now
		}
	}
	return nil
}

// DeliveryRelease gives leased deliveries back without an attempt; stale
// tokens are skipped, and so is a delivery its endpoint's deletion ended
// while it was leased: it stays failed and keeps its token, which still
// owns it for the completion of an attempt in flight.
func (s *Store) DeliveryRelease(ctx context.Context, params *kapsel.DeliveryReleaseParams) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("releasing deliveries: %w: %w", kapsel.ErrUnavailable, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range params.Releases {
		d, err := s.leased(r.DeliveryID, r.LeaseToken)
		if err != nil || d.Status != kapsel.DeliveryDelivering {
			continue
		}
		d.LeaseToken, d.LeaseExpiresAt = "", time.Time{}
		d.Status = kapsel.DeliveryPending
		d.NextAttemptAt = ts(r.NextAttemptAt)
		n++
	}
	return n, nil
}

// claimsBefore reports whether a is claimed before b: earlier NextAttemptAt,
// then lower id.
func claimsBefore(a, b *kapsel.Delivery) bool {
	if !a.NextAttemptAt.Equal(b.NextAttemptAt) {
		return a.NextAttemptAt.Before(b.NextAttemptAt)
	}
	return a.ID < b.ID
}

// claimHeap is a max-heap of deliveries by claim order: its root is the
// delivery that would be claimed last.
type claimHeap []*kapsel.Delivery

func (h claimHeap) Len() int           { return len(h) }
func (h claimHeap) Less(i, j int) bool { return claimsBefore(h[j], h[i]) }
func (h claimHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *claimHeap) Push(x any)        { *h = append(*h, x.(*kapsel.Delivery)) }
func (h *claimHeap) Pop() any {
	old := *h
	d := old[len(old)-1]
	*h = old[:len(old)-1]
	return d
}
