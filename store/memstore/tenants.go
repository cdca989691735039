package memstore

import (
	"context"
	"fmt"

	"github.com/kapsel-dev/kapsel"
)

// TenantInsert creates a tenant; ErrDuplicate when the API key hash is taken.
func (s *Store) TenantInsert(ctx context.Context, params *kapsel.TenantInsertParams) (*kapsel.Tenant, error) {
	if err := params.Validate(); err != nil {
		return nil, fmt.Errorf("inserting tenant: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.tenantByKey[string(params.APIKeyHash)]; ok {
		return nil, fmt.Errorf("inserting tenant: %w: api key hash already used", kapsel.ErrDuplicate)
	}
	t := &kapsel.Tenant{
		ID:         kapsel.NewTenantID(),
		Name:       kapsel.SafeText(params.Name),
		APIKeyHash: cloneBytes(params.APIKeyHash),
		RateLimit:  params.RateLimit,
		RateBurst:  params.RateBurst,
		CreatedAt:  ts(params.Now),
	}
	s.tenants[t.ID] = t
	s.tenantByKey[string(t.APIKeyHash)] = t.ID
	return copyTenant(t), nil
}

// TenantGet returns the tenant; ErrNotFound when there is none.
func (s *Store) TenantGet(ctx context.Context, params *kapsel.TenantGetParams) (*kapsel.Tenant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tenants[params.ID]
	if !ok {
		return nil, fmt.Errorf("getting tenant %s: %w", params.ID, kapsel.ErrNotFound)
	}
	return copyTenant(t), nil
}

// TenantGetByAPIKey returns the tenant owning the API key hash; ErrNotFound
// when none does.
func (s *Store) TenantGetByAPIKey(ctx context.Context, params *kapsel.TenantGetByAPIKeyParams) (*kapsel.Tenant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.tenantByKey[string(params.APIKeyHash)]
	if !ok {
		return nil, fmt.Errorf("getting tenant by api key: %w", kapsel.ErrNotFound)
	}
	return copyTenant(s.tenants[id]), nil
}

// TenantRotateAPIKey replaces the tenant's API key hash.
func (s *Store) TenantRotateAPIKey(ctx context.Context, params *kapsel.TenantRotateAPIKeyParams) (*kapsel.Tenant, error) {
	if len(params.APIKeyHash) == 0 {
		return nil, fmt.Errorf("rotating tenant api key: %w: api key hash is required", kapsel.ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tenants[params.ID]
	if !ok {
		return nil, fmt.Errorf("rotating tenant api key %s: %w", params.ID, kapsel.ErrNotFound)
	}
	if owner, ok := s.tenantByKey[string(params.APIKeyHash)]; ok && owner != t.ID {
		return nil, fmt.Errorf("rotating tenant api key: %w: api key hash already used", kapsel.ErrDuplicate)
	}
	delete(s.tenantByKey, string(t.APIKeyHash))
	t.APIKeyHash = cloneBytes(params.APIKeyHash)
	s.tenantByKey[string(t.APIKeyHash)] = t.ID
	return copyTenant(t), nil
}
