package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// AttemptList lists the attempts of one delivery or of all the deliveries
// of one event, oldest first (ids grow with time, and so do the attempt
// numbers of a delivery). ErrNotFound when that delivery or event is not
// visible to TenantID; ErrInvalid unless exactly one of them is given.
func (s *Store) AttemptList(ctx context.Context, params *kapsel.AttemptListParams) ([]*kapsel.Attempt, error) {
	switch {
	case (params.DeliveryID == "") == (params.EventID == ""):
		return nil, fmt.Errorf("listing attempts: %w: give exactly one of a delivery id and an event id", kapsel.ErrInvalid)
	case params.DeliveryID != "":
		if _, err := deliveryByID(ctx, s.r, params.DeliveryID, params.TenantID); err != nil {
			return nil, fmt.Errorf("listing attempts of %w", err)
		}
	default:
		if _, err := eventByID(ctx, s.r, params.EventID, params.TenantID, false); err != nil {
			return nil, fmt.Errorf("listing attempts of %w", err)
		}
	}
	query, args := attemptListQuery(params)
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("listing attempts: %w", mapError(err))
	}
	defer rows.Close()
	var out []*kapsel.Attempt
	for rows.Next() {
		var a kapsel.Attempt
		var started sql.NullInt64
		var duration int64
		if err := rows.Scan(&a.ID, &a.DeliveryID, &a.EventID, &a.EndpointID, &a.TenantID, &a.Number, &a.Trigger, &started,
			&duration, &a.StatusCode, &a.ErrorCode, &a.Error, &a.ResponseBody); err != nil {
			return nil, fmt.Errorf("listing attempts: %w", mapError(err))
		}
		a.StartedAt, a.Duration = fromMicros(started), time.Duration(duration)
		out = append(out, &a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing attempts: %w", mapError(err))
	}
	return out, nil
}

// attemptListQuery returns AttemptList's statement and arguments, for a
// delivery (UNIQUE (delivery_id, number) serves it in order) or an event
// (attempts_event_idx). The cut of bodies and errors happens in the query
// (substr counts bytes of a BLOB and characters of TEXT), so a page never
// reads more than the limits into memory.
func attemptListQuery(params *kapsel.AttemptListParams) (string, []any) {
	where, owner := `delivery_id = ?1 AND id > ?2 ORDER BY number`, any(params.DeliveryID)
	if params.DeliveryID == "" {
		where, owner = `event_id = ?1 AND id > ?2 ORDER BY id`, params.EventID
	}
	return `SELECT id, delivery_id, event_id, endpoint_id, tenant_id, number, trigger,
		started_at, duration_ns, status_code, error_code,
		CASE WHEN ?5 > 0 THEN substr(error, 1, ?5) ELSE error END,
		CASE WHEN ?4 > 0 THEN substr(response_body, 1, ?4) ELSE response_body END
		FROM attempts WHERE ` + where + ` LIMIT ?3`,
		[]any{owner, params.Cursor, kapsel.PageLimit(params.Limit), max(params.ResponseBodyLimit, 0), max(params.ErrorLimit, 0)}
}

// AttemptStats summarises an endpoint's attempts started at or after Since;
// LastSuccessAt and LastFailureAt cover its whole history.
func (s *Store) AttemptStats(ctx context.Context, params *kapsel.AttemptStatsParams) (*kapsel.AttemptStats, error) {
	var st kapsel.AttemptStats
	var lastOK, lastFail sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT
			count(*) FILTER (WHERE started_at >= ?2),
			count(*) FILTER (WHERE started_at >= ?2 AND status_code BETWEEN 200 AND 299),
			max(started_at) FILTER (WHERE status_code BETWEEN 200 AND 299),
			max(started_at) FILTER (WHERE status_code NOT BETWEEN 200 AND 299)
		FROM attempts WHERE endpoint_id = ?1`,
		params.EndpointID, params.Since.UnixMicro()).Scan(&st.Total, &st.Succeeded, &lastOK, &lastFail)
	if err != nil {
		return nil, fmt.Errorf("summarising attempts of endpoint %s: %w", params.EndpointID, mapError(err))
	}
	st.LastSuccessAt, st.LastFailureAt = fromMicros(lastOK), fromMicros(lastFail)
	return &st, nil
}
