package service

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"math"
	"strings"

	"github.com/kapsel-dev/kapsel"
)

// APIKeyPrefix starts every tenant API key, so that leaked keys are easy to
// recognise (secret scanners) and never confused with the admin token.
const APIKeyPrefix = "kap_"

// MaxNameLength is the longest tenant, source or endpoint name, in bytes.
const MaxNameLength = 255

// apiKeyBytes is the entropy of an API key: 256 bits.
const apiKeyBytes = 32

// NewAPIKey returns a new random tenant API key and the SHA-256 hash under
// which it is stored. Only the hash is kept; the key is shown once.
func NewAPIKey() (key string, hash []byte) {
	var b [apiKeyBytes]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	key = APIKeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return key, HashAPIKey(key)
}

// HashAPIKey returns the hash a key is stored and looked up by. The key has
// 256 bits of entropy, so a fast unsalted hash is enough: nothing can be
// guessed, and a lookup by hash needs a deterministic one.
func HashAPIKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// TenantCreate is the input of [Service.CreateTenant].
type TenantCreate struct {
	// Name is required: 1 to MaxNameLength bytes once trimmed.
	Name string
	// RateLimit is the tenant's ingest rate in events per second, 0 for
	// unlimited. Defaults (nil) to Config.DefaultRateLimit.
	RateLimit *float64
	// RateBurst is how many events above the rate may arrive at once.
	// Defaults (nil) to Config.DefaultRateBurst.
	RateBurst *int
}

// CreateTenant creates a tenant and its API key. The key is returned this
// once; only its hash is stored. Errors: E1009 for a missing or too long
// name or a negative or non-finite rate.
func (s *Service) CreateTenant(ctx context.Context, in TenantCreate) (tenant *kapsel.Tenant, apiKey string, err error) {
	name, err := checkName(in.Name, true)
	if err != nil {
		return nil, "", err
	}
	params := &kapsel.TenantInsertParams{
		Name: name, RateLimit: s.cfg.DefaultRateLimit, RateBurst: s.cfg.DefaultRateBurst, Now: s.now(),
	}
	if err := checkRate(in.RateLimit, in.RateBurst); err != nil {
		return nil, "", err
	}
	setIfGiven(&params.RateLimit, in.RateLimit)
	setIfGiven(&params.RateBurst, in.RateBurst)
	apiKey, params.APIKeyHash = NewAPIKey()
	tenant, err = s.store.TenantInsert(ctx, params)
	if err != nil {
		return nil, "", err
	}
	return tenant, apiKey, nil
}

// GetTenant returns a tenant. Errors: E1011 when there is none (or it was
// deleted).
func (s *Service) GetTenant(ctx context.Context, id kapsel.TenantID) (*kapsel.Tenant, error) {
	t, err := s.store.TenantGet(ctx, &kapsel.TenantGetParams{ID: id})
	if err != nil {
		return nil, notFoundErr(err, "tenant", string(id))
	}
	return t, nil
}

// RotateTenantAPIKey gives the tenant a new API key, returned this once
// with the tenant. The old key stops working when RotateTenantAPIKey
// returns. Errors: E1011 when there is no such tenant (or it was deleted).
func (s *Service) RotateTenantAPIKey(ctx context.Context, id kapsel.TenantID) (tenant *kapsel.Tenant, apiKey string, err error) {
	key, hash := NewAPIKey()
	t, err := s.store.TenantRotateAPIKey(ctx, &kapsel.TenantRotateAPIKeyParams{ID: id, APIKeyHash: hash})
	if err != nil {
		return nil, "", notFoundErr(err, "tenant", string(id))
	}
	return t, key, nil
}

// MaxRateBurst is the largest tenant rate burst: the stores keep it in a
// 32-bit integer column.
const MaxRateBurst = math.MaxInt32

// checkRate refuses a tenant's rate limit or burst that is set and
// negative (or, for the rate, not a finite number), and a burst over
// MaxRateBurst, which the stores' 32-bit column cannot hold.
func checkRate(rateLimit *float64, rateBurst *int) error {
	if r := rateLimit; r != nil && (*r < 0 || math.IsNaN(*r) || math.IsInf(*r, 0)) {
		return invalid("rate_limit must be a non-negative number of events per second (0 = unlimited)")
	}
	if b := rateBurst; b != nil && (*b < 0 || *b > MaxRateBurst) {
		return invalid("rate_burst must be an integer from 0 to 2147483647")
	}
	return nil
}

// setIfGiven sets *dst to *v when v is not nil.
func setIfGiven[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// ListTenants lists the tenants in id order, deleted ones left out. Errors:
// E1009 for a bad limit or a malformed cursor.
func (s *Service) ListTenants(ctx context.Context, o ListOptions) (*Page[*kapsel.Tenant], error) {
	limit, err := o.check(func(c string) error { _, err := kapsel.ParseTenantID(c); return err })
	if err != nil {
		return nil, err
	}
	return list(limit, o.Cursor, func(limit int, cursor string) ([]*kapsel.Tenant, error) {
		return s.store.TenantList(ctx, &kapsel.TenantListParams{Limit: limit, Cursor: kapsel.TenantID(cursor)})
	}, func(t *kapsel.Tenant) string { return string(t.ID) })
}

// TenantUpdate is the input of [Service.UpdateTenant]: a nil field keeps
// the stored value, a set one replaces it, with the rules of
// [TenantCreate].
type TenantUpdate struct {
	// Name, when set, is 1 to MaxNameLength bytes once trimmed.
	Name *string
	// RateLimit, when set, is the ingest rate in events per second, 0 for
	// unlimited.
	RateLimit *float64
	// RateBurst, when set, is how many events above the rate may arrive at
	// once.
	RateBurst *int
}

// UpdateTenant changes the fields of a tenant that u sets, and returns it
// with UpdatedAt moved. The ingester applies a new rate within its cache's
// TTL (ingest.Config.SourceCacheTTL, 1 s by default). The store writes the
// whole tenant, so of two concurrent updates of different fields the later
// one may put the other's field back: update one tenant from one place at a
// time. Errors: E1009 as CreateTenant for the fields set; E1011 when there
// is no such tenant (or it was deleted).
func (s *Service) UpdateTenant(ctx context.Context, id kapsel.TenantID, u TenantUpdate) (*kapsel.Tenant, error) {
	if u.Name != nil {
		name, err := checkName(*u.Name, true)
		if err != nil {
			return nil, err
		}
		u.Name = &name
	}
	if err := checkRate(u.RateLimit, u.RateBurst); err != nil {
		return nil, err
	}
	cur, err := s.GetTenant(ctx, id)
	if err != nil {
		return nil, err
	}
	params := &kapsel.TenantUpdateParams{ID: id, Name: cur.Name, RateLimit: cur.RateLimit, RateBurst: cur.RateBurst, Now: s.now()}
	setIfGiven(&params.Name, u.Name)
	setIfGiven(&params.RateLimit, u.RateLimit)
	setIfGiven(&params.RateBurst, u.RateBurst)
	t, err := s.store.TenantUpdate(ctx, params)
	if err != nil {
		return nil, notFoundErr(err, "tenant", string(id))
	}
	return t, nil
}

// DeleteTenant deletes a tenant, in one store transaction with everything
// it uses: its API key stops working at once (401 E1010), its sources'
// ingest URLs answer 404 E1003 (at once here; on other nodes within their
// ingesters' source cache TTL, as after DeleteSource), and its endpoints are deleted as DeleteEndpoint deletes
// one — their pending deliveries end as failed, "endpoint deleted"; an
// attempt in flight still completes and is recorded. Its events,
// deliveries and attempts are kept (the audit trail), but nothing can read
// them through the API any more. A deleted tenant cannot be brought back.
// Errors: E1011 when there is no such tenant (or it was already deleted).
//
// As DeleteEndpoint and DeleteSource do, it tells the service's dispatcher
// and ingester before it answers, so that no attempt to one of the
// tenant's endpoints starts here, and none of its sources accepts here,
// after it has answered. It lists them first for that; an endpoint or
// source created between that list and the delete is deleted all the
// same, and at most one claim's worth of its deliveries could still be
// attempted here, within the dispatcher's EndpointRecheckAfter.
func (s *Service) DeleteTenant(ctx context.Context, id kapsel.TenantID) error {
	endpoints, sources, err := s.tenantResources(ctx, id)
	if err != nil {
		return notFoundErr(err, "tenant", string(id))
	}
	err = s.store.TenantDelete(ctx, &kapsel.TenantDeleteParams{ID: id, Now: s.now()})
	if err != nil {
		return notFoundErr(err, "tenant", string(id))
	}
	for _, ep := range endpoints {
		s.dispatcher.EndpointDeleted(ep)
	}
	for _, src := range sources {
		s.ingester.SourceChanged(src)
	}
	return nil
}

// tenantResources returns the ids of the tenant's live endpoints and
// sources, every page of them.
func (s *Service) tenantResources(ctx context.Context, id kapsel.TenantID) ([]kapsel.EndpointID, []kapsel.SourceID, error) {
	var endpoints []kapsel.EndpointID
	for cursor := kapsel.EndpointID(""); ; {
		page, err := s.store.EndpointList(ctx, &kapsel.EndpointListParams{TenantID: id, Limit: kapsel.MaxPageLimit, Cursor: cursor})
		if err != nil {
			return nil, nil, err
		}
		for _, ep := range page {
			endpoints = append(endpoints, ep.ID)
		}
		if len(page) < kapsel.MaxPageLimit {
			break
		}
		cursor = page[len(page)-1].ID
	}
	var sources []kapsel.SourceID
	for cursor := kapsel.SourceID(""); ; {
		page, err := s.store.SourceList(ctx, &kapsel.SourceListParams{TenantID: id, Limit: kapsel.MaxPageLimit, Cursor: cursor})
		if err != nil {
			return nil, nil, err
		}
		for _, src := range page {
			sources = append(sources, src.ID)
		}
		if len(page) < kapsel.MaxPageLimit {
			break
		}
		cursor = page[len(page)-1].ID
	}
	return endpoints, sources, nil
}

// AuthenticateTenant returns the tenant whose API key is apiKey. Errors:
// E1010 when no tenant has it. The key is looked up by its hash, so the
// comparison happens inside the store's index, never on the key itself.
func (s *Service) AuthenticateTenant(ctx context.Context, apiKey string) (*kapsel.Tenant, error) {
	if !strings.HasPrefix(apiKey, APIKeyPrefix) {
		return nil, errUnauthenticated
	}
	t, err := s.store.TenantGetByAPIKey(ctx, &kapsel.TenantGetByAPIKeyParams{APIKeyHash: HashAPIKey(apiKey)})
	if errors.Is(err, kapsel.ErrNotFound) {
		return nil, errUnauthenticated
	}
	return t, err
}

// errUnauthenticated is the answer to every missing or wrong credential. It
// never says which part was wrong.
var errUnauthenticated = kapsel.NewError(kapsel.CodeUnauthenticated,
	"missing or invalid credentials; send Authorization: Bearer <token>")
