package pgstore

import (
	"context"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5"
	"github.com/kapsel-dev/kapsel"
)

// claimSQL leases up to $2 due events. Two branches, each read in index
// order and cut at the limit, so neither scans more than it returns (plus
// the events of endpoints it must skip):
//
//   - pending: events_pending_idx (next_attempt_at, id) WHERE status =
//     'pending', from the earliest;
//   - expired: events_delivering_idx (lease_expires_at) WHERE status =
//     'delivering', leases that ran out (normally none).
//
// Both skip rows other claimers hold (FOR UPDATE SKIP LOCKED), events of
// endpoints that are not active or are deleted, whose breaker is open at
// $1, or that are excluded ($3). The union is ordered by next_attempt_at
// and cut again; every picked row gets a fresh random lease token, which is
// what fences later completions. A single statement, so it is atomic
// without an explicit transaction.
const claimSQL = `
WITH pending AS (
	SELECT e.id, e.next_attempt_at FROM events e
	WHERE e.status = 'pending' AND e.next_attempt_at <= $1
		AND e.endpoint_id <> ALL ($3::text[])
		AND EXISTS (SELECT FROM endpoints ep
			WHERE ep.id = e.endpoint_id AND ep.state = 'active' AND ep.deleted_at IS NULL)
		AND NOT EXISTS (SELECT FROM breakers b WHERE b.endpoint_id = e.endpoint_id AND b.open_until > $1)
	ORDER BY e.next_attempt_at, e.id
	LIMIT $2
	FOR UPDATE OF e SKIP LOCKED
),
expired AS (
	SELECT e.id, e.next_attempt_at FROM events e
	WHERE e.status = 'delivering' AND e.lease_expires_at <= $1
		AND e.endpoint_id <> ALL ($3::text[])
		AND EXISTS (SELECT FROM endpoints ep
			WHERE ep.id = e.endpoint_id AND ep.state = 'active' AND ep.deleted_at IS NULL)
		AND NOT EXISTS (SELECT FROM breakers b WHERE b.endpoint_id = e.endpoint_id AND b.open_until > $1)
	ORDER BY e.lease_expires_at
	LIMIT $2
	FOR UPDATE OF e SKIP LOCKED
),
picked AS (
	SELECT id FROM (SELECT * FROM pending UNION ALL SELECT * FROM expired) AS due
	ORDER BY next_attempt_at, id
	LIMIT $2
)
UPDATE events e
SET status = 'delivering', lease_token = gen_random_uuid(), lease_expires_at = $4
FROM picked
WHERE e.id = picked.id
RETURNING ` + eventColumnsE + `, e.body`

// EventClaim leases up to Limit due events (see kapsel.EventQueue) in one
// statement and returns them with their bodies, earliest NextAttemptAt
// first. Concurrent claimers, in this process or others, never get the same
// event.
func (s *Store) EventClaim(ctx context.Context, params *kapsel.EventClaimParams) ([]*kapsel.Event, error) {
	if params.Limit <= 0 {
		return nil, nil
	}
	exclude := make([]string, len(params.ExcludeEndpoints))
	for i, id := range params.ExcludeEndpoints {
		exclude[i] = string(id)
	}
	now := micro(params.Now)
	rows, err := s.pool.Query(ctx, claimSQL, now, params.Limit, exclude, now.Add(params.LeaseDuration))
	if err != nil {
		return nil, fmt.Errorf("claiming events: %w", mapError(err))
	}
	evs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*kapsel.Event, error) { return scanEvent(r, true) })
	if err != nil {
		return nil, fmt.Errorf("claiming events: %w", mapError(err))
	}
	sort.Slice(evs, func(i, j int) bool {
		if !evs[i].NextAttemptAt.Equal(evs[j].NextAttemptAt) {
			return evs[i].NextAttemptAt.Before(evs[j].NextAttemptAt)
		}
		return evs[i].ID < evs[j].ID
	})
	return evs, nil
}
