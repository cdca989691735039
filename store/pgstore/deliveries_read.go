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
// deliveries_event_endpoint_key (the event's few deliveries, sorted); by
// tenant alone (a status or not) on deliveries_tenant_id_idx, pinned the
// same way, so a page costs at most the tenant's deliveries, never the
// other tenants'. A status alone (no tenant: an embedder's call) walks the
// primary key, filtering, until the page is full.
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
		if f.column == "d.endpoint_id" ||
			(f.column == "d.tenant_id" && params.EndpointID == "" && params.EventID == "") {
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

// liveEndpoint is the condition that the delivery d's endpoint is not
// deleted. A requeue reads it after taking its tenant's lock, shared (see
// tenant_lock.go), in an earlier statement of its implicit transaction, so
// that it serialises with EndpointDelete: a delete that committed first is
// seen, and one that comes later waits and then ends what was requeued.
const liveEndpoint = `d.endpoint_id IN (SELECT ep.id FROM endpoints ep
	WHERE ep.id = d.endpoint_id AND ep.deleted_at IS NULL)`

// requeueBatch returns a batch that takes the tenant lock by lock (a
// statement that takes it for the row it finds, if any) and then runs the
// requeue: one round trip, one implicit transaction, which holds the lock
// to its end.
func requeueBatch(lock string, lockArgs []any, requeue string, args ...any) *pgx.Batch {
	b := &pgx.Batch{}
	b.Queue(lock, lockArgs...)
	b.Queue(requeue, args...)
	return b
}

// lockDeliveryTenantSharedSQL takes the shared tenant lock of the delivery
// $1 visible to the tenant $2.
const lockDeliveryTenantSharedSQL = `SELECT pg_advisory_xact_lock_shared(` + tenantLockClass + `, hashtext(tenant_id))
FROM deliveries WHERE id = $1 AND ($2::text = '' OR tenant_id = $2)`

// lockEventTenantSharedSQL takes the shared tenant lock of the event $1
// visible to the tenant $2.
const lockEventTenantSharedSQL = `SELECT pg_advisory_xact_lock_shared(` + tenantLockClass + `, hashtext(tenant_id))
FROM events WHERE id = $1 AND ($2::text = '' OR tenant_id = $2)`

// sendRequeue sends b and returns the row of its last statement, scanned
// into dest.
func (s *Store) sendRequeue(ctx context.Context, b *pgx.Batch, dest ...any) error {
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return err
	}
	if err := br.QueryRow().Scan(dest...); err != nil {
		return err
	}
	return br.Close()
}

// DeliveryRetry puts one delivered or failed delivery back in the queue
// for a manual attempt now. ErrNotFound as DeliveryGet, and when its
// endpoint is deleted; ErrIllegalTransition when it is pending or
// delivering.
func (s *Store) DeliveryRetry(ctx context.Context, params *kapsel.DeliveryRetryParams) (*kapsel.Delivery, error) {
	id := kapsel.SafeText(string(params.ID))
	var d *kapsel.Delivery
	b := requeueBatch(lockDeliveryTenantSharedSQL, []any{id, params.TenantID}, `
		WITH ev AS (
			SELECT e.id FROM events e WHERE e.id = (SELECT event_id FROM deliveries WHERE id = $1) FOR KEY SHARE
		)
		UPDATE deliveries d SET `+requeue+`
		WHERE d.id = $1 AND ($2::text = '' OR d.tenant_id = $2) AND d.status IN ('delivered', 'failed')
			AND d.event_id = (SELECT id FROM ev) AND `+liveEndpoint+`
		RETURNING `+deliveryColumnsD,
		id, params.TenantID, micro(params.Now))
	br := s.pool.SendBatch(ctx, b)
	_, err := br.Exec()
	if err == nil {
		d, err = scanDelivery(br.QueryRow())
	}
	if closeErr := br.Close(); err == nil {
		err = closeErr
	}
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
	id := kapsel.SafeText(string(params.EventID))
	err := s.sendRequeue(ctx, requeueBatch(lockEventTenantSharedSQL, []any{id, params.TenantID}, `
		WITH ev AS (
			SELECT id FROM events WHERE id = $1 AND ($2::text = '' OR tenant_id = $2) FOR KEY SHARE
		), retried AS (
			UPDATE deliveries d SET `+requeue+`
			WHERE d.event_id = (SELECT id FROM ev) AND d.status IN ('delivered', 'failed') AND `+liveEndpoint+`
			RETURNING 1
		)
		SELECT EXISTS (SELECT FROM ev), (SELECT count(*) FROM retried)`,
		id, params.TenantID, micro(params.Now)), &found, &n)
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
	id := kapsel.SafeText(string(params.EndpointID))
	err := s.sendRequeue(ctx, requeueBatch(lockEndpointTenantSharedSQL, []any{id, params.TenantID}, `
		WITH ep AS (
			SELECT id FROM endpoints WHERE `+visibleEndpoint+`
		), ev AS (
			SELECT e.id FROM deliveries d JOIN events e ON e.id = d.event_id
			WHERE d.endpoint_id = (SELECT id FROM ep) AND d.status = $4
				AND ($5::timestamptz IS NULL OR e.created_at >= $5)
				AND ($6::timestamptz IS NULL OR e.created_at < $6)
			FOR KEY SHARE OF e
		), replayed AS (
			UPDATE deliveries d SET `+requeue+`
			FROM ev
			WHERE d.endpoint_id = (SELECT id FROM ep) AND d.status = $4 AND d.event_id = ev.id
			RETURNING 1
		)
		SELECT EXISTS (SELECT FROM ep), (SELECT count(*) FROM replayed)`,
		id, params.TenantID, micro(params.Now), params.Status,
		timePtr(params.Since), timePtr(params.Until)), &found, &n)
	if err != nil {
		return 0, fmt.Errorf("replaying deliveries of endpoint %s: %w", params.EndpointID, mapError(err))
	}
	if !found {
		return 0, fmt.Errorf("replaying deliveries of endpoint %s: %w", params.EndpointID, kapsel.ErrNotFound)
	}
	return n, nil
}
