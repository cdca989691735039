package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/kapsel-dev/kapsel"
)

// backfillEventsSQL reads the routing of up to $5 events of the tenant $1
// created in [$2, $3), in id order after the cursor $4. It walks
// events_tenant_id_idx from the cursor (the tenant pinned to it as
// pinnedTo says) and stops at the limit, filtering by creation time on
// the way: a call costs its limit whatever the tenant's history.
const backfillEventsSQL = `
SELECT e.id, e.source_id, e.type, e.channels FROM events e
WHERE e.tenant_id >= $1 AND e.tenant_id <= $1 AND e.id > $4
	AND e.created_at >= $2 AND ($3::timestamptz IS NULL OR e.created_at < $3)
ORDER BY e.tenant_id, e.id
LIMIT $5`

// backfillInsertSQL creates the deliveries a backfill decided, pending now
// with a manual trigger. The unique (event_id, endpoint_id) makes it
// idempotent: a delivery that exists, whatever its status, is left alone,
// so a repeated or concurrent backfill creates nothing twice. It locks the
// events FOR KEY SHARE first (ev) and creates deliveries only for those
// still there: retention removes an event only under FOR UPDATE
// (retention.go), so a backfill racing it either comes first (the event is
// then in use and kept) or finds it gone, and no delivery is left without
// its event. It notifies once when it created any.
const backfillInsertSQL = `
WITH ev AS (
	SELECT e.id FROM events e WHERE e.id = ANY ($2::text[]) FOR KEY SHARE
),
created AS (
	INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, status, attempts, next_attempt_at, claimable_at,
		next_trigger, last_error, created_at)
	SELECT t.id, $3, t.event_id, $4, 'pending', 0, $5, $5, 'manual', '', $5
	FROM unnest($1::text[], $2::text[]) AS t(id, event_id)
	WHERE t.event_id IN (SELECT id FROM ev)
	ON CONFLICT (event_id, endpoint_id) DO NOTHING
	RETURNING 1
),
notified AS (
	SELECT pg_notify('` + NotifyChannel + `', current_schema()) FROM (SELECT FROM created LIMIT 1) AS any_created
)
SELECT (SELECT count(*) FROM created), (SELECT count(*) FROM notified)`

// DeliveryBackfill creates the deliveries the endpoint would have had for
// its tenant's events created in [Since, Until) that its subscription
// matches (by the root rule, kapsel.Endpoint.Receives), looking at at most
// Limit events in id order after Cursor. One transaction, which takes the
// tenant lock, shared, as the fan-out does (see tenant_lock.go), before it
// reads the endpoint, so that a concurrent EndpointDelete either comes
// first (ErrNotFound) or waits and then ends what was created. ErrNotFound
// when the endpoint is not visible.
func (s *Store) DeliveryBackfill(ctx context.Context, params *kapsel.DeliveryBackfillParams) (*kapsel.DeliveryBackfillResult, error) {
	limit := params.BackfillLimit()
	now := micro(params.Now)
	since := micro(params.Since) // the zero time is before every event
	out := &kapsel.DeliveryBackfillResult{}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var ep kapsel.Endpoint
		var sources []string
		epID := kapsel.SafeText(string(params.EndpointID))
		b := &pgx.Batch{}
		b.Queue(lockEndpointTenantSharedSQL, epID, params.TenantID)
		b.Queue(`SELECT id, tenant_id, event_types, source_ids, channels FROM endpoints WHERE `+visibleEndpoint, epID, params.TenantID)
		br := tx.SendBatch(ctx, b)
		_, err := br.Exec()
		if err == nil {
			err = br.QueryRow().Scan(&ep.ID, &ep.TenantID, &ep.Subscription.EventTypes, &sources, &ep.Subscription.Channels)
		}
		if closeErr := br.Close(); err == nil {
			err = closeErr
		}
		if err != nil {
			return err
		}
		for _, id := range sources {
			ep.Subscription.SourceIDs = append(ep.Subscription.SourceIDs, kapsel.SourceID(id))
		}
		rows, err := tx.Query(ctx, backfillEventsSQL, ep.TenantID, since, timePtr(params.Until),
			kapsel.SafeText(string(params.Cursor)), limit+1)
		if err != nil {
			return err
		}
		var (
			ids, events []string
			n           int
			ev          kapsel.EventRouting
			id, last    string
		)
		ev.TenantID = ep.TenantID
		_, err = pgx.ForEachRow(rows, []any{&id, &ev.SourceID, &ev.Type, &ev.Channels}, func() error {
			if n++; n > limit {
				out.More, out.Next = true, kapsel.EventID(last)
				return nil
			}
			last = id
			if ep.Receives(ev) {
				ids = append(ids, string(kapsel.NewDeliveryID()))
				events = append(events, id)
			}
			return nil
		})
		if err != nil || len(ids) == 0 {
			return err
		}
		var notified int64
		return tx.QueryRow(ctx, backfillInsertSQL, ids, events, ep.TenantID, ep.ID, now).Scan(&out.Created, &notified)
	})
	if err != nil {
		return nil, fmt.Errorf("backfilling endpoint %s: %w", params.EndpointID, mapError(err))
	}
	return out, nil
}
