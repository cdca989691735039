package sqlitestore

import (
	"context"
	"database/sql"
	"sync/atomic"

	"github.com/kapsel-dev/kapsel"
)

// Held deliveries (migration 0002, moved to deliveries by 0005): a claim
// moves the due pending deliveries of blocked endpoints out of the front of
// deliveries_claim_idx by setting held_until, so that claims do not walk
// them; the same scheme as pgstore's claimable_at, without its locks —
// every write goes through the one writer connection, so a hold and a
// release never interleave.

// The held_until of a delivery whose endpoint is not active — held until
// EndpointSetState makes it active again — is the largest integer,
// 9223372036854775807 (math.MaxInt64), written out in the statements below.

// claimOrder is the claim order of a pending delivery, the expression
// deliveries_claim_idx is built on (SQLite uses an index on an expression
// only where a query repeats it exactly).
const claimOrder = `coalesce(d.held_until, d.next_attempt_at)`

// holdSQL holds, among the first ?3 due pending deliveries in claim order
// (endpoints in the JSON array ?2 skipped), those whose endpoint is paused,
// disabled or deleted (until forever) or has a breaker open at ?1 (until
// its open_until). A deleted endpoint has no pending delivery left
// (EndpointDelete fails them, and so did the upgrade from 0.1): its
// condition only keeps the rule whole.
const holdSQL = `UPDATE deliveries SET held_until = blocked.until
	FROM (
		SELECT w.id, CASE WHEN p.state = 'active' AND p.deleted_at IS NULL THEN b.open_until
			ELSE 9223372036854775807 END AS until
		FROM (
			SELECT d.id, d.endpoint_id FROM deliveries d
			WHERE d.status = 'pending' AND ` + claimOrder + ` <= ?1
				AND d.endpoint_id NOT IN (SELECT value FROM json_each(?2))
			ORDER BY ` + claimOrder + `, d.id
			LIMIT ?3
		) AS w
		JOIN endpoints p ON p.id = w.endpoint_id
		LEFT JOIN breakers b ON b.endpoint_id = w.endpoint_id AND b.open_until > ?1
		WHERE p.state <> 'active' OR p.deleted_at IS NOT NULL OR b.open_until IS NOT NULL
	) AS blocked
	WHERE deliveries.id = blocked.id`

// sweepSQL ends the delivering state of up to ?2 deliveries whose lease ran
// out while their endpoint could not be claimed (I3 of docs/guarantees.md:
// nothing stays delivering past its lease; the claim skips such
// deliveries). Those of a paused or disabled endpoint, or of one whose
// breaker is open, go back to pending with the lease cleared, as if
// released (attempts and next_attempt_at unchanged; the hold that follows
// moves them out of the way); those of a deleted endpoint — none, since
// EndpointDelete fails them at once and the upgrade from 0.1 did too; the
// rule stays whole — end as failed with last_error ?3. It walks
// deliveries_delivering_idx, where expired leases are rare.
const sweepSQL = `UPDATE deliveries SET
		status = CASE WHEN blocked.gone THEN 'failed' ELSE 'pending' END,
		last_error = CASE WHEN blocked.gone THEN ?3 ELSE deliveries.last_error END,
		lease_token = NULL, lease_expires_at = NULL, held_until = NULL
	FROM (
		SELECT d.id, (p.deleted_at IS NOT NULL) AS gone FROM deliveries d
		JOIN endpoints p ON p.id = d.endpoint_id
		LEFT JOIN breakers b ON b.endpoint_id = d.endpoint_id
		WHERE d.status = 'delivering' AND d.lease_expires_at <= ?1
			AND (p.state <> 'active' OR p.deleted_at IS NOT NULL OR b.open_until > ?1)
		ORDER BY d.lease_expires_at
		LIMIT ?2
	) AS blocked
	WHERE deliveries.id = blocked.id`

// maxSweep bounds the expired leases one claim ends.
const maxSweep = 256

// The releases — when an endpoint is made active, or its breaker is saved
// or reset — are triggers (migrations 0002 and 0005), so that they happen in the
// transaction of whatever write lets the endpoint through again.

// How many of the first due deliveries a claim examines for blocked endpoints
// (holdSQL): the window grows while it keeps finding them, so that a large
// backlog is moved out of the way in a few claims, and shrinks back when it
// finds none, so that a claim reads little beyond the deliveries it takes.
//
// Unlike pgstore, one window per claim: holding rewrites the delivery row
// and its index entries, and the claim holds the only writer, so a claim
// holds at most maxHoldScan deliveries and a 100,000-delivery backlog is
// moved over a dozen claims rather than in one that stops ingest for
// seconds.
const (
	minHoldScan = 64
	maxHoldScan = 8192
)

// holdScan is the current hold window; it is shared by the claims of one
// store (they run one at a time on the writer).
type holdScan struct{ n atomic.Int64 }

func (h *holdScan) load() int64 {
	if n := h.n.Load(); n > 0 {
		return n
	}
	return minHoldScan
}

// hold runs sweepSQL, then holdSQL once, adapting the window.
func (s *Store) hold(ctx context.Context, tx *sql.Tx, now int64, exclude string) error {
	if _, err := tx.ExecContext(ctx, sweepSQL, now, maxSweep, kapsel.LastErrorEndpointDeleted); err != nil {
		return mapError(err)
	}
	scan := s.holdScan.load()
	res, err := tx.ExecContext(ctx, holdSQL, now, exclude, scan)
	if err != nil {
		return mapError(err)
	}
	held, err := res.RowsAffected()
	if err != nil {
		return mapError(err)
	}
	switch {
	case held >= scan/2:
		s.holdScan.n.Store(min(scan*4, maxHoldScan))
	case held == 0:
		s.holdScan.n.Store(max(scan/2, minHoldScan))
	}
	return nil
}
