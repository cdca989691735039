package pgstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/kapsel-dev/kapsel"
)

// An EventInsertMany call is one transaction and two round trips:
//
//  1. BEGIN, the shared tenant lock of each tenant of the batch (see
//     tenant_lock.go), liveTenantsSQL and targetsSQL, pipelined: which
//     tenants are live, and the endpoints the batch may fan out to;
//  2. insertEventsSQL and COMMIT, pipelined: the events, their idempotency
//     keys and their deliveries, decided in Go in between by the root
//     matching rule (kapsel.Endpoint.Receives), the one rule every store
//     applies.
//     After a batch of 1 MiB of bodies or more, dropParamsSQL goes in the
//     same pipeline, before COMMIT, so the connection keeps no bodies.
//
// In an application's transaction (EventInsertManyTx) the same statements
// run in it, without BEGIN and COMMIT.
//
// liveTenantsSQL and targetsSQL run after the lock, so under READ
// COMMITTED their snapshot sees every EndpointDelete and TenantDelete that
// committed before it, and none commits until this transaction has ended.
// Under REPEATABLE READ or SERIALIZABLE (an application's transaction), the
// snapshot may be older than the lock: a delete committed in between would
// not be seen. There the same reads lock what they return FOR KEY SHARE,
// which fails with a serialization error (ErrUnavailable: the application
// retries its transaction) for a row that a delete locked FOR UPDATE and
// committed after the snapshot; a concurrent EndpointUpdate (FOR NO KEY
// UPDATE) does not conflict with it. Under READ COMMITTED the reads lock
// nothing: their rc branch runs and the rr branch is cut off by its
// one-time filter before it reads a row.

// liveTenantsSQL returns those of the tenants $1 that exist and are not
// deleted (by primary key).
const liveTenantsSQL = `
WITH rc AS (
	SELECT id FROM tenants WHERE id = ANY ($1::text[]) AND ` + liveTenant + `
		AND current_setting('transaction_isolation') = 'read committed'
),
rr AS (
	SELECT id FROM tenants WHERE id = ANY ($1::text[]) AND ` + liveTenant + `
		AND current_setting('transaction_isolation') <> 'read committed'
	FOR KEY SHARE
)
SELECT id FROM rc UNION ALL SELECT id FROM rr`

// targetsSQL reads the endpoints that the batch's events may be delivered
// to: every live endpoint of the tenants ($1) whose events fan out to
// their subscribers, and the endpoints that sends name ($2), whatever
// their tenant (a foreign one is refused in Go). It reads
// endpoints_tenant_id_idx and the primary key.
const targetsSQL = `
WITH rc AS (
	SELECT id, tenant_id, event_types, source_ids, channels FROM endpoints
	WHERE deleted_at IS NULL AND (tenant_id = ANY ($1::text[]) OR id = ANY ($2::text[]))
		AND current_setting('transaction_isolation') = 'read committed'
),
rr AS (
	SELECT id, tenant_id, event_types, source_ids, channels FROM endpoints
	WHERE deleted_at IS NULL AND (tenant_id = ANY ($1::text[]) OR id = ANY ($2::text[]))
		AND current_setting('transaction_isolation') <> 'read committed'
	FOR KEY SHARE
)
SELECT * FROM rc UNION ALL SELECT * FROM rr
ORDER BY id`

// liveTenantsRCSQL and targetsRCSQL are liveTenantsSQL's and targetsSQL's
// READ COMMITTED branches alone, for EventInsertMany's own transactions,
// which it begins READ COMMITTED. Postgres prefers a custom plan for the
// live-tenant read, so it plans it on every call (pg_prepared_statements:
// 30 custom plans of 30 calls, the only statement of the insert not
// cached): for the two-branch form, with its CTEs, that was ~5 % of the
// ingest's Postgres CPU in a profile of its backends; the one-table lookup
// by primary key plans in a fraction of that.
const (
	liveTenantsRCSQL = `SELECT id FROM tenants WHERE id = ANY ($1::text[]) AND ` + liveTenant
	targetsRCSQL     = `
SELECT id, tenant_id, event_types, source_ids, channels FROM endpoints
WHERE deleted_at IS NULL AND (tenant_id = ANY ($1::text[]) OR id = ANY ($2::text[]))
ORDER BY id`
)

// insertEventsSQL inserts a batch of events and their deliveries in one
// statement. Its parts:
//
//   - keys: claims the idempotency keys, scoped by (tenant, source). The
//     primary key of idempotency_keys decides who owns a key under any
//     concurrency; a key whose window has ended is taken over in the same
//     atomic step (ON CONFLICT … DO UPDATE … WHERE expires_at <= now). It
//     returns the keys this batch won. The batch carries each scope and
//     key at most once (ON CONFLICT cannot touch a row twice): the caller
//     dedupes.
//   - ins: inserts the events without a key and those whose key was won.
//     An event's channels travel as one JSON array per event (unnest
//     cannot take an array of arrays of different lengths) and become its
//     text[] column; "[]", the common case, skips the JSON.
//   - dlv: inserts the deliveries decided in Go ($13–$15) of the events
//     inserted, pending now.
//   - notified: one pg_notify per batch that created a delivery, with the
//     schema as payload. It is delivered at commit, and only then.
//
// It returns, per event sent, whether it was inserted.
const insertEventsSQL = `
WITH input AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::text[], $6::text[], $7::text[],
		$8::bytea[], $9::text[], $10::text[], $16::text[], $17::text[])
		WITH ORDINALITY AS t(id, tenant_id, source_id, body, content_type, headers, key, body_hash, type, channels,
			trace_parent, trace_state, ord)
),
keys AS (
	INSERT INTO idempotency_keys AS k (tenant_id, source_id, key, event_id, body_hash, expires_at)
	SELECT tenant_id, source_id, key, id, body_hash, $11 FROM input
	WHERE key <> ''
	ON CONFLICT (tenant_id, source_id, key) DO UPDATE
		SET event_id = excluded.event_id, body_hash = excluded.body_hash, expires_at = excluded.expires_at
		WHERE k.expires_at <= $12
	RETURNING k.event_id
),
ins AS (
	INSERT INTO events (id, tenant_id, source_id, type, channels, idempotency_key, content_type, headers,
		body_hash, size, created_at, body, trace_parent, trace_state)
	SELECT id, tenant_id, source_id, type,
		CASE WHEN channels = '[]' THEN '{}'::text[] ELSE ARRAY(SELECT jsonb_array_elements_text(channels::jsonb)) END,
		NULLIF(key, ''), content_type, headers::jsonb, body_hash, octet_length(body), $12, body,
		NULLIF(trace_parent, ''), NULLIF(trace_state, '')
	FROM input
	WHERE key = '' OR id IN (SELECT event_id FROM keys)
	RETURNING id, tenant_id
),
dlv AS (
	INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, status, attempts, next_attempt_at, claimable_at,
		next_trigger, last_error, created_at)
	SELECT t.id, ins.tenant_id, t.event_id, t.endpoint_id, 'pending', 0, $12, $12, 'scheduled', '', $12
	FROM unnest($13::text[], $14::text[], $15::text[]) AS t(id, event_id, endpoint_id)
	JOIN ins ON ins.id = t.event_id
	RETURNING 1
),
notified AS (
	SELECT pg_notify('` + NotifyChannel + `', current_schema()) FROM (SELECT FROM dlv LIMIT 1) AS any_created
)
SELECT ord, id IN (SELECT id FROM ins) AS inserted, (SELECT count(*) FROM notified)
FROM input ORDER BY ord`

// keyOwnersSQL returns the live owners of keys: those the batch lost, and
// those of rows refused for an endpoint they name, whose key decides first
// (see run). It runs only then (a provider's retry, a retried send; rare),
// after the insert statement, in a new snapshot: that sees an owner that
// committed while the insert waited for it, which the insert statement's
// own snapshot would not. The owner has committed by then, since ON
// CONFLICT waits for a concurrent inserter of the key to finish.
const keyOwnersSQL = `
SELECT q.tenant_id, q.source_id, q.key, k.body_hash, ` + eventColumnsE + `
FROM unnest($1::text[], $2::text[], $3::text[]) AS q(tenant_id, source_id, key)
JOIN idempotency_keys k ON k.tenant_id = q.tenant_id AND k.source_id = q.source_id AND k.key = q.key
	AND k.expires_at > $4
JOIN events e ON e.id = k.event_id`

// scopedKey is what an idempotency key is unique over.
type scopedKey struct {
	tenant kapsel.TenantID
	source kapsel.SourceID
	key    string
}

// keyOwner is the event that holds an idempotency key.
type keyOwner struct {
	event    *kapsel.Event
	bodyHash []byte
}

// target is an endpoint an event may be delivered to, as targetsSQL reads
// it.
type target struct {
	kapsel.Endpoint // ID, TenantID and Subscription only
}

// EventInsertMany inserts the events and their deliveries in one
// transaction (see kapsel.EventInserter), and notifies listeners once if
// any delivery was created.
func (s *Store) EventInsertMany(ctx context.Context, params *kapsel.EventInsertManyParams) ([]kapsel.EventInsertResult, error) {
	b, err := newInsertBatch(params)
	if err != nil {
		return nil, fmt.Errorf("inserting events: %w", err)
	}
	if len(b.in) == 0 {
		return []kapsel.EventInsertResult{}, nil
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("inserting events: %w", mapError(err))
	}
	// A connection left in a transaction by a failure is closed by Release,
	// which rolls the transaction back.
	defer conn.Release()
	res, err := b.run(ctx, conn.Conn(), true)
	if err != nil {
		return nil, fmt.Errorf("inserting events: %w", err)
	}
	return res, nil
}

// insertBatch is one EventInsertMany call on its way to the database.
type insertBatch struct {
	in     []*kapsel.EventInsertParams // as Storable made them
	ids    []kapsel.EventID
	hdrs   []string // each input's headers as JSON, encoded once by newInsertBatch
	window time.Duration
	now    time.Time
}

// newInsertBatch checks the inputs. Everything that can be refused is
// refused here, before the first statement: in an application's
// transaction (EventInsertTx) a statement that fails aborts the
// transaction, and ErrInvalid promises it does not.
func newInsertBatch(params *kapsel.EventInsertManyParams) (*insertBatch, error) {
	b := &insertBatch{
		in: make([]*kapsel.EventInsertParams, len(params.Events)), ids: make([]kapsel.EventID, len(params.Events)),
		hdrs:   make([]string, len(params.Events)),
		window: params.IdempotencyWindow, now: micro(params.Now),
	}
	if b.window <= 0 {
		b.window = kapsel.DefaultIdempotencyWindow
	}
	for i, e := range params.Events {
		var err error
		if b.in[i], err = e.Storable(); err != nil {
			return nil, err
		}
		hdr, err := json.Marshal(b.in[i].Headers)
		if err != nil {
			return nil, fmt.Errorf("%w: encoding headers: %w", kapsel.ErrInvalid, err)
		}
		b.hdrs[i] = string(hdr)
		b.ids[i] = kapsel.NewEventID()
	}
	return b, nil
}

// run inserts the batch through q: a connection of the pool, in a
// transaction of its own (own), or an application's transaction.
func (b *insertBatch) run(ctx context.Context, q querier, own bool) ([]kapsel.EventInsertResult, error) {
	live, targets, err := b.readTargets(ctx, q, own)
	if err != nil {
		return nil, err
	}
	out := make([]kapsel.EventInsertResult, len(b.in))
	fan, missing := b.fanOut(live, targets, out)

	// Rows sent to the database: every input of a live tenant that names no
	// unknown endpoint, except that a scope and key goes only once; a later
	// input with the same key follows the first. An input that names an
	// unknown endpoint but has a key is not sent either: its key decides
	// first (a retry gets its first answer), so its owner is read after
	// the insert (lookup).
	var (
		first                               = map[scopedKey]int{}
		follows                             = make([]int, len(b.in)) // index of the first input with the key, or -1
		sent, lookup                        []int
		aID, aTenant, aSource, aCType, aHdr []string
		aKey, aType, aChannels              []string
		aTraceParent, aTraceState           []string
		aBody, aHash                        [][]byte
		dID, dEvent, dEndpoint              []string
	)
	for i, e := range b.in {
		follows[i] = -1
		if out[i].Err != nil {
			continue
		}
		if e.IdempotencyKey != "" {
			k := scopedKey{e.TenantID, e.SourceID, e.IdempotencyKey}
			if j, ok := first[k]; ok {
				follows[i] = j
				continue
			}
			if missing[i] != nil {
				lookup = append(lookup, i)
				continue
			}
			first[k] = i
		} else if missing[i] != nil {
			out[i].Err = missing[i]
			continue
		}
		sent = append(sent, i)
		aID = append(aID, string(b.ids[i]))
		aTenant = append(aTenant, string(e.TenantID))
		aSource = append(aSource, string(e.SourceID))
		aBody = append(aBody, nonNil(e.Body))
		aCType = append(aCType, e.ContentType)
		aHdr = append(aHdr, b.hdrs[i])
		aKey = append(aKey, e.IdempotencyKey)
		aHash = append(aHash, nonNil(e.BodyHash))
		aType = append(aType, e.Type)
		aChannels = append(aChannels, jsonList(e.Channels))
		aTraceParent = append(aTraceParent, e.Trace.Parent)
		aTraceState = append(aTraceState, e.Trace.State)
		for _, ep := range fan[i] {
			dID = append(dID, string(kapsel.NewDeliveryID()))
			dEvent = append(dEvent, string(b.ids[i]))
			dEndpoint = append(dEndpoint, string(ep))
		}
	}

	inserted := make([]bool, len(b.in))
	bt := &pgx.Batch{}
	bt.Queue(insertEventsSQL, aID, aTenant, aSource, aBody, aCType, aHdr, aKey, aHash, aType, aChannels,
		b.now.Add(b.window), b.now, dID, dEvent, dEndpoint, aTraceParent, aTraceState)
	dropParams := queueDropParams(bt, aBody)
	if own {
		bt.Queue(`COMMIT`)
	}
	br := q.SendBatch(ctx, bt)
	rows, _ := br.Query()
	var (
		ord      int
		ins      bool
		notified int64
	)
	_, err = pgx.ForEachRow(rows, []any{&ord, &ins, &notified}, func() error {
		inserted[sent[ord-1]] = ins
		return nil
	})
	if err == nil && dropParams {
		_, err = br.Exec()
	}
	if err == nil && own {
		_, err = br.Exec()
	}
	if closeErr := br.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return nil, mapError(err)
	}

	// A sent row that was not inserted lost its key, and a looked-up row's
	// key may be held: read the owners.
	var lostTenant, lostSource, lostKey []string
	for _, i := range sent {
		if !inserted[i] {
			lostTenant = append(lostTenant, string(b.in[i].TenantID))
			lostSource = append(lostSource, string(b.in[i].SourceID))
			lostKey = append(lostKey, b.in[i].IdempotencyKey)
		}
	}
	for _, i := range lookup {
		lostTenant = append(lostTenant, string(b.in[i].TenantID))
		lostSource = append(lostSource, string(b.in[i].SourceID))
		lostKey = append(lostKey, b.in[i].IdempotencyKey)
	}
	keyOwners := map[scopedKey]keyOwner{}
	if len(lostKey) > 0 {
		if keyOwners, err = readKeyOwners(ctx, q, lostTenant, lostSource, lostKey, b.now); err != nil {
			return nil, err
		}
	}
	b.results(out, fan, missing, follows, inserted, keyOwners)
	return out, nil
}

// readTargets takes the batch's tenant locks and runs liveTenantsSQL and
// targetsSQL, after BEGIN when own, in one round trip. It returns the live
// tenants and the targets.
func (b *insertBatch) readTargets(ctx context.Context, q querier, own bool) (map[kapsel.TenantID]bool, []target, error) {
	var all, tenants, named []string
	for _, e := range b.in {
		if !slices.Contains(all, string(e.TenantID)) {
			all = append(all, string(e.TenantID))
		}
		if len(e.EndpointIDs) == 0 {
			if !slices.Contains(tenants, string(e.TenantID)) {
				tenants = append(tenants, string(e.TenantID))
			}
			continue
		}
		for _, id := range e.EndpointIDs {
			named = append(named, string(id))
		}
	}
	slices.Sort(all) // every batch locks its tenants in one order
	bt := &pgx.Batch{}
	liveSQL, targetSQL := liveTenantsSQL, targetsSQL
	if own {
		bt.Queue(`BEGIN ISOLATION LEVEL READ COMMITTED`)
		liveSQL, targetSQL = liveTenantsRCSQL, targetsRCSQL
	}
	bt.Queue(lockTenantsSharedSQL, all)
	bt.Queue(liveSQL, all)
	bt.Queue(targetSQL, tenants, named)
	br := q.SendBatch(ctx, bt)
	defer br.Close()
	for range 1 + btoi(own) { // BEGIN, the lock
		if _, err := br.Exec(); err != nil {
			return nil, nil, mapError(err)
		}
	}
	rows, _ := br.Query()
	liveIDs, err := pgx.CollectRows(rows, pgx.RowTo[kapsel.TenantID])
	if err != nil {
		return nil, nil, mapError(err)
	}
	live := make(map[kapsel.TenantID]bool, len(liveIDs))
	for _, id := range liveIDs {
		live[id] = true
	}
	rows, _ = br.Query()
	targets, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (target, error) {
		var (
			t       target
			sources []string
		)
		err := r.Scan(&t.ID, &t.TenantID, &t.Subscription.EventTypes, &sources, &t.Subscription.Channels)
		for _, id := range sources {
			t.Subscription.SourceIDs = append(t.Subscription.SourceIDs, kapsel.SourceID(id))
		}
		return t, err
	})
	if err != nil {
		return nil, nil, mapError(err)
	}
	if err := br.Close(); err != nil {
		return nil, nil, mapError(err)
	}
	return live, targets, nil
}

// btoi is 1 for true, 0 for false.
func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// fanOut decides each input's deliveries from the live tenants and the
// targets. An input whose tenant is not live gets its result's ErrNotFound
// at once. One that names endpoints gets them, each of which must be a
// live endpoint of its tenant: else its error is returned in missing (its
// idempotency key decides first, see run). Any other gets the live
// endpoints of its tenant that receive it.
func (b *insertBatch) fanOut(live map[kapsel.TenantID]bool, targets []target, out []kapsel.EventInsertResult) (fan [][]kapsel.EndpointID, missing []error) {
	byID := make(map[kapsel.EndpointID]*target, len(targets))
	for i := range targets {
		byID[targets[i].ID] = &targets[i]
	}
	fan, missing = make([][]kapsel.EndpointID, len(b.in)), make([]error, len(b.in))
	for i, e := range b.in {
		if !live[e.TenantID] {
			out[i].Err = fmt.Errorf("tenant %q: %w", e.TenantID, kapsel.ErrNotFound)
			continue
		}
		if len(e.EndpointIDs) > 0 {
			for _, id := range e.EndpointIDs {
				if t := byID[id]; t == nil || t.TenantID != e.TenantID {
					missing[i] = fmt.Errorf("endpoint %s: %w", id, kapsel.ErrNotFound)
					break
				}
			}
			fan[i] = e.EndpointIDs
			continue
		}
		ev := kapsel.EventRouting{TenantID: e.TenantID, SourceID: e.SourceID, Type: e.Type, Channels: e.Channels}
		for j := range targets {
			if targets[j].Receives(ev) {
				fan[i] = append(fan[i], targets[j].ID)
			}
		}
	}
	return fan, missing
}

// readKeyOwners returns the events holding the scoped keys.
func readKeyOwners(ctx context.Context, q querier, tenants, sources, keys []string, now time.Time) (map[scopedKey]keyOwner, error) {
	rows, err := q.Query(ctx, keyOwnersSQL, tenants, sources, keys, now)
	if err != nil {
		return nil, mapError(err)
	}
	defer rows.Close()
	owners := make(map[scopedKey]keyOwner, len(keys))
	for rows.Next() {
		var (
			k  scopedKey
			o  keyOwner
			er eventRow
		)
		if err := rows.Scan(append([]any{&k.tenant, &k.source, &k.key, &o.bodyHash}, er.dest(false, false)...)...); err != nil {
			return nil, mapError(err)
		}
		if o.event, err = er.event(); err != nil {
			return nil, err
		}
		o.event.Deliveries = kapsel.DeliverySummary{} // a duplicate's, see EventInsertResult
		owners[k] = o
	}
	if err := rows.Err(); err != nil {
		return nil, mapError(err)
	}
	return owners, nil
}

// results fills in one result per input from what the database decided
// (rows whose Err is already set stay as they are).
func (b *insertBatch) results(out []kapsel.EventInsertResult, fan [][]kapsel.EndpointID, missing []error, follows []int,
	inserted []bool, keyOwners map[scopedKey]keyOwner) {
	for i, e := range b.in {
		if out[i].Err != nil {
			continue
		}
		j := i
		if follows[i] >= 0 {
			j = follows[i]
		}
		if i == j && inserted[i] {
			n := len(fan[i])
			out[i].Event = &kapsel.Event{
				ID: b.ids[i], TenantID: e.TenantID, SourceID: e.SourceID, Type: e.Type, Channels: e.Channels,
				Body: nonNil(e.Body), ContentType: e.ContentType, Headers: e.Headers,
				IdempotencyKey: e.IdempotencyKey, BodyHash: e.BodyHash, Size: len(e.Body), CreatedAt: b.now,
				Deliveries: kapsel.DeliverySummary{Total: n, Pending: n}, Trace: e.Trace,
			}
			continue
		}
		// The key is held: by the first input with it (inserted just now),
		// or by an earlier event.
		var o keyOwner
		found, ok := keyOwners[scopedKey{e.TenantID, e.SourceID, e.IdempotencyKey}]
		switch {
		case i != j && inserted[j]:
			ev := *out[j].Event
			ev.Body, ev.Deliveries = nil, kapsel.DeliverySummary{}
			o = keyOwner{event: &ev, bodyHash: b.in[j].BodyHash}
		case missing[i] != nil && (!ok || slices.Contains(b.ids, found.event.ID)):
			// Its key was free before this call (a later input may have
			// taken it since): refused for the endpoint it names.
			out[i].Err = missing[i]
			continue
		case ok:
			o = found
		default:
			// Only when the owning event was deleted while its key was live,
			// which retention never does (it keeps events longer than the
			// window). Nothing can be replayed, so the key is reported as
			// reused.
			out[i].Err = fmt.Errorf("idempotency key %q: %w: its first event no longer exists",
				e.IdempotencyKey, kapsel.ErrIdempotencyConflict)
			continue
		}
		if !bytes.Equal(o.bodyHash, e.BodyHash) {
			out[i].Err = fmt.Errorf("idempotency key %q: %w (first event %s)",
				e.IdempotencyKey, kapsel.ErrIdempotencyConflict, o.event.ID)
			continue
		}
		ev := *o.event
		out[i] = kapsel.EventInsertResult{Event: &ev, Duplicate: true}
	}
}

// dropParamsSQL follows a statement whose parameters come to
// dropParamsBytes or more (an insert's bodies, a completion batch's
// response bodies), in the same pipeline: queueDropParams. pgx's query
// builder encodes a statement's parameters into one buffer per connection
// and keeps their slices until that connection runs a statement with as
// many parameters (ExtendedQueryBuilder.reset truncates ParamValues
// without clearing it): each stale slice pins the whole buffer, bodies
// included. So every pooled connection that had inserted a large batch
// held its last batch's bodies — after a burst of 10 MiB bodies ~120 MiB
// (pprof inuse_space: pgtype's bytea encoding) that the process could not
// give back — and one that had completed a batch held up to 64 KiB of
// response body per completion. This statement has 64 parameters, all
// NULL: reset keeps at most 64 slots (it reallocates ParamValues above
// that capacity), so it clears every stale slot whatever the statement
// before it, without tracking its parameter count. TestInsertKeepsNoBody
// and TestCompleteKeepsNoBody fail without it.
var dropParamsSQL = func() string {
	var b strings.Builder
	b.WriteString("SELECT ")
	for i := range dropParamsCount {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d::text", i+1)
	}
	return b.String()
}()

const (
	// dropParamsCount is the capacity pgx's ExtendedQueryBuilder.reset
	// keeps for ParamValues.
	dropParamsCount = 64
	dropParamsBytes = 1 << 20
)

// dropParamsArgs are dropParamsSQL's arguments, all nil: NULLs, which
// encode to nothing.
var dropParamsArgs = make([]any, dropParamsCount)

// queueDropParams queues dropParamsSQL in b when a statement queued before
// it carried bodies of dropParamsBytes or more, and reports whether it did.
func queueDropParams(b *pgx.Batch, bodies [][]byte) bool {
	if bodyBytes(bodies) < dropParamsBytes {
		return false
	}
	b.Queue(dropParamsSQL, dropParamsArgs...)
	return true
}

func bodyBytes(bodies [][]byte) int {
	n := 0
	for _, b := range bodies {
		n += len(b)
	}
	return n
}

// nonNil turns a nil slice into an empty one, for NOT NULL bytea columns.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
