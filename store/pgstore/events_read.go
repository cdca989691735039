package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/kapsel-dev/kapsel"
)

// EventGet returns the event, with its body only when IncludeBody is set;
// ErrNotFound when it does not exist or (TenantID set) belongs to another
// tenant. Events of deleted endpoints stay readable (the audit trail).
func (s *Store) EventGet(ctx context.Context, params *kapsel.EventGetParams) (*kapsel.Event, error) {
	cols := eventColumns
	if params.IncludeBody {
		cols += ", body"
	}
	e, err := scanEvent(s.pool.QueryRow(ctx,
		`SELECT `+cols+` FROM events WHERE id = $1 AND ($2::text = '' OR tenant_id = $2)`,
		params.ID, params.TenantID), params.IncludeBody)
	if err != nil {
		return nil, fmt.Errorf("getting event %s: %w", params.ID, mapError(err))
	}
	return e, nil
}

// EventList lists events in id order after Cursor, without bodies. The
// query names only the filters that are set, so that each shape gets its own
// plan: by endpoint on events_endpoint_id_idx, by tenant on
// events_tenant_id_idx, by tenant and type on events_tenant_type_idx
// (migration 0003), whose condition — a non-empty type — the query then
// states, since a generic plan cannot prove it from the parameter; a Status
// filters those rows.
func (s *Store) EventList(ctx context.Context, params *kapsel.EventListParams) ([]*kapsel.Event, error) {
	if kapsel.SafeText(params.Type) != params.Type {
		// No stored type holds such bytes, and Postgres would refuse them
		// in a text parameter (22021).
		return []*kapsel.Event{}, nil
	}
	query, args := eventListSQL(params)
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("listing events: %w", mapError(err))
	}
	evs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*kapsel.Event, error) { return scanEvent(r, false) })
	if err != nil {
		return nil, fmt.Errorf("listing events: %w", mapError(err))
	}
	return evs, nil
}

// eventListSQL returns EventList's statement and arguments.
func eventListSQL(params *kapsel.EventListParams) (string, []any) {
	where, args := "id > $1", []any{params.Cursor}
	for _, f := range []struct{ column, value string }{
		{"tenant_id", string(params.TenantID)},
		{"endpoint_id", string(params.EndpointID)},
		{"status", string(params.Status)},
		{"type", params.Type},
	} {
		if f.value != "" {
			args = append(args, f.value)
			where += fmt.Sprintf(" AND %s = $%d", f.column, len(args))
		}
	}
	if params.Type != "" {
		where += " AND type <> ''"
	}
	args = append(args, kapsel.PageLimit(params.Limit))
	return fmt.Sprintf(`SELECT %s FROM events WHERE %s ORDER BY id LIMIT $%d`, eventColumns, where, len(args)), args
}

// requeue is the change of a manual retry or replay: pending now, the next
// attempt recorded as manual, last error kept.
const requeue = `status = 'pending', next_attempt_at = $3, claimable_at = $3, next_trigger = 'manual',
	lease_token = NULL, lease_expires_at = NULL`

// EventRetry puts one delivered or failed event back in the queue for a
// manual attempt now. ErrNotFound as EventGet; ErrIllegalTransition when the
// event is pending or delivering.
func (s *Store) EventRetry(ctx context.Context, params *kapsel.EventRetryParams) (*kapsel.Event, error) {
	e, err := scanEvent(s.pool.QueryRow(ctx, `
		UPDATE events SET `+requeue+`
		WHERE id = $1 AND ($2::text = '' OR tenant_id = $2) AND status IN ('delivered', 'failed')
		RETURNING `+eventColumns,
		params.ID, params.TenantID, micro(params.Now)), false)
	if errors.Is(err, pgx.ErrNoRows) {
		// Not retryable: tell a missing event from one in the wrong status.
		cur, getErr := s.EventGet(ctx, &kapsel.EventGetParams{ID: params.ID, TenantID: params.TenantID})
		if getErr != nil {
			return nil, fmt.Errorf("retrying: %w", getErr)
		}
		return nil, fmt.Errorf("retrying event %s: %w: it is %s", params.ID, kapsel.ErrIllegalTransition, cur.Status)
	}
	if err != nil {
		return nil, fmt.Errorf("retrying event %s: %w", params.ID, mapError(err))
	}
	return e, nil
}

// EventReplay retries every event of the endpoint with the given status
// created in [Since, Until), in one statement. ErrNotFound when the endpoint
// is not visible to TenantID; ErrInvalid when Status is neither delivered
// nor failed.
func (s *Store) EventReplay(ctx context.Context, params *kapsel.EventReplayParams) (int, error) {
	if !params.Status.Terminal() {
		return 0, fmt.Errorf("replaying events: %w: status must be delivered or failed, got %q", kapsel.ErrInvalid, params.Status)
	}
	var n int
	var found bool
	err := s.pool.QueryRow(ctx, `
		WITH ep AS (
			SELECT id FROM endpoints WHERE `+visibleEndpoint+`
		), replayed AS (
			UPDATE events SET `+requeue+`
			WHERE endpoint_id = (SELECT id FROM ep) AND status = $4
				AND ($5::timestamptz IS NULL OR created_at >= $5)
				AND ($6::timestamptz IS NULL OR created_at < $6)
			RETURNING 1
		)
		SELECT EXISTS (SELECT FROM ep), (SELECT count(*) FROM replayed)`,
		params.EndpointID, params.TenantID, micro(params.Now), params.Status,
		timePtr(params.Since), timePtr(params.Until)).Scan(&found, &n)
	if err != nil {
		return 0, fmt.Errorf("replaying events of endpoint %s: %w", params.EndpointID, mapError(err))
	}
	if !found {
		return 0, fmt.Errorf("replaying events of endpoint %s: %w", params.EndpointID, kapsel.ErrNotFound)
	}
	return n, nil
}
