package pgstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/kapsel-dev/kapsel"
)

// insertEventsSQL inserts a batch of events in one statement. Its parts:
//
//   - checked: each input with the tenant owning its endpoint, or NULL when
//     the endpoint is unknown, deleted or foreign. One bad row writes
//     nothing at all (valid), and the caller reports ErrNotFound.
//   - keys: claims the idempotency keys. The primary key of
//     idempotency_keys decides who owns a key under any concurrency; a key
//     whose window has ended is taken over in the same atomic step (ON
//     CONFLICT … DO UPDATE … WHERE expires_at <= now). It returns the keys
//     this batch won. The batch carries each (endpoint, key) at most once
//     (ON CONFLICT cannot touch a row twice), the caller dedupes.
//   - ins: inserts the events without a key and those whose key was won.
//     An event's channels travel as one JSON array per event (unnest
//     cannot take an array of arrays of different lengths) and become its
//     text[] column; "[]", the common case, skips the JSON.
//   - notified: one pg_notify per batch that inserted anything, with the
//     schema as payload. It is delivered at commit, and only then.
//
// It returns, per input, the owning tenant and whether it was inserted.
const insertEventsSQL = `
WITH input AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::text[], $6::text[], $7::text[], $8::bytea[],
		$11::text[], $12::text[])
		WITH ORDINALITY AS t(id, tenant_id, endpoint_id, body, content_type, headers, key, body_hash, type, channels, ord)
),
checked AS (
	SELECT i.*, ep.tenant_id AS owner
	FROM input i
	LEFT JOIN endpoints ep ON ep.id = i.endpoint_id AND ep.deleted_at IS NULL
		AND (i.tenant_id = '' OR ep.tenant_id = i.tenant_id)
),
valid AS (
	SELECT NOT EXISTS (SELECT FROM checked WHERE owner IS NULL) AS ok
),
keys AS (
	INSERT INTO idempotency_keys AS k (endpoint_id, key, event_id, body_hash, expires_at)
	SELECT endpoint_id, key, id, body_hash, $9 FROM checked
	WHERE key <> '' AND (SELECT ok FROM valid)
	ON CONFLICT (endpoint_id, key) DO UPDATE
		SET event_id = excluded.event_id, body_hash = excluded.body_hash, expires_at = excluded.expires_at
		WHERE k.expires_at <= $10
	RETURNING k.event_id
),
ins AS (
	INSERT INTO events (id, tenant_id, endpoint_id, type, status, attempts, next_attempt_at, claimable_at, next_trigger,
		last_error, idempotency_key, content_type, headers, body_hash, size, created_at, body, channels)
	SELECT id, owner, endpoint_id, type, 'pending', 0, $10, $10, 'scheduled', '',
		NULLIF(key, ''), content_type, headers::jsonb, body_hash, octet_length(body), $10, body,
		CASE WHEN channels = '[]' THEN '{}'::text[] ELSE ARRAY(SELECT jsonb_array_elements_text(channels::jsonb)) END
	FROM checked
	WHERE (SELECT ok FROM valid) AND (key = '' OR id IN (SELECT event_id FROM keys))
	RETURNING id
),
notified AS (
	SELECT pg_notify('` + NotifyChannel + `', current_schema()) FROM (SELECT FROM ins LIMIT 1) AS any_inserted
)
SELECT ord, owner, id IN (SELECT id FROM ins) AS inserted, (SELECT count(*) FROM notified)
FROM checked ORDER BY ord`

// keyOwnersSQL returns, for keys this batch lost, the owning event. It runs
// only when a key was lost (a provider's retry; rare), after the insert
// statement, in a new snapshot: that sees an owner that committed while the
// insert waited for it, which the insert statement's own snapshot would not.
// The owner has committed by then, since ON CONFLICT waits for a concurrent
// inserter of the key to finish.
const keyOwnersSQL = `
SELECT q.endpoint_id, q.key, k.body_hash, ` + eventColumnsE + `
FROM unnest($1::text[], $2::text[]) AS q(endpoint_id, key)
JOIN idempotency_keys k ON k.endpoint_id = q.endpoint_id AND k.key = q.key
JOIN events e ON e.id = k.event_id`

// idemKey is what an idempotency key is unique over.
type idemKey struct {
	endpoint kapsel.EndpointID
	key      string
}

// keyOwner is the event that holds an idempotency key.
type keyOwner struct {
	event    *kapsel.Event
	bodyHash []byte
}

// EventInsertMany inserts the events in one transaction and one round trip,
// and notifies listeners once if any was inserted. An unknown or deleted
// endpoint, or a TenantID that does not own the endpoint, fails the whole
// call with ErrNotFound and nothing is written; an empty TenantID is taken
// from the endpoint.
func (s *Store) EventInsertMany(ctx context.Context, params *kapsel.EventInsertManyParams) ([]kapsel.EventInsertResult, error) {
	res, err := insertEvents(ctx, s.pool, params)
	if err != nil {
		return nil, fmt.Errorf("inserting events: %w", err)
	}
	return res, nil
}

// insertEvents does EventInsertMany on q: the pool (the insert statement then
// commits on its own, before its results are complete) or an application's
// transaction.
func insertEvents(ctx context.Context, q querier, params *kapsel.EventInsertManyParams) ([]kapsel.EventInsertResult, error) {
	if len(params.Events) == 0 {
		return []kapsel.EventInsertResult{}, nil
	}
	// Everything that can be refused is refused here, before the first
	// statement: in an application's transaction (EventInsertTx) a statement
	// that fails aborts the transaction, and ErrInvalid promises it does not.
	in := make([]*kapsel.EventInsertParams, len(params.Events))
	for i, e := range params.Events {
		var err error
		if in[i], err = e.Storable(); err != nil {
			return nil, err
		}
	}
	window := params.IdempotencyWindow
	if window <= 0 {
		window = kapsel.DefaultIdempotencyWindow
	}
	now := micro(params.Now)

	// Rows sent to the database: every input, except that an (endpoint, key)
	// goes only once; a later input with the same key follows the first.
	var (
		ids                                   = make([]kapsel.EventID, len(in))
		first                                 = map[idemKey]int{}
		follows                               = make([]int, len(in)) // index of the first input with the key, or -1
		sent                                  []int
		aID, aTenant, aEndpoint, aCType, aHdr []string
		aKey, aType, aChannels                []string
		aBody, aHash                          [][]byte
	)
	for i, e := range in {
		ids[i] = kapsel.NewEventID()
		follows[i] = -1
		if e.IdempotencyKey != "" {
			k := idemKey{e.EndpointID, e.IdempotencyKey}
			if j, ok := first[k]; ok {
				follows[i] = j
				continue
			}
			first[k] = i
		}
		hdr, err := json.Marshal(e.Headers)
		if err != nil {
			return nil, fmt.Errorf("%w: encoding headers: %w", kapsel.ErrInvalid, err)
		}
		sent = append(sent, i)
		aID = append(aID, string(ids[i]))
		aTenant = append(aTenant, string(e.TenantID))
		aEndpoint = append(aEndpoint, string(e.EndpointID))
		aBody = append(aBody, nonNil(e.Body))
		aCType = append(aCType, e.ContentType)
		aHdr = append(aHdr, string(hdr))
		aKey = append(aKey, e.IdempotencyKey)
		aHash = append(aHash, nonNil(e.BodyHash))
		aType = append(aType, e.Type)
		aChannels = append(aChannels, jsonList(e.Channels))
	}

	rows, err := q.Query(ctx, insertEventsSQL, aID, aTenant, aEndpoint, aBody, aCType, aHdr, aKey, aHash, now.Add(window), now, aType, aChannels)
	if err != nil {
		return nil, mapError(err)
	}
	owners := make([]kapsel.TenantID, len(in))
	inserted := make([]bool, len(in))
	var (
		ord      int
		owner    *string
		ins      bool
		notified int64
		invalid  []kapsel.EndpointID
	)
	_, err = pgx.ForEachRow(rows, []any{&ord, &owner, &ins, &notified}, func() error {
		i := sent[ord-1]
		if owner == nil {
			invalid = append(invalid, in[i].EndpointID)
			return nil
		}
		owners[i], inserted[i] = kapsel.TenantID(*owner), ins
		return nil
	})
	if err != nil {
		return nil, mapError(err)
	}
	if len(invalid) > 0 {
		return nil, fmt.Errorf("endpoint %s: %w", invalid[0], kapsel.ErrNotFound)
	}
	// A sent row that was not inserted lost its key: read the owners.
	var lostEndpoint, lostKey []string
	for _, i := range sent {
		if !inserted[i] {
			lostEndpoint = append(lostEndpoint, string(in[i].EndpointID))
			lostKey = append(lostKey, in[i].IdempotencyKey)
		}
	}
	keyOwners := map[idemKey]keyOwner{}
	if len(lostKey) > 0 {
		if keyOwners, err = readKeyOwners(ctx, q, lostEndpoint, lostKey); err != nil {
			return nil, err
		}
	}
	return insertResults(in, ids, follows, owners, inserted, keyOwners, now), nil
}

// readKeyOwners returns the events holding the (endpoint, key) pairs.
func readKeyOwners(ctx context.Context, q querier, endpoints, keys []string) (map[idemKey]keyOwner, error) {
	rows, err := q.Query(ctx, keyOwnersSQL, endpoints, keys)
	if err != nil {
		return nil, mapError(err)
	}
	defer rows.Close()
	owners := make(map[idemKey]keyOwner, len(keys))
	for rows.Next() {
		var (
			k  idemKey
			o  keyOwner
			er eventRow
		)
		if err := rows.Scan(append([]any{&k.endpoint, &k.key, &o.bodyHash}, er.dest(false)...)...); err != nil {
			return nil, mapError(err)
		}
		if o.event, err = er.event(); err != nil {
			return nil, err
		}
		owners[k] = o
	}
	if err := rows.Err(); err != nil {
		return nil, mapError(err)
	}
	return owners, nil
}

// insertResults builds one result per input from what the database decided.
func insertResults(in []*kapsel.EventInsertParams, ids []kapsel.EventID, follows []int,
	owners []kapsel.TenantID, inserted []bool, keyOwners map[idemKey]keyOwner, now time.Time) []kapsel.EventInsertResult {
	out := make([]kapsel.EventInsertResult, len(in))
	for i, e := range in {
		j := i
		if follows[i] >= 0 {
			j = follows[i]
		}
		if i == j && inserted[i] {
			out[i].Event = &kapsel.Event{
				ID: ids[i], TenantID: owners[i], EndpointID: e.EndpointID, Type: e.Type, Channels: e.Channels,
				Body: nonNil(e.Body), ContentType: e.ContentType, Headers: e.Headers,
				IdempotencyKey: e.IdempotencyKey, BodyHash: e.BodyHash, Size: len(e.Body),
				Status: kapsel.EventPending, NextAttemptAt: now, NextTrigger: kapsel.TriggerScheduled,
				CreatedAt: now,
			}
			continue
		}
		// The key is held: by the first input with it (inserted just now),
		// or by an earlier event.
		var o keyOwner
		if inserted[j] {
			ev := *out[j].Event
			ev.Body = nil
			o = keyOwner{event: &ev, bodyHash: in[j].BodyHash}
		} else if found, ok := keyOwners[idemKey{e.EndpointID, e.IdempotencyKey}]; ok {
			o = found
		} else {
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
	return out
}

// nonNil turns a nil slice into an empty one, for NOT NULL bytea columns.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
