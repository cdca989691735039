package service_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/service"
)

func TestCreateTenant(t *testing.T) {
	t.Parallel()
	f := setup(t)
	out := f.ok(http.StatusCreated, "POST", "/v1/tenants", adminToken, map[string]any{"name": "acme", "rate_limit": 100, "rate_burst": 200})
	key, _ := out["api_key"].(string)
	if !strings.HasPrefix(key, service.APIKeyPrefix) || len(key) != len(service.APIKeyPrefix)+43 {
		t.Fatalf("api_key %q is not kap_ + 43 base64url characters", key)
	}
	if out["name"] != "acme" || out["rate_limit"] != 100.0 || out["rate_burst"] != 200.0 || out["created_at"] != "2026-01-01T00:00:00Z" {
		t.Fatalf("tenant %v", out)
	}
	id := kapsel.TenantID(out["id"].(string))
	if _, err := kapsel.ParseTenantID(string(id)); err != nil {
		t.Fatal(err)
	}
	// Only the hash is stored; it is the SHA-256 of the key shown.
	stored, err := f.store.TenantGet(t.Context(), &kapsel.TenantGetParams{ID: id})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stored.APIKeyHash, service.HashAPIKey(key)) || bytes.Contains(stored.APIKeyHash, []byte(key)) {
		t.Fatalf("stored hash %x does not match the key", stored.APIKeyHash)
	}
	// The key authenticates the tenant's routes.
	f.ok(http.StatusOK, "GET", "/v1/endpoints", key, nil)

	// A read never shows the key again.
	rec := f.do("GET", "/v1/tenants/"+string(id), adminToken, nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("get tenant: %d %s", rec.Code, rec.Body)
	}
	requireNoSecret(t, rec.Body.String(), key)
	if !strings.Contains(rec.Body.String(), `"name":"acme"`) {
		t.Fatalf("get tenant: %s", rec.Body)
	}
}

func TestCreateTenantKeysDiffer(t *testing.T) {
	t.Parallel()
	f := setup(t)
	_, k1 := f.tenant("a")
	_, k2 := f.tenant("b")
	if k1 == k2 {
		t.Fatal("two tenants got the same API key")
	}
}

func TestTenantValidation(t *testing.T) {
	t.Parallel()
	f := setup(t)
	for _, tc := range []struct {
		name   string
		body   any
		status int
		code   kapsel.Code
	}{
		{"no name", map[string]any{}, 400, kapsel.CodeMalformedRequest},
		{"blank name", map[string]any{"name": "  "}, 400, kapsel.CodeMalformedRequest},
		{"long name", map[string]any{"name": strings.Repeat("n", 256)}, 400, kapsel.CodeMalformedRequest},
		{"negative rate", map[string]any{"name": "x", "rate_limit": -1}, 400, kapsel.CodeMalformedRequest},
		{"negative burst", map[string]any{"name": "x", "rate_burst": -1}, 400, kapsel.CodeMalformedRequest},
		{"wrong type", map[string]any{"name": 7}, 400, kapsel.CodeMalformedRequest},
		{"unknown field", map[string]any{"name": "x", "api_key": "mine"}, 400, kapsel.CodeMalformedRequest},
		{"not json", "{name:", 400, kapsel.CodeMalformedRequest},
		{"empty", "", 400, kapsel.CodeMalformedRequest},
		{"trailing data", `{"name":"x"} {}`, 400, kapsel.CodeMalformedRequest},
		{"too large", `{"name":"` + strings.Repeat("x", service.DefaultMaxRequestBytes) + `"}`, 413, kapsel.CodeBodyTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.body == "" {
				rec := f.do("POST", "/v1/tenants", adminToken, nil)
				requireProblem(t, rec, tc.status, tc.code)
				return
			}
			f.problem(tc.status, tc.code, "POST", "/v1/tenants", adminToken, tc.body)
		})
	}
}

func TestGetTenantNotFound(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.problem(404, kapsel.CodeNotFound, "GET", "/v1/tenants/"+string(kapsel.NewTenantID()), adminToken, nil)
	f.problem(404, kapsel.CodeNotFound, "GET", "/v1/tenants/nonsense", adminToken, nil)
}

func TestAuthFailures(t *testing.T) {
	t.Parallel()
	f := setup(t)
	tenantID, key := f.tenant("acme")
	ep := f.endpoint(key, nil)
	epPath := "/v1/endpoints/" + ep["id"].(string)
	for _, tc := range []struct {
		name, method, path string
		header             string // Authorization header; "" = none
	}{
		{"tenants without token", "POST", "/v1/tenants", ""},
		{"tenants with wrong admin token", "POST", "/v1/tenants", "Bearer wrong"},
		{"tenants with admin token prefix", "POST", "/v1/tenants", "Bearer " + adminToken[:len(adminToken)-1]},
		{"tenants with a tenant key", "POST", "/v1/tenants", "Bearer " + key},
		{"tenant read with a tenant key", "GET", "/v1/tenants/" + string(tenantID), "Bearer " + key},
		{"tenants with basic auth", "POST", "/v1/tenants", "Basic " + adminToken},
		{"endpoints without token", "GET", "/v1/endpoints", ""},
		{"endpoints with admin token", "GET", "/v1/endpoints", "Bearer " + adminToken},
		{"endpoints with unknown key", "GET", "/v1/endpoints", "Bearer kap_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{"endpoint with altered key", "GET", epPath, "Bearer " + key[:len(key)-1] + "x"},
		{"delete without token", "DELETE", epPath, ""},
		{"pause with empty bearer", "POST", epPath + "/pause", "Bearer "},
		{"events with no scheme", "GET", "/v1/events", key},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := newRequest(tc.method, tc.path, `{"name":"x"}`)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			rec := serve(f.handler, req)
			p := requireProblem(t, rec, http.StatusUnauthorized, kapsel.CodeUnauthenticated)
			requireNoSecret(t, rec.Body.String(), key, adminToken)
			if p["type"] != "https://kapsel.dev/errors/E1010" {
				t.Fatalf("type %v", p["type"])
			}
		})
	}
	// Nothing was changed by the refused calls.
	f.ok(http.StatusOK, "GET", epPath, key, nil)
	out := f.ok(http.StatusOK, "GET", epPath, key, nil)
	if out["state"] != "active" {
		t.Fatalf("state %v after refused calls", out["state"])
	}
}

func TestNoAdminTokenConfigured(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.handler = managementHandler(t, f.store, service.Config{})
	f.problem(401, kapsel.CodeUnauthenticated, "POST", "/v1/tenants", "", map[string]any{"name": "x"})
	f.problem(401, kapsel.CodeUnauthenticated, "POST", "/v1/tenants", " ", map[string]any{"name": "x"})
}

func TestUnknownRoute(t *testing.T) {
	t.Parallel()
	f := setup(t)
	_, key := f.tenant("acme")
	f.problem(404, kapsel.CodeNotFound, "GET", "/v1/nothing", key, nil)
	f.problem(404, kapsel.CodeNotFound, "PUT", "/v1/endpoints", key, nil)
}

func TestRotateTenantAPIKeyRoute(t *testing.T) {
	t.Parallel()
	f := setup(t)
	id, old := f.tenant("acme")
	path := "/v1/tenants/" + string(id) + "/rotate-api-key"

	// Only the admin token may rotate; a tenant key cannot rotate itself.
	f.problem(http.StatusUnauthorized, kapsel.CodeUnauthenticated, "POST", path, old, nil)
	out := f.ok(http.StatusOK, "POST", path, adminToken, nil)
	key, _ := out["api_key"].(string)
	if out["id"] != string(id) || !strings.HasPrefix(key, service.APIKeyPrefix) || key == old {
		t.Fatalf("rotation answered %v", out)
	}
	f.problem(http.StatusUnauthorized, kapsel.CodeUnauthenticated, "GET", "/v1/endpoints", old, nil)
	f.ok(http.StatusOK, "GET", "/v1/endpoints", key, nil)
	// The key is shown once: reads never carry it.
	if got := f.ok(http.StatusOK, "GET", "/v1/tenants/"+string(id), adminToken, nil); got["api_key"] != nil {
		t.Fatalf("tenant read shows an api key: %v", got)
	}
	f.problem(http.StatusNotFound, kapsel.CodeNotFound, "POST", "/v1/tenants/"+string(kapsel.NewTenantID())+"/rotate-api-key", adminToken, nil)
	f.problem(http.StatusNotFound, kapsel.CodeNotFound, "POST", "/v1/tenants/ten_nope/rotate-api-key", adminToken, nil)
}
