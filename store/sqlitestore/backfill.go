package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"math"

	"github.com/kapsel-dev/kapsel"
)

// backfillEventsSQL reads the routing of up to ?5 events of tenant ?1
// created in [?2, ?3), in id order after the cursor ?4. It walks
// events_tenant_idx from the cursor and stops at the limit, filtering by
// creation time on the way (created_at is read from the row, whose body,
// the last column, is not).
const backfillEventsSQL = `SELECT id, source_id, type, channels FROM events
	WHERE tenant_id = ?1 AND id > ?4 AND created_at >= ?2 AND created_at < ?3
	ORDER BY id LIMIT ?5`

// DeliveryBackfill creates the missing deliveries of the endpoint for the
// events of its tenant created in [Since, Until) that its subscription
// matches (kapsel.Endpoint.Receives, the root rule), looking at at most
// Limit of them in id order after Cursor. The events are read on the read
// pool, so that a walk past many events outside the time range does not
// hold the writer up (an event's routing never changes, but retention may
// remove the event since: the insert checks, in the writer, that it is still
// there, so a backfill racing retention creates no delivery without its
// event); the endpoint is read, matched and its deliveries written
// in one write transaction, so that a concurrent EndpointDelete comes
// wholly before (ErrNotFound) or after (it ends what was created). The
// unique (event_id, endpoint_id) key makes it idempotent: an event that
// already has a delivery to the endpoint is left alone (ON CONFLICT DO
// NOTHING).
func (s *Store) DeliveryBackfill(ctx context.Context, params *kapsel.DeliveryBackfillParams) (*kapsel.DeliveryBackfillResult, error) {
	limit := params.BackfillLimit()
	ep, err := s.endpointByID(ctx, s.r, params.EndpointID, params.TenantID)
	if err != nil {
		return nil, fmt.Errorf("backfilling deliveries of %w", err)
	}
	events, err := backfillEvents(ctx, s.r, ep.TenantID, params, limit+1)
	if err != nil {
		return nil, fmt.Errorf("backfilling deliveries of endpoint %s: %w", ep.ID, err)
	}
	res := &kapsel.DeliveryBackfillResult{}
	if len(events) > limit {
		events = events[:limit]
		res.More, res.Next = true, events[limit-1].ID
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		ep, err := s.endpointByID(ctx, tx, params.EndpointID, params.TenantID)
		if err != nil {
			return err
		}
		stmts := &stmtCache{tx: tx}
		defer stmts.close()
		st, err := stmts.stmt(ctx, `INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, status, attempts,
			next_attempt_at, next_trigger, last_error, created_at) SELECT ?1, ?2, ?3, ?4, 'pending', 0, ?5, 'manual', '', ?5
			WHERE EXISTS (SELECT 1 FROM events WHERE id = ?3)
			ON CONFLICT (event_id, endpoint_id) DO NOTHING`)
		if err != nil {
			return err
		}
		now := params.Now.UnixMicro()
		for _, e := range events {
			if !ep.Receives(e.Routing()) {
				continue
			}
			r, err := st.ExecContext(ctx, kapsel.NewDeliveryID(), ep.TenantID, e.ID, ep.ID, now)
			if err != nil {
				return mapError(err)
			}
			n, err := r.RowsAffected()
			if err != nil {
				return mapError(err)
			}
			res.Created += int(n)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("backfilling deliveries of %w", err)
	}
	return res, nil
}

// backfillEvents runs backfillEventsSQL: the events with their routing
// only.
func backfillEvents(ctx context.Context, q querier, tenant kapsel.TenantID, params *kapsel.DeliveryBackfillParams, limit int) ([]*kapsel.Event, error) {
	since, until := int64(math.MinInt64), int64(math.MaxInt64) // zero bounds are open
	if !params.Since.IsZero() {
		since = params.Since.UnixMicro()
	}
	if !params.Until.IsZero() {
		until = params.Until.UnixMicro()
	}
	rows, err := q.QueryContext(ctx, backfillEventsSQL, tenant, since, until, params.Cursor, limit)
	if err != nil {
		return nil, mapError(err)
	}
	defer rows.Close()
	var out []*kapsel.Event
	for rows.Next() {
		e := &kapsel.Event{TenantID: tenant}
		var channels string
		if err := rows.Scan(&e.ID, &e.SourceID, &e.Type, &channels); err != nil {
			return nil, mapError(err)
		}
		if e.Channels, err = decodeList[string](channels); err != nil {
			return nil, fmt.Errorf("decoding channels of event %s: %w", e.ID, err)
		}
		out = append(out, e)
	}
	return out, mapError(rows.Err())
}
