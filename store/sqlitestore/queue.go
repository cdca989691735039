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

// claimCandidates returns, in claim order (order, an expression on d), up
// to ?3 claimable deliveries of one kind (the WHERE condition on d, with
// ?1 = Now): of an active, undeleted endpoint whose breaker is not open and
// that is not in the JSON array ?2. For pending deliveries the planner
// walks deliveries_claim_idx in claim order and stops at the limit, and the
// hold that runs first has moved blocked endpoints' deliveries out of its
// front, so a claim costs the same with a backlog of a million deliveries
// as with ten, paused or not; TestClaimQueryPlan and
// BenchmarkClaimPausedBacklog check that.
func claimCandidates(kind, order string) string {
	return `SELECT d.id, ` + order + ` FROM deliveries d
		JOIN endpoints p ON p.id = d.endpoint_id
		LEFT JOIN breakers b ON b.endpoint_id = d.endpoint_id
		WHERE ` + kind + `
			AND p.state = 'active' AND p.deleted_at IS NULL
			AND (b.open_until IS NULL OR b.open_until <= ?1)
			AND d.endpoint_id NOT IN (SELECT value FROM json_each(?2))
		ORDER BY ` + order + `, d.id
		LIMIT ?3`
}

var (
	claimPending = claimCandidates(`d.status = 'pending' AND `+claimOrder+` <= ?1`, claimOrder)
	claimExpired = claimCandidates(`d.status = 'delivering' AND d.lease_expires_at <= ?1`, `d.next_attempt_at`)
)

// claimUpdate leases the chosen deliveries (?2, a JSON array of ids) until
// ?1; randomblob is evaluated per row, so each delivery gets its own token.
// The hold is forgotten: it lasts only while a delivery stays pending.
const claimUpdate = `UPDATE deliveries
	SET status = 'delivering', lease_token = lower(hex(randomblob(16))), lease_expires_at = ?1, held_until = NULL
	WHERE id IN (SELECT value FROM json_each(?2))
	RETURNING ` + deliveryColumns

// claimEvents reads the events (JSON array ?1) of claimed deliveries, with
// their bodies: each event once, however many of its deliveries were
// claimed together.
const claimEvents = `SELECT ` + eventColumns + `, ` + traceColumns + `, ` + bodyColumn + ` FROM events
	WHERE id IN (SELECT value FROM json_each(?1))`

// candidate is a delivery that may be claimed.
type candidate struct {
	id   kapsel.DeliveryID
	next int64
}

// DeliveryClaim leases up to Limit due deliveries, earliest NextAttemptAt
// first (ties by id), and returns them with their events, bodies included.
// It first ends the expired leases of blocked endpoints and holds blocked
// endpoints' due deliveries (held.go). Due pending deliveries and expired
// leases are then read separately, each through its own index and limited,
// and merged.
//
// "Earliest" is by claim order: NextAttemptAt, except for deliveries that
// were held for a breaker and are claimed in the order the breaker let
// them go.
func (s *Store) DeliveryClaim(ctx context.Context, params *kapsel.DeliveryClaimParams) ([]*kapsel.Delivery, error) {
	if params.Limit <= 0 {
		return nil, nil
	}
	exclude := params.ExcludeEndpoints
	if exclude == nil {
		exclude = []kapsel.EndpointID{}
	}
	excludeJSON, err := json.Marshal(exclude)
	if err != nil {
		return nil, fmt.Errorf("claiming deliveries: %w", err)
	}
	now := params.Now.UnixMicro()
	var out []*kapsel.Delivery
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
		chosen := make([]kapsel.DeliveryID, 0, params.Limit)
		rank := make(map[kapsel.DeliveryID]int, params.Limit)
		for i, c := range all[:min(len(all), params.Limit)] {
			chosen, rank[c.id] = append(chosen, c.id), i
		}
		ids, err := json.Marshal(chosen)
		if err != nil {
			return err
		}
		if out, err = leaseDeliveries(ctx, tx, params.Now.Add(params.LeaseDuration).UnixMicro(), string(ids)); err != nil {
			return err
		}
		// RETURNING gives no order: back to claim order.
		slices.SortFunc(out, func(a, b *kapsel.Delivery) int {
			return cmp.Compare(rank[a.ID], rank[b.ID])
		})
		return attachEvents(ctx, tx, out)
	})
	if err != nil {
		return nil, fmt.Errorf("claiming deliveries: %w", err)
	}
	return out, nil
}

// leaseDeliveries runs claimUpdate.
func leaseDeliveries(ctx context.Context, tx *sql.Tx, until int64, ids string) ([]*kapsel.Delivery, error) {
	rows, err := tx.QueryContext(ctx, claimUpdate, until, ids)
	if err != nil {
		return nil, mapError(err)
	}
	defer rows.Close()
	var out []*kapsel.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, mapError(rows.Err())
}

// attachEvents sets the Event of each delivery, read once per event and
// shared by the event's deliveries (body and headers included), which
// nobody changes.
func attachEvents(ctx context.Context, tx *sql.Tx, ds []*kapsel.Delivery) error {
	ids := make([]kapsel.EventID, 0, len(ds))
	for _, d := range ds {
		if !slices.Contains(ids, d.EventID) {
			ids = append(ids, d.EventID)
		}
	}
	idsJSON, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, claimEvents, string(idsJSON))
	if err != nil {
		return mapError(err)
	}
	defer rows.Close()
	events := make(map[kapsel.EventID]*kapsel.Event, len(ids))
	for rows.Next() {
		e, err := scanEvent(rows, true, true)
		if err != nil {
			return err
		}
		events[e.ID] = e
	}
	if err := rows.Err(); err != nil {
		return mapError(err)
	}
	for _, d := range ds {
		e, ok := events[d.EventID]
		if !ok {
			return fmt.Errorf("event %s of delivery %s: %w", d.EventID, d.ID, kapsel.ErrNotFound)
		}
		d.Event = e
	}
	return nil
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

// DeliveryComplete records each completion's attempt and applies its
// outcome, all in one transaction. Fencing is a compare-and-set on the
// lease token.
func (s *Store) DeliveryComplete(ctx context.Context, params *kapsel.DeliveryCompleteParams) ([]error, error) {
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
		return nil, fmt.Errorf("completing deliveries: %w", err)
	}
	return errs, nil
}

// rowError carries an error that belongs to one completion, not to the call.
type rowError struct{ err error }

func (e *rowError) Error() string { return e.err.Error() }

// complete applies one completion. The token owns a delivering delivery,
// or a failed one that EndpointDelete ended while its attempt was in
// flight (it keeps its lease token for this): the attempt is recorded
// either way (I5), and such a delivery becomes delivered on success and
// otherwise stays failed as the delete left it, its endpoint untouched.
func complete(ctx context.Context, tx *stmtCache, c *kapsel.DeliveryCompletion, now time.Time) error {
	switch c.Status {
	case kapsel.DeliveryDelivered, kapsel.DeliveryFailed, kapsel.DeliveryPending:
	default:
		return &rowError{fmt.Errorf("completing delivery %s: %w: status %q", c.DeliveryID, kapsel.ErrInvalid, c.Status)}
	}
	switch c.DisableEndpoint {
	case kapsel.DisabledNone, kapsel.DisabledManual, kapsel.DisabledGone, kapsel.DisabledFailing:
	default:
		return &rowError{fmt.Errorf("completing delivery %s: %w: disable reason %q", c.DeliveryID, kapsel.ErrInvalid, c.DisableEndpoint)}
	}
	var attempts int
	var trigger kapsel.AttemptTrigger
	var status kapsel.DeliveryStatus
	var event kapsel.EventID
	var endpoint kapsel.EndpointID
	var tenant kapsel.TenantID
	err := tx.queryRow(ctx, `SELECT attempts, next_trigger, status, event_id, endpoint_id, tenant_id FROM deliveries
		WHERE id = ? AND status IN ('delivering', 'failed') AND lease_token = ?`, c.DeliveryID, c.LeaseToken).
		Scan(&attempts, &trigger, &status, &event, &endpoint, &tenant)
	if errors.Is(err, sql.ErrNoRows) {
		return &rowError{fmt.Errorf("completing delivery %s: %w", c.DeliveryID, kapsel.ErrLeaseLost)}
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
	err = tx.exec(ctx, `INSERT INTO attempts (id, delivery_id, event_id, endpoint_id, tenant_id, number, trigger,
		started_at, duration_ns, status_code, error_code, error, response_body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		kapsel.NewAttemptID(), c.DeliveryID, event, endpoint, tenant, attempts+1, a.Trigger, a.StartedAt.UnixMicro(),
		int64(a.Duration), a.StatusCode, a.ErrorCode, kapsel.SafeText(a.Error), blob(body))
	if err != nil {
		return mapError(err)
	}
	next, lastError, disable := c.Status, kapsel.SafeText(c.LastError), c.DisableEndpoint
	if status == kapsel.DeliveryFailed { // ended by EndpointDelete in flight
		disable = kapsel.DisabledNone
		if next != kapsel.DeliveryDelivered {
			next, lastError = kapsel.DeliveryFailed, kapsel.LastErrorEndpointDeleted
		}
	}
	var delivered, nextAt any
	switch next {
	case kapsel.DeliveryDelivered:
		delivered = now.UnixMicro()
	case kapsel.DeliveryPending:
		nextAt = c.NextAttemptAt.UnixMicro()
	}
	err = tx.exec(ctx, `UPDATE deliveries SET attempts = attempts + 1, status = ?2, last_error = ?3,
		next_trigger = 'scheduled', lease_token = NULL, lease_expires_at = NULL,
		delivered_at = coalesce(?4, delivered_at), next_attempt_at = coalesce(?5, next_attempt_at)
		WHERE id = ?1`, c.DeliveryID, next, lastError, delivered, nextAt)
	if err != nil {
		return mapError(err)
	}
	if disable != kapsel.DisabledNone {
		err = tx.exec(ctx, `UPDATE endpoints SET state = 'disabled', disabled_reason = ?, updated_at = ? WHERE id = ?`,
			disable, now.UnixMicro(), endpoint)
		if err != nil {
			return mapError(err)
		}
	}
	return nil
}

// DeliveryRelease gives leased deliveries back without an attempt; stale
// tokens are skipped.
func (s *Store) DeliveryRelease(ctx context.Context, params *kapsel.DeliveryReleaseParams) (int, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		stmts := &stmtCache{tx: tx}
		defer stmts.close()
		st, err := stmts.stmt(ctx, `UPDATE deliveries SET status = 'pending', next_attempt_at = ?,
			lease_token = NULL, lease_expires_at = NULL
			WHERE id = ? AND status = 'delivering' AND lease_token = ?`)
		if err != nil {
			return err
		}
		for _, r := range params.Releases {
			res, err := st.ExecContext(ctx, r.NextAttemptAt.UnixMicro(), r.DeliveryID, r.LeaseToken)
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
		return 0, fmt.Errorf("releasing deliveries: %w", err)
	}
	return int(n), nil
}
