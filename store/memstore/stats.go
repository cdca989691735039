package memstore

import (
	"context"
	"fmt"

	"github.com/kapsel-dev/kapsel"
)

// EventStats counts pending and delivering events of undeleted endpoints
// and finds the earliest due pending event a claim would take (see
// kapsel.EventStore). Like every memstore read it walks all events under
// the lock — memstore is for tests and examples — but it answers what the
// durable stores answer: each count stops at Limit, with Capped set, once
// more than Limit events of the status were seen.
func (s *Store) EventStats(ctx context.Context, params *kapsel.EventStatsParams) (*kapsel.EventStats, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("reading queue stats: %w: %w", kapsel.ErrUnavailable, err)
	}
	limit := int64(params.StatsLimit())
	now := ts(params.Now)
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &kapsel.EventStats{
		Count:  map[kapsel.EventStatus]int64{kapsel.EventPending: 0, kapsel.EventDelivering: 0},
		Capped: map[kapsel.EventStatus]bool{},
	}
	read := map[kapsel.EventStatus]int64{}
	for _, e := range s.events {
		if e.Status != kapsel.EventPending && e.Status != kapsel.EventDelivering {
			continue
		}
		read[e.Status]++
		if r := s.endpoints[e.EndpointID]; r != nil && !r.deleted() {
			st.Count[e.Status]++
		}
		if e.Status == kapsel.EventPending && !e.NextAttemptAt.After(now) && s.claimable(e.EndpointID, now) &&
			(st.OldestDue.IsZero() || e.NextAttemptAt.Before(st.OldestDue)) {
			st.OldestDue = e.NextAttemptAt
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
