package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/kapsel-dev/kapsel"
)

// lockDeliveriesSQL is the first CTE of the statements that rewrite a
// batch of leased deliveries named in $1 (the completion, the keep-alive's
// extension and the release): it locks those rows FOR NO KEY UPDATE (the
// lock the UPDATE would take) in id order before the UPDATE touches them.
// Without it each UPDATE locked its rows in the order of its own join, and
// a node's keep-alive and its completer, which name the same leases in
// different orders, deadlocked: Postgres broke the cycle only after
// deadlock_timeout (1 s), and the loser's batch was retried — a stall of a
// second in delivery (storetest's Extend/ConcurrentWithCompletions).
// The lock is taken above the sort, so the rows are locked in id order
// whatever join order the UPDATE's plan takes; MATERIALIZED keeps the CTE
// out of the UPDATE's own scan, and the UPDATE joins it, so it always runs.
const lockDeliveriesSQL = `locked AS MATERIALIZED (
	SELECT id FROM deliveries WHERE id = ANY ($1::text[]) ORDER BY id FOR NO KEY UPDATE
)`

// completeSQL applies a batch of completions in one statement:
//
//   - done: each completion is a compare-and-set on its lease token
//     (fencing, I6 of docs/guarantees.md): only a delivery still holding
//     that token changes — a delivering one, or one EndpointDelete ended
//     while its attempt was in flight (failed, its lease kept). It counts
//     the attempt, applies the outcome (for an ended one: delivered stays
//     delivered, anything else stays failed with its last error) and
//     clears the lease. The SET expressions read the row's current version
//     (re-read after a concurrent change), so a deletion that committed
//     while the statement waited is seen.
//   - recorded: an attempt record for each winner, numbered by the
//     delivery's new count, in the same statement (I5 of
//     docs/guarantees.md); a loser writes nothing.
//   - disabled: the endpoints some winners asked to disable (410 Gone),
//     unless deleted meanwhile. Their rows were locked by
//     lockDisabledEndpointsSQL, earlier in the call's transaction.
//
// It returns the delivery ids that won.
//
// Plan: every delivery is found by primary key (the target and its
// pre-update copy, old). The planner prefers a hash join over a sequential
// scan of deliveries while the table is small, or while its statistics say
// it is; so the statement runs with claimPlanSettings, like the claim,
// and its plan cannot depend on the table's size (TestClaimUsesIndexes).
const completeSQL = `
WITH ` + lockDeliveriesSQL + `,
c AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::text[],
		$7::text[], $8::text[], $9::timestamptz[], $10::int8[], $11::int4[], $12::bytea[], $13::text[], $14::text[])
		AS t(delivery_id, token, status, next_attempt_at, last_error, disable,
			attempt_id, trigger, started_at, duration_ns, status_code, response_body, error_code, error)
),
done AS (
	UPDATE deliveries d SET
		status = CASE WHEN d.status = 'failed' AND c.status <> 'delivered' THEN 'failed' ELSE c.status END,
		attempts = d.attempts + 1,
		next_attempt_at = CASE WHEN d.status = 'delivering' AND c.status = 'pending' THEN c.next_attempt_at ELSE d.next_attempt_at END,
		claimable_at = CASE WHEN d.status = 'delivering' AND c.status = 'pending' THEN c.next_attempt_at ELSE d.claimable_at END,
		next_trigger = 'scheduled',
		last_error = CASE WHEN d.status = 'failed' AND c.status <> 'delivered' THEN d.last_error ELSE c.last_error END,
		lease_token = NULL,
		lease_expires_at = NULL,
		delivered_at = CASE WHEN c.status = 'delivered' THEN $15 ELSE d.delivered_at END
	FROM c JOIN locked ON locked.id = c.delivery_id JOIN deliveries old ON old.id = c.delivery_id
	WHERE d.id = c.delivery_id AND d.lease_token = c.token::uuid
	RETURNING d.id, d.event_id, d.endpoint_id, d.tenant_id, d.attempts, old.next_trigger AS claimed_trigger
),
recorded AS (
	INSERT INTO attempts (id, delivery_id, event_id, endpoint_id, tenant_id, number, trigger, started_at, duration_ns,
		status_code, error_code, error, response_body)
	SELECT c.attempt_id, d.id, d.event_id, d.endpoint_id, d.tenant_id, d.attempts,
		COALESCE(NULLIF(c.trigger, ''), d.claimed_trigger),
		c.started_at, c.duration_ns, c.status_code, c.error_code, c.error, c.response_body
	FROM done d JOIN c ON c.delivery_id = d.id
),
disabled AS (
	UPDATE endpoints ep SET state = 'disabled', disabled_reason = x.disable, updated_at = $15
	FROM (SELECT DISTINCT ON (d.endpoint_id) d.endpoint_id, c.disable
		FROM done d JOIN c ON c.delivery_id = d.id WHERE c.disable <> '') AS x
	WHERE ep.id = x.endpoint_id AND ep.deleted_at IS NULL
)
SELECT id FROM done`

// lockDisabledEndpointsSQL locks, FOR NO KEY UPDATE and in id order, the
// endpoints of the deliveries $1 whose completions disable them, before
// completeSQL locks the deliveries: an endpoint row, then its deliveries,
// the order of EndpointDelete, TenantDelete and EndpointSetState, so a
// completion that disables an endpoint cannot deadlock with them over the
// endpoint row (it locked the deliveries first, then the endpoint, while a
// delete locked the endpoint, then the deliveries). Only a call with a
// disabling completion (an endpoint answering 410) runs it.
const lockDisabledEndpointsSQL = `SELECT count(*) FROM (
	SELECT ep.id FROM endpoints ep
	WHERE ep.id IN (SELECT d.endpoint_id FROM deliveries d WHERE d.id = ANY ($1::text[]))
	ORDER BY ep.id
	FOR NO KEY UPDATE
) AS locked`

// DeliveryComplete applies the completions in one statement (one round
// trip, atomic; a call that disables an endpoint locks it first, in the
// same round trip): each is a compare-and-set on its lease token, and
// winners get their attempt recorded. A completion whose token no longer owns the
// delivery (expired and re-claimed, already completed, or not a token at
// all) gets ErrLeaseLost and writes nothing; so does a second completion
// of the same delivery in one call, as if applied after the first. A
// completion with an unknown Status or DisableEndpoint gets ErrInvalid. A
// lease that has expired but was not re-claimed still completes: the token
// is the fence.
func (s *Store) DeliveryComplete(ctx context.Context, params *kapsel.DeliveryCompleteParams) ([]error, error) {
	cs := params.Completions
	errs := make([]error, len(cs))
	var (
		sent                                           []int
		aDelivery, aToken, aStatus, aLastErr, aDisable []string
		aAttempt, aTrigger, aErrCode, aErr             []string
		aNext, aStarted                                []time.Time
		aDuration                                      []int64
		aCode                                          []int32
		aBody                                          [][]byte
		seen                                           = map[kapsel.DeliveryID]bool{}
	)
	for i := range cs {
		c := &cs[i]
		switch {
		case c.Status != kapsel.DeliveryDelivered && c.Status != kapsel.DeliveryFailed && c.Status != kapsel.DeliveryPending:
			errs[i] = fmt.Errorf("completing delivery %s: %w: status %q", c.DeliveryID, kapsel.ErrInvalid, kapsel.SafeText(string(c.Status)))
			continue
		case !validDisable(c.DisableEndpoint):
			errs[i] = fmt.Errorf("completing delivery %s: %w: disable reason %q", c.DeliveryID, kapsel.ErrInvalid,
				kapsel.SafeText(string(c.DisableEndpoint)))
			continue
		}
		if _, err := uuid.Parse(c.LeaseToken); err != nil || seen[c.DeliveryID] {
			errs[i] = fmt.Errorf("completing delivery %s: %w", c.DeliveryID, kapsel.ErrLeaseLost)
			continue
		}
		seen[c.DeliveryID] = true
		a := &c.Attempt
		body := a.ResponseBody
		if len(body) > kapsel.MaxResponseBody {
			body = body[:kapsel.MaxResponseBody]
		}
		sent = append(sent, i)
		aDelivery = append(aDelivery, kapsel.SafeText(string(c.DeliveryID)))
		aToken = append(aToken, c.LeaseToken)
		aStatus = append(aStatus, string(c.Status))
		aNext = append(aNext, micro(c.NextAttemptAt))
		aLastErr = append(aLastErr, kapsel.SafeText(c.LastError))
		aDisable = append(aDisable, string(c.DisableEndpoint))
		aAttempt = append(aAttempt, string(kapsel.NewAttemptID()))
		aTrigger = append(aTrigger, kapsel.SafeText(string(a.Trigger)))
		aStarted = append(aStarted, micro(a.StartedAt))
		aDuration = append(aDuration, int64(a.Duration))
		aCode = append(aCode, int32(a.StatusCode))
		aBody = append(aBody, nonNil(body))
		aErrCode = append(aErrCode, kapsel.SafeText(string(a.ErrorCode)))
		aErr = append(aErr, kapsel.SafeText(a.Error))
	}
	if len(sent) == 0 {
		return errs, nil
	}
	// The plan settings and the statement in one pipelined batch: one round
	// trip, one implicit transaction (see claimPlanSettings).
	var disabling []string
	for k, r := range aDisable {
		if r != "" {
			disabling = append(disabling, aDelivery[k])
		}
	}
	b := &pgx.Batch{}
	b.Queue(claimPlanSettings)
	if len(disabling) > 0 {
		b.Queue(lockDisabledEndpointsSQL, disabling)
	}
	b.Queue(completeSQL, aDelivery, aToken, aStatus, aNext, aLastErr, aDisable,
		aAttempt, aTrigger, aStarted, aDuration, aCode, aBody, aErrCode, aErr, micro(params.Now))
	queueDropParams(b, aBody) // its results are read by br.Close
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	for range 1 + btoi(len(disabling) > 0) {
		if _, err := br.Exec(); err != nil {
			return nil, fmt.Errorf("completing deliveries: %w", mapError(err))
		}
	}
	rows, _ := br.Query()
	won := map[kapsel.DeliveryID]bool{}
	var id kapsel.DeliveryID
	if _, err := pgx.ForEachRow(rows, []any{&id}, func() error { won[id] = true; return nil }); err != nil {
		return nil, fmt.Errorf("completing deliveries: %w", mapError(err))
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("completing deliveries: %w", mapError(err))
	}
	for _, i := range sent {
		if !won[cs[i].DeliveryID] {
			errs[i] = fmt.Errorf("completing delivery %s: %w", cs[i].DeliveryID, kapsel.ErrLeaseLost)
		}
	}
	return errs, nil
}

func validDisable(r kapsel.DisabledReason) bool {
	switch r {
	case kapsel.DisabledNone, kapsel.DisabledManual, kapsel.DisabledGone, kapsel.DisabledFailing:
		return true
	}
	return false
}

// DeliveryRelease gives leased deliveries back in one statement: pending at
// their NextAttemptAt, lease cleared, attempts unchanged. Each release is a
// compare-and-set on its token over a delivering delivery; stale or
// malformed tokens are skipped.
func (s *Store) DeliveryRelease(ctx context.Context, params *kapsel.DeliveryReleaseParams) (int, error) {
	var ids, tokens []string
	var next []time.Time
	for _, r := range params.Releases {
		if _, err := uuid.Parse(r.LeaseToken); err != nil {
			continue
		}
		ids = append(ids, kapsel.SafeText(string(r.DeliveryID)))
		tokens = append(tokens, r.LeaseToken)
		next = append(next, micro(r.NextAttemptAt))
	}
	if len(ids) == 0 {
		return 0, nil
	}
	b := &pgx.Batch{}
	b.Queue(claimPlanSettings) // by primary key, as completeSQL
	b.Queue(`WITH `+lockDeliveriesSQL+`
		UPDATE deliveries d SET status = 'pending', next_attempt_at = r.next_attempt_at, claimable_at = r.next_attempt_at,
			lease_token = NULL, lease_expires_at = NULL
		FROM locked JOIN unnest($1::text[], $2::text[], $3::timestamptz[]) AS r(id, token, next_attempt_at) ON r.id = locked.id
		WHERE d.id = r.id AND d.status = 'delivering' AND d.lease_token = r.token::uuid`,
		ids, tokens, next)
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	_, err := br.Exec()
	var tag pgconn.CommandTag
	if err == nil {
		tag, err = br.Exec()
	}
	if err == nil {
		err = br.Close()
	}
	if err != nil {
		return 0, fmt.Errorf("releasing deliveries: %w", mapError(err))
	}
	return int(tag.RowsAffected()), nil
}
