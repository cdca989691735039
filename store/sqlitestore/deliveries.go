package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/kapsel-dev/kapsel"
)

// deliveryColumns are read by scanDelivery.
const deliveryColumns = `id, tenant_id, event_id, endpoint_id, status, attempts, next_attempt_at, next_trigger,
	lease_token, lease_expires_at, last_error, created_at, delivered_at`

func scanDelivery(row rowScanner) (*kapsel.Delivery, error) {
	var d kapsel.Delivery
	var token sql.NullString
	var next, leaseExp, created, delivered sql.NullInt64
	if err := row.Scan(&d.ID, &d.TenantID, &d.EventID, &d.EndpointID, &d.Status, &d.Attempts, &next, &d.NextTrigger,
		&token, &leaseExp, &d.LastError, &created, &delivered); err != nil {
		return nil, mapError(err)
	}
	d.LeaseToken = token.String
	d.NextAttemptAt, d.LeaseExpiresAt = fromMicros(next), fromMicros(leaseExp)
	d.CreatedAt, d.DeliveredAt = fromMicros(created), fromMicros(delivered)
	return &d, nil
}

// deliveryByID returns the delivery visible to tenant (any when empty).
// Deliveries of deleted endpoints stay readable (the audit trail).
func deliveryByID(ctx context.Context, q querier, id kapsel.DeliveryID, tenant kapsel.TenantID) (*kapsel.Delivery, error) {
	d, err := scanDelivery(q.QueryRowContext(ctx, `SELECT `+deliveryColumns+` FROM deliveries
		WHERE id = ?1 AND (?2 = '' OR tenant_id = ?2)`, id, tenant))
	if err != nil {
		return nil, fmt.Errorf("delivery %s: %w", id, err)
	}
	return d, nil
}

// DeliveryGet returns the delivery; ErrNotFound when it does not exist or
// is another tenant's.
func (s *Store) DeliveryGet(ctx context.Context, params *kapsel.DeliveryGetParams) (*kapsel.Delivery, error) {
	d, err := deliveryByID(ctx, s.r, params.ID, params.TenantID)
	if err != nil {
		return nil, fmt.Errorf("getting %w", err)
	}
	return d, nil
}

// DeliveryList lists deliveries in id order after Cursor. The query names
// only the filters that are set: by endpoint it walks
// deliveries_endpoint_idx in order; by event it reads the event's few
// deliveries from the unique (event_id, endpoint_id) index and sorts them;
// by tenant alone (a status or not) it walks deliveries_tenant_idx in order,
// so a page never reads other tenants' deliveries.
func (s *Store) DeliveryList(ctx context.Context, params *kapsel.DeliveryListParams) ([]*kapsel.Delivery, error) {
	query, args := deliveryListQuery(params)
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("listing deliveries: %w", mapError(err))
	}
	defer rows.Close()
	var out []*kapsel.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("listing deliveries: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing deliveries: %w", mapError(err))
	}
	return out, nil
}

// deliveryListQuery returns DeliveryList's statement and arguments.
func deliveryListQuery(params *kapsel.DeliveryListParams) (string, []any) {
	where, args := "id > ?", []any{params.Cursor}
	for _, f := range []struct{ column, value string }{
		{"tenant_id", string(params.TenantID)},
		{"endpoint_id", string(params.EndpointID)},
		{"event_id", string(params.EventID)},
		{"status", string(params.Status)},
	} {
		if f.value == "" {
			continue
		}
		column := f.column
		if column == "tenant_id" && (params.EndpointID != "" || params.EventID != "") {
			// Checked on the rows the endpoint's or the event's index finds:
			// the unary + keeps the planner off deliveries_tenant_idx, which
			// would read all the tenant's deliveries for them.
			column = "+tenant_id"
		}
		where += " AND " + column + " = ?"
		args = append(args, f.value)
	}
	args = append(args, kapsel.PageLimit(params.Limit))
	return `SELECT ` + deliveryColumns + ` FROM deliveries WHERE ` + where + ` ORDER BY id LIMIT ?`, args
}

// requeue is the SET clause of a manual retry; ?1 is Now. The hold is
// cleared with the rest: the next claim holds the delivery again if its
// endpoint is still blocked.
const requeue = `status = 'pending', next_attempt_at = ?1, next_trigger = 'manual',
	lease_token = NULL, lease_expires_at = NULL, held_until = NULL`

// liveEndpointOf is the condition that a delivery's (alias d) endpoint is
// not deleted.
const liveEndpointOf = `(SELECT p.deleted_at IS NULL FROM endpoints p WHERE p.id = d.endpoint_id)`

// DeliveryRetry puts one delivered or failed delivery of an undeleted
// endpoint back in the queue for a manual attempt now.
func (s *Store) DeliveryRetry(ctx context.Context, params *kapsel.DeliveryRetryParams) (*kapsel.Delivery, error) {
	var d *kapsel.Delivery
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := deliveryByID(ctx, tx, params.ID, params.TenantID)
		if err != nil {
			return err
		}
		if _, err := s.endpointByID(ctx, tx, cur.EndpointID, ""); err != nil {
			return fmt.Errorf("delivery %s: %w", cur.ID, err)
		}
		if !cur.Status.Terminal() {
			return fmt.Errorf("delivery %s: %w: it is %s", cur.ID, kapsel.ErrIllegalTransition, cur.Status)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET `+requeue+` WHERE id = ?2`, params.Now.UnixMicro(), cur.ID); err != nil {
			return mapError(err)
		}
		d, err = deliveryByID(ctx, tx, cur.ID, "")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("retrying %w", err)
	}
	return d, nil
}

// DeliveryRetryEvent retries every delivered or failed delivery of the
// event whose endpoint is not deleted.
func (s *Store) DeliveryRetryEvent(ctx context.Context, params *kapsel.DeliveryRetryEventParams) (int, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := eventByID(ctx, tx, params.EventID, params.TenantID, false); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE deliveries AS d SET `+requeue+`
			WHERE d.event_id = ?2 AND d.status IN ('delivered', 'failed') AND `+liveEndpointOf,
			params.Now.UnixMicro(), params.EventID)
		if err != nil {
			return mapError(err)
		}
		n, err = res.RowsAffected()
		return mapError(err)
	})
	if err != nil {
		return 0, fmt.Errorf("retrying the deliveries of %w", err)
	}
	return int(n), nil
}

// DeliveryReplay retries every delivery of the endpoint with the given
// status whose event was created in [Since, Until). ErrNotFound when the
// endpoint is not visible to TenantID; ErrInvalid when Status is not
// delivered or failed. It walks the endpoint's deliveries
// (deliveries_endpoint_idx) and looks each event's time up by its key.
func (s *Store) DeliveryReplay(ctx context.Context, params *kapsel.DeliveryReplayParams) (int, error) {
	if !params.Status.Terminal() {
		return 0, fmt.Errorf("replaying deliveries: %w: status must be delivered or failed, got %q", kapsel.ErrInvalid, params.Status)
	}
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.endpointByID(ctx, tx, params.EndpointID, params.TenantID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE deliveries AS d SET `+requeue+`
			WHERE d.endpoint_id = ?2 AND d.status = ?3 AND (?4 IS NULL AND ?5 IS NULL OR EXISTS (
				SELECT 1 FROM events e WHERE e.id = d.event_id
					AND (?4 IS NULL OR e.created_at >= ?4) AND (?5 IS NULL OR e.created_at < ?5)))`,
			params.Now.UnixMicro(), params.EndpointID, params.Status, micros(params.Since), micros(params.Until))
		if err != nil {
			return mapError(err)
		}
		n, err = res.RowsAffected()
		return mapError(err)
	})
	if err != nil {
		return 0, fmt.Errorf("replaying deliveries of %w", err)
	}
	return int(n), nil
}
