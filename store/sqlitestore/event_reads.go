package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/kapsel-dev/kapsel"
)

// eventByID returns the event visible to tenant (any when empty). Events of
// deleted endpoints stay readable (the audit trail).
func eventByID(ctx context.Context, q querier, id kapsel.EventID, tenant kapsel.TenantID, withBody bool) (*kapsel.Event, error) {
	cols := eventColumns
	if withBody {
		cols += ", " + bodyColumn
	}
	e, err := scanEvent(q.QueryRowContext(ctx, `SELECT `+cols+` FROM events WHERE id = ?1 AND (?2 = '' OR tenant_id = ?2)`,
		id, tenant), withBody)
	if err != nil {
		return nil, fmt.Errorf("event %s: %w", id, err)
	}
	return e, nil
}

// EventGet returns the event, with its body only when IncludeBody is set.
func (s *Store) EventGet(ctx context.Context, params *kapsel.EventGetParams) (*kapsel.Event, error) {
	e, err := eventByID(ctx, s.r, params.ID, params.TenantID, params.IncludeBody)
	if err != nil {
		return nil, fmt.Errorf("getting %w", err)
	}
	return e, nil
}

// EventList lists events in id order after Cursor, without bodies. The
// query names only the filters that are set, so that SQLite can pick an
// index for each shape: by endpoint on events_endpoint_idx, by tenant on
// events_tenant_idx, by tenant and type on events_tenant_type_idx (whose
// condition, a non-empty type, the query then states).
func (s *Store) EventList(ctx context.Context, params *kapsel.EventListParams) ([]*kapsel.Event, error) {
	query, args := eventListQuery(params)
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("listing events: %w", mapError(err))
	}
	defer rows.Close()
	var out []*kapsel.Event
	for rows.Next() {
		e, err := scanEvent(rows, false)
		if err != nil {
			return nil, fmt.Errorf("listing events: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing events: %w", mapError(err))
	}
	return out, nil
}

// requeue is the SET clause of a manual retry; ?1 is Now.
const requeue = `status = 'pending', next_attempt_at = ?1, next_trigger = 'manual',
	lease_token = NULL, lease_expires_at = NULL`

// EventRetry puts one delivered or failed event back in the queue for a
// manual attempt now.
func (s *Store) EventRetry(ctx context.Context, params *kapsel.EventRetryParams) (*kapsel.Event, error) {
	var e *kapsel.Event
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := eventByID(ctx, tx, params.ID, params.TenantID, false)
		if err != nil {
			return err
		}
		if !cur.Status.Terminal() {
			return fmt.Errorf("event %s: %w: it is %s", cur.ID, kapsel.ErrIllegalTransition, cur.Status)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE events SET `+requeue+` WHERE id = ?2`, params.Now.UnixMicro(), cur.ID); err != nil {
			return mapError(err)
		}
		e, err = eventByID(ctx, tx, cur.ID, "", false)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("retrying %w", err)
	}
	return e, nil
}

// EventReplay retries every event of the endpoint with the given status
// created in [Since, Until). ErrNotFound when the endpoint is not visible to
// TenantID; ErrInvalid when Status is not delivered or failed.
func (s *Store) EventReplay(ctx context.Context, params *kapsel.EventReplayParams) (int, error) {
	if !params.Status.Terminal() {
		return 0, fmt.Errorf("replaying events: %w: status must be delivered or failed, got %q", kapsel.ErrInvalid, params.Status)
	}
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.endpointByID(ctx, tx, params.EndpointID, params.TenantID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE events SET `+requeue+`
			WHERE endpoint_id = ?2 AND status = ?3 AND (?4 IS NULL OR created_at >= ?4) AND (?5 IS NULL OR created_at < ?5)`,
			params.Now.UnixMicro(), params.EndpointID, params.Status, micros(params.Since), micros(params.Until))
		if err != nil {
			return mapError(err)
		}
		n, err = res.RowsAffected()
		return mapError(err)
	})
	if err != nil {
		return 0, fmt.Errorf("replaying events of %w", err)
	}
	return int(n), nil
}

// eventListQuery returns EventList's statement and arguments.
func eventListQuery(params *kapsel.EventListParams) (string, []any) {
	where, args := "id > ?", []any{params.Cursor}
	for _, f := range []struct{ column, value string }{
		{"tenant_id", string(params.TenantID)},
		{"endpoint_id", string(params.EndpointID)},
		{"status", string(params.Status)},
		{"type", params.Type},
	} {
		if f.value != "" {
			where += " AND " + f.column + " = ?"
			args = append(args, f.value)
		}
	}
	if params.Type != "" {
		// The partial index's condition, so that SQLite may use it.
		where += " AND type <> ''"
	}
	args = append(args, kapsel.PageLimit(params.Limit))
	return `SELECT ` + eventColumns + ` FROM events WHERE ` + where + ` ORDER BY id LIMIT ?`, args
}
