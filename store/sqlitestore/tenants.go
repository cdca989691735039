package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/kapsel-dev/kapsel"
)

const tenantColumns = `id, name, api_key_hash, rate_limit, rate_burst, created_at`

func scanTenant(row rowScanner) (*kapsel.Tenant, error) {
	var t kapsel.Tenant
	var created sql.NullInt64
	if err := row.Scan(&t.ID, &t.Name, &t.APIKeyHash, &t.RateLimit, &t.RateBurst, &created); err != nil {
		return nil, mapError(err)
	}
	t.CreatedAt = fromMicros(created)
	return &t, nil
}

// TenantInsert creates a tenant; ErrDuplicate when the API key hash is taken.
func (s *Store) TenantInsert(ctx context.Context, params *kapsel.TenantInsertParams) (*kapsel.Tenant, error) {
	if err := params.Validate(); err != nil {
		return nil, fmt.Errorf("inserting tenant: %w", err)
	}
	t := &kapsel.Tenant{
		ID: kapsel.NewTenantID(), Name: kapsel.SafeText(params.Name), APIKeyHash: append([]byte{}, params.APIKeyHash...),
		RateLimit: params.RateLimit, RateBurst: params.RateBurst,
		CreatedAt: time.UnixMicro(params.Now.UnixMicro()).UTC(),
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO tenants (`+tenantColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
		t.ID, t.Name, blob(t.APIKeyHash), t.RateLimit, t.RateBurst, params.Now.UnixMicro())
	if err != nil {
		return nil, fmt.Errorf("inserting tenant: %w", mapError(err))
	}
	return t, nil
}

// TenantGet returns the tenant; ErrNotFound when there is none.
func (s *Store) TenantGet(ctx context.Context, params *kapsel.TenantGetParams) (*kapsel.Tenant, error) {
	t, err := scanTenant(s.r.QueryRowContext(ctx, `SELECT `+tenantColumns+` FROM tenants WHERE id = ?`, params.ID))
	if err != nil {
		return nil, fmt.Errorf("getting tenant %s: %w", params.ID, err)
	}
	return t, nil
}

// TenantGetByAPIKey returns the tenant owning the API key hash; ErrNotFound
// when none does.
func (s *Store) TenantGetByAPIKey(ctx context.Context, params *kapsel.TenantGetByAPIKeyParams) (*kapsel.Tenant, error) {
	t, err := scanTenant(s.r.QueryRowContext(ctx, `SELECT `+tenantColumns+` FROM tenants WHERE api_key_hash = ?`,
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
	t, err := scanTenant(s.w.QueryRowContext(ctx, `UPDATE tenants SET api_key_hash = ? WHERE id = ? RETURNING `+tenantColumns,
		blob(params.APIKeyHash), params.ID))
	if err != nil {
		return nil, fmt.Errorf("rotating tenant api key %s: %w", params.ID, err)
	}
	return t, nil
}
