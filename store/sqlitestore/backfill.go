package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"math"

	"github.com/kapsel-dev/kapsel"
)

// backfillEventsSQL reads the routing of up to ?4 events of tenant ?1
// created in [?2, ?3), oldest first: one range of
// events_tenant_created_idx, no body read.
const backfillEventsSQL = `SELECT id, source_id, type, channels, created_at FROM events
	WHERE tenant_id = ?1 AND created_at >= ?2 AND created_at < ?3
	ORDER BY created_at, id LIMIT ?4`

// DeliveryBackfill creates the missing deliveries of the endpoint for the
// events of its tenant created in [Since, Until) that its subscription
// matches (kapsel.Subscription.Matches), looking at at most Limit events,
// oldest first (CreatedAt, then id). The unique (event_id, endpoint_id)
// key makes it idempotent: an event that already has a delivery to the
// endpoint is left alone (INSERT … ON CONFLICT DO NOTHING).
func (s *Store) DeliveryBackfill(ctx context.Context, params *kapsel.DeliveryBackfillParams) (*kapsel.DeliveryBackfillResult, error) {
	limit := params.BackfillLimit()
	res := &kapsel.DeliveryBackfillResult{}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		ep, err := s.endpointByID(ctx, tx, params.EndpointID, params.TenantID)
		if err != nil {
			return err
		}
		events, err := backfillEvents(ctx, tx, ep.TenantID, params, limit+1)
		if err != nil {
			return err
		}
		if len(events) > limit {
			res.More, res.Next = true, events[limit].CreatedAt
			events = events[:limit]
		}
		stmts := &stmtCache{tx: tx}
		defer stmts.close()
		st, err := stmts.stmt(ctx, `INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, status, attempts,
			next_attempt_at, next_trigger, last_error, created_at) VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, 'manual', '', ?5)
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

// backfillEvents runs backfillEventsSQL: the events with their routing and
// creation time only.
func backfillEvents(ctx context.Context, tx *sql.Tx, tenant kapsel.TenantID, params *kapsel.DeliveryBackfillParams, limit int) ([]*kapsel.Event, error) {
	since, until := int64(math.MinInt64), int64(math.MaxInt64) // zero bounds are open
	if !params.Since.IsZero() {
		since = params.Since.UnixMicro()
	}
	if !params.Until.IsZero() {
		until = params.Until.UnixMicro()
	}
	rows, err := tx.QueryContext(ctx, backfillEventsSQL, tenant, since, until, limit)
	if err != nil {
		return nil, mapError(err)
	}
	defer rows.Close()
	var out []*kapsel.Event
	for rows.Next() {
		e := &kapsel.Event{TenantID: tenant}
		var channels string
		var created sql.NullInt64
		if err := rows.Scan(&e.ID, &e.SourceID, &e.Type, &channels, &created); err != nil {
			return nil, mapError(err)
		}
		e.CreatedAt = fromMicros(created)
		if e.Channels, err = decodeList[string](channels); err != nil {
			return nil, fmt.Errorf("decoding channels of event %s: %w", e.ID, err)
		}
		out = append(out, e)
	}
	return out, mapError(rows.Err())
}
