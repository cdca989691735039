package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/kapsel-dev/kapsel"
)

// BreakerGet returns the endpoint's breaker state; ErrNotFound when none was
// saved.
func (s *Store) BreakerGet(ctx context.Context, params *kapsel.BreakerGetParams) (*kapsel.BreakerState, error) {
	b, err := breakerByID(ctx, s.r, params.EndpointID)
	if err != nil {
		return nil, fmt.Errorf("getting breaker of endpoint %s: %w", params.EndpointID, err)
	}
	return b, nil
}

func breakerByID(ctx context.Context, q querier, id kapsel.EndpointID) (*kapsel.BreakerState, error) {
	var b kapsel.BreakerState
	var openUntil, probeUntil, failingSince, lastOK, lastFail, updated sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT endpoint_id, status, trips, open_until, probe_until, failing_since,
		last_success_at, last_failure_at, version, updated_at FROM breakers WHERE endpoint_id = ?`, id).
		Scan(&b.EndpointID, &b.Status, &b.Trips, &openUntil, &probeUntil, &failingSince, &lastOK, &lastFail, &b.Version, &updated)
	if err != nil {
		return nil, mapError(err)
	}
	b.OpenUntil, b.ProbeUntil, b.FailingSince = fromMicros(openUntil), fromMicros(probeUntil), fromMicros(failingSince)
	b.LastSuccessAt, b.LastFailureAt, b.UpdatedAt = fromMicros(lastOK), fromMicros(lastFail), fromMicros(updated)
	return &b, nil
}

// BreakerSave writes the state when the stored version is ExpectedVersion (0
// for none stored) and returns it with Version incremented and UpdatedAt =
// Now; ErrConflict otherwise.
func (s *Store) BreakerSave(ctx context.Context, params *kapsel.BreakerSaveParams) (*kapsel.BreakerState, error) {
	st := params.State
	var saved *kapsel.BreakerState
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// The transaction holds SQLite's write lock from its start, so the
		// version read here cannot change before the write below.
		var version int64
		err := tx.QueryRowContext(ctx, `SELECT version FROM breakers WHERE endpoint_id = ?`, st.EndpointID).Scan(&version)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return mapError(err)
		}
		if version != params.ExpectedVersion {
			return fmt.Errorf("%w: version is %d, expected %d", kapsel.ErrConflict, version, params.ExpectedVersion)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO breakers (endpoint_id, status, trips, open_until, probe_until,
				failing_since, last_success_at, last_failure_at, version, updated_at)
			VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
			ON CONFLICT (endpoint_id) DO UPDATE SET status = ?2, trips = ?3, open_until = ?4, probe_until = ?5,
				failing_since = ?6, last_success_at = ?7, last_failure_at = ?8, version = ?9, updated_at = ?10`,
			st.EndpointID, st.Status, st.Trips, micros(st.OpenUntil), micros(st.ProbeUntil), micros(st.FailingSince),
			micros(st.LastSuccessAt), micros(st.LastFailureAt), version+1, params.Now.UnixMicro())
		if err != nil {
			return mapError(err)
		}
		saved, err = breakerByID(ctx, tx, st.EndpointID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("saving breaker of endpoint %s: %w", st.EndpointID, err)
	}
	return saved, nil
}

// BreakerDelete forgets the endpoint's breaker state; forgetting a state that
// does not exist is not an error.
func (s *Store) BreakerDelete(ctx context.Context, params *kapsel.BreakerDeleteParams) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM breakers WHERE endpoint_id = ?`, params.EndpointID); err != nil {
		return fmt.Errorf("deleting breaker of endpoint %s: %w", params.EndpointID, mapError(err))
	}
	return nil
}
