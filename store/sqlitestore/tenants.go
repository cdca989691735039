package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/kapsel-dev/kapsel"
)

const tenantColumns = `id, name, api_key_hash, rate_limit, rate_burst, created_at, updated_at`

// liveTenant is the condition of every tenant read and write: not deleted
// (migration 0006).
const liveTenant = `deleted_at IS NULL`

// whereLiveTenant ends the INSERT … SELECT of a tenant's source or
// endpoint, whose second value (?2) is the tenant: nothing is inserted
// unless the tenant exists and is not deleted, and the caller answers
// ErrNotFound (the foreign key alone would accept a deleted tenant). The
// single writer makes the check and the insert one step with respect to
// TenantDelete.
const whereLiveTenant = `WHERE EXISTS (SELECT 1 FROM tenants WHERE id = ?2 AND ` + liveTenant + `)`

func scanTenant(row rowScanner) (*kapsel.Tenant, error) {
	var t kapsel.Tenant
	var created, updated sql.NullInt64
	if err := row.Scan(&t.ID, &t.Name, &t.APIKeyHash, &t.RateLimit, &t.RateBurst, &created, &updated); err != nil {
		return nil, mapError(err)
	}
	t.CreatedAt, t.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &t, nil
}

// TenantInsert creates a tenant; ErrDuplicate when the API key hash is taken
// (a deleted tenant's hash stays taken).
func (s *Store) TenantInsert(ctx context.Context, params *kapsel.TenantInsertParams) (*kapsel.Tenant, error) {
	if err := params.Validate(); err != nil {
		return nil, fmt.Errorf("inserting tenant: %w", err)
	}
	now := time.UnixMicro(params.Now.UnixMicro()).UTC()
	t := &kapsel.Tenant{
		ID: kapsel.NewTenantID(), Name: kapsel.SafeText(params.Name), APIKeyHash: append([]byte{}, params.APIKeyHash...),
		RateLimit: params.RateLimit, RateBurst: params.RateBurst, CreatedAt: now, UpdatedAt: now,
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO tenants (`+tenantColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.Name, blob(t.APIKeyHash), t.RateLimit, t.RateBurst, now.UnixMicro(), now.UnixMicro())
	if err != nil {
		return nil, fmt.Errorf("inserting tenant: %w", mapError(err))
	}
	return t, nil
}

// TenantGet returns the tenant; ErrNotFound when there is none or it was
// deleted.
func (s *Store) TenantGet(ctx context.Context, params *kapsel.TenantGetParams) (*kapsel.Tenant, error) {
	t, err := scanTenant(s.r.QueryRowContext(ctx, `SELECT `+tenantColumns+` FROM tenants WHERE id = ? AND `+liveTenant, params.ID))
	if err != nil {
		return nil, fmt.Errorf("getting tenant %s: %w", params.ID, err)
	}
	return t, nil
}

// TenantGetByAPIKey returns the tenant owning the API key hash; ErrNotFound
// when none does or its owner was deleted.
func (s *Store) TenantGetByAPIKey(ctx context.Context, params *kapsel.TenantGetByAPIKeyParams) (*kapsel.Tenant, error) {
	t, err := scanTenant(s.r.QueryRowContext(ctx, `SELECT `+tenantColumns+` FROM tenants WHERE api_key_hash = ? AND `+liveTenant,
		blob(params.APIKeyHash)))
	if err != nil {
		return nil, fmt.Errorf("getting tenant by api key: %w", err)
	}
	return t, nil
}

// TenantRotateAPIKey replaces the tenant's API key hash in one UPDATE.
func (s *Store) TenantRotateAPIKey(ctx context.Context, params *kapsel.TenantRotateAPIKeyParams) (*kapsel.Tenant, error) {
	if len(params.APIKeyHash) == 0 {
		return nil, fmt.Errorf("rotating tenant api key: %w: api key hash is required", kapsel.ErrInvalid)
	}
	t, err := scanTenant(s.w.QueryRowContext(ctx, `UPDATE tenants SET api_key_hash = ? WHERE id = ? AND `+liveTenant+`
		RETURNING `+tenantColumns,
		blob(params.APIKeyHash), params.ID))
	if err != nil {
		return nil, fmt.Errorf("rotating tenant api key %s: %w", params.ID, err)
	}
	return t, nil
}

// TenantList lists the live tenants in id order, after Cursor.
func (s *Store) TenantList(ctx context.Context, params *kapsel.TenantListParams) ([]*kapsel.Tenant, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+tenantColumns+` FROM tenants
		WHERE `+liveTenant+` AND id > ? ORDER BY id LIMIT ?`,
		params.Cursor, kapsel.PageLimit(params.Limit))
	if err != nil {
		return nil, fmt.Errorf("listing tenants: %w", mapError(err))
	}
	defer rows.Close()
	var out []*kapsel.Tenant
	for rows.Next() {
		t, err := scanTenant(rows)
		if err != nil {
			return nil, fmt.Errorf("listing tenants: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing tenants: %w", mapError(err))
	}
	return out, nil
}

// TenantUpdate sets the tenant's name and rate limit, with updated_at =
// Now, in one UPDATE. ErrNotFound as TenantGet.
func (s *Store) TenantUpdate(ctx context.Context, params *kapsel.TenantUpdateParams) (*kapsel.Tenant, error) {
	if err := params.Validate(); err != nil {
		return nil, fmt.Errorf("updating tenant %s: %w", params.ID, err)
	}
	t, err := scanTenant(s.w.QueryRowContext(ctx, `
		UPDATE tenants SET name = ?2, rate_limit = ?3, rate_burst = ?4, updated_at = ?5
		WHERE id = ?1 AND `+liveTenant+`
		RETURNING `+tenantColumns,
		params.ID, kapsel.SafeText(params.Name), params.RateLimit, params.RateBurst, params.Now.UnixMicro()))
	if err != nil {
		return nil, fmt.Errorf("updating tenant %s: %w", params.ID, err)
	}
	return t, nil
}

// TenantDelete deletes the tenant softly in one write transaction: the
// tenant row, its live sources (as SourceDelete) and its live endpoints (as
// EndpointDelete, their pending and delivering deliveries ended by the same
// statements, endDeliveriesSQL). The single writer serialises it with
// every other write: an insert, a new source or endpoint, a backfill or a
// retry for the tenant happens wholly before it, and is deleted or ended
// by it, or wholly after, and finds the tenant or its endpoints gone.
// ErrNotFound as TenantGet.
func (s *Store) TenantDelete(ctx context.Context, params *kapsel.TenantDeleteParams) error {
	now := params.Now.UnixMicro()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE tenants SET deleted_at = ? WHERE id = ? AND `+liveTenant, now, params.ID)
		if err != nil {
			return mapError(err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return kapsel.ErrNotFound
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sources SET deleted_at = ?2 WHERE tenant_id = ?1 AND deleted_at IS NULL`,
			params.ID, now); err != nil {
			return mapError(err)
		}
		rows, err := tx.QueryContext(ctx, `UPDATE endpoints SET deleted_at = ?2 WHERE tenant_id = ?1 AND deleted_at IS NULL
			RETURNING id`, params.ID, now)
		if err != nil {
			return mapError(err)
		}
		var endpoints []kapsel.EndpointID
		for rows.Next() {
			var id kapsel.EndpointID
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return mapError(err)
			}
			endpoints = append(endpoints, id)
		}
		if err := rows.Close(); err != nil {
			return mapError(err)
		}
		if err := rows.Err(); err != nil {
			return mapError(err)
		}
		for _, id := range endpoints {
			for _, q := range endDeliveriesSQL {
				if _, err := tx.ExecContext(ctx, q, id, kapsel.LastErrorEndpointDeleted); err != nil {
					return mapError(err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("deleting tenant %s: %w", params.ID, err)
	}
	return nil
}
