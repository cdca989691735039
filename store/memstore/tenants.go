package memstore

import (
	"context"
	"fmt"

	"github.com/kapsel-dev/kapsel"
)

// tenant returns the live tenant row; ErrNotFound when it is unknown or
// deleted. s.mu is held.
func (s *Store) tenant(id kapsel.TenantID) (*tenantRow, error) {
	r, ok := s.tenants[id]
	if !ok || r.deleted() {
		return nil, fmt.Errorf("tenant %s: %w", id, kapsel.ErrNotFound)
	}
	return r, nil
}

// TenantInsert creates a tenant; ErrDuplicate when the API key hash is taken
// (by a deleted tenant too).
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
		UpdatedAt:  ts(params.Now),
	}
	s.tenants[t.ID] = &tenantRow{tenant: t}
	s.tenantByKey[string(t.APIKeyHash)] = t.ID
	return copyTenant(t), nil
}

// TenantGet returns the tenant; ErrNotFound when there is none or it was
// deleted.
func (s *Store) TenantGet(ctx context.Context, params *kapsel.TenantGetParams) (*kapsel.Tenant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.tenant(params.ID)
	if err != nil {
		return nil, fmt.Errorf("getting %w", err)
	}
	return copyTenant(r.tenant), nil
}

// TenantGetByAPIKey returns the tenant owning the API key hash; ErrNotFound
// when none does or its owner was deleted.
func (s *Store) TenantGetByAPIKey(ctx context.Context, params *kapsel.TenantGetByAPIKeyParams) (*kapsel.Tenant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.tenantByKey[string(params.APIKeyHash)]
	if !ok || s.tenants[id].deleted() {
		return nil, fmt.Errorf("getting tenant by api key: %w", kapsel.ErrNotFound)
	}
	return copyTenant(s.tenants[id].tenant), nil
}

// TenantRotateAPIKey replaces the tenant's API key hash.
func (s *Store) TenantRotateAPIKey(ctx context.Context, params *kapsel.TenantRotateAPIKeyParams) (*kapsel.Tenant, error) {
	if len(params.APIKeyHash) == 0 {
		return nil, fmt.Errorf("rotating tenant api key: %w: api key hash is required", kapsel.ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.tenant(params.ID)
	if err != nil {
		return nil, fmt.Errorf("rotating the api key of %w", err)
	}
	t := r.tenant
	if owner, ok := s.tenantByKey[string(params.APIKeyHash)]; ok && owner != t.ID {
		return nil, fmt.Errorf("rotating tenant api key: %w: api key hash already used", kapsel.ErrDuplicate)
	}
	delete(s.tenantByKey, string(t.APIKeyHash))
	t.APIKeyHash = cloneBytes(params.APIKeyHash)
	s.tenantByKey[string(t.APIKeyHash)] = t.ID
	return copyTenant(t), nil
}

// TenantList lists the live tenants in id order, after Cursor.
func (s *Store) TenantList(ctx context.Context, params *kapsel.TenantListParams) ([]*kapsel.Tenant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	visible := func(yield func(*kapsel.Tenant) bool) {
		for _, r := range s.tenants {
			if !r.deleted() && !yield(r.tenant) {
				return
			}
		}
	}
	return page(visible, func(t *kapsel.Tenant) kapsel.TenantID { return t.ID }, params.Cursor, params.Limit, copyTenant), nil
}

// TenantUpdate sets the tenant's name and rate limit, with UpdatedAt = Now.
func (s *Store) TenantUpdate(ctx context.Context, params *kapsel.TenantUpdateParams) (*kapsel.Tenant, error) {
	if err := params.Validate(); err != nil {
		return nil, fmt.Errorf("updating tenant %s: %w", params.ID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.tenant(params.ID)
	if err != nil {
		return nil, fmt.Errorf("updating %w", err)
	}
	t := r.tenant
	t.Name, t.RateLimit, t.RateBurst, t.UpdatedAt = kapsel.SafeText(params.Name), params.RateLimit, params.RateBurst, ts(params.Now)
	return copyTenant(t), nil
}

// TenantDelete deletes the tenant softly under the store's lock, with its
// live sources (as SourceDelete) and endpoints (as EndpointDelete: their
// pending and delivering deliveries end as failed, leases kept). Its
// events, deliveries and attempts are kept.
func (s *Store) TenantDelete(ctx context.Context, params *kapsel.TenantDeleteParams) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.tenant(params.ID)
	if err != nil {
		return fmt.Errorf("deleting %w", err)
	}
	now := ts(params.Now)
	r.deletedAt = now
	for _, src := range s.sources {
		if !src.deleted() && src.source.TenantID == params.ID {
			src.deletedAt = now
		}
	}
	ended := map[kapsel.EndpointID]bool{}
	for id, ep := range s.endpoints {
		if !ep.deleted() && ep.endpoint.TenantID == params.ID {
			ep.deletedAt = now
			ended[id] = true
		}
	}
	s.endDeliveries(ended)
	return nil
}
