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

// eventColumns are read by scanEvent; traceColumns follow them except in
// lists; bodyColumn is appended when the body is wanted.
//
// The trace columns came with migration 0007, so SQLite stores them after
// the body in each row: reading them walks the row's overflow pages, which
// for a large body is reading the body. A list, which never reads bodies,
// leaves them out (kapsel.EventStore.EventList may leave Trace zero); a single
// event and a claim, which reads the body anyway, read them.
const (
	eventColumns = `id, tenant_id, source_id, type, channels, idempotency_key, content_type, headers, body_hash, size,
		created_at, body_erasure, body_erased_at`
	traceColumns = `trace_parent, trace_state`
	bodyColumn   = `body`
)

func scanEvent(row rowScanner, withTrace, withBody bool) (*kapsel.Event, error) {
	var e kapsel.Event
	var created, erased sql.NullInt64
	var headers, channels string
	dest := []any{&e.ID, &e.TenantID, &e.SourceID, &e.Type, &channels, &e.IdempotencyKey, &e.ContentType, &headers,
		&e.BodyHash, &e.Size, &created, &e.BodyErasure, &erased}
	if withTrace {
		dest = append(dest, &e.Trace.Parent, &e.Trace.State)
	}
	if withBody {
		dest = append(dest, &e.Body)
	}
	if err := row.Scan(dest...); err != nil {
		return nil, mapError(err)
	}
	if withBody && e.Body == nil {
		e.Body = []byte{}
	}
	e.CreatedAt, e.BodyErasedAt = fromMicros(created), fromMicros(erased)
	var err error
	if e.Headers, err = decodeHeader(headers); err != nil {
		return nil, fmt.Errorf("decoding headers of event %s: %w", e.ID, err)
	}
	if e.Channels, err = decodeList[string](channels); err != nil {
		return nil, fmt.Errorf("decoding channels of event %s: %w", e.ID, err)
	}
	return &e, nil
}

// EventInsertMany inserts events and fans each new one out, all in one
// transaction (one fsync): a delivery per live endpoint of the event's
// tenant whose subscription matches it (kapsel.Subscription.Matches, the
// one rule), or per endpoint of EndpointIDs. The endpoints are read in the
// transaction, which holds SQLite's write lock from its start (IMMEDIATE):
// no endpoint change can land between the read and the inserts, so an
// EndpointDelete is seen wholly before or wholly after. A row whose tenant
// does not exist or was deleted gets Err wrapping ErrNotFound and writes
// nothing.
func (s *Store) EventInsertMany(ctx context.Context, params *kapsel.EventInsertManyParams) ([]kapsel.EventInsertResult, error) {
	window := params.IdempotencyWindow
	if window <= 0 {
		window = kapsel.DefaultIdempotencyWindow
	}
	events := make([]*kapsel.EventInsertParams, len(params.Events))
	for i, in := range params.Events {
		var err error
		if events[i], err = in.Storable(); err != nil {
			return nil, fmt.Errorf("inserting events: %w", err)
		}
	}
	var results []kapsel.EventInsertResult
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		ins := &inserter{
			stmts: &stmtCache{tx: tx}, now: time.UnixMicro(params.Now.UnixMicro()).UTC(), window: window,
			tenants: map[kapsel.TenantID][]fanoutEndpoint{}, missing: map[kapsel.TenantID]bool{},
		}
		defer ins.stmts.close()
		results = make([]kapsel.EventInsertResult, len(events))
		for i, in := range events {
			live, err := ins.liveTenant(ctx, in.TenantID)
			if err != nil {
				return err
			}
			if !live {
				results[i].Err = fmt.Errorf("tenant %q: %w", in.TenantID, kapsel.ErrNotFound)
				continue
			}
			r, err := ins.insert(ctx, in)
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

// inserter is the state of one EventInsertMany transaction.
type inserter struct {
	stmts  *stmtCache
	now    time.Time
	window time.Duration
	// tenants caches the live endpoints of each live tenant seen, in id
	// order, and missing the tenants found unknown or deleted: nothing
	// changes them within the transaction.
	tenants map[kapsel.TenantID][]fanoutEndpoint
	missing map[kapsel.TenantID]bool
}

// fanoutEndpoint is what the fan-out needs of an endpoint.
type fanoutEndpoint struct {
	id  kapsel.EndpointID
	sub kapsel.Subscription
}

// liveTenant reports whether the tenant exists and is not deleted, and
// reads its live endpoints, once per tenant and batch.
func (ins *inserter) liveTenant(ctx context.Context, id kapsel.TenantID) (bool, error) {
	if _, ok := ins.tenants[id]; ok {
		return true, nil
	}
	if ins.missing[id] {
		return false, nil
	}
	var one int
	err := ins.stmts.queryRow(ctx, `SELECT 1 FROM tenants WHERE id = ? AND deleted_at IS NULL`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		ins.missing[id] = true
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("tenant %q: %w", id, mapError(err))
	}
	eps, err := liveEndpoints(ctx, ins.stmts, id)
	if err != nil {
		return false, err
	}
	ins.tenants[id] = eps
	return true, nil
}

// liveEndpoints returns the tenant's undeleted endpoints with their
// subscriptions, in id order (endpoints_tenant_idx).
func liveEndpoints(ctx context.Context, stmts *stmtCache, tenant kapsel.TenantID) ([]fanoutEndpoint, error) {
	st, err := stmts.stmt(ctx, `SELECT id, event_types, source_ids, channels FROM endpoints
		WHERE tenant_id = ? AND deleted_at IS NULL ORDER BY id`)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, tenant)
	if err != nil {
		return nil, mapError(err)
	}
	defer rows.Close()
	var out []fanoutEndpoint
	for rows.Next() {
		var e fanoutEndpoint
		var types, sources, channels string
		if err := rows.Scan(&e.id, &types, &sources, &channels); err != nil {
			return nil, mapError(err)
		}
		if e.sub, err = decodeSubscription(types, sources, channels); err != nil {
			return nil, fmt.Errorf("decoding the subscription of endpoint %s: %w", e.id, err)
		}
		out = append(out, e)
	}
	return out, mapError(rows.Err())
}

// insert inserts one event and its deliveries, or reports the live holder
// of its idempotency key. The transaction holds the write lock, so the
// lookup and the insert cannot race another writer.
func (ins *inserter) insert(ctx context.Context, in *kapsel.EventInsertParams) (kapsel.EventInsertResult, error) {
	tx, now := ins.stmts, ins.now
	if in.IdempotencyKey != "" {
		var holder kapsel.EventID
		var hash []byte
		err := tx.queryRow(ctx, `SELECT event_id, body_hash FROM idempotency_keys
			WHERE tenant_id = ? AND source_id = ? AND key = ? AND expires_at > ?`,
			in.TenantID, in.SourceID, in.IdempotencyKey, now.UnixMicro()).Scan(&holder, &hash)
		switch {
		case err == nil && !bytes.Equal(hash, in.BodyHash):
			return kapsel.EventInsertResult{Err: fmt.Errorf("idempotency key %q: %w (first event %s)",
				in.IdempotencyKey, kapsel.ErrIdempotencyConflict, holder)}, nil
		case err == nil:
			first, err := scanEvent(tx.queryRow(ctx, `SELECT `+eventColumns+`, `+traceColumns+` FROM events WHERE id = ?`, holder), true, false)
			if err != nil {
				return kapsel.EventInsertResult{}, fmt.Errorf("reading event %s: %w", holder, err)
			}
			return kapsel.EventInsertResult{Event: first, Duplicate: true}, nil
		case !errors.Is(err, sql.ErrNoRows):
			return kapsel.EventInsertResult{}, mapError(err)
		}
	}
	e := &kapsel.Event{
		ID: kapsel.NewEventID(), TenantID: in.TenantID, SourceID: in.SourceID, Type: in.Type, Channels: in.Channels,
		Body: append([]byte{}, in.Body...), ContentType: in.ContentType, Headers: in.Headers.Clone(),
		IdempotencyKey: in.IdempotencyKey, BodyHash: append([]byte{}, in.BodyHash...), Size: len(in.Body),
		Trace: in.Trace, CreatedAt: now,
	}
	targets, err := ins.targets(e, in.EndpointIDs)
	if err != nil {
		return kapsel.EventInsertResult{Err: err}, nil
	}
	headers, err := encodeHeader(in.Headers)
	if err != nil {
		return kapsel.EventInsertResult{}, fmt.Errorf("encoding headers: %w", err)
	}
	err = tx.exec(ctx, `INSERT INTO events (id, tenant_id, source_id, type, channels, idempotency_key, content_type,
		headers, body_hash, size, created_at, body, trace_parent, trace_state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, e.TenantID, e.SourceID, e.Type, encodeList(e.Channels), e.IdempotencyKey, e.ContentType,
		headers, blob(e.BodyHash), e.Size, now.UnixMicro(), blob(e.Body), e.Trace.Parent, e.Trace.State)
	if err != nil {
		return kapsel.EventInsertResult{}, mapError(err)
	}
	for _, ep := range targets {
		if err := insertDelivery(ctx, tx, e, ep, kapsel.TriggerScheduled, now); err != nil {
			return kapsel.EventInsertResult{}, err
		}
	}
	e.Deliveries.Add(kapsel.DeliveryPending, len(targets))
	if in.IdempotencyKey != "" {
		err = tx.exec(ctx, `INSERT INTO idempotency_keys (tenant_id, source_id, key, event_id, body_hash, expires_at)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (tenant_id, source_id, key) DO UPDATE SET event_id = excluded.event_id,
				body_hash = excluded.body_hash, expires_at = excluded.expires_at`,
			e.TenantID, e.SourceID, e.IdempotencyKey, e.ID, blob(e.BodyHash), now.Add(ins.window).UnixMicro())
		if err != nil {
			return kapsel.EventInsertResult{}, mapError(err)
		}
	}
	return kapsel.EventInsertResult{Event: e}, nil
}

// targets returns the endpoints e fans out to: those named, each of which
// must be a live endpoint of e's tenant (a row error wrapping ErrNotFound
// otherwise), or the tenant's live endpoints whose subscription matches.
func (ins *inserter) targets(e *kapsel.Event, named []kapsel.EndpointID) ([]kapsel.EndpointID, error) {
	eps := ins.tenants[e.TenantID]
	if len(named) > 0 {
	next:
		for _, id := range named {
			for _, ep := range eps {
				if ep.id == id {
					continue next
				}
			}
			return nil, fmt.Errorf("endpoint %s: %w", id, kapsel.ErrNotFound)
		}
		return named, nil
	}
	routing := e.Routing()
	var out []kapsel.EndpointID
	for _, ep := range eps {
		if ep.sub.Matches(routing) {
			out = append(out, ep.id)
		}
	}
	return out, nil
}

// insertDelivery inserts the pending delivery of e to endpoint, due at now.
func insertDelivery(ctx context.Context, tx *stmtCache, e *kapsel.Event, endpoint kapsel.EndpointID, trigger kapsel.AttemptTrigger, now time.Time) error {
	err := tx.exec(ctx, `INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, status, attempts,
		next_attempt_at, next_trigger, last_error, created_at) VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?6, '', ?5)`,
		kapsel.NewDeliveryID(), e.TenantID, e.ID, endpoint, now.UnixMicro(), trigger)
	return mapError(err)
}
