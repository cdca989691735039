package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/kapsel-dev/kapsel"
)

const tenantColumns = `id, name, api_key_hash, rate_limit, rate_burst, created_at`

func scanTenant(row pgx.Row) (*kapsel.Tenant, error) {
	var t kapsel.Tenant
	if err := row.Scan(&t.ID, &t.Name, &t.APIKeyHash, &t.RateLimit, &t.RateBurst, &t.CreatedAt); err != nil {
		return nil, err
	}
	return &t, nil
}

// TenantInsert creates a tenant; ErrDuplicate when the API key hash is taken
// (the unique constraint on api_key_hash decides).
func (s *Store) TenantInsert(ctx context.Context, params *kapsel.TenantInsertParams) (*kapsel.Tenant, error) {
	if err := params.Validate(); err != nil {
		return nil, fmt.Errorf("inserting tenant: %w", err)
	}
	t, err := scanTenant(s.pool.QueryRow(ctx, `
		INSERT INTO tenants (id, name, api_key_hash, rate_limit, rate_burst, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		RETURNING `+tenantColumns,
		kapsel.NewTenantID(), kapsel.SafeText(params.Name), params.APIKeyHash, params.RateLimit, params.RateBurst, params.Now))
	if err != nil {
		return nil, fmt.Errorf("inserting tenant: %w", mapError(err))
	}
	return t, nil
}

// TenantGet returns the tenant; ErrNotFound when there is none.
func (s *Store) TenantGet(ctx context.Context, params *kapsel.TenantGetParams) (*kapsel.Tenant, error) {
	t, err := scanTenant(s.pool.QueryRow(ctx, `SELECT `+tenantColumns+` FROM tenants WHERE id = $1`, params.ID))
	if err != nil {
		return nil, fmt.Errorf("getting tenant %s: %w", params.ID, mapError(err))
	}
	return t, nil
}

// TenantGetByAPIKey returns the tenant owning the API key hash; ErrNotFound
// when none does.
func (s *Store) TenantGetByAPIKey(ctx context.Context, params *kapsel.TenantGetByAPIKeyParams) (*kapsel.Tenant, error) {
	t, err := scanTenant(s.pool.QueryRow(ctx, `SELECT `+tenantColumns+` FROM tenants WHERE api_key_hash = $1`, params.APIKeyHash))
	if err != nil {
		return nil, fmt.Errorf("getting tenant by api key: %w", mapError(err))
	}
	return t, nil
}

// TenantRotateAPIKey replaces the tenant's API key hash in one UPDATE; the
// unique constraint on api_key_hash refuses another tenant's hash.
func (s *Store) TenantRotateAPIKey(ctx context.Context, params *kapsel.TenantRotateAPIKeyParams) (*kapsel.Tenant, error) {
	if len(params.APIKeyHash) == 0 {
		return nil, fmt.Errorf("rotating tenant api key: %w: api key hash is required", kapsel.ErrInvalid)
	}
	t, err := scanTenant(s.pool.QueryRow(ctx, `UPDATE tenants SET api_key_hash = $1 WHERE id = $2 RETURNING `+tenantColumns,
		params.APIKeyHash, params.ID))
	if err != nil {
		return nil, fmt.Errorf("rotating tenant api key %s: %w", params.ID, mapError(err))
	}
	return t, nil
}
