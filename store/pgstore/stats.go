package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kapsel-dev/kapsel"
)

// statsStatementTimeout bounds each DeliveryStats statement on the server when
// the caller's context has no earlier deadline: a scrape never holds a
// connection or a snapshot for long, whatever the planner does.
const statsStatementTimeout = 5 * time.Second

// countLiveSQL counts, among at most $1 deliveries of status $2, those of
// an undeleted endpoint; it also returns how many it read, so the caller
// knows whether it stopped at the limit. The deliveries are read from the
// status' partial index (deliveries_pending_idx, deliveries_delivering_idx:
// the queue's live part only, never the delivered and failed history), in no particular
// order, and the endpoint check is a scalar sub-select per row (a primary
// key lookup), so the cost is O($1) whatever the size of either table.
// statsPlanSettings rule out the sequential and bitmap scans, which would
// read the whole table or the whole index before the LIMIT applies.
const countLiveSQL = `
SELECT count(*) FILTER (WHERE f.live), count(*) FROM (
	SELECT (SELECT ep.deleted_at IS NULL FROM endpoints ep WHERE ep.id = e.endpoint_id) AS live
	FROM deliveries e WHERE e.status = $2
	LIMIT $1) AS f`

// oldestDueSQL returns the next_attempt_at of the first delivery, in claim
// order (deliveries_pending_idx: claimable_at, id), that claimSQL could take at
// $1, looking at no more than the first $2 due index entries. The window
// is read lazily: the outer LIMIT 1 stops at the first claimable row, which
// is normally the first one, since claims move the deliveries of blocked
// endpoints out of the front (holdSQL). Without a dispatcher running, a
// blocked backlog may fill the window; then the answer is NULL.
const oldestDueSQL = `
SELECT f.next_attempt_at FROM (
	SELECT e.next_attempt_at, e.endpoint_id FROM deliveries e
	WHERE e.status = 'pending' AND e.claimable_at <= $1
	ORDER BY e.claimable_at, e.id
	LIMIT $2) AS f
WHERE (SELECT ep.state = 'active' AND ep.deleted_at IS NULL FROM endpoints ep WHERE ep.id = f.endpoint_id)
	AND NOT coalesce((SELECT b.open_until > $1 FROM breakers b WHERE b.endpoint_id = f.endpoint_id), false)
LIMIT 1`

// statsPlanSettings pin DeliveryStats' plans to ordered index scans that stop
// at their limits (see claimPlanSettings) and bound every statement on the
// server ($1, milliseconds), for the batch's implicit transaction only.
const statsPlanSettings = `SELECT set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true),
	set_config('statement_timeout', $1, true)`

// DeliveryStats counts pending and delivering deliveries of undeleted
// endpoints, reading at most Limit+1 of each status, and finds the first
// due pending delivery a claim would take among the first Limit due ones
// (see kapsel.DeliveryStore). One round trip; its cost does not depend on
// the number of delivered and failed deliveries, nor on a backlog past
// Limit.
func (s *Store) DeliveryStats(ctx context.Context, params *kapsel.DeliveryStatsParams) (*kapsel.DeliveryStats, error) {
	limit := params.StatsLimit()
	timeout := statsStatementTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, max(time.Until(d), time.Millisecond))
	}
	statuses := []kapsel.DeliveryStatus{kapsel.DeliveryPending, kapsel.DeliveryDelivering}
	b := &pgx.Batch{}
	b.Queue(statsPlanSettings, fmt.Sprint(timeout.Milliseconds()))
	for _, st := range statuses {
		b.Queue(countLiveSQL, limit+1, st)
	}
	b.Queue(oldestDueSQL, micro(params.Now), limit)
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return nil, fmt.Errorf("reading queue stats: %w", mapError(err))
	}
	out := &kapsel.DeliveryStats{Count: map[kapsel.DeliveryStatus]int64{}, Capped: map[kapsel.DeliveryStatus]bool{}}
	for _, st := range statuses {
		var live, read int64
		if err := br.QueryRow().Scan(&live, &read); err != nil {
			return nil, fmt.Errorf("counting %s deliveries: %w", st, mapError(err))
		}
		out.Count[st] = min(live, int64(limit))
		out.Capped[st] = read > int64(limit)
	}
	var oldest time.Time
	switch err := br.QueryRow().Scan(&oldest); err {
	case nil:
		out.OldestDue = oldest
	case pgx.ErrNoRows:
	default:
		return nil, fmt.Errorf("finding the oldest due delivery: %w", mapError(err))
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("reading queue stats: %w", mapError(err))
	}
	return out, nil
}
