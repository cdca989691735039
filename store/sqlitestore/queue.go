package sqlitestore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// claimCandidates returns, in claim order (order, an expression on e), up
// to ?3 claimable events of one kind (the WHERE condition on e, with ?1 =
// Now): of an active, undeleted endpoint whose breaker is not open and that
// is not in the JSON array ?2. For pending events the planner walks
// events_claim_idx in claim order and stops at the limit, and the hold that
// runs first has moved blocked endpoints' events out of its front, so a
// claim costs the same with a backlog of a million events as with ten,
// paused or not; TestClaimQueryPlan and BenchmarkClaimPausedBacklog check
// that.
func claimCandidates(kind, order string) string {
	return `SELECT e.id, ` + order + ` FROM events e
		JOIN endpoints p ON p.id = e.endpoint_id
		LEFT JOIN breakers b ON b.endpoint_id = e.endpoint_id
		WHERE ` + kind + `
			AND p.state = 'active' AND p.deleted_at IS NULL
			AND (b.open_until IS NULL OR b.open_until <= ?1)
			AND e.endpoint_id NOT IN (SELECT value FROM json_each(?2))
		ORDER BY ` + order + `, e.id
		LIMIT ?3`
}

var (
	claimPending = claimCandidates(`e.status = 'pending' AND `+claimOrder+` <= ?1`, claimOrder)
	claimExpired = claimCandidates(`e.status = 'delivering' AND e.lease_expires_at <= ?1`, `e.next_attempt_at`)
)

// claimUpdate leases the chosen events (?2, a JSON array of ids) until ?1;
// randomblob is evaluated per row, so each event gets its own token. The
// hold is forgotten: it lasts only while an event stays pending.
const claimUpdate = `UPDATE events
	SET status = 'delivering', lease_token = lower(hex(randomblob(16))), lease_expires_at = ?1, held_until = NULL
	WHERE id IN (SELECT value FROM json_each(?2))
	RETURNING ` + eventColumns + `, ` + bodyColumn

// candidate is an event that may be claimed.
type candidate struct {
	id   kapsel.EventID
	next int64
}

// EventClaim leases up to Limit due events, earliest NextAttemptAt first
// (ties by id), and returns them with their bodies. It first ends the
// expired leases of blocked endpoints and holds blocked endpoints' due
// events (held.go). Due pending events and expired leases are then read
// separately, each through its own index and limited, and merged.
//
// "Earliest" is by claim order: NextAttemptAt, except for events that were
// held for a breaker and are claimed in the order the breaker let them go.
func (s *Store) EventClaim(ctx context.Context, params *kapsel.EventClaimParams) ([]*kapsel.Event, error) {
	if params.Limit <= 0 {
		return nil, nil
	}
	exclude := params.ExcludeEndpoints
	if exclude == nil {
		exclude = []kapsel.EndpointID{}
	}
	excludeJSON, err := json.Marshal(exclude)
	if err != nil {
		return nil, fmt.Errorf("claiming events: %w", err)
	}
	now := params.Now.UnixMicro()
	var out []*kapsel.Event
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.hold(ctx, tx, now, string(excludeJSON)); err != nil {
			return err
		}
		var all []candidate
		for _, q := range []string{claimPending, claimExpired} {
			found, err := candidates(ctx, tx, q, now, string(excludeJSON), params.Limit)
			if err != nil {
				return err
			}
			all = append(all, found...)
		}
		if len(all) == 0 {
			return nil
		}
		slices.SortFunc(all, func(a, b candidate) int {
			if c := cmp.Compare(a.next, b.next); c != 0 {
				return c
			}
			return strings.Compare(string(a.id), string(b.id))
		})
		chosen := make([]kapsel.EventID, 0, params.Limit)
		for _, c := range all[:min(len(all), params.Limit)] {
			chosen = append(chosen, c.id)
		}
		ids, err := json.Marshal(chosen)
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, claimUpdate, params.Now.Add(params.LeaseDuration).UnixMicro(), string(ids))
		if err != nil {
			return mapError(err)
		}
		defer rows.Close()
		for rows.Next() {
			e, err := scanEvent(rows, true)
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return mapError(rows.Err())
	})
	if err != nil {
		return nil, fmt.Errorf("claiming events: %w", err)
	}
	return out, nil
}

func candidates(ctx context.Context, tx *sql.Tx, query string, now int64, exclude string, limit int) ([]candidate, error) {
	rows, err := tx.QueryContext(ctx, query, now, exclude, limit)
	if err != nil {
		return nil, mapError(err)
	}
	defer rows.Close()
	var out []candidate
	for rows.Next() {
		var c candidate
		if err := rows.Scan(&c.id, &c.next); err != nil {
			return nil, mapError(err)
		}
		out = append(out, c)
	}
	return out, mapError(rows.Err())
}

// EventComplete records each completion's attempt and applies its outcome,
// all in one transaction. Fencing is a compare-and-set on the lease token.
func (s *Store) EventComplete(ctx context.Context, params *kapsel.EventCompleteParams) ([]error, error) {
	errs := make([]error, len(params.Completions))
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		stmts := &stmtCache{tx: tx}
		defer stmts.close()
		for i := range params.Completions {
			err := complete(ctx, stmts, &params.Completions[i], params.Now)
			var perRow *rowError
			if errors.As(err, &perRow) {
				errs[i] = perRow.err
				continue
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("completing events: %w", err)
	}
	return errs, nil
}

// rowError carries an error that belongs to one completion, not to the call.
type rowError struct{ err error }

func (e *rowError) Error() string { return e.err.Error() }

func complete(ctx context.Context, tx *stmtCache, c *kapsel.EventCompletion, now time.Time) error {
	switch c.Status {
	case kapsel.EventDelivered, kapsel.EventFailed, kapsel.EventPending:
	default:
		return &rowError{fmt.Errorf("completing event %s: %w: status %q", c.EventID, kapsel.ErrInvalid, c.Status)}
	}
	switch c.DisableEndpoint {
	case kapsel.DisabledNone, kapsel.DisabledManual, kapsel.DisabledGone, kapsel.DisabledFailing:
	default:
		return &rowError{fmt.Errorf("completing event %s: %w: disable reason %q", c.EventID, kapsel.ErrInvalid, c.DisableEndpoint)}
	}
	var attempts int
	var trigger kapsel.AttemptTrigger
	var endpoint kapsel.EndpointID
	var tenant kapsel.TenantID
	err := tx.queryRow(ctx, `SELECT attempts, next_trigger, endpoint_id, tenant_id FROM events
		WHERE id = ? AND status = 'delivering' AND lease_token = ?`, c.EventID, c.LeaseToken).
		Scan(&attempts, &trigger, &endpoint, &tenant)
	if errors.Is(err, sql.ErrNoRows) {
		return &rowError{fmt.Errorf("completing event %s: %w", c.EventID, kapsel.ErrLeaseLost)}
	}
	if err != nil {
		return mapError(err)
	}
	a := c.Attempt
	if a.Trigger == "" {
		a.Trigger = trigger
	}
	body := a.ResponseBody
	if len(body) > kapsel.MaxResponseBody {
		body = body[:kapsel.MaxResponseBody]
	}
	err = tx.exec(ctx, `INSERT INTO attempts (id, event_id, endpoint_id, tenant_id, number, trigger,
		started_at, duration_ns, status_code, error_code, error, response_body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		kapsel.NewAttemptID(), c.EventID, endpoint, tenant, attempts+1, a.Trigger, a.StartedAt.UnixMicro(),
		int64(a.Duration), a.StatusCode, a.ErrorCode, kapsel.SafeText(a.Error), blob(body))
	if err != nil {
		return mapError(err)
	}
	var delivered, next any
	switch c.Status {
	case kapsel.EventDelivered:
		delivered = now.UnixMicro()
	case kapsel.EventPending:
		next = c.NextAttemptAt.UnixMicro()
	}
	err = tx.exec(ctx, `UPDATE events SET attempts = attempts + 1, status = ?2, last_error = ?3,
		next_trigger = 'scheduled', lease_token = NULL, lease_expires_at = NULL,
		delivered_at = coalesce(?4, delivered_at), next_attempt_at = coalesce(?5, next_attempt_at)
		WHERE id = ?1`, c.EventID, c.Status, kapsel.SafeText(c.LastError), delivered, next)
	if err != nil {
		return mapError(err)
	}
	if c.DisableEndpoint != kapsel.DisabledNone {
		err = tx.exec(ctx, `UPDATE endpoints SET state = 'disabled', disabled_reason = ?, updated_at = ? WHERE id = ?`,
			c.DisableEndpoint, now.UnixMicro(), endpoint)
		if err != nil {
			return mapError(err)
		}
	}
	return nil
}

// EventRelease gives leased events back without an attempt; stale tokens are
// skipped.
func (s *Store) EventRelease(ctx context.Context, params *kapsel.EventReleaseParams) (int, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, r := range params.Releases {
			res, err := tx.ExecContext(ctx, `UPDATE events SET status = 'pending', next_attempt_at = ?,
				lease_token = NULL, lease_expires_at = NULL
				WHERE id = ? AND status = 'delivering' AND lease_token = ?`,
				r.NextAttemptAt.UnixMicro(), r.EventID, r.LeaseToken)
			if err != nil {
				return mapError(err)
			}
			k, err := res.RowsAffected()
			if err != nil {
				return mapError(err)
			}
			n += k
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("releasing events: %w", err)
	}
	return int(n), nil
}
