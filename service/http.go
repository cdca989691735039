package service

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/internal/bearer"
)

// The management API (docs/api.md) is a thin JSON layer over the
// operations: each handler decodes its request, calls one operation and
// encodes the answer. No rule lives here.

// handlerFunc is a management route: it answers, or returns the error to
// answer with.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// route is one management route: a ServeMux pattern and its handler.
type route struct {
	pattern string
	handler http.Handler
}

// routeTable lists every /v1 route. openapi.yaml describes each of them,
// and TestOpenAPIDescribesEveryRoute checks that it does.
func (s *Service) routeTable() []route {
	return []route{
		{"GET " + OpenAPIPath, http.HandlerFunc(serveOpenAPI)},

		{"POST /v1/tenants", s.admin(s.httpCreateTenant)},
		{"GET /v1/tenants", s.admin(s.httpListTenants)},
		{"GET /v1/tenants/{id}", s.admin(s.httpGetTenant)},
		{"PATCH /v1/tenants/{id}", s.admin(s.httpUpdateTenant)},
		{"DELETE /v1/tenants/{id}", s.admin(s.httpDeleteTenant)},
		{"POST /v1/tenants/{id}/rotate-api-key", s.admin(s.httpRotateTenantAPIKey)},
		{"DELETE /v1/tenants/{id}/event-bodies", s.admin(s.httpExpungeTenantBodies)},

		{"POST /v1/sources", s.tenant(s.httpCreateSource)},
		{"GET /v1/sources", s.tenant(s.httpListSources)},
		{"GET /v1/sources/{id}", s.tenant(s.httpGetSource)},
		{"PATCH /v1/sources/{id}", s.tenant(s.httpUpdateSource)},
		{"DELETE /v1/sources/{id}", s.tenant(s.httpDeleteSource)},
		{"POST /v1/sources/{id}/pause", s.tenant(s.httpPauseSource)},
		{"POST /v1/sources/{id}/resume", s.tenant(s.httpResumeSource)},

		{"POST /v1/endpoints", s.tenant(s.httpCreateEndpoint)},
		{"GET /v1/endpoints", s.tenant(s.httpListEndpoints)},
		{"GET /v1/endpoints/{id}", s.tenant(s.httpGetEndpoint)},
		{"PATCH /v1/endpoints/{id}", s.tenant(s.httpUpdateEndpoint)},
		{"DELETE /v1/endpoints/{id}", s.tenant(s.httpDeleteEndpoint)},
		{"POST /v1/endpoints/{id}/pause", s.tenant(s.httpPauseEndpoint)},
		{"POST /v1/endpoints/{id}/resume", s.tenant(s.httpResumeEndpoint)},
		{"POST /v1/endpoints/{id}/rotate-signing-secret", s.tenant(s.httpRotateSigningSecret)},
		{"GET /v1/endpoints/{id}/health", s.tenant(s.httpEndpointHealth)},
		{"POST /v1/endpoints/{id}/replay", s.tenant(s.httpReplayEndpoint)},
		{"POST /v1/endpoints/{id}/backfill", s.tenant(s.httpBackfillEndpoint)},

		{"POST /v1/events", s.tenant(s.httpSend)},
		{"GET /v1/events", s.tenant(s.httpListEvents)},
		{"GET /v1/events/{id}", s.tenant(s.httpGetEvent)},
		{"GET /v1/events/{id}/attempts", s.tenant(s.httpListAttempts)},
		{"POST /v1/events/{id}/retry", s.tenant(s.httpRetryEvent)},
		{"DELETE /v1/events/{id}/body", s.tenant(s.httpExpungeEvent)},

		{"GET /v1/deliveries", s.tenant(s.httpListDeliveries)},
		{"GET /v1/deliveries/{id}", s.tenant(s.httpGetDelivery)},
		{"GET /v1/deliveries/{id}/attempts", s.tenant(s.httpListDeliveryAttempts)},
		{"POST /v1/deliveries/{id}/retry", s.tenant(s.httpRetryDelivery)},
	}
}

// managementRoutes builds the /v1 mux.
func (s *Service) managementRoutes() http.Handler {
	m := http.NewServeMux()
	for _, rt := range s.routeTable() {
		m.Handle(rt.pattern, rt.handler)
	}
	// Anything else under /v1 is a problem+json 404, not the mux's text one.
	m.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, kapsel.NewError(kapsel.CodeNotFound, "no route %s %s", r.Method, r.URL.Path))
	})
	return m
}

// admin wraps a route that only the admin token may call.
func (s *Service) admin(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.adminToken.Matches(bearer.Token(r)) {
			s.writeError(w, r, errUnauthenticated)
			return
		}
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

type tenantKey struct{}

// tenantOf returns the id of the tenant the request was authenticated as.
func tenantOf(r *http.Request) kapsel.TenantID {
	t, _ := r.Context().Value(tenantKey{}).(*kapsel.Tenant)
	return t.ID
}

// tenant wraps a route that a tenant API key must authorise
// ([Service.AuthenticateTenant]); the route finds the tenant with tenantOf.
func (s *Service) tenant(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, err := s.AuthenticateTenant(r.Context(), bearer.Token(r))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), tenantKey{}, t))
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// logError logs a management request that failed by the server's fault.
func (s *Service) logError(r *http.Request, code kapsel.Code, err error) {
	// Store errors carry ids and driver messages, never secrets or bodies.
	s.log.LogAttrs(r.Context(), slog.LevelError, "management request failed",
		slog.String("method", r.Method), slog.String("route", r.Pattern),
		slog.String("code", string(code)), slog.String("error", err.Error()))
}
