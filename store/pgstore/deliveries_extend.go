package pgstore

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/kapsel-dev/kapsel"
)

// extendSQL extends a batch of leases in one statement: each is a
// compare-and-set on its token over a delivering delivery (fencing, I6 of
// docs/guarantees.md), whether or not the lease has expired — one that
// expired and was re-claimed has another token. It returns the (id, token)
// pairs that won, so that a call naming one delivery with a stale token
// and its live one answers each on its own.
//
// Plan: every delivery is found by primary key, under claimPlanSettings
// like the completion (TestExtendUsesPrimaryKey). Written plainly, the
// status condition matches the predicate of deliveries_delivering_idx,
// and the planner walked that whole index (every lease in flight, on every
// node) for each lease named; comparing status with an empty string
// appended keeps the condition exact and out of the planner's index
// matching. lease_expires_at is in
// deliveries_delivering_idx, so the update is not HOT: one index entry per
// lease and keep-alive.
//
// The rows are locked first, in id order (lockDeliveriesSQL), as the
// completion and the release lock them.
const extendSQL = `
WITH ` + lockDeliveriesSQL + `
UPDATE deliveries d SET lease_expires_at = $3
FROM locked JOIN unnest($1::text[], $2::uuid[]) AS l(id, token) ON l.id = locked.id
WHERE d.id = l.id AND d.lease_token = l.token AND d.status || '' = 'delivering'
RETURNING d.id, d.lease_token::text`

// DeliveryExtend extends the leases whose token still owns a delivering
// delivery to Now+LeaseDuration in one statement (one round trip, atomic).
// A token that is not a lease token (not a UUID) answers false without
// reaching the database.
func (s *Store) DeliveryExtend(ctx context.Context, params *kapsel.DeliveryExtendParams) ([]bool, error) {
	if params.LeaseDuration <= 0 {
		return nil, fmt.Errorf("extending leases: %w: LeaseDuration %v", kapsel.ErrInvalid, params.LeaseDuration)
	}
	ok := make([]bool, len(params.Leases))
	var ids, tokens []string
	for _, l := range params.Leases {
		if _, err := uuid.Parse(l.LeaseToken); err != nil {
			continue
		}
		ids = append(ids, kapsel.SafeText(string(l.DeliveryID)))
		tokens = append(tokens, l.LeaseToken)
	}
	if len(ids) == 0 {
		return ok, nil
	}
	type lease struct{ id, token string }
	won := map[lease]bool{}
	b := &pgx.Batch{}
	b.Queue(claimPlanSettings) // by primary key, as completeSQL
	b.Queue(extendSQL, ids, tokens, micro(params.Now.Add(params.LeaseDuration)))
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return nil, fmt.Errorf("extending leases: %w", mapError(err))
	}
	rows, _ := br.Query()
	var l lease
	if _, err := pgx.ForEachRow(rows, []any{&l.id, &l.token}, func() error { won[l] = true; return nil }); err != nil {
		return nil, fmt.Errorf("extending leases: %w", mapError(err))
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("extending leases: %w", mapError(err))
	}
	for i, l := range params.Leases {
		ok[i] = won[lease{string(l.DeliveryID), canonicalToken(l.LeaseToken)}]
	}
	return ok, nil
}

// canonicalToken is the token as Postgres prints a uuid (lower case,
// hyphenated), or "" when it is not one.
func canonicalToken(token string) string {
	u, err := uuid.Parse(token)
	if err != nil {
		return ""
	}
	return u.String()
}
