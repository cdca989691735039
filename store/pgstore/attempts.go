package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/kapsel-dev/kapsel"
)

const attemptColumns = `id, delivery_id, event_id, endpoint_id, tenant_id, number, trigger, started_at, duration_ns,
	status_code, response_body, error_code, error`

func scanAttempt(row scanner) (*kapsel.Attempt, error) {
	var (
		a        kapsel.Attempt
		duration int64
	)
	if err := row.Scan(&a.ID, &a.DeliveryID, &a.EventID, &a.EndpointID, &a.TenantID, &a.Number, &a.Trigger, &a.StartedAt,
		&duration, &a.StatusCode, &a.ResponseBody, &a.ErrorCode, &a.Error); err != nil {
		return nil, err
	}
	a.Duration = nanos(duration)
	return &a, nil
}

// attemptPageSQL lists a page of attempts, oldest first (by id: attempt
// ids are time-ordered ULIDs, and a delivery's attempts are numbered in
// that order) after the attempt $1, with the response body and error cut
// in the query ($3, $4; substring of bytea counts bytes, left of text
// characters), so a page never carries more than the limits across the
// wire nor into memory. %s selects the attempts: of one delivery
// (attempts_delivery_id_number_key), or of one event's deliveries
// (deliveries_event_endpoint_key, then that index for each).
const attemptPageSQL = `
SELECT ` + attemptColumns + ` FROM (
	SELECT a.id, a.delivery_id, a.event_id, a.endpoint_id, a.tenant_id, a.number, a.trigger, a.started_at,
		a.duration_ns, a.status_code, a.error_code,
		CASE WHEN $3 > 0 THEN substring(a.response_body FROM 1 FOR $3) ELSE a.response_body END AS response_body,
		CASE WHEN $4 > 0 THEN left(a.error, $4) ELSE a.error END AS error
	FROM attempts a
	WHERE %s AND a.id > $1
	ORDER BY a.id LIMIT $2
) AS page
ORDER BY id`

// AttemptList lists the attempts of one delivery or of all the deliveries
// of one event, oldest first, after the attempt Cursor. ErrNotFound when
// that delivery or event is not visible to TenantID; ErrInvalid unless
// exactly one of DeliveryID and EventID is set.
func (s *Store) AttemptList(ctx context.Context, params *kapsel.AttemptListParams) ([]*kapsel.Attempt, error) {
	var (
		what, visible, which string
		id                   string
	)
	switch {
	case params.DeliveryID != "" && params.EventID == "":
		what, id = "delivery "+string(params.DeliveryID), kapsel.SafeText(string(params.DeliveryID))
		visible = `SELECT EXISTS (SELECT FROM deliveries WHERE id = $1 AND ($2::text = '' OR tenant_id = $2))`
		which = `a.delivery_id = $5`
	case params.EventID != "" && params.DeliveryID == "":
		what, id = "event "+string(params.EventID), kapsel.SafeText(string(params.EventID))
		visible = `SELECT EXISTS (SELECT FROM events WHERE id = $1 AND ($2::text = '' OR tenant_id = $2))`
		which = `a.delivery_id IN (SELECT d.id FROM deliveries d WHERE d.event_id = $5)`
	default:
		return nil, fmt.Errorf("listing attempts: %w: set exactly one of DeliveryID and EventID", kapsel.ErrInvalid)
	}
	b := &pgx.Batch{}
	b.Queue(visible, id, params.TenantID)
	b.Queue(fmt.Sprintf(attemptPageSQL, which), kapsel.SafeText(string(params.Cursor)), kapsel.PageLimit(params.Limit),
		max(params.ResponseBodyLimit, 0), max(params.ErrorLimit, 0), id)
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	var ok bool
	if err := br.QueryRow().Scan(&ok); err != nil {
		return nil, fmt.Errorf("listing attempts of %s: %w", what, mapError(err))
	}
	rows, _ := br.Query()
	as, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*kapsel.Attempt, error) { return scanAttempt(r) })
	if err != nil {
		return nil, fmt.Errorf("listing attempts of %s: %w", what, mapError(err))
	}
	if !ok {
		return nil, fmt.Errorf("listing attempts of %s: %w", what, kapsel.ErrNotFound)
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
