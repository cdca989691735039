package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/kapsel-dev/kapsel"
)

// countLiveSQL counts, among at most ?1 deliveries of status ?2, those of an
// undeleted endpoint, and returns how many it read. The deliveries come
// from a partial index of the status (deliveries_endpoint_pending_idx,
// which holds the endpoint id itself, and deliveries_delivering_idx), never
// from the delivered and failed history; the endpoint check is a primary
// key lookup per row. So the cost is O(?1) whatever the size of the tables;
// TestStatsQueryPlan checks the plan. The index is named (INDEXED BY): with
// the claim's own partial index on pending deliveries beside it, the
// planner may pick either.
var countLiveSQL = map[kapsel.DeliveryStatus]string{
	kapsel.DeliveryPending:    countLive("pending", "deliveries_endpoint_pending_idx"),
	kapsel.DeliveryDelivering: countLive("delivering", "deliveries_delivering_idx"),
}

func countLive(status, index string) string {
	return `
SELECT coalesce(sum(f.live), 0), count(*) FROM (
	SELECT (SELECT p.deleted_at IS NULL FROM endpoints p WHERE p.id = d.endpoint_id) AS live
	FROM deliveries d INDEXED BY ` + index + ` WHERE d.status = '` + status + `'
	LIMIT ?1) AS f`
}

// oldestDueSQL returns the next_attempt_at of the earliest due pending
// delivery that claimPending could take at ?1, among the first ?2 due ones
// in claim order (deliveries_claim_idx, the claim's own walk: deliveries
// held for a blocked endpoint are not in front). A backlog of blocked
// endpoints larger than the window hides what is behind it (the answer is
// then NULL), but never makes the query read more than ?2 rows.
const oldestDueSQL = `
SELECT min(f.next_attempt_at) FROM (
	SELECT d.next_attempt_at, d.endpoint_id FROM deliveries d
	WHERE d.status = 'pending' AND ` + claimOrder + ` <= ?1
	ORDER BY ` + claimOrder + `, d.id
	LIMIT ?2) AS f
WHERE (SELECT p.state = 'active' AND p.deleted_at IS NULL FROM endpoints p WHERE p.id = f.endpoint_id)
	AND NOT coalesce((SELECT b.open_until > ?1 FROM breakers b WHERE b.endpoint_id = f.endpoint_id), 0)`

// DeliveryStats counts pending and delivering deliveries of undeleted
// endpoints, reading at most Limit+1 of each status, and finds the earliest
// claimable due delivery among the first Limit due ones (see
// kapsel.DeliveryStore). It runs on the read pool, so it never waits for
// the writer nor holds it up.
func (s *Store) DeliveryStats(ctx context.Context, params *kapsel.DeliveryStatsParams) (*kapsel.DeliveryStats, error) {
	limit := params.StatsLimit()
	st := &kapsel.DeliveryStats{Count: map[kapsel.DeliveryStatus]int64{}, Capped: map[kapsel.DeliveryStatus]bool{}}
	for _, status := range []kapsel.DeliveryStatus{kapsel.DeliveryPending, kapsel.DeliveryDelivering} {
		var live, read int64
		if err := s.r.QueryRowContext(ctx, countLiveSQL[status], limit+1).Scan(&live, &read); err != nil {
			return nil, fmt.Errorf("counting %s deliveries: %w", status, mapError(err))
		}
		st.Count[status] = min(live, int64(limit))
		st.Capped[status] = read > int64(limit)
	}
	var oldest sql.NullInt64
	if err := s.r.QueryRowContext(ctx, oldestDueSQL, params.Now.UnixMicro(), limit).Scan(&oldest); err != nil {
		return nil, fmt.Errorf("finding the oldest due delivery: %w", mapError(err))
	}
	st.OldestDue = fromMicros(oldest)
	return st, nil
}
