package api

import (
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// tenantJSON is a tenant on the wire. APIKey is set only in the answer to
// its creation.
type tenantJSON struct {
	ID        kapsel.TenantID `json:"id"`
	Name      string          `json:"name"`
	APIKey    string          `json:"api_key,omitempty"`
	RateLimit float64         `json:"rate_limit"`
	RateBurst int             `json:"rate_burst"`
	CreatedAt time.Time       `json:"created_at"`
}

func toTenantJSON(t *kapsel.Tenant) tenantJSON {
	return tenantJSON{ID: t.ID, Name: t.Name, RateLimit: t.RateLimit, RateBurst: t.RateBurst, CreatedAt: t.CreatedAt.UTC()}
}

// createTenantRequest is the body of POST /v1/tenants.
type createTenantRequest struct {
	Name string `json:"name"`
	// RateLimit is the ingest rate in events per second; 0 = unlimited.
	RateLimit *float64 `json:"rate_limit"`
	RateBurst *int     `json:"rate_burst"`
}

// createTenant: POST /v1/tenants (admin) → 201 with the API key, shown once.
func (a *API) createTenant(w http.ResponseWriter, r *http.Request) error {
	var req createTenantRequest
	if err := a.decode(w, r, &req, false); err != nil {
		return err
	}
	req.Name = strings.TrimSpace(req.Name)
	if req.Name == "" || len(req.Name) > maxNameLength {
		return badRequest("name is required, at most %d bytes", maxNameLength)
	}
	params := &kapsel.TenantInsertParams{
		Name: req.Name, RateLimit: a.cfg.DefaultRateLimit, RateBurst: a.cfg.DefaultRateBurst, Now: a.now(),
	}
	if req.RateLimit != nil {
		if *req.RateLimit < 0 || math.IsNaN(*req.RateLimit) || math.IsInf(*req.RateLimit, 0) {
			return badRequest("rate_limit must be a non-negative number of events per second (0 = unlimited)")
		}
		params.RateLimit = *req.RateLimit
	}
	if req.RateBurst != nil {
		if *req.RateBurst < 0 {
			return badRequest("rate_burst must be a non-negative integer")
		}
		params.RateBurst = *req.RateBurst
	}
	key, hash := NewAPIKey()
	params.APIKeyHash = hash
	t, err := a.store.TenantInsert(r.Context(), params)
	if err != nil {
		return err
	}
	out := toTenantJSON(t)
	out.APIKey = key
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// getTenant: GET /v1/tenants/{id} (admin).
func (a *API) getTenant(w http.ResponseWriter, r *http.Request) error {
	id, err := kapsel.ParseTenantID(r.PathValue("id"))
	if err != nil {
		return notFound("tenant", r.PathValue("id"))
	}
	t, err := a.store.TenantGet(r.Context(), &kapsel.TenantGetParams{ID: id})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toTenantJSON(t))
	return nil
}
