package api

import (
	"errors"
	"net/http"

	"github.com/kapsel-dev/kapsel"
)

// endpointID parses the {id} path value; a malformed id is one that does
// not exist, so it answers 404 like an unknown or foreign one.
func endpointID(r *http.Request) (kapsel.EndpointID, error) {
	id, err := kapsel.ParseEndpointID(r.PathValue("id"))
	if err != nil {
		return "", notFound("endpoint", r.PathValue("id"))
	}
	return id, nil
}

// getOwnEndpoint returns the authenticated tenant's endpoint {id}.
func (a *API) getOwnEndpoint(r *http.Request) (*kapsel.Endpoint, error) {
	id, err := endpointID(r)
	if err != nil {
		return nil, err
	}
	e, err := a.store.EndpointGet(r.Context(), &kapsel.EndpointGetParams{ID: id, TenantID: tenantFrom(r.Context()).ID})
	if errors.Is(err, kapsel.ErrNotFound) {
		return nil, notFound("endpoint", string(id))
	}
	return e, err
}

// createEndpoint: POST /v1/endpoints → 201 with the signing secret, once.
func (a *API) createEndpoint(w http.ResponseWriter, r *http.Request) error {
	var req endpointRequest
	if err := a.decode(w, r, &req, false); err != nil {
		return err
	}
	e := &kapsel.Endpoint{
		TenantID:       tenantFrom(r.Context()).ID,
		State:          kapsel.EndpointActive,
		IngestVerifier: kapsel.VerifierConfig{Scheme: kapsel.SchemeNone},
		RetryPolicy:    kapsel.DefaultRetryPolicy(),
		Timeout:        kapsel.DefaultAttemptTimeout,
		Headers:        map[string]string{},
	}
	if err := a.apply(&req, e); err != nil {
		return err
	}
	secret := NewSigningSecret()
	if req.SigningSecret != nil {
		if err := checkSigningSecret(*req.SigningSecret); err != nil {
			return err
		}
		secret = *req.SigningSecret
	}
	e.SigningSecrets = []kapsel.SigningSecret{{Secret: secret}}
	created, err := a.store.EndpointInsert(r.Context(), &kapsel.EndpointInsertParams{Endpoint: e, Now: a.now()})
	if err != nil {
		return err
	}
	out := toEndpointJSON(created)
	out.SigningSecret = secret
	w.Header().Set("Location", "/v1/endpoints/"+string(created.ID))
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// listEndpoints: GET /v1/endpoints.
func (a *API) listEndpoints(w http.ResponseWriter, r *http.Request) error {
	limit, cursor, err := pageParams(r, func(s string) error { _, err := kapsel.ParseEndpointID(s); return err })
	if err != nil {
		return err
	}
	tenant := tenantFrom(r.Context()).ID
	p, err := list(limit, cursor,
		func(limit int, cursor string) ([]*kapsel.Endpoint, error) {
			return a.store.EndpointList(r.Context(), &kapsel.EndpointListParams{
				TenantID: tenant, Limit: limit, Cursor: kapsel.EndpointID(cursor),
			})
		},
		func(e *kapsel.Endpoint) string { return string(e.ID) }, toEndpointJSON)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

// getEndpoint: GET /v1/endpoints/{id}.
func (a *API) getEndpoint(w http.ResponseWriter, r *http.Request) error {
	e, err := a.getOwnEndpoint(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toEndpointJSON(e))
	return nil
}

// updateEndpoint: PATCH /v1/endpoints/{id}. Present fields replace the
// stored ones whole; the signing secret changes only by rotation: the
// store's EndpointUpdate never writes signing secrets, so this
// read-change-write cannot undo a rotation that ran in between (SPEC I8).
func (a *API) updateEndpoint(w http.ResponseWriter, r *http.Request) error {
	e, err := a.getOwnEndpoint(r)
	if err != nil {
		return err
	}
	var req endpointRequest
	if err := a.decode(w, r, &req, false); err != nil {
		return err
	}
	if req.SigningSecret != nil {
		return badRequest("signing_secret cannot be patched; use POST /v1/endpoints/{id}/rotate-signing-secret")
	}
	if err := a.apply(&req, e); err != nil {
		return err
	}
	e.SigningSecrets = nil // not written; stated so that no reader wonders
	updated, err := a.store.EndpointUpdate(r.Context(), &kapsel.EndpointUpdateParams{
		TenantID: e.TenantID, Endpoint: e, Now: a.now(),
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toEndpointJSON(updated))
	return nil
}

// deleteEndpoint: DELETE /v1/endpoints/{id} → 204. The endpoint stops
// accepting and delivering; its events and attempts stay readable.
func (a *API) deleteEndpoint(w http.ResponseWriter, r *http.Request) error {
	id, err := endpointID(r)
	if err != nil {
		return err
	}
	err = a.store.EndpointDelete(r.Context(), &kapsel.EndpointDeleteParams{
		ID: id, TenantID: tenantFrom(r.Context()).ID, Now: a.now(),
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
