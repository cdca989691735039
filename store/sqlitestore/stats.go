package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/kapsel-dev/kapsel"
)

// countLiveSQL counts, among at most ?1 events of status ?2, those of an
// undeleted endpoint, and returns how many it read. The events come from the
// status' partial index (events_pending_idx, events_delivering_idx), never
// from the delivered and failed history; the endpoint check is a primary key
// lookup per row. So the cost is O(?1) whatever the size of the tables;
// TestStatsQueryPlan checks the plan. The index is named (INDEXED BY):
// with the claim's own partial index on pending events (events_claim_idx)
// beside it, the planner may pick either, and only this one is ordered by
// next_attempt_at for the oldest-due read's sake as well.
var countLiveSQL = map[kapsel.EventStatus]string{
	kapsel.EventPending:    countLive("pending", "events_pending_idx"),
	kapsel.EventDelivering: countLive("delivering", "events_delivering_idx"),
}

func countLive(status, index string) string {
	return `
SELECT coalesce(sum(f.live), 0), count(*) FROM (
	SELECT (SELECT p.deleted_at IS NULL FROM endpoints p WHERE p.id = e.endpoint_id) AS live
	FROM events e INDEXED BY ` + index + ` WHERE e.status = '` + status + `'
	LIMIT ?1) AS f`
}

// oldestDueSQL returns the next_attempt_at of the earliest due pending event
// that claimPending could take at ?1, among the first ?2 due ones in claim
// order (events_pending_idx). A backlog of blocked endpoints larger than the
// window hides what is behind it (the answer is then NULL), but never makes
// the query read more than ?2 rows.
const oldestDueSQL = `
SELECT min(f.next_attempt_at) FROM (
	SELECT e.next_attempt_at, e.endpoint_id FROM events e
	WHERE e.status = 'pending' AND e.next_attempt_at <= ?1
	ORDER BY e.next_attempt_at, e.id
	LIMIT ?2) AS f
WHERE (SELECT p.state = 'active' AND p.deleted_at IS NULL FROM endpoints p WHERE p.id = f.endpoint_id)
	AND NOT coalesce((SELECT b.open_until > ?1 FROM breakers b WHERE b.endpoint_id = f.endpoint_id), 0)`

// EventStats counts pending and delivering events of undeleted endpoints,
// reading at most Limit+1 of each status, and finds the earliest claimable
// due event among the first Limit due ones (see kapsel.EventStore). It runs
// on the read pool, so it never waits for the writer nor holds it up.
func (s *Store) EventStats(ctx context.Context, params *kapsel.EventStatsParams) (*kapsel.EventStats, error) {
	limit := params.StatsLimit()
	st := &kapsel.EventStats{Count: map[kapsel.EventStatus]int64{}, Capped: map[kapsel.EventStatus]bool{}}
	for _, status := range []kapsel.EventStatus{kapsel.EventPending, kapsel.EventDelivering} {
		var live, read int64
		if err := s.r.QueryRowContext(ctx, countLiveSQL[status], limit+1).Scan(&live, &read); err != nil {
			return nil, fmt.Errorf("counting %s events: %w", status, mapError(err))
		}
		st.Count[status] = min(live, int64(limit))
		st.Capped[status] = read > int64(limit)
	}
	var oldest sql.NullInt64
	if err := s.r.QueryRowContext(ctx, oldestDueSQL, params.Now.UnixMicro(), limit).Scan(&oldest); err != nil {
		return nil, fmt.Errorf("finding the oldest due event: %w", mapError(err))
	}
	st.OldestDue = fromMicros(oldest)
	return st, nil
}
