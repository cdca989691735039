package pgstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/kapsel-dev/kapsel"
)

const sourceColumns = `id, tenant_id, name, state, verifier, event_type_from, idempotency_key_from, created_at, updated_at`

// visibleSource is the condition of every source read and write: the
// source $1 exists, is not deleted, and belongs to the tenant $2 unless $2
// is empty.
const visibleSource = `id = $1 AND deleted_at IS NULL AND ($2::text = '' OR tenant_id = $2)`

// verifierJSON is a source's verifier column, {"scheme", "secrets",
// "header"} (0.1's endpoints kept it in this form; migration 0005 moved it).
type verifierJSON struct {
	Scheme  string   `json:"scheme"`
	Secrets []string `json:"secrets,omitempty"`
	Header  string   `json:"header,omitempty"`
}

func scanSource(row scanner) (*kapsel.Source, error) {
	var (
		s        kapsel.Source
		verifier []byte
		v        verifierJSON
	)
	if err := row.Scan(&s.ID, &s.TenantID, &s.Name, &s.State, &verifier, &s.EventTypeFrom, &s.IdempotencyKeyFrom,
		&s.CreatedAt, &s.UpdatedAt); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(verifier, &v); err != nil {
		return nil, fmt.Errorf("decoding the verifier of source %s: %w", s.ID, err)
	}
	s.Verifier = kapsel.VerifierConfig{Scheme: v.Scheme, Secrets: v.Secrets, Header: v.Header}
	return &s, nil
}

// verifierValue encodes a source's verifier column.
func verifierValue(v kapsel.VerifierConfig) []byte {
	return mustJSON(verifierJSON{Scheme: v.Scheme, Secrets: v.Secrets, Header: v.Header})
}

// SourceInsert creates a source, with a new id unless Source.ID is set;
// an empty State means active. ErrNotFound when the tenant does not exist
// or was deleted (it reads the tenant FOR SHARE, see lockLiveTenant); ErrInvalid when kapsel.Source.ValidateConfig
// refuses it; ErrDuplicate when the given id is taken.
func (s *Store) SourceInsert(ctx context.Context, params *kapsel.SourceInsertParams) (*kapsel.Source, error) {
	in := params.Source
	if err := in.ValidateConfig(); err != nil {
		return nil, fmt.Errorf("inserting source: %w", err)
	}
	id, state := in.ID, in.State
	if id == "" {
		id = kapsel.NewSourceID()
	}
	if state == "" {
		state = kapsel.SourceActive
	}
	src, err := scanSource(s.pool.QueryRow(ctx, `
		INSERT INTO sources (id, tenant_id, name, state, verifier, event_type_from, idempotency_key_from, created_at, updated_at)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $8 `+lockLiveTenant+`
		RETURNING `+sourceColumns,
		kapsel.SafeText(string(id)), in.TenantID, kapsel.SafeText(in.Name), state, verifierValue(in.Verifier),
		in.EventTypeFrom, in.IdempotencyKeyFrom, micro(params.Now)))
	if err != nil {
		return nil, fmt.Errorf("inserting source of tenant %s: %w", in.TenantID, mapError(err))
	}
	return src, nil
}

// SourceGet returns the source; ErrNotFound when it does not exist, was
// deleted, or belongs to another tenant.
func (s *Store) SourceGet(ctx context.Context, params *kapsel.SourceGetParams) (*kapsel.Source, error) {
	src, err := scanSource(s.pool.QueryRow(ctx, `SELECT `+sourceColumns+` FROM sources WHERE `+visibleSource,
		kapsel.SafeText(string(params.ID)), params.TenantID))
	if err != nil {
		return nil, fmt.Errorf("getting source %s: %w", params.ID, mapError(err))
	}
	return src, nil
}

// SourceList lists a tenant's live sources in id order, after Cursor.
func (s *Store) SourceList(ctx context.Context, params *kapsel.SourceListParams) ([]*kapsel.Source, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+sourceColumns+` FROM sources
		WHERE tenant_id = $1 AND deleted_at IS NULL AND id > $2
		ORDER BY id LIMIT $3`,
		params.TenantID, kapsel.SafeText(string(params.Cursor)), kapsel.PageLimit(params.Limit))
	if err != nil {
		return nil, fmt.Errorf("listing sources: %w", mapError(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*kapsel.Source, error) { return scanSource(r) })
	if err != nil {
		return nil, fmt.Errorf("listing sources: %w", mapError(err))
	}
	return out, nil
}

// SourceUpdate reads the source FOR UPDATE, applies params.Update and
// writes the result's configuration in one transaction, as EndpointUpdate
// does, so no concurrent change is lost. Update's error comes back
// unchanged; ErrNotFound as SourceGet; ErrInvalid when the result is
// refused.
func (s *Store) SourceUpdate(ctx context.Context, params *kapsel.SourceUpdateParams) (*kapsel.Source, error) {
	if err := params.Validate(); err != nil {
		return nil, fmt.Errorf("updating source %s: %w", params.ID, err)
	}
	var (
		src      *kapsel.Source
		applyErr error // Update's error or the result's refusal, returned as it is
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		cur, err := scanSource(tx.QueryRow(ctx, `SELECT `+sourceColumns+` FROM sources WHERE `+visibleSource+` FOR UPDATE`,
			kapsel.SafeText(string(params.ID)), params.TenantID))
		if err != nil {
			return err
		}
		next, err := params.Apply(cur)
		if err != nil {
			applyErr = err
			return err
		}
		src, err = scanSource(tx.QueryRow(ctx, `
			UPDATE sources SET name = $2, verifier = $3, event_type_from = $4, idempotency_key_from = $5, updated_at = $6
			WHERE id = $1
			RETURNING `+sourceColumns,
			cur.ID, next.Name, verifierValue(next.Verifier), next.EventTypeFrom, next.IdempotencyKeyFrom, micro(params.Now)))
		return err
	})
	if applyErr != nil {
		return nil, applyErr
	}
	if err != nil {
		return nil, fmt.Errorf("updating source %s: %w", params.ID, mapError(err))
	}
	return src, nil
}

// SourceSetState sets State. ErrInvalid for an unknown state; ErrNotFound
// as SourceGet.
func (s *Store) SourceSetState(ctx context.Context, params *kapsel.SourceSetStateParams) (*kapsel.Source, error) {
	if !params.State.Valid() {
		return nil, fmt.Errorf("setting source state: %w: state %q", kapsel.ErrInvalid, kapsel.SafeText(string(params.State)))
	}
	src, err := scanSource(s.pool.QueryRow(ctx, `
		UPDATE sources SET state = $3, updated_at = $4 WHERE `+visibleSource+`
		RETURNING `+sourceColumns,
		kapsel.SafeText(string(params.ID)), params.TenantID, params.State, micro(params.Now)))
	if err != nil {
		return nil, fmt.Errorf("setting state of source %s: %w", params.ID, mapError(err))
	}
	return src, nil
}

// SourceDelete deletes the source softly: deleted_at is set, so its ingest
// URL answers 404 from then on; its events stay. ErrNotFound as SourceGet.
func (s *Store) SourceDelete(ctx context.Context, params *kapsel.SourceDeleteParams) error {
	tag, err := s.pool.Exec(ctx, `UPDATE sources SET deleted_at = $3, updated_at = $3 WHERE `+visibleSource,
		kapsel.SafeText(string(params.ID)), params.TenantID, micro(params.Now))
	if err != nil {
		return fmt.Errorf("deleting source %s: %w", params.ID, mapError(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("deleting source %s: %w", params.ID, kapsel.ErrNotFound)
	}
	return nil
}
