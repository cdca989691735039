package service

import (
	"net/http"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// tenantJSON is a tenant on the wire. APIKey is set only in the answers to
// its creation and to a key rotation.
type tenantJSON struct {
	ID        kapsel.TenantID `json:"id"`
	Name      string          `json:"name"`
	APIKey    string          `json:"api_key,omitempty"`
	RateLimit float64         `json:"rate_limit"`
	RateBurst int             `json:"rate_burst"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
}

func toTenantJSON(t *kapsel.Tenant) tenantJSON {
	return tenantJSON{ID: t.ID, Name: t.Name, RateLimit: t.RateLimit, RateBurst: t.RateBurst,
		CreatedAt: t.CreatedAt.UTC(), UpdatedAt: t.UpdatedAt.UTC()}
}

// createTenantRequest is the body of POST /v1/tenants.
type createTenantRequest struct {
	Name string `json:"name"`
	// RateLimit is the ingest rate in events per second; 0 = unlimited.
	RateLimit *float64 `json:"rate_limit"`
	RateBurst *int     `json:"rate_burst"`
}

// httpCreateTenant: POST /v1/tenants (admin) → 201 with the API key, once.
func (s *Service) httpCreateTenant(w http.ResponseWriter, r *http.Request) error {
	var req createTenantRequest
	if err := s.decode(w, r, &req, false); err != nil {
		return err
	}
	t, key, err := s.CreateTenant(r.Context(), TenantCreate(req))
	if err != nil {
		return err
	}
	out := toTenantJSON(t)
	out.APIKey = key
	w.Header().Set("Location", "/v1/tenants/"+string(t.ID))
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// httpGetTenant: GET /v1/tenants/{id} (admin).
func (s *Service) httpGetTenant(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "tenant", kapsel.ParseTenantID)
	if err != nil {
		return err
	}
	t, err := s.GetTenant(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toTenantJSON(t))
	return nil
}

// httpListTenants: GET /v1/tenants (admin).
func (s *Service) httpListTenants(w http.ResponseWriter, r *http.Request) error {
	o, err := listOptions(r)
	if err != nil {
		return err
	}
	p, err := s.ListTenants(r.Context(), o)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toPageJSON(p, toTenantJSON))
	return nil
}

// updateTenantRequest is the body of PATCH /v1/tenants/{id}: an absent or
// null field keeps the stored value.
type updateTenantRequest struct {
	Name      *string  `json:"name"`
	RateLimit *float64 `json:"rate_limit"`
	RateBurst *int     `json:"rate_burst"`
}

// httpUpdateTenant: PATCH /v1/tenants/{id} (admin).
func (s *Service) httpUpdateTenant(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "tenant", kapsel.ParseTenantID)
	if err != nil {
		return err
	}
	var req updateTenantRequest
	if err := s.decode(w, r, &req, false); err != nil {
		return err
	}
	t, err := s.UpdateTenant(r.Context(), id, TenantUpdate(req))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toTenantJSON(t))
	return nil
}

// httpDeleteTenant: DELETE /v1/tenants/{id} (admin) → 204.
func (s *Service) httpDeleteTenant(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "tenant", kapsel.ParseTenantID)
	if err != nil {
		return err
	}
	if err := s.DeleteTenant(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// httpRotateTenantAPIKey: POST /v1/tenants/{id}/rotate-api-key (admin) →
// 200 with the tenant and its new API key, once; the old key stops working.
func (s *Service) httpRotateTenantAPIKey(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "tenant", kapsel.ParseTenantID)
	if err != nil {
		return err
	}
	t, key, err := s.RotateTenantAPIKey(r.Context(), id)
	if err != nil {
		return err
	}
	out := toTenantJSON(t)
	out.APIKey = key
	writeJSON(w, http.StatusOK, out)
	return nil
}

// httpExpungeTenantBodies: DELETE /v1/tenants/{id}/event-bodies (admin) →
// 200 {"count"}, the bodies erased.
func (s *Service) httpExpungeTenantBodies(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "tenant", kapsel.ParseTenantID)
	if err != nil {
		return err
	}
	n, err := s.ExpungeTenantBodies(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, countJSON{Count: n})
	return nil
}
