package memstore

import (
	"context"
	"fmt"

	"github.com/kapsel-dev/kapsel"
)

// DeliveryStats counts pending and delivering deliveries of undeleted
// endpoints and finds the earliest due pending delivery a claim would take
// (see kapsel.DeliveryStore). Like every memstore read it walks all
// deliveries under the lock — memstore is for tests and examples — but it
// answers what the durable stores answer: each count stops at Limit, with
// Capped set, once more than Limit deliveries of the status were seen.
func (s *Store) DeliveryStats(ctx context.Context, params *kapsel.DeliveryStatsParams) (*kapsel.DeliveryStats, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("reading queue stats: %w: %w", kapsel.ErrUnavailable, err)
	}
	limit := int64(params.StatsLimit())
	now := ts(params.Now)
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &kapsel.DeliveryStats{
		Count:  map[kapsel.DeliveryStatus]int64{kapsel.DeliveryPending: 0, kapsel.DeliveryDelivering: 0},
		Capped: map[kapsel.DeliveryStatus]bool{},
	}
	read := map[kapsel.DeliveryStatus]int64{}
	for _, d := range s.deliveries {
		if d.Status != kapsel.DeliveryPending && d.Status != kapsel.DeliveryDelivering {
			continue
		}
		read[d.Status]++
		if s.liveEndpoint(d.EndpointID) {
			st.Count[d.Status]++
		}
		if d.Status == kapsel.DeliveryPending && !d.NextAttemptAt.After(now) && s.claimable(d.EndpointID, now) &&
			(st.OldestDue.IsZero() || d.NextAttemptAt.Before(st.OldestDue)) {
			st.OldestDue = d.NextAttemptAt
		}
	}
	for status, n := range read {
		if n > limit {
			st.Count[status] = min(st.Count[status], limit)
			st.Capped[status] = true
		}
	}
	return st, nil
}
