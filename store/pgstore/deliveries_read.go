package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/kapsel-dev/kapsel"
)

// DeliveryGet returns the delivery; ErrNotFound when it does not exist or
// (TenantID set) belongs to another tenant. Deliveries of deleted
// endpoints stay readable (the audit trail).
func (s *Store) DeliveryGet(ctx context.Context, params *kapsel.DeliveryGetParams) (*kapsel.Delivery, error) {
	d, err := scanDelivery(s.pool.QueryRow(ctx, `SELECT `+deliveryColumnsD+` FROM deliveries d
		WHERE d.id = $1 AND ($2::text = '' OR d.tenant_id = $2)`,
		kapsel.SafeText(string(params.ID)), params.TenantID))
	if err != nil {
		return nil, fmt.Errorf("getting delivery %s: %w", params.ID, mapError(err))
	}
	return d, nil
}

// DeliveryList lists deliveries in id order after Cursor. The query names
// only the filters that are set, so that each shape gets its own plan: by
// endpoint on deliveries_endpoint_id_idx, pinned to it as pinnedTo says
// (in id order, from the cursor, stopping at the limit); by event on
// deliveries_event_endpoint_key (the event's few deliveries, sorted); a
// tenant or a status alone walks the primary key in id order, filtering,
// until the page is full (deliveries have no tenant index: every full
// index of the table is rewritten by every claim and completion).
func (s *Store) DeliveryList(ctx context.Context, params *kapsel.DeliveryListParams) ([]*kapsel.Delivery, error) {
	query, args := deliveryListSQL(params)
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("listing deliveries: %w", mapError(err))
	}
	ds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*kapsel.Delivery, error) { return scanDelivery(r) })
	if err != nil {
		return nil, fmt.Errorf("listing deliveries: %w", mapError(err))
	}
	return ds, nil
}

// deliveryListSQL returns DeliveryList's statement and arguments.
func deliveryListSQL(params *kapsel.DeliveryListParams) (string, []any) {
	where, args := "d.id > $1", []any{kapsel.SafeText(string(params.Cursor))}
	order := ""
	for _, f := range []struct{ column, value string }{
		{"d.endpoint_id", kapsel.SafeText(string(params.EndpointID))},
		{"d.tenant_id", string(params.TenantID)},
		{"d.event_id", kapsel.SafeText(string(params.EventID))},
		{"d.status", kapsel.SafeText(string(params.Status))},
	} {
		if f.value == "" {
			continue
		}
		args = append(args, f.value)
		if f.column == "d.endpoint_id" {
			w, o := pinnedTo(f.column, len(args))
			where, order = where+" AND "+w, o
			continue
		}
		where += fmt.Sprintf(" AND %s = $%d", f.column, len(args))
	}
	args = append(args, kapsel.PageLimit(params.Limit))
	return fmt.Sprintf(`SELECT %s FROM deliveries d WHERE %s ORDER BY %sd.id LIMIT $%d`, deliveryColumnsD, where, order, len(args)), args
}

// requeue is the change of a manual retry or replay: pending now, the next
// attempt recorded as manual, last error kept, lease cleared (a delivery
// ended by its endpoint's deletion kept its lease; it is never requeued,
// since its endpoint is gone).
const requeue = `status = 'pending', next_attempt_at = $3, claimable_at = $3, next_trigger = 'manual',
	lease_token = NULL, lease_expires_at = NULL`

// liveEndpointLocked is the condition that the delivery d's endpoint is
// not deleted. It locks the endpoint row FOR KEY SHARE, as the fan-out
// does (see targetsSQL), so that a requeue and an EndpointDelete
// serialise: a delete that committed first is seen (the lock re-reads the
// row), and one that comes later waits and then ends what was requeued.
const liveEndpointLocked = `d.endpoint_id IN (SELECT ep.id FROM endpoints ep
	WHERE ep.id = d.endpoint_id AND ep.deleted_at IS NULL FOR KEY SHARE)`

// DeliveryRetry puts one delivered or failed delivery back in the queue
// for a manual attempt now. ErrNotFound as DeliveryGet, and when its
// endpoint is deleted; ErrIllegalTransition when it is pending or
// delivering.
func (s *Store) DeliveryRetry(ctx context.Context, params *kapsel.DeliveryRetryParams) (*kapsel.Delivery, error) {
	id := kapsel.SafeText(string(params.ID))
	d, err := scanDelivery(s.pool.QueryRow(ctx, `
		UPDATE deliveries d SET `+requeue+`
		WHERE d.id = $1 AND ($2::text = '' OR d.tenant_id = $2) AND d.status IN ('delivered', 'failed')
			AND `+liveEndpointLocked+`
		RETURNING `+deliveryColumnsD,
		id, params.TenantID, micro(params.Now)))
	if errors.Is(err, pgx.ErrNoRows) {
		// Not retryable: tell a missing delivery, or one of a deleted
		// endpoint, from one in the wrong status.
		cur, getErr := s.DeliveryGet(ctx, &kapsel.DeliveryGetParams{ID: params.ID, TenantID: params.TenantID})
		if getErr != nil {
			return nil, fmt.Errorf("retrying: %w", getErr)
		}
		if cur.Status.Terminal() {
			return nil, fmt.Errorf("retrying delivery %s: its endpoint %s: %w", params.ID, cur.EndpointID, kapsel.ErrNotFound)
		}
		return nil, fmt.Errorf("retrying delivery %s: %w: it is %s", params.ID, kapsel.ErrIllegalTransition, cur.Status)
	}
	if err != nil {
		return nil, fmt.Errorf("retrying delivery %s: %w", params.ID, mapError(err))
	}
	return d, nil
}

// DeliveryRetryEvent retries every delivered or failed delivery of the
// event whose endpoint is not deleted, in one statement, and returns how
// many. ErrNotFound when the event is not visible to TenantID.
func (s *Store) DeliveryRetryEvent(ctx context.Context, params *kapsel.DeliveryRetryEventParams) (int, error) {
	var (
		n     int
		found bool
	)
	err := s.pool.QueryRow(ctx, `
		WITH ev AS (
			SELECT id FROM events WHERE id = $1 AND ($2::text = '' OR tenant_id = $2)
		), retried AS (
			UPDATE deliveries d SET `+requeue+`
			WHERE d.event_id = (SELECT id FROM ev) AND d.status IN ('delivered', 'failed') AND `+liveEndpointLocked+`
			RETURNING 1
		)
		SELECT EXISTS (SELECT FROM ev), (SELECT count(*) FROM retried)`,
		kapsel.SafeText(string(params.EventID)), params.TenantID, micro(params.Now)).Scan(&found, &n)
	if err != nil {
		return 0, fmt.Errorf("retrying the deliveries of event %s: %w", params.EventID, mapError(err))
	}
	if !found {
		return 0, fmt.Errorf("retrying the deliveries of event %s: %w", params.EventID, kapsel.ErrNotFound)
	}
	return n, nil
}

// DeliveryReplay retries every delivery of the endpoint with the given
// status whose event was created in [Since, Until), in one statement. It
// walks the endpoint's deliveries (deliveries_endpoint_id_idx) and reads
// each one's event by primary key. ErrNotFound when the endpoint is not
// visible to TenantID; ErrInvalid when Status is neither delivered nor
// failed.
func (s *Store) DeliveryReplay(ctx context.Context, params *kapsel.DeliveryReplayParams) (int, error) {
	if !params.Status.Terminal() {
		return 0, fmt.Errorf("replaying deliveries: %w: status must be delivered or failed, got %q",
			kapsel.ErrInvalid, kapsel.SafeText(string(params.Status)))
	}
	var (
		n     int
		found bool
	)
	err := s.pool.QueryRow(ctx, `
		WITH ep AS (
			SELECT id FROM endpoints WHERE `+visibleEndpoint+` FOR KEY SHARE
		), replayed AS (
			UPDATE deliveries d SET `+requeue+`
			FROM events e
			WHERE d.endpoint_id = (SELECT id FROM ep) AND d.status = $4 AND e.id = d.event_id
				AND ($5::timestamptz IS NULL OR e.created_at >= $5)
				AND ($6::timestamptz IS NULL OR e.created_at < $6)
			RETURNING 1
		)
		SELECT EXISTS (SELECT FROM ep), (SELECT count(*) FROM replayed)`,
		kapsel.SafeText(string(params.EndpointID)), params.TenantID, micro(params.Now), params.Status,
		timePtr(params.Since), timePtr(params.Until)).Scan(&found, &n)
	if err != nil {
		return 0, fmt.Errorf("replaying deliveries of endpoint %s: %w", params.EndpointID, mapError(err))
	}
	if !found {
		return 0, fmt.Errorf("replaying deliveries of endpoint %s: %w", params.EndpointID, kapsel.ErrNotFound)
	}
	return n, nil
}
