package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// endpointConfig is the JSON document in endpoints.config. (0.1's
// "ingest_verifier" moved to the endpoint's source in migration 0005.)
type endpointConfig struct {
	SigningSecrets []signingSecret    `json:"signing_secrets"`
	RetryPolicy    kapsel.RetryPolicy `json:"retry_policy"`
	Timeout        time.Duration      `json:"timeout_ns"`
	Headers        map[string]string  `json:"headers,omitempty"`
}

type signingSecret struct {
	Secret    string `json:"secret"`
	ExpiresAt int64  `json:"expires_at_us,omitempty"`
}

func encodeConfig(e *kapsel.Endpoint) (string, error) {
	c := endpointConfig{RetryPolicy: e.RetryPolicy, Timeout: e.Timeout, Headers: e.Headers}
	for _, s := range e.SigningSecrets {
		ss := signingSecret{Secret: s.Secret}
		if !s.ExpiresAt.IsZero() {
			ss.ExpiresAt = s.ExpiresAt.UnixMicro()
		}
		c.SigningSecrets = append(c.SigningSecrets, ss)
	}
	b, err := json.Marshal(c)
	return string(b), err
}

func decodeConfig(s string, e *kapsel.Endpoint) error {
	var c endpointConfig
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return fmt.Errorf("decoding endpoint config: %w", err)
	}
	e.RetryPolicy, e.Timeout, e.Headers = c.RetryPolicy, c.Timeout, c.Headers
	e.SigningSecrets = nil
	for _, ss := range c.SigningSecrets {
		s := kapsel.SigningSecret{Secret: ss.Secret}
		if ss.ExpiresAt != 0 {
			s.ExpiresAt = time.UnixMicro(ss.ExpiresAt).UTC()
		}
		e.SigningSecrets = append(e.SigningSecrets, s)
	}
	return nil
}

const endpointColumns = `id, tenant_id, name, url, state, disabled_reason, config, created_at, updated_at,
	event_types, source_ids, channels`

func scanEndpoint(row rowScanner) (*kapsel.Endpoint, error) {
	var e kapsel.Endpoint
	var config, types, sources, channels string
	var created, updated sql.NullInt64
	if err := row.Scan(&e.ID, &e.TenantID, &e.Name, &e.URL, &e.State, &e.DisabledReason, &config, &created, &updated,
		&types, &sources, &channels); err != nil {
		return nil, mapError(err)
	}
	e.CreatedAt, e.UpdatedAt = fromMicros(created), fromMicros(updated)
	var err error
	if e.Subscription, err = decodeSubscription(types, sources, channels); err != nil {
		return nil, fmt.Errorf("decoding the subscription of endpoint %s: %w", e.ID, err)
	}
	return &e, decodeConfig(config, &e)
}

// decodeSubscription reads the three list columns of a subscription.
func decodeSubscription(types, sources, channels string) (kapsel.Subscription, error) {
	var sub kapsel.Subscription
	var err error
	if sub.EventTypes, err = decodeList[string](types); err == nil {
		if sub.SourceIDs, err = decodeList[kapsel.SourceID](sources); err == nil {
			sub.Channels, err = decodeList[string](channels)
		}
	}
	return sub, err
}

// live is the condition on a visible endpoint: not deleted and, with a
// tenant given (the second placeholder), owned by it.
const live = `deleted_at IS NULL AND (?2 = '' OR tenant_id = ?2)`

// EndpointInsert creates an endpoint; ErrNotFound when the tenant does not
// exist or was deleted (see whereLiveTenant); ErrInvalid when kapsel.Endpoint.ValidateConfig
// refuses it.
func (s *Store) EndpointInsert(ctx context.Context, params *kapsel.EndpointInsertParams) (*kapsel.Endpoint, error) {
	if err := params.Validate(); err != nil {
		return nil, fmt.Errorf("inserting endpoint: %w", err)
	}
	e := *params.Endpoint
	e.ID, e.Name = kapsel.NewEndpointID(), kapsel.SafeText(e.Name)
	if e.State == "" {
		e.State = kapsel.EndpointActive
	}
	if e.State != kapsel.EndpointDisabled {
		e.DisabledReason = kapsel.DisabledNone
	}
	config, err := encodeConfig(&e)
	if err != nil {
		return nil, fmt.Errorf("inserting endpoint: %w", err)
	}
	now := params.Now.UnixMicro()
	res, err := s.w.ExecContext(ctx, `INSERT INTO endpoints (`+endpointColumns+`)
		SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12 `+whereLiveTenant,
		e.ID, e.TenantID, e.Name, e.URL, e.State, e.DisabledReason, config, now, now,
		encodeList(e.Subscription.EventTypes), encodeList(e.Subscription.SourceIDs), encodeList(e.Subscription.Channels))
	if err != nil {
		return nil, fmt.Errorf("inserting endpoint: %w", mapError(err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, fmt.Errorf("inserting endpoint: tenant %s: %w", e.TenantID, kapsel.ErrNotFound)
	}
	return s.endpointByID(ctx, s.w, e.ID, "")
}

// querier is what reads need from a *sql.DB or a *sql.Tx.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (s *Store) endpointByID(ctx context.Context, q querier, id kapsel.EndpointID, tenant kapsel.TenantID) (*kapsel.Endpoint, error) {
	e, err := scanEndpoint(q.QueryRowContext(ctx, `SELECT `+endpointColumns+` FROM endpoints WHERE id = ?1 AND `+live, id, tenant))
	if err != nil {
		return nil, fmt.Errorf("endpoint %s: %w", id, err)
	}
	return e, nil
}

// EndpointGet returns the endpoint; ErrNotFound when it does not exist, was
// deleted, or belongs to another tenant.
func (s *Store) EndpointGet(ctx context.Context, params *kapsel.EndpointGetParams) (*kapsel.Endpoint, error) {
	e, err := s.endpointByID(ctx, s.r, params.ID, params.TenantID)
	if err != nil {
		return nil, fmt.Errorf("getting %w", err)
	}
	return e, nil
}

// EndpointList lists a tenant's live endpoints in id order, after Cursor.
func (s *Store) EndpointList(ctx context.Context, params *kapsel.EndpointListParams) ([]*kapsel.Endpoint, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+endpointColumns+` FROM endpoints
		WHERE tenant_id = ? AND deleted_at IS NULL AND id > ? ORDER BY id LIMIT ?`,
		params.TenantID, params.Cursor, kapsel.PageLimit(params.Limit))
	if err != nil {
		return nil, fmt.Errorf("listing endpoints: %w", mapError(err))
	}
	defer rows.Close()
	var out []*kapsel.Endpoint
	for rows.Next() {
		e, err := scanEndpoint(rows)
		if err != nil {
			return nil, fmt.Errorf("listing endpoints: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing endpoints: %w", mapError(err))
	}
	return out, nil
}

// EndpointUpdate applies params.Update to the endpoint and writes the
// result's configuration in one transaction on the single writer
// connection, so no concurrent write interleaves between the read and the
// write. The signing secrets written back are the ones read in that
// transaction. Update's error comes back unchanged; ErrInvalid as
// EndpointInsert.
func (s *Store) EndpointUpdate(ctx context.Context, params *kapsel.EndpointUpdateParams) (*kapsel.Endpoint, error) {
	if err := params.Validate(); err != nil {
		return nil, fmt.Errorf("updating endpoint %s: %w", params.ID, err)
	}
	var applyErr error // Update's error or the result's refusal, returned as it is
	e, err := s.modifyEndpoint(ctx, "updating", params.ID, params.TenantID, params.Now, func(e *kapsel.Endpoint) error {
		next, err := params.Apply(e)
		if err != nil {
			applyErr = err
			return err
		}
		*e = *next
		return nil
	})
	if applyErr != nil {
		return nil, applyErr
	}
	return e, err
}

// EndpointRotateSecret makes params.Secret the current signing secret, in
// one transaction on the single writer connection, so no concurrent write
// interleaves between its read and its write.
func (s *Store) EndpointRotateSecret(ctx context.Context, params *kapsel.EndpointRotateSecretParams) (*kapsel.Endpoint, error) {
	if err := params.Validate(); err != nil {
		return nil, fmt.Errorf("rotating the signing secret of endpoint %s: %w", params.ID, err)
	}
	return s.modifyEndpoint(ctx, "rotating the signing secret of", params.ID, params.TenantID, params.Now, func(e *kapsel.Endpoint) error {
		e.SigningSecrets = kapsel.RotateSigningSecrets(e.SigningSecrets, params.Secret, params.Now, params.Grace)
		return nil
	})
}

// modifyEndpoint reads the visible endpoint, lets change modify it and
// writes its name, url, config and subscription back, all in one write transaction (an
// error of change writes nothing and comes back as it is): the
// config column is one JSON document holding the signing secrets beside the
// rest, so an update keeps them (and a rotation keeps the rest) by reading
// them inside the transaction that writes.
func (s *Store) modifyEndpoint(ctx context.Context, what string, id kapsel.EndpointID, tenant kapsel.TenantID, now time.Time, change func(*kapsel.Endpoint) error) (*kapsel.Endpoint, error) {
	var out *kapsel.Endpoint
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		e, err := s.endpointByID(ctx, tx, id, tenant)
		if err != nil {
			return err
		}
		if err := change(e); err != nil {
			return err
		}
		config, err := encodeConfig(e)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE endpoints SET name = ?3, url = ?4, config = ?5, updated_at = ?6,
			event_types = ?7, source_ids = ?8, channels = ?9 WHERE id = ?1 AND `+live,
			id, tenant, e.Name, e.URL, config, now.UnixMicro(),
			encodeList(e.Subscription.EventTypes), encodeList(e.Subscription.SourceIDs), encodeList(e.Subscription.Channels)); err != nil {
			return mapError(err)
		}
		out, err = s.endpointByID(ctx, tx, id, "")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s %w", what, err)
	}
	return out, nil
}

// EndpointSetState sets State and DisabledReason (cleared unless disabled).
func (s *Store) EndpointSetState(ctx context.Context, params *kapsel.EndpointSetStateParams) (*kapsel.Endpoint, error) {
	if !params.State.Valid() {
		return nil, fmt.Errorf("setting endpoint state: %w: state %q", kapsel.ErrInvalid, params.State)
	}
	reason := params.DisabledReason
	if params.State != kapsel.EndpointDisabled {
		reason = kapsel.DisabledNone
	}
	var e *kapsel.Endpoint
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE endpoints SET state = ?3, disabled_reason = ?4, updated_at = ?5
			WHERE id = ?1 AND `+live, params.ID, params.TenantID, params.State, reason, params.Now.UnixMicro())
		if err != nil {
			return mapError(err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("endpoint %s: %w", params.ID, kapsel.ErrNotFound)
		}
		e, err = s.endpointByID(ctx, tx, params.ID, "")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("setting state of %w", err)
	}
	return e, nil
}

// EndpointDelete deletes the endpoint softly: it disappears from gets,
// lists, fan-out and claims; its deliveries and attempts are kept. In the
// same transaction its pending deliveries (deliveries_endpoint_pending_idx)
// and delivering ones (deliveries_delivering_idx, the few in flight) end as
// failed with LastError kapsel.LastErrorEndpointDeleted; a delivering one
// keeps its lease token, so that its attempt in flight is still recorded
// (see complete). Every write, EventInsertMany's fan-out included, goes
// through the one writer connection, so no insert interleaves with it.
func (s *Store) EndpointDelete(ctx context.Context, params *kapsel.EndpointDeleteParams) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE endpoints SET deleted_at = ?3 WHERE id = ?1 AND `+live,
			params.ID, params.TenantID, params.Now.UnixMicro())
		if err != nil {
			return mapError(err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return kapsel.ErrNotFound
		}
		for _, q := range endDeliveriesSQL {
			if _, err := tx.ExecContext(ctx, q, params.ID, kapsel.LastErrorEndpointDeleted); err != nil {
				return mapError(err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("deleting endpoint %s: %w", params.ID, err)
	}
	return nil
}

// endDeliveriesSQL fail the pending and the delivering deliveries of the
// endpoint ?1 with last_error ?2, each through its status' partial index
// (named: the planner would otherwise walk the endpoint's whole history on
// deliveries_endpoint_idx), leases kept. TestEndpointDeleteQueryPlan checks
// the plans.
var endDeliveriesSQL = []string{
	`UPDATE deliveries INDEXED BY deliveries_endpoint_pending_idx SET status = 'failed', last_error = ?2, held_until = NULL
		WHERE endpoint_id = ?1 AND status = 'pending'`,
	`UPDATE deliveries INDEXED BY deliveries_delivering_idx SET status = 'failed', last_error = ?2
		WHERE endpoint_id = ?1 AND status = 'delivering'`,
}
