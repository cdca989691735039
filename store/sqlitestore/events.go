package sqlitestore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// eventColumns are read by scanEvent; bodyColumn is appended when the body
// is wanted.
const (
	eventColumns = `id, tenant_id, endpoint_id, type, status, attempts, next_attempt_at, next_trigger,
		lease_token, lease_expires_at, last_error, idempotency_key, content_type, headers, body_hash, size,
		created_at, delivered_at, channels`
	bodyColumn = `body`
)

func scanEvent(row interface{ Scan(...any) error }, withBody bool) (*kapsel.Event, error) {
	var e kapsel.Event
	var token sql.NullString
	var next, leaseExp, created, delivered sql.NullInt64
	var headers, channels string
	dest := []any{&e.ID, &e.TenantID, &e.EndpointID, &e.Type, &e.Status, &e.Attempts, &next, &e.NextTrigger,
		&token, &leaseExp, &e.LastError, &e.IdempotencyKey, &e.ContentType, &headers, &e.BodyHash, &e.Size,
		&created, &delivered, &channels}
	if withBody {
		dest = append(dest, &e.Body)
	}
	if err := row.Scan(dest...); err != nil {
		return nil, mapError(err)
	}
	if withBody && e.Body == nil {
		e.Body = []byte{}
	}
	e.LeaseToken = token.String
	e.NextAttemptAt, e.LeaseExpiresAt = fromMicros(next), fromMicros(leaseExp)
	e.CreatedAt, e.DeliveredAt = fromMicros(created), fromMicros(delivered)
	var err error
	if e.Headers, err = decodeHeader(headers); err != nil {
		return nil, fmt.Errorf("decoding headers of event %s: %w", e.ID, err)
	}
	if e.Channels, err = decodeList[string](channels); err != nil {
		return nil, fmt.Errorf("decoding channels of event %s: %w", e.ID, err)
	}
	return &e, nil
}

// EventInsertMany inserts events in one transaction (one fsync). An unknown
// or deleted endpoint, or a TenantID that does not own the endpoint, fails
// the whole call with ErrNotFound. An empty TenantID is taken from the
// endpoint.
func (s *Store) EventInsertMany(ctx context.Context, params *kapsel.EventInsertManyParams) ([]kapsel.EventInsertResult, error) {
	window := params.IdempotencyWindow
	if window <= 0 {
		window = kapsel.DefaultIdempotencyWindow
	}
	now := time.UnixMicro(params.Now.UnixMicro()).UTC()
	events := make([]*kapsel.EventInsertParams, len(params.Events))
	for i, in := range params.Events {
		var err error
		if events[i], err = in.Storable(); err != nil {
			return nil, fmt.Errorf("inserting events: %w", err)
		}
	}
	var results []kapsel.EventInsertResult
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		stmts := &stmtCache{tx: tx}
		defer stmts.close()
		results = make([]kapsel.EventInsertResult, len(events))
		owners := map[kapsel.EndpointID]kapsel.TenantID{}
		for i, in := range events {
			owner, ok := owners[in.EndpointID]
			if !ok {
				err := tx.QueryRowContext(ctx, `SELECT tenant_id FROM endpoints WHERE id = ?1 AND `+live,
					in.EndpointID, in.TenantID).Scan(&owner)
				if err != nil {
					return fmt.Errorf("endpoint %s: %w", in.EndpointID, mapError(err))
				}
				owners[in.EndpointID] = owner
			}
			if in.TenantID != "" && in.TenantID != owner {
				return fmt.Errorf("endpoint %s: %w", in.EndpointID, kapsel.ErrNotFound)
			}
			r, err := insertEvent(ctx, stmts, in, owner, now, window)
			if err != nil {
				return err
			}
			results[i] = r
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("inserting events: %w", err)
	}
	return results, nil
}

// insertEvent inserts one event, or reports the live holder of its
// idempotency key. The caller's IMMEDIATE transaction holds the write lock,
// so the lookup and the insert cannot race another writer.
func insertEvent(ctx context.Context, tx *stmtCache, in *kapsel.EventInsertParams, tenant kapsel.TenantID, now time.Time, window time.Duration) (kapsel.EventInsertResult, error) {
	if in.IdempotencyKey != "" {
		var holder kapsel.EventID
		var hash []byte
		err := tx.queryRow(ctx, `SELECT event_id, body_hash FROM idempotency_keys
			WHERE endpoint_id = ? AND key = ? AND expires_at > ?`,
			in.EndpointID, in.IdempotencyKey, now.UnixMicro()).Scan(&holder, &hash)
		switch {
		case err == nil && !bytes.Equal(hash, in.BodyHash):
			return kapsel.EventInsertResult{Err: fmt.Errorf("idempotency key %q: %w (first event %s)",
				in.IdempotencyKey, kapsel.ErrIdempotencyConflict, holder)}, nil
		case err == nil:
			first, err := scanEvent(tx.queryRow(ctx, `SELECT `+eventColumns+` FROM events WHERE id = ?`, holder), false)
			if err != nil {
				return kapsel.EventInsertResult{}, fmt.Errorf("reading event %s: %w", holder, err)
			}
			return kapsel.EventInsertResult{Event: first, Duplicate: true}, nil
		case !errors.Is(err, sql.ErrNoRows):
			return kapsel.EventInsertResult{}, mapError(err)
		}
	}
	headers, err := encodeHeader(in.Headers)
	if err != nil {
		return kapsel.EventInsertResult{}, fmt.Errorf("encoding headers: %w", err)
	}
	e := &kapsel.Event{
		ID: kapsel.NewEventID(), TenantID: tenant, EndpointID: in.EndpointID, Type: in.Type, Channels: in.Channels,
		Body: append([]byte{}, in.Body...), ContentType: in.ContentType, Headers: in.Headers.Clone(),
		IdempotencyKey: in.IdempotencyKey, BodyHash: append([]byte{}, in.BodyHash...), Size: len(in.Body),
		Status: kapsel.EventPending, NextAttemptAt: now, NextTrigger: kapsel.TriggerScheduled, CreatedAt: now,
	}
	err = tx.exec(ctx, `INSERT INTO events (id, tenant_id, endpoint_id, type, status, attempts, next_attempt_at,
		next_trigger, last_error, idempotency_key, content_type, headers, body_hash, size, created_at, body, channels)
		VALUES (?1, ?2, ?3, ?11, 'pending', 0, ?4, 'scheduled', '', ?5, ?6, ?7, ?8, ?9, ?4, ?10, ?12)`,
		e.ID, e.TenantID, e.EndpointID, now.UnixMicro(), e.IdempotencyKey, e.ContentType, headers,
		blob(e.BodyHash), e.Size, blob(e.Body), e.Type, encodeList(e.Channels))
	if err != nil {
		return kapsel.EventInsertResult{}, mapError(err)
	}
	if in.IdempotencyKey != "" {
		err = tx.exec(ctx, `INSERT INTO idempotency_keys (endpoint_id, key, event_id, body_hash, expires_at)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (endpoint_id, key) DO UPDATE SET event_id = excluded.event_id,
				body_hash = excluded.body_hash, expires_at = excluded.expires_at`,
			e.EndpointID, e.IdempotencyKey, e.ID, blob(e.BodyHash), now.Add(window).UnixMicro())
		if err != nil {
			return kapsel.EventInsertResult{}, mapError(err)
		}
	}
	return kapsel.EventInsertResult{Event: e}, nil
}
