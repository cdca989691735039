package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/kapsel-dev/kapsel"
)

// Retention on SQLite: a batch reads the events it examines on a
// read-only connection (WAL: concurrently with the writer), decides in Go
// which are old enough, then acts on those ids in one short write
// transaction that checks again that they are not in use. The single
// writer is held only for the statements by primary key of one batch
// (DefaultRetentionBatch events at most); docs/benchmarks.md has the
// longest batch measured.

// inUseSQL is true while a delivery of the event e has not ended, as of
// the cut-off ?2: pending, delivering, or ended with a lease that had not
// run out by then.
// It names the event's table events (an UPDATE cannot alias it).
const inUseSQL = `EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id
	AND (d.status IN ('pending', 'delivering') OR (d.lease_token IS NOT NULL AND d.lease_expires_at >= ?2)))`

// scanEvents reads the events a batch examines: up to limit+1 from from,
// in id order, of tenant (or of every tenant but exclude).
func (s *Store) scanEvents(ctx context.Context, tenant kapsel.TenantID, exclude []kapsel.TenantID, from kapsel.EventID, limit int) ([]kapsel.RetentionScanned, error) {
	q := `SELECT id, created_at, body_erasure FROM events WHERE id >= ?1 AND `
	args := []any{string(from), limit + 1}
	if tenant != "" {
		q += `tenant_id = ?3`
		args = append(args, string(tenant))
	} else {
		q += `tenant_id NOT IN (SELECT value FROM json_each(?3))`
		args = append(args, jsonIDs(exclude))
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY id LIMIT ?2`, args...)
	if err != nil {
		return nil, mapError(err)
	}
	defer rows.Close()
	var out []kapsel.RetentionScanned
	for rows.Next() {
		var r kapsel.RetentionScanned
		var created sql.NullInt64
		if err := rows.Scan(&r.ID, &created, &r.Erasure); err != nil {
			return nil, mapError(err)
		}
		r.CreatedAt = fromMicros(created)
		out = append(out, r)
	}
	return out, mapError(rows.Err())
}

// jsonIDs returns ids as a JSON array, for json_each.
func jsonIDs[T ~string](ids []T) string {
	if len(ids) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(ids)
	return string(b)
}

// bodyKept is the want of the sweeps that erase bodies.
func bodyKept(r kapsel.RetentionScanned) bool { return r.Erasure == kapsel.BodyKept }

// eraseSQL erases the bodies of the events ?1 (a JSON array) that are not
// in use as of ?2 and still have one, marking them ?3 at ?4.
const eraseSQL = `UPDATE events SET body = x'', headers = '{}', body_erasure = ?3, body_erased_at = ?4
WHERE id IN (SELECT value FROM json_each(?1)) AND body_erasure = '' AND NOT ` + inUseSQL + `
RETURNING id, size`

// RetentionEraseBodies erases the bodies of the expired events of one batch
// that are not in use (kapsel.RetentionStore).
func (s *Store) RetentionEraseBodies(ctx context.Context, params *kapsel.RetentionSweepParams) (*kapsel.RetentionSweepResult, error) {
	limit := kapsel.RetentionLimit(params.Limit)
	rows, err := s.scanEvents(ctx, params.TenantID, params.ExcludeTenantIDs, params.From, limit)
	if err != nil {
		return nil, fmt.Errorf("erasing expired bodies: %w", err)
	}
	ids, res := kapsel.PlanRetentionBatch(rows, limit, params.Before, bodyKept)
	if len(ids) == 0 {
		return res, nil
	}
	var acted []kapsel.EventID
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		acted, err = collectErased(ctx, tx, eraseSQL, res, jsonIDs(ids), params.Before.UnixMicro(), string(kapsel.BodyExpired), params.Now.UnixMicro())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("erasing expired bodies: %w", err)
	}
	res.SetBlocked(ids, acted)
	return res, nil
}

// collectErased runs an erasing statement that returns (id, size) and
// counts them into res.
func collectErased(ctx context.Context, tx *sql.Tx, query string, res *kapsel.RetentionSweepResult, args ...any) ([]kapsel.EventID, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, mapError(err)
	}
	defer rows.Close()
	var acted []kapsel.EventID
	for rows.Next() {
		var id kapsel.EventID
		var size int64
		if err := rows.Scan(&id, &size); err != nil {
			return nil, mapError(err)
		}
		acted = append(acted, id)
		res.Events++
		res.Bytes += size
	}
	return acted, mapError(rows.Err())
}

// removableSQL picks, among the events ?1, those not in use as of ?2,
// whose deliveries were all last due before it and whose idempotency key
// is no longer taken at ?3, with their body bytes.
const removableSQL = `SELECT id, CASE WHEN body_erasure = '' THEN size ELSE 0 END FROM events
WHERE id IN (SELECT value FROM json_each(?1)) AND NOT ` + inUseSQL + `
	AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id AND d.next_attempt_at >= ?2)
	AND NOT EXISTS (SELECT 1 FROM idempotency_keys k WHERE events.idempotency_key <> ''
		AND k.tenant_id = events.tenant_id AND k.source_id = events.source_id AND k.key = events.idempotency_key
		AND k.event_id = events.id AND k.expires_at > ?3)`

// RetentionDeleteEvents removes the expired events of one batch, with their
// deliveries and attempts, that are not in use (kapsel.RetentionStore).
// Children first, for the foreign keys; each statement goes by an index
// on the event id (attempts_event_idx, the deliveries' unique (event_id,
// endpoint_id), the primary key).
func (s *Store) RetentionDeleteEvents(ctx context.Context, params *kapsel.RetentionSweepParams) (*kapsel.RetentionSweepResult, error) {
	limit := kapsel.RetentionLimit(params.Limit)
	rows, err := s.scanEvents(ctx, params.TenantID, params.ExcludeTenantIDs, params.From, limit)
	if err != nil {
		return nil, fmt.Errorf("removing expired events: %w", err)
	}
	ids, res := kapsel.PlanRetentionBatch(rows, limit, params.Before, nil)
	if len(ids) == 0 {
		return res, nil
	}
	var acted []kapsel.EventID
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		acted = acted[:0]
		var err error
		if acted, err = collectErased(ctx, tx, removableSQL, res, jsonIDs(ids), params.Before.UnixMicro(), params.Now.UnixMicro()); err != nil {
			return err
		}
		if len(acted) == 0 {
			return nil
		}
		list := jsonIDs(acted)
		var n, bytes int64
		if err := tx.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(length(response_body)), 0) FROM attempts
			WHERE event_id IN (SELECT value FROM json_each(?1))`, list).Scan(&n, &bytes); err != nil {
			return mapError(err)
		}
		res.Attempts, res.Bytes = int(n), res.Bytes+bytes
		if _, err := tx.ExecContext(ctx, `DELETE FROM attempts WHERE event_id IN (SELECT value FROM json_each(?1))`, list); err != nil {
			return mapError(err)
		}
		r, err := tx.ExecContext(ctx, `DELETE FROM deliveries WHERE event_id IN (SELECT value FROM json_each(?1))`, list)
		if err != nil {
			return mapError(err)
		}
		n, _ = r.RowsAffected()
		res.Deliveries = int(n)
		_, err = tx.ExecContext(ctx, `DELETE FROM events WHERE id IN (SELECT value FROM json_each(?1))`, list)
		return mapError(err)
	})
	if err != nil {
		return nil, fmt.Errorf("removing expired events: %w", err)
	}
	res.SetBlocked(ids, acted)
	return res, nil
}

// RetentionDeleteIdempotencyKeys removes keys whose window has ended
// (kapsel.RetentionStore). The expired keys are found on a read-only
// connection (a scan of the table, which holds one window of keys: no
// index on the insert path for it) and removed by primary key.
func (s *Store) RetentionDeleteIdempotencyKeys(ctx context.Context, params *kapsel.RetentionKeysParams) (*kapsel.RetentionSweepResult, error) {
	limit, now := kapsel.RetentionLimit(params.Limit), params.Now.UnixMicro()
	rows, err := s.r.QueryContext(ctx, `SELECT json_array(tenant_id, source_id, key) FROM idempotency_keys WHERE expires_at <= ?1 LIMIT ?2`, now, limit)
	if err != nil {
		return nil, fmt.Errorf("removing expired idempotency keys: %w", mapError(err))
	}
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return nil, fmt.Errorf("removing expired idempotency keys: %w", mapError(err))
		}
		keys = append(keys, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("removing expired idempotency keys: %w", mapError(err))
	}
	res := &kapsel.RetentionSweepResult{Done: len(keys) < limit}
	if len(keys) == 0 {
		return res, nil
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE expires_at <= ?2 AND (tenant_id, source_id, key) IN
			(SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?1))`, "["+strings.Join(keys, ",")+"]", now)
		if err != nil {
			return mapError(err)
		}
		n, _ := r.RowsAffected()
		res.Events = int(n)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("removing expired idempotency keys: %w", err)
	}
	return res, nil
}

// RetentionOldest returns the oldest row of each table, by id order
// (kapsel.RetentionStore): one primary-key probe each.
func (s *Store) RetentionOldest(ctx context.Context) (*kapsel.RetentionOldest, error) {
	var ev, dl, at sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT (SELECT created_at FROM events ORDER BY id LIMIT 1),
		(SELECT created_at FROM deliveries ORDER BY id LIMIT 1), (SELECT started_at FROM attempts ORDER BY id LIMIT 1)`).
		Scan(&ev, &dl, &at)
	if err != nil {
		return nil, fmt.Errorf("reading the oldest rows: %w", mapError(err))
	}
	return &kapsel.RetentionOldest{Events: fromMicros(ev), Deliveries: fromMicros(dl), Attempts: fromMicros(at)}, nil
}

// expungeSQL erases the bodies of the events ?1 of tenant ?2 that still
// have one, marking them expunged at ?3.
const expungeSQL = `UPDATE events SET body = x'', headers = '{}', body_erasure = 'expunged', body_erased_at = ?3, trace_state = ''
WHERE id IN (SELECT value FROM json_each(?1)) AND tenant_id = ?2 AND body_erasure = ''
RETURNING id, size`

// EventExpunge erases bodies at once: one event, or a batch of a tenant's
// (kapsel.RetentionStore).
func (s *Store) EventExpunge(ctx context.Context, params *kapsel.EventExpungeParams) (*kapsel.RetentionSweepResult, error) {
	if params.TenantID == "" {
		return nil, fmt.Errorf("expunging: %w: a tenant is required", kapsel.ErrInvalid)
	}
	ids := []kapsel.EventID{params.ID}
	res := &kapsel.RetentionSweepResult{Done: true}
	if params.ID == "" {
		limit := kapsel.RetentionLimit(params.Limit)
		rows, err := s.scanEvents(ctx, params.TenantID, nil, params.From, limit)
		if err != nil {
			return nil, fmt.Errorf("expunging the tenant's bodies: %w", err)
		}
		if ids, res = kapsel.PlanRetentionBatch(rows, limit, kapsel.RetentionNever, bodyKept); len(ids) == 0 {
			return res, nil
		}
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if params.ID != "" {
			var found bool
			err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM events WHERE id = ?1 AND tenant_id = ?2)`,
				string(params.ID), string(params.TenantID)).Scan(&found)
			if err != nil {
				return mapError(err)
			}
			if !found {
				return kapsel.ErrNotFound
			}
		}
		acted, err := collectErased(ctx, tx, expungeSQL, res, jsonIDs(ids), string(params.TenantID), params.Now.UnixMicro())
		if err != nil || len(acted) == 0 {
			return err
		}
		r, err := tx.ExecContext(ctx, `UPDATE deliveries SET status = 'failed', last_error = ?2, held_until = NULL
			WHERE event_id IN (SELECT value FROM json_each(?1)) AND status IN ('pending', 'delivering')`,
			jsonIDs(acted), kapsel.LastErrorBodyExpunged)
		if err != nil {
			return mapError(err)
		}
		n, _ := r.RowsAffected()
		res.DeliveriesEnded = int(n)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("expunging: %w", err)
	}
	return res, nil
}
