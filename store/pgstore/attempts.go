package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/kapsel-dev/kapsel"
)

const attemptColumns = `id, event_id, endpoint_id, tenant_id, number, trigger, started_at, duration_ns,
	status_code, response_body, error_code, error`

func scanAttempt(row scanner) (*kapsel.Attempt, error) {
	var (
		a        kapsel.Attempt
		duration int64
	)
	if err := row.Scan(&a.ID, &a.EventID, &a.EndpointID, &a.TenantID, &a.Number, &a.Trigger, &a.StartedAt,
		&duration, &a.StatusCode, &a.ResponseBody, &a.ErrorCode, &a.Error); err != nil {
		return nil, err
	}
	a.Duration = nanos(duration)
	return &a, nil
}

// AttemptList lists an event's attempts, oldest first (by attempt number,
// on the (event_id, number) unique index), after the attempt Cursor.
// ErrNotFound when the event is not visible to TenantID.
func (s *Store) AttemptList(ctx context.Context, params *kapsel.AttemptListParams) ([]*kapsel.Attempt, error) {
	var visible bool
	if err := s.pool.QueryRow(ctx,
		`SELECT EXISTS (SELECT FROM events WHERE id = $1 AND ($2::text = '' OR tenant_id = $2))`,
		params.EventID, params.TenantID).Scan(&visible); err != nil {
		return nil, fmt.Errorf("listing attempts of event %s: %w", params.EventID, mapError(err))
	}
	if !visible {
		return nil, fmt.Errorf("listing attempts of event %s: %w", params.EventID, kapsel.ErrNotFound)
	}
	// The cut happens in the query (substring of bytea counts bytes, left of
	// text characters), so a page never carries more than the limits across
	// the wire nor into memory.
	rows, err := s.pool.Query(ctx, `
		SELECT `+attemptColumns+` FROM (
			SELECT a.id, a.event_id, a.endpoint_id, a.tenant_id, a.number, a.trigger, a.started_at,
				a.duration_ns, a.status_code, a.error_code,
				CASE WHEN $4 > 0 THEN substring(a.response_body FROM 1 FOR $4) ELSE a.response_body END AS response_body,
				CASE WHEN $5 > 0 THEN left(a.error, $5) ELSE a.error END AS error
			FROM attempts a
			WHERE a.event_id = $1
				AND a.number > coalesce((SELECT number FROM attempts WHERE id = $2 AND event_id = $1), 0)
			ORDER BY a.number LIMIT $3
		) AS page
		ORDER BY number`,
		params.EventID, params.Cursor, kapsel.PageLimit(params.Limit), max(params.ResponseBodyLimit, 0), max(params.ErrorLimit, 0))
	if err != nil {
		return nil, fmt.Errorf("listing attempts of event %s: %w", params.EventID, mapError(err))
	}
	as, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*kapsel.Attempt, error) { return scanAttempt(r) })
	if err != nil {
		return nil, fmt.Errorf("listing attempts of event %s: %w", params.EventID, mapError(err))
	}
	return as, nil
}

// AttemptStats summarises an endpoint's attempts started at or after Since
// (an attempt succeeded when its status code is 2xx); LastSuccessAt and
// LastFailureAt cover the whole history. It reads
// attempts_endpoint_started_idx.
func (s *Store) AttemptStats(ctx context.Context, params *kapsel.AttemptStatsParams) (*kapsel.AttemptStats, error) {
	var (
		st                    kapsel.AttemptStats
		lastSuccess, lastFail *time.Time
	)
	err := s.pool.QueryRow(ctx, `
		SELECT
			count(*) FILTER (WHERE started_at >= $2),
			count(*) FILTER (WHERE started_at >= $2 AND status_code BETWEEN 200 AND 299),
			(SELECT max(started_at) FROM attempts WHERE endpoint_id = $1 AND status_code BETWEEN 200 AND 299),
			(SELECT max(started_at) FROM attempts WHERE endpoint_id = $1 AND status_code NOT BETWEEN 200 AND 299)
		FROM attempts WHERE endpoint_id = $1 AND started_at >= $2`,
		params.EndpointID, micro(params.Since)).Scan(&st.Total, &st.Succeeded, &lastSuccess, &lastFail)
	if err != nil {
		return nil, fmt.Errorf("summarising attempts of endpoint %s: %w", params.EndpointID, mapError(err))
	}
	st.LastSuccessAt, st.LastFailureAt = timeVal(lastSuccess), timeVal(lastFail)
	return &st, nil
}
