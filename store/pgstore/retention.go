package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/kapsel-dev/kapsel"
)

// Retention on Postgres: batched statements, each its own short
// transaction, rather than time-partitioned tables. docs/storage.md,
// "Retention", has the measurements and the reasoning; in short, the
// hot statements (the insert's fan-out, the claim, the completion) would
// all have to learn the partition key, and the unique (event_id,
// endpoint_id) and idempotency keys would have to include it, while a
// batch of events by primary key (kapsel.DefaultRetentionBatch, 250 by
// default) holds its row locks for a few milliseconds and touches no row
// the hot path is writing (an event is removed only once all its
// deliveries have ended).
//
// A batch reads the next Limit+1 events of its scope in id order
// (scanSQL, on the primary key or events_tenant_id_idx), decides in Go
// which are old enough, then acts on those ids in one short transaction
// (locked): it locks them FOR UPDATE SKIP LOCKED (lockEventsSQL), then acts
// with a second statement that checks again that they are not in use.
//
// The lock is what makes that check true when the action commits. Only a
// requeue (DeliveryRetry, DeliveryRetryEvent, DeliveryReplay) or a backfill
// can put an ended event back in use, and each takes FOR KEY SHARE on the
// event rows before it touches their deliveries. So once the batch holds an
// event's lock, no requeue of it is in flight: the ones that committed
// before are seen by the second statement (READ COMMITTED: a new snapshot,
// taken after the lock), and the ones that come later wait for the batch's
// commit and then find the event removed (nothing to requeue: 404, count 0)
// or its body erased (a requeue after the erasure, which the dispatcher
// fails without a request). An event a requeue holds is skipped: not
// removed this pass, reported Blocked, retried on the next. The check alone,
// in one statement, was not enough: its snapshot did not see a requeue that
// committed while it ran, and the delete then removed the requeued delivery
// with its event (storetest's Retention/Races).

// inUseSQL is true while a delivery of the event e has not ended, as of
// the cut-off $before: pending, delivering, or ended with a lease that had
// not run out by then (an attempt whose completion may still come).
const inUseSQL = `EXISTS (SELECT FROM deliveries d WHERE d.event_id = e.id
	AND (d.status IN ('pending', 'delivering') OR (d.lease_token IS NOT NULL AND d.lease_expires_at >= %[1]s)))`

// scanAllSQL and scanTenantSQL read the events a batch examines: up to $2
// from $1, in id order, of every tenant but $3 (events_pkey) or of tenant
// $3 (events_tenant_id_idx). TestRetentionUsesIndexes checks the plans.
const (
	scanAllSQL = `SELECT e.id, e.created_at, e.body_erasure FROM events e
WHERE e.id >= $1 AND NOT (e.tenant_id = ANY ($3::text[])) ORDER BY e.id LIMIT $2`
	scanTenantSQL = `SELECT e.id, e.created_at, e.body_erasure FROM events e
WHERE e.id >= $1 AND e.tenant_id = $3 ORDER BY e.id LIMIT $2`
)

// scanEvents reads the events a batch examines: up to limit+1 from from,
// in id order, of tenant (or of every tenant but exclude).
func (s *Store) scanEvents(ctx context.Context, tenant kapsel.TenantID, exclude []kapsel.TenantID, from kapsel.EventID, limit int) ([]kapsel.RetentionScanned, error) {
	q, scope := scanTenantSQL, any(string(tenant))
	if tenant == "" {
		ex := make([]string, len(exclude)) // never nil: NULL would exclude every row
		for i, id := range exclude {
			ex[i] = string(id)
		}
		q, scope = scanAllSQL, ex
	}
	rows, err := s.pool.Query(ctx, q, string(from), limit+1, scope)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (kapsel.RetentionScanned, error) {
		var r kapsel.RetentionScanned
		err := row.Scan(&r.ID, &r.CreatedAt, &r.Erasure)
		return r, err
	})
}

// bodyKept is the want of the sweeps that erase bodies.
func bodyKept(r kapsel.RetentionScanned) bool { return r.Erasure == kapsel.BodyKept }

// eraseSQL erases the bodies of the events $1 that are not in use, and
// marks them $2 at $3; $4 is the cut-off of inUseSQL. It returns each
// erased event's id and body size.
var eraseSQL = `UPDATE events e SET body = '\x'::bytea, headers = '{}'::jsonb, body_erasure = $2, body_erased_at = $3
WHERE e.id = ANY ($1::text[]) AND e.body_erasure = '' AND NOT ` + fmt.Sprintf(inUseSQL, "$4") + `
RETURNING e.id, e.size`

// RetentionEraseBodies erases the bodies of the expired events of one batch
// that are not in use (kapsel.RetentionStore).
func (s *Store) RetentionEraseBodies(ctx context.Context, params *kapsel.RetentionSweepParams) (*kapsel.RetentionSweepResult, error) {
	limit, before := kapsel.RetentionLimit(params.Limit), micro(params.Before)
	rows, err := s.scanEvents(ctx, params.TenantID, params.ExcludeTenantIDs, params.From, limit)
	if err != nil {
		return nil, fmt.Errorf("erasing expired bodies: %w", mapError(err))
	}
	ids, res := kapsel.PlanRetentionBatch(rows, limit, before, bodyKept)
	if len(ids) == 0 {
		return res, nil
	}
	acted, err := s.erase(ctx, ids, kapsel.BodyExpired, micro(params.Now), before, res)
	if err != nil {
		return nil, fmt.Errorf("erasing expired bodies: %w", mapError(err))
	}
	res.SetBlocked(ids, acted)
	return res, nil
}

// erase runs eraseSQL and counts what it erased into res.
func (s *Store) erase(ctx context.Context, ids []kapsel.EventID, why kapsel.BodyErasure, now, before time.Time, res *kapsel.RetentionSweepResult) ([]kapsel.EventID, error) {
	var acted []kapsel.EventID
	err := s.locked(ctx, ids, func(locked []kapsel.EventID) []any {
		return []any{locked, string(why), now, before}
	}, eraseSQL, func(row pgx.Rows) error {
		var id kapsel.EventID
		var size int64
		if err := row.Scan(&id, &size); err != nil {
			return err
		}
		acted = append(acted, id)
		res.Events++
		res.Bytes += size
		return nil
	})
	return acted, err
}

// lockEventsSQL locks the events $1 that no requeue or backfill holds, in
// id order (by events_pkey), and returns their ids.
const lockEventsSQL = `SELECT coalesce(array_agg(id), '{}') FROM (
	SELECT id FROM events WHERE id = ANY ($1::text[]) ORDER BY id FOR UPDATE SKIP LOCKED) AS l`

// locked runs a batch's statement sql on the events of ids it could lock
// (lockEventsSQL), in one transaction under claimPlanSettings (see
// pinned); args gives the statement's arguments for the locked ids. It
// runs nothing when it locked none.
func (s *Store) locked(ctx context.Context, ids []kapsel.EventID, args func([]kapsel.EventID) []any, sql string, each func(pgx.Rows) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(claimPlanSettings)
		b.Queue(lockEventsSQL, ids)
		br := tx.SendBatch(ctx, b)
		var got []kapsel.EventID
		_, err := br.Exec()
		if err == nil {
			err = br.QueryRow().Scan(&got)
		}
		if closeErr := br.Close(); err == nil {
			err = closeErr
		}
		if err != nil || len(got) == 0 {
			return err
		}
		rows, err := tx.Query(ctx, sql, args(got)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := each(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	})
}

// pinned runs a batch's statement under claimPlanSettings, in one
// pipelined implicit transaction (as the claim does), so that it reads
// the indexes it was written for (TestRetentionUsesIndexes) whatever the
// planner guesses of a large ANY list against a small table; each is
// called for each row.
func (s *Store) pinned(ctx context.Context, sql string, args []any, each func(pgx.Rows) error) error {
	b := &pgx.Batch{}
	b.Queue(claimPlanSettings)
	b.Queue(sql, args...)
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return err
	}
	rows, err := br.Query()
	if err != nil {
		return err
	}
	for rows.Next() {
		if err := each(rows); err != nil {
			rows.Close()
			return err
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	return br.Close()
}

// deleteEventsSQL removes the events $1 that are not in use as of the
// cut-off $2, whose deliveries were all last due before it and whose
// idempotency key is no longer taken at $3 — with their deliveries (by
// deliveries_event_endpoint_key) and their attempts (by
// attempts_delivery_id_number_key). It returns the events removed and the
// counts.
var deleteEventsSQL = `
WITH gone AS (
	DELETE FROM events e
	WHERE e.id = ANY ($1::text[]) AND NOT ` + fmt.Sprintf(inUseSQL, "$2") + `
		AND NOT EXISTS (SELECT FROM deliveries d WHERE d.event_id = e.id AND d.next_attempt_at >= $2)
		AND NOT EXISTS (SELECT FROM idempotency_keys k WHERE e.idempotency_key IS NOT NULL
			AND k.tenant_id = e.tenant_id AND k.source_id = e.source_id AND k.key = e.idempotency_key
			AND k.event_id = e.id AND k.expires_at > $3)
	RETURNING e.id, CASE WHEN e.body_erasure = '' THEN e.size ELSE 0 END AS bytes
),
dl AS (
	DELETE FROM deliveries d USING gone WHERE d.event_id = gone.id RETURNING d.id
),
att AS (
	DELETE FROM attempts a USING dl WHERE a.delivery_id = dl.id RETURNING octet_length(a.response_body) AS bytes
)
SELECT coalesce(array_agg(id), '{}'), coalesce(sum(bytes), 0),
	(SELECT count(*) FROM dl), (SELECT count(*) FROM att), (SELECT coalesce(sum(bytes), 0) FROM att)
FROM gone`

// RetentionDeleteEvents removes the expired events of one batch, with their
// deliveries and attempts, that are not in use (kapsel.RetentionStore).
func (s *Store) RetentionDeleteEvents(ctx context.Context, params *kapsel.RetentionSweepParams) (*kapsel.RetentionSweepResult, error) {
	limit, before := kapsel.RetentionLimit(params.Limit), micro(params.Before)
	rows, err := s.scanEvents(ctx, params.TenantID, params.ExcludeTenantIDs, params.From, limit)
	if err != nil {
		return nil, fmt.Errorf("removing expired events: %w", mapError(err))
	}
	ids, res := kapsel.PlanRetentionBatch(rows, limit, before, nil)
	if len(ids) == 0 {
		return res, nil
	}
	var acted []kapsel.EventID
	var bodyBytes, attBytes int64
	now := micro(params.Now)
	err = s.locked(ctx, ids, func(locked []kapsel.EventID) []any { return []any{locked, before, now} }, deleteEventsSQL, func(row pgx.Rows) error {
		return row.Scan(&acted, &bodyBytes, &res.Deliveries, &res.Attempts, &attBytes)
	})
	if err != nil {
		return nil, fmt.Errorf("removing expired events: %w", mapError(err))
	}
	res.Events, res.Bytes = len(acted), bodyBytes+attBytes
	res.SetBlocked(ids, acted)
	return res, nil
}

// deleteKeysSQL removes up to $2 idempotency keys whose window ended by
// $1: a bitmap scan of the BRIN index idempotency_keys_expires_at_idx
// finds them, and the delete goes by ctid (a TID scan). A key taken over
// since (a new version at another ctid) is not removed.
const deleteKeysSQL = `DELETE FROM idempotency_keys
WHERE ctid = ANY (ARRAY(SELECT ctid FROM idempotency_keys WHERE expires_at <= $1 LIMIT $2)) AND expires_at <= $1`

// RetentionDeleteIdempotencyKeys removes keys whose window has ended
// (kapsel.RetentionStore).
func (s *Store) RetentionDeleteIdempotencyKeys(ctx context.Context, params *kapsel.RetentionKeysParams) (*kapsel.RetentionSweepResult, error) {
	limit := kapsel.RetentionLimit(params.Limit)
	tag, err := s.pool.Exec(ctx, deleteKeysSQL, micro(params.Now), limit)
	if err != nil {
		return nil, fmt.Errorf("removing expired idempotency keys: %w", mapError(err))
	}
	n := int(tag.RowsAffected())
	return &kapsel.RetentionSweepResult{Events: n, Done: n < limit}, nil
}

// oldestSQL reads the oldest row of each table by primary key: one index
// probe each.
const oldestSQL = `SELECT (SELECT created_at FROM events ORDER BY id LIMIT 1),
	(SELECT created_at FROM deliveries ORDER BY id LIMIT 1),
	(SELECT started_at FROM attempts ORDER BY id LIMIT 1)`

// RetentionOldest returns the oldest row of each table, by id order
// (kapsel.RetentionStore).
func (s *Store) RetentionOldest(ctx context.Context) (*kapsel.RetentionOldest, error) {
	var ev, dl, at *time.Time
	if err := s.pinned(ctx, oldestSQL, nil, func(row pgx.Rows) error { return row.Scan(&ev, &dl, &at) }); err != nil {
		return nil, fmt.Errorf("reading the oldest rows: %w", mapError(err))
	}
	out := &kapsel.RetentionOldest{}
	for _, x := range []struct {
		src *time.Time
		dst *time.Time
	}{{ev, &out.Events}, {dl, &out.Deliveries}, {at, &out.Attempts}} {
		if x.src != nil {
			*x.dst = *x.src
		}
	}
	return out, nil
}

// expungeSQL erases the bodies of the events $1 of tenant $2 that still
// have one, marks them expunged at $3, and ends their deliveries that
// have not ended (failed, LastError $4, a lease kept as EndpointDelete
// keeps it). It returns the erased ids, their bytes and the deliveries
// ended.
//
// Lock order: the events (by events_pkey, in id order), then their
// unfinished deliveries, locked in id order (live) before the UPDATE
// touches them. The UPDATE alone locked them in the order of its join,
// event by event (deliveries_event_endpoint_key), while a completion
// locks the same delivering rows in id order (lockDeliveriesSQL): a
// backfilled delivery has a later id than the event's first ones, so the
// two crossed and deadlocked, and Postgres failed one after
// deadlock_timeout (1 s; storetest's LockOrder/ExpungeWithCompletions).
const expungeSQL = `
WITH erased AS (
	UPDATE events e SET body = '\x'::bytea, headers = '{}'::jsonb, body_erasure = 'expunged', body_erased_at = $3, trace_state = NULL
	WHERE e.id = ANY ($1::text[]) AND e.tenant_id = $2 AND e.body_erasure = ''
	RETURNING e.id, e.size
),
live AS MATERIALIZED (
	SELECT d.id FROM deliveries d
	WHERE d.event_id = ANY (ARRAY(SELECT id FROM erased)) AND d.status IN ('pending', 'delivering')
	ORDER BY d.id FOR NO KEY UPDATE
),
ended AS (
	UPDATE deliveries d SET status = 'failed', last_error = $4, claimable_at = d.next_attempt_at
	FROM live WHERE d.id = live.id AND d.status IN ('pending', 'delivering')
	RETURNING 1
)
SELECT coalesce(array_agg(id), '{}'), coalesce(sum(size), 0), (SELECT count(*) FROM ended) FROM erased`

// EventExpunge erases bodies at once: one event, or a batch of a tenant's
// (kapsel.RetentionStore).
func (s *Store) EventExpunge(ctx context.Context, params *kapsel.EventExpungeParams) (*kapsel.RetentionSweepResult, error) {
	if params.TenantID == "" {
		return nil, fmt.Errorf("expunging: %w: a tenant is required", kapsel.ErrInvalid)
	}
	var ids []kapsel.EventID
	res := &kapsel.RetentionSweepResult{Done: true}
	if params.ID != "" {
		var found bool
		err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM events WHERE id = $1 AND tenant_id = $2)`,
			kapsel.SafeText(string(params.ID)), string(params.TenantID)).Scan(&found)
		if err != nil {
			return nil, fmt.Errorf("expunging event %s: %w", params.ID, mapError(err))
		}
		if !found {
			return nil, fmt.Errorf("expunging event %s: %w", params.ID, kapsel.ErrNotFound)
		}
		ids = []kapsel.EventID{kapsel.EventID(kapsel.SafeText(string(params.ID)))}
	} else {
		limit := kapsel.RetentionLimit(params.Limit)
		rows, err := s.scanEvents(ctx, params.TenantID, nil, params.From, limit)
		if err != nil {
			return nil, fmt.Errorf("expunging the tenant's bodies: %w", mapError(err))
		}
		ids, res = kapsel.PlanRetentionBatch(rows, limit, kapsel.RetentionNever, bodyKept)
		if len(ids) == 0 {
			return res, nil
		}
	}
	var acted []kapsel.EventID
	err := s.pinned(ctx, expungeSQL, []any{ids, string(params.TenantID), micro(params.Now), kapsel.LastErrorBodyExpunged},
		func(row pgx.Rows) error { return row.Scan(&acted, &res.Bytes, &res.DeliveriesEnded) })
	if err != nil {
		return nil, fmt.Errorf("expunging: %w", mapError(err))
	}
	res.Events = len(acted)
	return res, nil
}
