package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/kapsel-dev/kapsel"
)

const breakerColumns = `endpoint_id, status, trips, open_until, probe_until, failing_since,
	last_success_at, last_failure_at, version, updated_at`

func scanBreaker(row pgx.Row) (*kapsel.BreakerState, error) {
	var (
		b                                   kapsel.BreakerState
		openUntil, probeUntil, failingSince *time.Time
		lastSuccess, lastFailure            *time.Time
	)
	if err := row.Scan(&b.EndpointID, &b.Status, &b.Trips, &openUntil, &probeUntil, &failingSince,
		&lastSuccess, &lastFailure, &b.Version, &b.UpdatedAt); err != nil {
		return nil, err
	}
	b.OpenUntil, b.ProbeUntil, b.FailingSince = timeVal(openUntil), timeVal(probeUntil), timeVal(failingSince)
	b.LastSuccessAt, b.LastFailureAt = timeVal(lastSuccess), timeVal(lastFailure)
	return &b, nil
}

// BreakerGet returns the endpoint's breaker state; ErrNotFound when none was
// saved.
func (s *Store) BreakerGet(ctx context.Context, params *kapsel.BreakerGetParams) (*kapsel.BreakerState, error) {
	b, err := scanBreaker(s.pool.QueryRow(ctx, `SELECT `+breakerColumns+` FROM breakers WHERE endpoint_id = $1`,
		params.EndpointID))
	if err != nil {
		return nil, fmt.Errorf("getting breaker of endpoint %s: %w", params.EndpointID, mapError(err))
	}
	return b, nil
}

// BreakerSave writes the state when the stored version is ExpectedVersion (0:
// none stored) and returns it with Version incremented and UpdatedAt = Now;
// ErrConflict otherwise. Version 0 inserts (the primary key refuses a second
// first save); any other version updates where the version still matches.
//
// Deliveries a claim held until the breaker's old OpenUntil (see holdSQL)
// are brought forward to the new one in the same transaction — given back
// at once when the breaker closes — so that a recovered endpoint's
// deliveries do not wait for a cool-down or probe lease that no longer
// applies. The release is a second statement: the save's row lock waits for
// any claim that share-locked the breaker row while holding deliveries, and the release's
// fresh snapshot then sees what that claim held.
func (s *Store) BreakerSave(ctx context.Context, params *kapsel.BreakerSaveParams) (*kapsel.BreakerState, error) {
	in := params.State
	args := []any{in.EndpointID, in.Status, in.Trips, timePtr(in.OpenUntil), timePtr(in.ProbeUntil),
		timePtr(in.FailingSince), timePtr(in.LastSuccessAt), timePtr(in.LastFailureAt),
		params.ExpectedVersion, micro(params.Now)}
	sql := `
		UPDATE breakers SET status = $2, trips = $3, open_until = $4, probe_until = $5, failing_since = $6,
			last_success_at = $7, last_failure_at = $8, version = version + 1, updated_at = $10
		WHERE endpoint_id = $1 AND version = $9
		RETURNING ` + breakerColumns
	if params.ExpectedVersion == 0 {
		sql = `
		INSERT INTO breakers (endpoint_id, status, trips, open_until, probe_until, failing_since,
			last_success_at, last_failure_at, version, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9 + 1, $10)
		ON CONFLICT (endpoint_id) DO NOTHING
		RETURNING ` + breakerColumns
	}
	var b *kapsel.BreakerState
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		if b, err = scanBreaker(tx.QueryRow(ctx, sql, args...)); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, releaseBreakerHeldSQL, in.EndpointID, timePtr(b.OpenUntil))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("saving breaker of endpoint %s: %w: expected version %d is stale",
			in.EndpointID, kapsel.ErrConflict, params.ExpectedVersion)
	}
	if err != nil {
		return nil, fmt.Errorf("saving breaker of endpoint %s: %w", in.EndpointID, mapError(err))
	}
	return b, nil
}

// releaseBreakerHeldSQL brings the endpoint's deliveries held for its
// breaker forward to the breaker's new open_until ($2; NULL when it lets
// everything through): those held later than that are held until then, or
// not at all when their next_attempt_at is later. Deliveries held for an
// inactive endpoint ('infinity') stay held. It reads deliveries_held_idx.
// The rows are locked first, in id order, as releaseHeldSQL and
// EndpointDelete lock them — but only those the UPDATE changes: the lock
// CTE carries the UPDATE's own predicates. With heldLockedSQL's (every
// held row of the endpoint) a transition locked the whole held backlog,
// those held at 'infinity' and until the new open_until included: a tuple
// lock (xmax, WAL, a dirty page) per row on every trip, probe and close,
// and a wait on any claim holding one of them
// (TestBreakerSaveLocksOnlyWhatItReleases).
const releaseBreakerHeldSQL = `WITH locked AS MATERIALIZED (
	SELECT id FROM deliveries WHERE endpoint_id = $1 AND status = 'pending' AND claimable_at > next_attempt_at
		AND claimable_at <> 'infinity' AND claimable_at > coalesce($2::timestamptz, '-infinity')
	ORDER BY id FOR NO KEY UPDATE
)
UPDATE deliveries d
	SET claimable_at = greatest(d.next_attempt_at, coalesce($2::timestamptz, '-infinity'))
	FROM locked
	WHERE d.id = locked.id AND d.status = 'pending' AND d.claimable_at > d.next_attempt_at
		AND d.claimable_at <> 'infinity' AND d.claimable_at > coalesce($2::timestamptz, '-infinity')`

// BreakerDelete forgets the endpoint's breaker state (a reset); forgetting a
// state that does not exist is not an error. Deliveries the claim held until
// the breaker's OpenUntil are due again at once.
func (s *Store) BreakerDelete(ctx context.Context, params *kapsel.BreakerDeleteParams) error {
	b := &pgx.Batch{}
	b.Queue(`DELETE FROM breakers WHERE endpoint_id = $1`, params.EndpointID)
	b.Queue(releaseHeldSQL, params.EndpointID)
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("deleting breaker of endpoint %s: %w", params.EndpointID, mapError(err))
	}
	return nil
}
