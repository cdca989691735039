package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/kapsel-dev/kapsel"
)

// completeSQL applies a batch of completions in one statement:
//
//   - done: each completion is a compare-and-set on its lease token (fencing,
//     I6 of docs/guarantees.md): only an event still delivering under that token changes. It
//     counts the attempt, applies the outcome and clears the lease.
//   - an attempt record for each winner, numbered by the event's new count,
//     in the same statement (I5 of docs/guarantees.md); a loser writes nothing.
//   - the endpoints some winners asked to disable (410 Gone).
//
// It returns the event ids that won.
const completeSQL = `
WITH c AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::text[],
		$7::text[], $8::text[], $9::timestamptz[], $10::int8[], $11::int4[], $12::bytea[], $13::text[], $14::text[])
		AS t(event_id, token, status, next_attempt_at, last_error, disable,
			attempt_id, trigger, started_at, duration_ns, status_code, response_body, error_code, error)
),
done AS (
	UPDATE events e SET
		status = c.status,
		attempts = e.attempts + 1,
		next_attempt_at = CASE WHEN c.status = 'pending' THEN c.next_attempt_at ELSE e.next_attempt_at END,
		claimable_at = CASE WHEN c.status = 'pending' THEN c.next_attempt_at ELSE e.claimable_at END,
		next_trigger = 'scheduled',
		last_error = c.last_error,
		lease_token = NULL,
		lease_expires_at = NULL,
		delivered_at = CASE WHEN c.status = 'delivered' THEN $15 ELSE e.delivered_at END
	FROM c JOIN events old ON old.id = c.event_id
	WHERE e.id = c.event_id AND e.status = 'delivering' AND e.lease_token = c.token::uuid
	RETURNING e.id, e.endpoint_id, e.tenant_id, e.attempts, old.next_trigger AS claimed_trigger
),
recorded AS (
	INSERT INTO attempts (id, event_id, endpoint_id, tenant_id, number, trigger, started_at, duration_ns,
		status_code, error_code, error, response_body)
	SELECT c.attempt_id, d.id, d.endpoint_id, d.tenant_id, d.attempts, COALESCE(NULLIF(c.trigger, ''), d.claimed_trigger),
		c.started_at, c.duration_ns, c.status_code, c.error_code, c.error, c.response_body
	FROM done d JOIN c ON c.event_id = d.id
),
disabled AS (
	UPDATE endpoints ep SET state = 'disabled', disabled_reason = x.disable, updated_at = $15
	FROM (SELECT DISTINCT ON (d.endpoint_id) d.endpoint_id, c.disable
		FROM done d JOIN c ON c.event_id = d.id WHERE c.disable <> '') AS x
	WHERE ep.id = x.endpoint_id
)
SELECT id FROM done`

// EventComplete applies the completions in one statement (one round trip,
// atomic): each is a compare-and-set on its lease token, and winners get
// their attempt recorded. A completion whose token no longer owns the event
// (expired and re-claimed, already completed, or not a token at all) gets
// ErrLeaseLost and writes nothing; so does a second completion of the same
// event in one call, as if applied after the first. A completion with an
// unknown Status or DisableEndpoint gets ErrInvalid. A lease that has
// expired but was not re-claimed still completes: the token is the fence.
func (s *Store) EventComplete(ctx context.Context, params *kapsel.EventCompleteParams) ([]error, error) {
	cs := params.Completions
	errs := make([]error, len(cs))
	var (
		sent                                        []int
		aEvent, aToken, aStatus, aLastErr, aDisable []string
		aAttempt, aTrigger, aErrCode, aErr          []string
		aNext, aStarted                             []time.Time
		aDuration                                   []int64
		aCode                                       []int32
		aBody                                       [][]byte
		seen                                        = map[kapsel.EventID]bool{}
	)
	for i := range cs {
		c := &cs[i]
		switch {
		case c.Status != kapsel.EventDelivered && c.Status != kapsel.EventFailed && c.Status != kapsel.EventPending:
			errs[i] = fmt.Errorf("completing event %s: %w: status %q", c.EventID, kapsel.ErrInvalid, c.Status)
			continue
		case !validDisable(c.DisableEndpoint):
			errs[i] = fmt.Errorf("completing event %s: %w: disable reason %q", c.EventID, kapsel.ErrInvalid, c.DisableEndpoint)
			continue
		}
		if _, err := uuid.Parse(c.LeaseToken); err != nil || seen[c.EventID] {
			errs[i] = fmt.Errorf("completing event %s: %w", c.EventID, kapsel.ErrLeaseLost)
			continue
		}
		seen[c.EventID] = true
		a := &c.Attempt
		body := a.ResponseBody
		if len(body) > kapsel.MaxResponseBody {
			body = body[:kapsel.MaxResponseBody]
		}
		sent = append(sent, i)
		aEvent = append(aEvent, string(c.EventID))
		aToken = append(aToken, c.LeaseToken)
		aStatus = append(aStatus, string(c.Status))
		aNext = append(aNext, micro(c.NextAttemptAt))
		aLastErr = append(aLastErr, kapsel.SafeText(c.LastError))
		aDisable = append(aDisable, string(c.DisableEndpoint))
		aAttempt = append(aAttempt, string(kapsel.NewAttemptID()))
		aTrigger = append(aTrigger, string(a.Trigger))
		aStarted = append(aStarted, micro(a.StartedAt))
		aDuration = append(aDuration, int64(a.Duration))
		aCode = append(aCode, int32(a.StatusCode))
		aBody = append(aBody, nonNil(body))
		aErrCode = append(aErrCode, string(a.ErrorCode))
		aErr = append(aErr, kapsel.SafeText(a.Error))
	}
	if len(sent) == 0 {
		return errs, nil
	}
	rows, err := s.pool.Query(ctx, completeSQL, aEvent, aToken, aStatus, aNext, aLastErr, aDisable,
		aAttempt, aTrigger, aStarted, aDuration, aCode, aBody, aErrCode, aErr, micro(params.Now))
	if err != nil {
		return nil, fmt.Errorf("completing events: %w", mapError(err))
	}
	won := map[kapsel.EventID]bool{}
	var id kapsel.EventID
	for rows.Next() {
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("completing events: %w", mapError(err))
		}
		won[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("completing events: %w", mapError(err))
	}
	for _, i := range sent {
		if !won[cs[i].EventID] {
			errs[i] = fmt.Errorf("completing event %s: %w", cs[i].EventID, kapsel.ErrLeaseLost)
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

// EventRelease gives leased events back in one statement: pending at their
// NextAttemptAt, lease cleared, attempts unchanged. Each release is a
// compare-and-set on its token; stale or malformed tokens are skipped.
func (s *Store) EventRelease(ctx context.Context, params *kapsel.EventReleaseParams) (int, error) {
	var ids, tokens []string
	var next []time.Time
	for _, r := range params.Releases {
		if _, err := uuid.Parse(r.LeaseToken); err != nil {
			continue
		}
		ids = append(ids, string(r.EventID))
		tokens = append(tokens, r.LeaseToken)
		next = append(next, micro(r.NextAttemptAt))
	}
	if len(ids) == 0 {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, `
		UPDATE events e SET status = 'pending', next_attempt_at = r.next_attempt_at, claimable_at = r.next_attempt_at,
			lease_token = NULL, lease_expires_at = NULL
		FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS r(id, token, next_attempt_at)
		WHERE e.id = r.id AND e.status = 'delivering' AND e.lease_token = r.token::uuid`,
		ids, tokens, next)
	if err != nil {
		return 0, fmt.Errorf("releasing events: %w", mapError(err))
	}
	return int(tag.RowsAffected()), nil
}
