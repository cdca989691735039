package pgstore

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/kapsel-dev/kapsel"
)

// holdSQL moves the deliveries of blocked endpoints out of the front of
// deliveries_pending_idx, so that claims do not walk them. Among the first
// $3 due pending deliveries (excluded endpoints skipped), those whose endpoint is
// paused, disabled or deleted, or has a breaker open at $1, get claimable_at
// set: to the breaker's open_until, or to 'infinity' until EndpointSetState
// makes the endpoint active again or BreakerDelete resets its breaker (both
// set it back to next_attempt_at); a BreakerSave that closes the breaker or
// brings open_until forward brings its held deliveries forward too.
// next_attempt_at, which the API shows, is left alone. Without this, the
// due deliveries of a blocked endpoint would stay at the front for as long
// as it is blocked, and every claim would walk all of them (100,000 cost
// ~0.2 s per claim, measured on 0.1's events).
//
// The endpoint row is locked FOR SHARE, and so is the row of an open
// breaker: a concurrent EndpointSetState, BreakerSave or BreakerDelete
// either committed first — the lock then re-reads the row (READ COMMITTED),
// sees the endpoint active or the breaker closed, and holds nothing — or
// waits for this transaction and releases what it held in its next
// statement. Every lock here skips rows locked by others and never waits, so
// the claim cannot deadlock with a writer that waits for it (an endpoint or
// breaker being changed just has its deliveries held by a later claim; a
// breaker row skipped counts as closed, and claimSQL still skips its
// deliveries by its own reading). Inserts lock no endpoint row under READ
// COMMITTED (see targetsSQL), and FOR SHARE does not conflict with the FOR
// KEY SHARE they take under REPEATABLE READ: inserts never wait for a
// claim.
// It returns how many deliveries it held.
//
// The outer query finds the walked deliveries by primary key only: it does
// not repeat the walk's status and claimable_at conditions, which the
// planner would otherwise answer by scanning deliveries_pending_idx with the
// ids as a filter (50–100 ms at 20,000 due rows). A delivery that stopped
// being pending since the walk's snapshot may so get claimable_at moved;
// that is harmless, because claimable_at is read only while a delivery is
// pending and every change back to pending sets it.
const holdSQL = `
WITH walked AS MATERIALIZED (
	SELECT f.id, f.endpoint_id FROM deliveries f
	WHERE f.status = 'pending' AND f.claimable_at <= $1 AND f.endpoint_id <> ALL ($2::text[])
	ORDER BY f.claimable_at, f.id
	LIMIT $3
),
open_breakers AS MATERIALIZED (
	SELECT b.endpoint_id, b.open_until FROM breakers b
	WHERE b.endpoint_id = ANY (ARRAY(SELECT DISTINCT endpoint_id FROM walked)) AND b.open_until > $1
	FOR SHARE SKIP LOCKED
),
hold AS (
	SELECT d.id, CASE WHEN ep.state = 'active' AND ep.deleted_at IS NULL THEN b.open_until
		ELSE 'infinity'::timestamptz END AS until
	FROM deliveries d
	JOIN endpoints ep ON ep.id = d.endpoint_id
	LEFT JOIN open_breakers b ON b.endpoint_id = d.endpoint_id
	WHERE d.id = ANY (ARRAY(SELECT id FROM walked))
		AND (ep.state <> 'active' OR ep.deleted_at IS NOT NULL OR b.open_until IS NOT NULL)
	FOR UPDATE OF d SKIP LOCKED
	FOR SHARE OF ep SKIP LOCKED
),
held AS (
	UPDATE deliveries d SET claimable_at = hold.until FROM hold WHERE d.id = hold.id
	RETURNING 1
)
SELECT count(*) FROM held`

// sweepSQL ends the delivering state of deliveries whose lease ran out
// while their endpoint could not be claimed (I3 of docs/guarantees.md:
// nothing stays delivering past its lease), up to $2 of them: claimSQL
// skips them, so without this they would show delivering for as long as
// the endpoint is blocked. A delivery of a paused or disabled endpoint, or
// of one whose breaker is open, goes back to pending with its lease
// cleared, as if released (attempts and next_attempt_at unchanged; the hold
// that follows in the same batch moves it out of the claim's way). One of
// a deleted endpoint ends as failed with last_error $3, as EndpointDelete
// ends them (which leaves none delivering: this is a safety net).
//
// It walks deliveries_delivering_idx from the front, as claimSQL's expired
// branch does, with the same per-row sub-selects; expired leases are rare
// (a crashed node's, for one lease) and those of blocked endpoints leave
// the index here, so the walk stays short. Rows other claimers hold are
// skipped.
const sweepSQL = `
WITH blocked AS (
	SELECT d.id, coalesce((SELECT ep.deleted_at IS NOT NULL FROM endpoints ep WHERE ep.id = d.endpoint_id), true) AS gone
	FROM deliveries d
	WHERE d.status = 'delivering' AND d.lease_expires_at <= $1
		AND NOT coalesce((SELECT ep.state = 'active' AND ep.deleted_at IS NULL FROM endpoints ep WHERE ep.id = d.endpoint_id)
			AND NOT coalesce((SELECT b.open_until > $1 FROM breakers b WHERE b.endpoint_id = d.endpoint_id), false), false)
	ORDER BY d.lease_expires_at
	LIMIT $2
	FOR UPDATE OF d SKIP LOCKED
)
UPDATE deliveries d
SET status = CASE WHEN blocked.gone THEN 'failed' ELSE 'pending' END,
	last_error = CASE WHEN blocked.gone THEN $3 ELSE d.last_error END,
	lease_token = NULL, lease_expires_at = NULL, claimable_at = d.next_attempt_at
FROM blocked
WHERE d.id = blocked.id`

// maxSweep bounds the expired leases one claim ends (sweepSQL).
const maxSweep = 256

// claimSQL leases up to $2 due deliveries. It runs right after holdSQL, in the
// same implicit transaction (one pipelined batch, one round trip) but with
// a fresh snapshot, so it no longer sees what holdSQL moved away. Two
// branches, each read in index order and cut at the limit:
//
//   - pending: deliveries_pending_idx (claimable_at, id) WHERE status =
//     'pending', from the front;
//   - expired: deliveries_delivering_idx (lease_expires_at) WHERE status =
//     'delivering', leases that ran out (normally none).
//
// Both skip rows other claimers hold (FOR UPDATE SKIP LOCKED), deliveries of
// endpoints that are not active or are deleted, whose breaker is open at
// $1, or that are excluded ($3). The union is ordered and cut again; every
// picked row gets a fresh random lease token, which is what fences later
// completions, and is returned with its event's columns, read by primary
// key, and, on the first row of each event only (first), its body: the
// body of an event fanned out to N endpoints is sent, and held, once per
// claim, not N times (the other rows' CASE yields NULL, so Postgres never
// de-TOASTs it for them). A single statement, so it is atomic on its own.
//
// A picked delivery whose event is missing (an orphan: deliveries.event_id
// has no foreign key, and a backfill before 0.3 could race retention's
// removal of the event) is not leased but ended, failed with
// lastErrorEventMissing and no lease: leased, it would drop out of the
// final join, come back when its lease ran out and be leased again for
// ever (SPEC I3). One primary-key probe per picked row, on the pages the
// final join reads anyway.
//
// Plan. Both branches must walk their index from the front and stop at the
// limit: anything else reads every due row, so a claim would cost
// O(backlog). The planner cannot be trusted to see that, because a queue
// table's statistics are always stale: on a fresh table (no statistics), on
// one analyzed while nearly empty, and right after ANALYZE of a backlog
// alike, it read all due rows — by a bitmap scan, by endpoint, or by a
// sequential scan — and sorted them (EXPLAIN ANALYZE of 0.1's events at
// 5,000–20,000 due rows: 20,000+ buffers and 30–190 ms for 128 rows). So
// the shape is fixed twice: the endpoint and breaker checks are scalar
// sub-selects per row, which the planner cannot turn into joins (deliveries
// stays the only table in
// FROM), and claimPlanSettings switch off the scans that read a whole range
// for this transaction only, leaving the ordered index scan with LIMIT (128
// rows: ~3,700 buffers, ~10 ms, independent of the backlog).
const claimSQL = `
WITH pending AS (
	SELECT d.id, d.event_id, d.claimable_at AS due_at FROM deliveries d
	WHERE d.status = 'pending' AND d.claimable_at <= $1
		AND d.endpoint_id <> ALL ($3::text[])
		AND (SELECT ep.state = 'active' AND ep.deleted_at IS NULL FROM endpoints ep WHERE ep.id = d.endpoint_id)
		AND NOT coalesce((SELECT b.open_until > $1 FROM breakers b WHERE b.endpoint_id = d.endpoint_id), false)
	ORDER BY d.claimable_at, d.id
	LIMIT $2
	FOR UPDATE OF d SKIP LOCKED
),
expired AS (
	SELECT d.id, d.event_id, d.next_attempt_at AS due_at FROM deliveries d
	WHERE d.status = 'delivering' AND d.lease_expires_at <= $1
		AND d.endpoint_id <> ALL ($3::text[])
		AND (SELECT ep.state = 'active' AND ep.deleted_at IS NULL FROM endpoints ep WHERE ep.id = d.endpoint_id)
		AND NOT coalesce((SELECT b.open_until > $1 FROM breakers b WHERE b.endpoint_id = d.endpoint_id), false)
	ORDER BY d.lease_expires_at
	LIMIT $2
	FOR UPDATE OF d SKIP LOCKED
),
picked AS (
	SELECT id, NOT EXISTS (SELECT FROM events e WHERE e.id = due.event_id) AS orphan
	FROM (SELECT * FROM pending UNION ALL SELECT * FROM expired) AS due
	ORDER BY due_at, id
	LIMIT $2
),
claimed AS (
	UPDATE deliveries d
	SET status = CASE WHEN picked.orphan THEN 'failed' ELSE 'delivering' END,
		lease_token = CASE WHEN picked.orphan THEN NULL ELSE gen_random_uuid() END,
		lease_expires_at = CASE WHEN picked.orphan THEN NULL ELSE $4::timestamptz END,
		last_error = CASE WHEN picked.orphan THEN '` + lastErrorEventMissing + `' ELSE d.last_error END,
		claimable_at = CASE WHEN picked.orphan THEN d.next_attempt_at ELSE d.claimable_at END
	FROM picked
	WHERE d.id = picked.id
	RETURNING d.*
),
numbered AS (
	SELECT d.*, row_number() OVER (PARTITION BY d.event_id ORDER BY d.id) = 1 AS first FROM claimed d
)
SELECT ` + deliveryColumnsD + `, ` + eventColumnsE + `, d.first, CASE WHEN d.first THEN e.body END
FROM numbered d JOIN events e ON e.id = d.event_id`

// How many of the first due deliveries a claim examines for blocked
// endpoints (holdSQL). The window grows while it keeps finding them (a
// backlog of a paused endpoint is moved out of the way in a few claims) and
// shrinks back when it finds none (a claim then reads little beyond the
// deliveries it takes).
const (
	minHoldScan = 64
	maxHoldScan = 16384
	// maxHoldRounds bounds the extra claims one DeliveryClaim call makes
	// while it is moving blocked deliveries out of the way and has not
	// filled its batch.
	maxHoldRounds = 4
)

// DeliveryClaim leases up to Limit due deliveries (see kapsel.DeliveryQueue)
// and returns them with their events, bodies included (one Event per event,
// shared by its deliveries), earliest first, in
// one round trip (more only while it is moving a large blocked backlog out
// of the way). Concurrent claimers, in this process or others, never get
// the same delivery.
//
// "Earliest" is by claimable_at: NextAttemptAt, except for deliveries that
// were held for a breaker and are claimed in the order the breaker let them
// go.
func (s *Store) DeliveryClaim(ctx context.Context, params *kapsel.DeliveryClaimParams) ([]*kapsel.Delivery, error) {
	if params.Limit <= 0 {
		return nil, nil
	}
	exclude := make([]string, len(params.ExcludeEndpoints))
	for i, id := range params.ExcludeEndpoints {
		exclude[i] = kapsel.SafeText(string(id))
	}
	now := micro(params.Now)
	var ds []*kapsel.Delivery
	for round := 0; ; round++ {
		scan := s.holdScan.Load()
		got, held, err := s.claim(ctx, now, params.Limit-len(ds), exclude, now.Add(params.LeaseDuration), scan)
		if err != nil {
			return nil, fmt.Errorf("claiming deliveries: %w", err)
		}
		ds = append(ds, got...)
		switch {
		case held >= scan/2:
			s.holdScan.Store(min(scan*4, maxHoldScan))
		case held == 0:
			s.holdScan.Store(max(scan/2, minHoldScan))
		}
		// A full window of held deliveries may hide more: claim again while
		// the batch is not full.
		if held < scan || len(ds) >= params.Limit || round == maxHoldRounds {
			break
		}
	}
	sort.Slice(ds, func(i, j int) bool {
		if !ds[i].NextAttemptAt.Equal(ds[j].NextAttemptAt) {
			return ds[i].NextAttemptAt.Before(ds[j].NextAttemptAt)
		}
		return ds[i].ID < ds[j].ID
	})
	return ds, nil
}

// lastErrorEventMissing is the LastError of a delivery the claim ended
// because its event is missing (see claimSQL). A constant in the SQL: it
// has no quote.
const lastErrorEventMissing = "its event no longer exists: nothing to send"

// claimPlanSettings pins the claim's plan (see claimSQL): for the claim's
// implicit transaction only (set_config with is_local), sequential and bitmap
// scans are off, so that the claim reads its partial indexes in order and
// stops at the limit. The planner still costs everything else. It applies
// to holdSQL too.
const claimPlanSettings = `SELECT set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true)`

// claim runs sweepSQL, holdSQL and claimSQL in one pipelined batch (one
// round trip, one implicit transaction) and returns the deliveries leased
// and how many deliveries were held.
func (s *Store) claim(ctx context.Context, now time.Time, limit int, exclude []string, leaseUntil time.Time, scan int64) ([]*kapsel.Delivery, int64, error) {
	b := &pgx.Batch{}
	b.Queue(claimPlanSettings)
	b.Queue(sweepSQL, now, maxSweep, kapsel.LastErrorEndpointDeleted)
	b.Queue(holdSQL, now, exclude, scan)
	b.Queue(claimSQL, now, limit, exclude, leaseUntil)
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	for range 2 { // plan settings, sweep
		if _, err := br.Exec(); err != nil {
			return nil, 0, mapError(err)
		}
	}
	var held int64
	if err := br.QueryRow().Scan(&held); err != nil {
		return nil, 0, mapError(err)
	}
	rows, _ := br.Query()
	// Each event comes whole on one of its rows (first); its deliveries
	// share it.
	events := map[kapsel.EventID]*kapsel.Event{}
	ds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*kapsel.Delivery, error) {
		var (
			dr    deliveryRow
			er    eventRow
			first bool
		)
		if err := r.Scan(append(append(dr.dest(), er.dest(false, false)...), &first, &er.e.Body)...); err != nil {
			return nil, err
		}
		if first {
			e, err := er.event()
			if err != nil {
				return nil, err
			}
			if e.Body == nil {
				e.Body = []byte{}
			}
			events[e.ID] = e
		}
		return dr.delivery(), nil
	})
	if err != nil {
		return nil, 0, mapError(err)
	}
	if err := br.Close(); err != nil {
		return nil, 0, mapError(err)
	}
	for _, d := range ds {
		if d.Event = events[d.EventID]; d.Event == nil {
			return nil, 0, fmt.Errorf("event %s of claimed delivery %s not returned", d.EventID, d.ID)
		}
	}
	return ds, held, nil
}
