package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/kapsel-dev/kapsel"
)

// sourceVerifier is the JSON document in sources.verifier.
type sourceVerifier struct {
	Scheme  string   `json:"scheme"`
	Secrets []string `json:"secrets"`
	Header  string   `json:"header"`
}

func encodeVerifier(v kapsel.VerifierConfig) (string, error) {
	secrets := v.Secrets
	if secrets == nil {
		secrets = []string{}
	}
	b, err := json.Marshal(sourceVerifier{Scheme: v.Scheme, Secrets: secrets, Header: v.Header})
	return string(b), err
}

func decodeVerifier(s string) (kapsel.VerifierConfig, error) {
	var v sourceVerifier
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return kapsel.VerifierConfig{}, err
	}
	out := kapsel.VerifierConfig{Scheme: v.Scheme, Header: v.Header}
	if len(v.Secrets) > 0 {
		out.Secrets = v.Secrets
	}
	return out, nil
}

const sourceColumns = `id, tenant_id, name, state, verifier, event_type_from, idempotency_key_from, created_at, updated_at`

func scanSource(row rowScanner) (*kapsel.Source, error) {
	var src kapsel.Source
	var verifier string
	var created, updated sql.NullInt64
	if err := row.Scan(&src.ID, &src.TenantID, &src.Name, &src.State, &verifier, &src.EventTypeFrom,
		&src.IdempotencyKeyFrom, &created, &updated); err != nil {
		return nil, mapError(err)
	}
	src.CreatedAt, src.UpdatedAt = fromMicros(created), fromMicros(updated)
	var err error
	if src.Verifier, err = decodeVerifier(verifier); err != nil {
		return nil, fmt.Errorf("decoding the verifier of source %s: %w", src.ID, err)
	}
	return &src, nil
}

// SourceInsert creates a source, with Source.ID when set (the migration's
// legacy ids); ErrNotFound when the tenant does not exist or was deleted
// (see whereLiveTenant); ErrInvalid when kapsel.Source.ValidateConfig refuses it;
// ErrDuplicate when the id is taken, by a deleted source too.
func (s *Store) SourceInsert(ctx context.Context, params *kapsel.SourceInsertParams) (*kapsel.Source, error) {
	src := params.Source.Clone()
	if err := src.ValidateConfig(); err != nil {
		return nil, fmt.Errorf("inserting source: %w", err)
	}
	if src.ID == "" {
		src.ID = kapsel.NewSourceID()
	}
	if src.State == "" {
		src.State = kapsel.SourceActive
	}
	src.Name = kapsel.SafeText(src.Name)
	verifier, err := encodeVerifier(src.Verifier)
	if err != nil {
		return nil, fmt.Errorf("inserting source: %w", err)
	}
	now := params.Now.UnixMicro()
	res, err := s.w.ExecContext(ctx, `INSERT INTO sources (`+sourceColumns+`)
		SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9 `+whereLiveTenant,
		src.ID, src.TenantID, src.Name, src.State, verifier, src.EventTypeFrom, src.IdempotencyKeyFrom, now, now)
	if err != nil {
		return nil, fmt.Errorf("inserting source: %w", mapError(err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, fmt.Errorf("inserting source: tenant %s: %w", src.TenantID, kapsel.ErrNotFound)
	}
	return sourceByID(ctx, s.w, src.ID, "")
}

// sourceByID returns the source visible to tenant (any when empty): not
// deleted and, with a tenant given, owned by it.
func sourceByID(ctx context.Context, q querier, id kapsel.SourceID, tenant kapsel.TenantID) (*kapsel.Source, error) {
	src, err := scanSource(q.QueryRowContext(ctx, `SELECT `+sourceColumns+` FROM sources WHERE id = ?1 AND `+live, id, tenant))
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", id, err)
	}
	return src, nil
}

// SourceGet returns the source; ErrNotFound when it does not exist, was
// deleted, or belongs to another tenant.
func (s *Store) SourceGet(ctx context.Context, params *kapsel.SourceGetParams) (*kapsel.Source, error) {
	src, err := sourceByID(ctx, s.r, params.ID, params.TenantID)
	if err != nil {
		return nil, fmt.Errorf("getting %w", err)
	}
	return src, nil
}

// SourceList lists a tenant's live sources in id order, after Cursor.
func (s *Store) SourceList(ctx context.Context, params *kapsel.SourceListParams) ([]*kapsel.Source, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+sourceColumns+` FROM sources
		WHERE tenant_id = ? AND deleted_at IS NULL AND id > ? ORDER BY id LIMIT ?`,
		params.TenantID, params.Cursor, kapsel.PageLimit(params.Limit))
	if err != nil {
		return nil, fmt.Errorf("listing sources: %w", mapError(err))
	}
	defer rows.Close()
	var out []*kapsel.Source
	for rows.Next() {
		src, err := scanSource(rows)
		if err != nil {
			return nil, fmt.Errorf("listing sources: %w", err)
		}
		out = append(out, src)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing sources: %w", mapError(err))
	}
	return out, nil
}

// SourceUpdate applies params.Update to the source and writes the result's
// configuration in one transaction on the single writer connection, so no
// concurrent write interleaves between the read and the write. Update's
// error, and the refusal of its result, come back unchanged.
func (s *Store) SourceUpdate(ctx context.Context, params *kapsel.SourceUpdateParams) (*kapsel.Source, error) {
	if err := params.Validate(); err != nil {
		return nil, fmt.Errorf("updating source %s: %w", params.ID, err)
	}
	var out *kapsel.Source
	var applyErr error // Update's error or the result's refusal, returned as it is
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := sourceByID(ctx, tx, params.ID, params.TenantID)
		if err != nil {
			return err
		}
		next, err := params.Apply(cur)
		if err != nil {
			applyErr = err
			return err
		}
		verifier, err := encodeVerifier(next.Verifier)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sources SET name = ?2, verifier = ?3, event_type_from = ?4,
			idempotency_key_from = ?5, updated_at = ?6 WHERE id = ?1`,
			cur.ID, next.Name, verifier, next.EventTypeFrom, next.IdempotencyKeyFrom, params.Now.UnixMicro()); err != nil {
			return mapError(err)
		}
		out, err = sourceByID(ctx, tx, cur.ID, "")
		return err
	})
	if applyErr != nil {
		return nil, applyErr
	}
	if err != nil {
		return nil, fmt.Errorf("updating %w", err)
	}
	return out, nil
}

// SourceSetState sets State; ErrInvalid for a state that is not one.
func (s *Store) SourceSetState(ctx context.Context, params *kapsel.SourceSetStateParams) (*kapsel.Source, error) {
	if !params.State.Valid() {
		return nil, fmt.Errorf("setting source state: %w: state %q", kapsel.ErrInvalid, params.State)
	}
	src, err := scanSource(s.w.QueryRowContext(ctx, `UPDATE sources SET state = ?3, updated_at = ?4
		WHERE id = ?1 AND `+live+` RETURNING `+sourceColumns,
		params.ID, params.TenantID, params.State, params.Now.UnixMicro()))
	if err != nil {
		return nil, fmt.Errorf("setting state of source %s: %w", params.ID, err)
	}
	return src, nil
}

// SourceDelete deletes the source softly: its ingest URL answers 404 from
// then on; its events stay.
func (s *Store) SourceDelete(ctx context.Context, params *kapsel.SourceDeleteParams) error {
	res, err := s.w.ExecContext(ctx, `UPDATE sources SET deleted_at = ?3 WHERE id = ?1 AND `+live,
		params.ID, params.TenantID, params.Now.UnixMicro())
	if err != nil {
		return fmt.Errorf("deleting source %s: %w", params.ID, mapError(err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("deleting source %s: %w", params.ID, kapsel.ErrNotFound)
	}
	return nil
}
