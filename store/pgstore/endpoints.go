package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/kapsel-dev/kapsel"
)

const endpointColumns = `id, tenant_id, name, url, state, disabled_reason, signing_secrets, retry_policy, timeout_ns,
	headers, created_at, updated_at, event_types, source_ids, channels`

// visibleEndpoint is the condition of every endpoint read and write: the
// endpoint $1 exists, is not deleted, and belongs to the tenant $2 unless $2
// is empty.
const visibleEndpoint = `id = $1 AND deleted_at IS NULL AND ($2::text = '' OR tenant_id = $2)`

func scanEndpoint(row pgx.Row) (*kapsel.Endpoint, error) {
	var (
		e       kapsel.Endpoint
		cfg     endpointConfig
		timeout int64
		sources []string
	)
	err := row.Scan(&e.ID, &e.TenantID, &e.Name, &e.URL, &e.State, &e.DisabledReason,
		&cfg.Secrets, &cfg.Policy, &timeout, &cfg.Headers, &e.CreatedAt, &e.UpdatedAt,
		&e.Subscription.EventTypes, &sources, &e.Subscription.Channels)
	if err != nil {
		return nil, err
	}
	e.Subscription.EventTypes, e.Subscription.Channels = listOrNil(e.Subscription.EventTypes), listOrNil(e.Subscription.Channels)
	for _, id := range sources {
		e.Subscription.SourceIDs = append(e.Subscription.SourceIDs, kapsel.SourceID(id))
	}
	if err := cfg.apply(&e); err != nil {
		return nil, err
	}
	e.Timeout = nanos(timeout)
	return &e, nil
}

// EndpointInsert creates an endpoint with a new id; an empty State means
// active, and DisabledReason is kept only for a disabled endpoint.
// ErrNotFound when the tenant does not exist or was deleted (it reads the
// tenant FOR SHARE, see lockLiveTenant); ErrInvalid when
// kapsel.Endpoint.ValidateConfig refuses it.
func (s *Store) EndpointInsert(ctx context.Context, params *kapsel.EndpointInsertParams) (*kapsel.Endpoint, error) {
	if err := params.Validate(); err != nil {
		return nil, fmt.Errorf("inserting endpoint: %w", err)
	}
	in := params.Endpoint
	state, reason := in.State, in.DisabledReason
	if state == "" {
		state = kapsel.EndpointActive
	}
	if state != kapsel.EndpointDisabled {
		reason = kapsel.DisabledNone
	}
	cfg := newEndpointConfig(in)
	e, err := scanEndpoint(s.pool.QueryRow(ctx, `
		INSERT INTO endpoints (id, tenant_id, name, url, state, disabled_reason,
			signing_secrets, retry_policy, timeout_ns, headers, created_at, updated_at, event_types, source_ids, channels)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13, $14 `+lockLiveTenant+`
		RETURNING `+endpointColumns,
		kapsel.NewEndpointID(), in.TenantID, kapsel.SafeText(in.Name), in.URL, state, reason,
		cfg.Secrets, cfg.Policy, int64(in.Timeout), cfg.Headers, params.Now,
		textArray(in.Subscription.EventTypes), textArray(in.Subscription.SourceIDs), textArray(in.Subscription.Channels)))
	if err != nil {
		return nil, fmt.Errorf("inserting endpoint of tenant %s: %w", in.TenantID, mapError(err))
	}
	return e, nil
}

// EndpointGet returns the endpoint; ErrNotFound when it does not exist, was
// deleted, or belongs to another tenant.
func (s *Store) EndpointGet(ctx context.Context, params *kapsel.EndpointGetParams) (*kapsel.Endpoint, error) {
	e, err := scanEndpoint(s.pool.QueryRow(ctx,
		`SELECT `+endpointColumns+` FROM endpoints WHERE `+visibleEndpoint, params.ID, params.TenantID))
	if err != nil {
		return nil, fmt.Errorf("getting endpoint %s: %w", params.ID, mapError(err))
	}
	return e, nil
}

// EndpointList lists a tenant's live endpoints in id order, after Cursor.
func (s *Store) EndpointList(ctx context.Context, params *kapsel.EndpointListParams) ([]*kapsel.Endpoint, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+endpointColumns+` FROM endpoints
		WHERE tenant_id = $1 AND deleted_at IS NULL AND id > $2
		ORDER BY id LIMIT $3`,
		params.TenantID, params.Cursor, kapsel.PageLimit(params.Limit))
	if err != nil {
		return nil, fmt.Errorf("listing endpoints: %w", mapError(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*kapsel.Endpoint, error) { return scanEndpoint(r) })
	if err != nil {
		return nil, fmt.Errorf("listing endpoints: %w", mapError(err))
	}
	return out, nil
}

// EndpointUpdate reads the endpoint FOR NO KEY UPDATE, applies
// params.Update to it and writes the result's configuration in one
// transaction, so a concurrent update, rotation, state change or delete
// waits for this one and then reads what it wrote: none is lost. The
// statement does not write signing_secrets. Update's error comes back
// unchanged; ErrNotFound as EndpointGet; ErrInvalid as EndpointInsert.
//
// It does not wait for inserts, nor they for it (they take the tenant lock,
// see tenant_lock.go, which an update does not need): a batch in flight
// that read the endpoint's subscription before this update committed fans
// out by the old one, as if it had committed first; a batch that reads it
// after, by the new one. Each batch reads it once, so it sees one or the
// other, never half (kapsel.EventInserter).
func (s *Store) EndpointUpdate(ctx context.Context, params *kapsel.EndpointUpdateParams) (*kapsel.Endpoint, error) {
	if err := params.Validate(); err != nil {
		return nil, fmt.Errorf("updating endpoint %s: %w", params.ID, err)
	}
	var (
		e        *kapsel.Endpoint
		applyErr error // Update's error or the result's refusal, returned as it is
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		cur, err := scanEndpoint(tx.QueryRow(ctx,
			`SELECT `+endpointColumns+` FROM endpoints WHERE `+visibleEndpoint+` FOR NO KEY UPDATE`, params.ID, params.TenantID))
		if err != nil {
			return err
		}
		next, err := params.Apply(cur)
		if err != nil {
			applyErr = err
			return err
		}
		cfg := newEndpointConfig(next)
		e, err = scanEndpoint(tx.QueryRow(ctx, `
			UPDATE endpoints SET name = $2, url = $3,
				retry_policy = $4, timeout_ns = $5, headers = $6, updated_at = $7,
				event_types = $8, source_ids = $9, channels = $10
			WHERE id = $1
			RETURNING `+endpointColumns,
			params.ID, next.Name, next.URL, cfg.Policy,
			int64(next.Timeout), cfg.Headers, params.Now,
			textArray(next.Subscription.EventTypes), textArray(next.Subscription.SourceIDs), textArray(next.Subscription.Channels)))
		return err
	})
	if applyErr != nil {
		return nil, applyErr
	}
	if err != nil {
		return nil, fmt.Errorf("updating endpoint %s: %w", params.ID, mapError(err))
	}
	return e, nil
}

// EndpointRotateSecret makes params.Secret the current signing secret. The
// row is read FOR NO KEY UPDATE and written in one transaction, so a
// concurrent rotation waits for this one and then rotates what it wrote:
// none is lost. Inserts do not wait for it (see EndpointUpdate). ErrNotFound
// as EndpointGet; ErrInvalid for a bad secret or grace.
func (s *Store) EndpointRotateSecret(ctx context.Context, params *kapsel.EndpointRotateSecretParams) (*kapsel.Endpoint, error) {
	if err := params.Validate(); err != nil {
		return nil, fmt.Errorf("rotating the signing secret of endpoint %s: %w", params.ID, err)
	}
	var e *kapsel.Endpoint
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		cur, err := scanEndpoint(tx.QueryRow(ctx,
			`SELECT `+endpointColumns+` FROM endpoints WHERE `+visibleEndpoint+` FOR NO KEY UPDATE`, params.ID, params.TenantID))
		if err != nil {
			return err
		}
		cur.SigningSecrets = kapsel.RotateSigningSecrets(cur.SigningSecrets, params.Secret, params.Now, params.Grace)
		e, err = scanEndpoint(tx.QueryRow(ctx, `
			UPDATE endpoints SET signing_secrets = $2, updated_at = $3 WHERE id = $1
			RETURNING `+endpointColumns,
			params.ID, newEndpointConfig(cur).Secrets, params.Now))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("rotating the signing secret of endpoint %s: %w", params.ID, mapError(err))
	}
	return e, nil
}

// EndpointSetState sets State and DisabledReason (cleared unless the state is
// disabled). Making an endpoint active also gives its held deliveries back
// to the claim (see claimSQL), in the same transaction. ErrInvalid for an
// unknown state; ErrNotFound as EndpointGet.
func (s *Store) EndpointSetState(ctx context.Context, params *kapsel.EndpointSetStateParams) (*kapsel.Endpoint, error) {
	if !params.State.Valid() {
		return nil, fmt.Errorf("setting endpoint state: %w: state %q", kapsel.ErrInvalid, kapsel.SafeText(string(params.State)))
	}
	reason := params.DisabledReason
	if params.State != kapsel.EndpointDisabled {
		reason = kapsel.DisabledNone
	}
	var e *kapsel.Endpoint
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		e, err = scanEndpoint(tx.QueryRow(ctx, `
			UPDATE endpoints SET state = $3, disabled_reason = $4, updated_at = $5
			WHERE `+visibleEndpoint+`
			RETURNING `+endpointColumns,
			params.ID, params.TenantID, params.State, reason, params.Now))
		if err != nil || params.State != kapsel.EndpointActive {
			return err
		}
		// A second statement, so that its snapshot sees what claims that
		// held the endpoint row (FOR SHARE) until our update took it held.
		_, err = tx.Exec(ctx, releaseHeldSQL, params.ID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("setting state of endpoint %s: %w", params.ID, mapError(err))
	}
	return e, nil
}

// releaseHeldSQL gives an endpoint's held deliveries (see claimSQL) back to
// the claim, due again at their NextAttemptAt. It reads deliveries_held_idx.
//
// Lock order: the held rows are locked first, in id order (heldLockedSQL).
// The UPDATE alone locked them in its index's order (on-disk order within
// the endpoint), while EndpointDelete locks the same pending rows in id
// order (see endLiveDeliveriesSQL): a breaker reset (BreakerDelete) during
// the delete deadlocked with it (storetest's
// LockOrder/EndpointDeleteWithBreakerReset).
const releaseHeldSQL = `WITH ` + heldLockedSQL + `
UPDATE deliveries d SET claimable_at = d.next_attempt_at
	FROM locked WHERE d.id = locked.id AND d.status = 'pending' AND d.claimable_at > d.next_attempt_at`

// heldLockedSQL is the CTE that locks the held deliveries of the endpoint
// $1 FOR NO KEY UPDATE in id order (as liveLockedSQL), for releaseHeldSQL,
// which updates every one of them (releaseBreakerHeldSQL locks fewer).
const heldLockedSQL = `locked AS MATERIALIZED (
	SELECT id FROM deliveries WHERE endpoint_id = $1 AND status = 'pending' AND claimable_at > next_attempt_at
	ORDER BY id FOR NO KEY UPDATE
)`

// endLiveDeliveriesSQL ends the unfinished deliveries of the endpoints $1,
// for TenantDelete and EndpointDelete: failed, last_error $2. $3 guards
// EndpointDelete's call: when it is not NULL, nothing is ended unless the
// endpoint $1[1] is visible to the tenant $3 (” for any) — the delete's
// batch runs every statement, found or not. TenantDelete passes NULL. A delivering one keeps its
// lease token, so that the completion of its attempt in flight is still
// recorded (see completeSQL). It finds them through the partial indexes of
// the live statuses (a BitmapOr of deliveries_pending_idx and
// deliveries_delivering_idx) or through deliveries_endpoint_id_idx,
// whichever the planner finds cheaper: the live part of the queue, or the
// endpoint's history.
//
// Lock order: the rows are locked first, in id order (liveLockedSQL),
// across all the endpoints in one statement. The UPDATE alone locked them
// in the order of its plan (a bitmap scan's is the order on disk), and a
// completion, which locks the same delivering rows in id order
// (lockDeliveriesSQL), deadlocked with it: Postgres broke the cycle after
// deadlock_timeout (1 s) and failed one of the two (storetest's
// LockOrder/EndpointDeleteWithCompletions). One statement per endpoint
// would still cross a completion naming deliveries of two of them.
const endLiveDeliveriesSQL = `WITH ` + liveLockedSQL + `
UPDATE deliveries d SET status = 'failed', last_error = $2, claimable_at = d.next_attempt_at
	FROM locked WHERE d.id = locked.id AND (d.status = 'pending' OR d.status = 'delivering')`

// liveLockedSQL is the CTE that locks the unfinished deliveries of the
// endpoints $1 FOR NO KEY UPDATE (the UPDATE's own lock) in id order: the
// lock is taken above the sort, whatever the scan, and MATERIALIZED keeps
// it out of the UPDATE's own scan (as lockDeliveriesSQL). $3 is
// endLiveDeliveriesSQL's guard; the EXISTS does not depend on the row, so
// it is an InitPlan, evaluated once.
const liveLockedSQL = `locked AS MATERIALIZED (
	SELECT id FROM deliveries WHERE endpoint_id = ANY ($1::text[]) AND (status = 'pending' OR status = 'delivering')
		AND ($3::text IS NULL OR EXISTS (SELECT FROM endpoints
			WHERE id = ($1::text[])[1] AND deleted_at IS NULL AND ($3::text = '' OR tenant_id = $3::text)))
	ORDER BY id FOR NO KEY UPDATE
)`

// EndpointDelete deletes the endpoint softly and ends its unfinished
// deliveries, in one transaction: deleted_at is set, so it disappears from
// reads, fan-out and claims, and its pending and delivering deliveries
// become failed with kapsel.LastErrorEndpointDeleted (they stay listed,
// with their attempts). ErrNotFound as EndpointGet. One round trip between
// BEGIN and COMMIT:
//
//  1. its tenant's lock, exclusive (see tenant_lock.go): that waits for
//     every insert, retry, replay and backfill of the tenant in flight, and
//     makes every later one wait for this commit and then see the endpoint
//     deleted;
//  2. the endpoint row, FOR UPDATE. It is locked before its deliveries, in
//     the order of EndpointSetState and of a completion that disables the
//     endpoint (see DeliveryComplete), so none of them deadlocks with the
//     delete over the endpoint row. FOR UPDATE rather than the UPDATE's own
//     FOR NO KEY UPDATE: it is what makes an insert in a REPEATABLE READ
//     transaction whose snapshot is older than the delete fail with a
//     serialization error rather than fan out to the deleted endpoint (see
//     targetsSQL);
//  3. the live deliveries are ended (endLiveDeliveriesSQL, which locks
//     them in id order first; only if the endpoint is visible, its $3): its snapshot, taken after step 1, sees
//     what the writes step 1 waited for created, so no pending delivery
//     survives for a deleted endpoint;
//  4. deleted_at is set; no row means the endpoint is not visible
//     (ErrNotFound, and nothing was changed).
func (s *Store) EndpointDelete(ctx context.Context, params *kapsel.EndpointDeleteParams) error {
	id := kapsel.SafeText(string(params.ID))
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(lockEndpointTenantSQL, id, params.TenantID)
		b.Queue(`SELECT id FROM endpoints WHERE `+visibleEndpoint+` FOR UPDATE`, id, params.TenantID)
		b.Queue(endLiveDeliveriesSQL, []string{id}, kapsel.LastErrorEndpointDeleted, string(params.TenantID))
		b.Queue(`UPDATE endpoints SET deleted_at = $3, updated_at = $3 WHERE `+visibleEndpoint+` RETURNING id`,
			id, params.TenantID, micro(params.Now))
		br := tx.SendBatch(ctx, b)
		defer br.Close()
		for range 3 {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		var deleted kapsel.EndpointID
		if err := br.QueryRow().Scan(&deleted); err != nil {
			return err // not visible: ErrNotFound, and the transaction, which changed nothing, rolls back
		}
		return br.Close()
	})
	if err != nil {
		return fmt.Errorf("deleting endpoint %s: %w", params.ID, mapError(err))
	}
	return nil
}
