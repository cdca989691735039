package service_test

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

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
		// The stores keep a burst in a 32-bit integer column: a larger one
		// made Postgres refuse the row, answered 500 (found by the fault
		// campaign's random JSON).
		{"burst over 32 bits", map[string]any{"name": "x", "rate_burst": 2147483648}, 400, kapsel.CodeMalformedRequest},
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

func TestListTenantsRoute(t *testing.T) {
	t.Parallel()
	f := setup(t)
	var want []string
	for _, name := range []string{"a", "b", "c", "d"} {
		id, _ := f.tenant(name)
		want = append(want, string(id))
	}
	gone := want[1]
	f.ok(http.StatusNoContent, "DELETE", "/v1/tenants/"+gone, adminToken, nil)
	want = slices.Delete(want, 1, 2)
	slices.Sort(want)

	// Page by page, in id order, the deleted tenant left out, no API key.
	var got []string
	path := "/v1/tenants?limit=2"
	for range 10 {
		page := f.ok(http.StatusOK, "GET", path, adminToken, nil)
		for _, item := range data(t, page) {
			if _, ok := item["api_key"]; ok {
				t.Fatalf("a listed tenant shows an api_key: %v", item)
			}
			if item["created_at"] != "2026-01-01T00:00:00Z" || item["updated_at"] != "2026-01-01T00:00:00Z" {
				t.Fatalf("listed tenant %v", item)
			}
			got = append(got, item["id"].(string))
		}
		if page["has_more"] != true {
			if page["next_cursor"] != nil {
				t.Fatalf("the last page has a next_cursor: %v", page)
			}
			break
		}
		path = "/v1/tenants?limit=2&cursor=" + page["next_cursor"].(string)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("listed tenants %v, want %v", got, want)
	}

	f.problem(http.StatusBadRequest, kapsel.CodeMalformedRequest, "GET", "/v1/tenants?limit=0", adminToken, nil)
	f.problem(http.StatusBadRequest, kapsel.CodeMalformedRequest, "GET", "/v1/tenants?cursor=nope", adminToken, nil)
	_, key := f.tenant("e")
	f.problem(http.StatusUnauthorized, kapsel.CodeUnauthenticated, "GET", "/v1/tenants", key, nil)
	f.problem(http.StatusUnauthorized, kapsel.CodeUnauthenticated, "GET", "/v1/tenants", "", nil)
}

func TestUpdateTenantRoute(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.start()
	id, key := f.tenant("acme")
	path := "/v1/tenants/" + string(id)
	for range 2 { // unlimited: both accepted
		f.ok(http.StatusAccepted, "POST", "/v1/events", key, map[string]any{"payload": 1})
	}

	// Only the fields given change; updated_at moves, created_at stays.
	f.clock.Advance(time.Hour)
	out := f.ok(http.StatusOK, "PATCH", path, adminToken, map[string]any{"rate_limit": 1, "rate_burst": 1})
	if out["name"] != "acme" || out["rate_limit"] != 1.0 || out["rate_burst"] != 1.0 ||
		out["created_at"] != "2026-01-01T00:00:00Z" || out["updated_at"] != "2026-01-01T01:00:00Z" || out["api_key"] != nil {
		t.Fatalf("patched rate: %v", out)
	}
	f.clock.Advance(time.Hour)
	out = f.ok(http.StatusOK, "PATCH", path, adminToken, map[string]any{"name": "  Acme Corp  ", "rate_burst": nil})
	if out["name"] != "Acme Corp" || out["rate_limit"] != 1.0 || out["rate_burst"] != 1.0 || out["updated_at"] != "2026-01-01T02:00:00Z" {
		t.Fatalf("patched name: %v", out)
	}
	if got := f.ok(http.StatusOK, "GET", path, adminToken, nil); got["name"] != "Acme Corp" || got["updated_at"] != "2026-01-01T02:00:00Z" {
		t.Fatalf("read after the patches: %v", got)
	}
	// The key still works, and the new rate applies to sends once the
	// ingester's cache has expired (1 s).
	f.clock.Advance(2 * time.Second)
	f.ok(http.StatusAccepted, "POST", "/v1/events", key, map[string]any{"payload": 2})
	f.problem(http.StatusTooManyRequests, kapsel.CodeRateLimited, "POST", "/v1/events", key, map[string]any{"payload": 3})

	// Refused patches change nothing.
	for name, body := range map[string]any{
		"blank name":     map[string]any{"name": "  "},
		"empty name":     map[string]any{"name": ""},
		"long name":      map[string]any{"name": strings.Repeat("n", 256)},
		"negative rate":  map[string]any{"name": "x", "rate_limit": -0.5},
		"negative burst": map[string]any{"rate_burst": -1},
		"wrong type":     map[string]any{"rate_limit": "fast"},
		"unknown field":  map[string]any{"api_key": "kap_mine"},
		"not json":       "{",
	} {
		t.Run(name, func(t *testing.T) {
			requireProblem(t, f.do("PATCH", path, adminToken, body), http.StatusBadRequest, kapsel.CodeMalformedRequest)
		})
	}
	if got := f.ok(http.StatusOK, "GET", path, adminToken, nil); got["name"] != "Acme Corp" || got["rate_limit"] != 1.0 ||
		got["rate_burst"] != 1.0 || got["updated_at"] != "2026-01-01T02:00:00Z" {
		t.Fatalf("tenant after refused patches: %v", got)
	}

	f.problem(http.StatusUnauthorized, kapsel.CodeUnauthenticated, "PATCH", path, key, map[string]any{"rate_limit": 0})
	f.problem(http.StatusNotFound, kapsel.CodeNotFound, "PATCH", "/v1/tenants/"+string(kapsel.NewTenantID()), adminToken, map[string]any{"name": "x"})
	f.problem(http.StatusNotFound, kapsel.CodeNotFound, "PATCH", "/v1/tenants/ten_nope", adminToken, map[string]any{"name": "x"})
}

func TestDeleteTenantRoute(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.start()
	h := f.svc.Handler() // management and ingest
	id, key := f.tenant("acme")
	otherID, otherKey := f.tenant("globex")
	src := f.source(key, nil)["id"].(string)
	ep := f.pausedEndpoint(key, nil) // its deliveries wait
	otherEp := f.pausedEndpoint(otherKey, nil)
	rec := serve(h, newRequest("POST", "/ingest/"+src, `{"n":1}`))
	if rec.Code != http.StatusAccepted || !strings.Contains(rec.Body.String(), `"deliveries":1`) {
		t.Fatalf("ingest before the delete: %d %s", rec.Code, rec.Body)
	}
	otherEvent := f.ok(http.StatusAccepted, "POST", "/v1/events", otherKey, map[string]any{"payload": 1})["id"].(string)

	// Only the admin token deletes, a tenant key not even its own tenant.
	f.problem(http.StatusUnauthorized, kapsel.CodeUnauthenticated, "DELETE", "/v1/tenants/"+string(id), key, nil)
	f.ok(http.StatusOK, "GET", "/v1/endpoints/"+ep, key, nil)
	rec = f.do("DELETE", "/v1/tenants/"+string(id), adminToken, nil)
	if rec.Code != http.StatusNoContent || rec.Body.Len() != 0 {
		t.Fatalf("DELETE: %d %q", rec.Code, rec.Body)
	}

	// Its API key is refused like an unknown one.
	for _, route := range [][2]string{{"GET", "/v1/endpoints"}, {"GET", "/v1/sources/" + src}, {"POST", "/v1/events"}} {
		p := f.problem(http.StatusUnauthorized, kapsel.CodeUnauthenticated, route[0], route[1], key, map[string]any{"payload": 1})
		requireNoSecret(t, fmt.Sprint(p), key)
	}
	// The admin no longer finds it.
	f.problem(http.StatusNotFound, kapsel.CodeNotFound, "GET", "/v1/tenants/"+string(id), adminToken, nil)
	f.problem(http.StatusNotFound, kapsel.CodeNotFound, "PATCH", "/v1/tenants/"+string(id), adminToken, map[string]any{"name": "back"})
	f.problem(http.StatusNotFound, kapsel.CodeNotFound, "POST", "/v1/tenants/"+string(id)+"/rotate-api-key", adminToken, nil)
	f.problem(http.StatusNotFound, kapsel.CodeNotFound, "DELETE", "/v1/tenants/"+string(id), adminToken, nil)
	list := data(t, f.ok(http.StatusOK, "GET", "/v1/tenants", adminToken, nil))
	if len(list) != 1 || list[0]["id"] != string(otherID) {
		t.Fatalf("tenants after the delete: %v", list)
	}
	// Its source's ingest URL answers 404 E1003 once the ingester's cache
	// (1 s) has expired.
	f.clock.Advance(2 * time.Second)
	rec = serve(h, newRequest("POST", "/ingest/"+src, `{"n":2}`))
	requireProblem(t, rec, http.StatusNotFound, kapsel.CodeUnknownSource)
	// Its pending delivery ended; the event and delivery are kept.
	ds, err := f.store.DeliveryList(t.Context(), &kapsel.DeliveryListParams{TenantID: id})
	if err != nil || len(ds) != 1 || ds[0].Status != kapsel.DeliveryFailed || ds[0].LastError != kapsel.LastErrorEndpointDeleted {
		t.Fatalf("the deleted tenant's deliveries: %+v, %v; want one, failed, %q", ds, err, kapsel.LastErrorEndpointDeleted)
	}

	// The other tenant is untouched.
	f.ok(http.StatusOK, "GET", "/v1/endpoints/"+otherEp, otherKey, nil)
	if dl := data(t, f.ok(http.StatusOK, "GET", "/v1/deliveries?event_id="+otherEvent, otherKey, nil)); len(dl) != 1 || dl[0]["status"] != "pending" {
		t.Fatalf("the other tenant's delivery: %v", dl)
	}

	f.problem(http.StatusNotFound, kapsel.CodeNotFound, "DELETE", "/v1/tenants/"+string(kapsel.NewTenantID()), adminToken, nil)
	f.problem(http.StatusNotFound, kapsel.CodeNotFound, "DELETE", "/v1/tenants/ten_nope", adminToken, nil)
}
