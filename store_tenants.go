package kapsel

import (
	"context"
	"fmt"
	"time"
)

// TenantGetter reads tenants.
//
// For store implementers: a role interface of [Store]. Applications do not
// call it to create or change anything; the front door (package service)
// does, after validating.
type TenantGetter interface {
	// TenantGet returns the tenant; ErrNotFound when there is none.
	TenantGet(ctx context.Context, params *TenantGetParams) (*Tenant, error)
}

// TenantStore keeps tenants.
//
// For store implementers: a role interface of [Store]. Applications do not
// call it to create or change anything; the front door (package service)
// does, after validating.
type TenantStore interface {
	TenantGetter
	// TenantInsert creates a tenant. ErrInvalid when params fail
	// [TenantInsertParams.Validate]; ErrDuplicate when the API key hash is
	// already used.
	TenantInsert(ctx context.Context, params *TenantInsertParams) (*Tenant, error)
	// TenantGetByAPIKey returns the tenant owning the API key hash;
	// ErrNotFound when none does.
	TenantGetByAPIKey(ctx context.Context, params *TenantGetByAPIKeyParams) (*Tenant, error)
	// TenantRotateAPIKey replaces the tenant's API key hash in one write:
	// from its return on, the old key finds no tenant. ErrInvalid when the
	// new hash is empty; ErrNotFound when there is no such tenant;
	// ErrDuplicate when another tenant uses the hash.
	TenantRotateAPIKey(ctx context.Context, params *TenantRotateAPIKeyParams) (*Tenant, error)
	// TenantList lists tenants in id order, after Cursor (deleted ones
	// left out).
	TenantList(ctx context.Context, params *TenantListParams) ([]*Tenant, error)
	// TenantUpdate sets the tenant's Name and rate limit, with UpdatedAt =
	// Now. ErrNotFound when there is no such tenant; ErrInvalid as
	// TenantInsert for a negative rate.
	TenantUpdate(ctx context.Context, params *TenantUpdateParams) (*Tenant, error)
	// TenantDelete deletes a tenant softly, in one transaction: from its
	// return on, TenantGet and TenantGetByAPIKey find nothing (its API key
	// stops working), each of its sources is deleted as SourceDelete does
	// (their ingest URLs answer 404) and each of its endpoints as
	// EndpointDelete does (unfinished deliveries end as failed). Events,
	// deliveries and attempts are kept, the audit trail. ErrNotFound when
	// there is no such tenant.
	TenantDelete(ctx context.Context, params *TenantDeleteParams) error
}

// TenantInsertParams are the arguments of TenantInsert.
type TenantInsertParams struct {
	Name string
	// APIKeyHash is required: every tenant is an API principal, and the hash
	// is how its key finds it.
	APIKeyHash []byte
	RateLimit  float64
	RateBurst  int
	Now        time.Time
}

// Validate returns an error wrapping ErrInvalid when the API key hash is
// missing or the rate limit is negative. Every store checks it first.
func (p *TenantInsertParams) Validate() error {
	switch {
	case len(p.APIKeyHash) == 0:
		return fmt.Errorf("%w: tenant api key hash is required", ErrInvalid)
	case p.RateLimit < 0 || p.RateBurst < 0:
		return fmt.Errorf("%w: tenant rate limit and burst must not be negative", ErrInvalid)
	}
	return nil
}

// TenantGetParams are the arguments of TenantGet.
type TenantGetParams struct {
	ID TenantID
}

// TenantGetByAPIKeyParams are the arguments of TenantGetByAPIKey.
type TenantGetByAPIKeyParams struct {
	APIKeyHash []byte
}

// TenantRotateAPIKeyParams are the arguments of TenantRotateAPIKey.
type TenantRotateAPIKeyParams struct {
	ID         TenantID
	APIKeyHash []byte
}

// TenantListParams are the arguments of TenantList.
type TenantListParams struct {
	// Limit defaults to DefaultPageLimit and is capped at MaxPageLimit.
	Limit int
	// Cursor is the last id of the previous page; empty for the first page.
	Cursor TenantID
}

// TenantUpdateParams are the arguments of TenantUpdate.
type TenantUpdateParams struct {
	ID        TenantID
	Name      string
	RateLimit float64
	RateBurst int
	Now       time.Time
}

// Validate returns an error wrapping ErrInvalid when the rate limit is
// negative. Every store checks it first.
func (p *TenantUpdateParams) Validate() error {
	if p.RateLimit < 0 || p.RateBurst < 0 {
		return fmt.Errorf("%w: tenant rate limit and burst must not be negative", ErrInvalid)
	}
	return nil
}

// TenantDeleteParams are the arguments of TenantDelete.
type TenantDeleteParams struct {
	ID  TenantID
	Now time.Time
}
