package service_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/ingest"
	"github.com/kapsel-dev/kapsel/service"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

// call sends one request through the contract. body is marshalled unless it
// is a string or nil.
func (c *contract) call(h http.Handler, want reqWant, method, path, token string, body any) *httptest.ResponseRecorder {
	c.t.Helper()
	var raw string
	switch b := body.(type) {
	case nil:
	case string:
		raw = b
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		raw = string(j)
	}
	req := httptest.NewRequest(method, path, strings.NewReader(raw))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.exchange(h, req, want)
}

// answer decodes a JSON answer that must have status.
func answer(t testing.TB, rec *httptest.ResponseRecorder, status int) map[string]any {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	var out map[string]any
	if status != http.StatusNoContent {
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%v; body %s", err, rec.Body)
		}
	}
	return out
}

// TestOpenAPIContract drives the management API through every route and its
// main error answers, validating each exchange against openapi.yaml.
func TestOpenAPIContract(t *testing.T) {
	t.Parallel()
	c := newContract(t)
	f := setup(t)
	h := f.handler
	ok := func(status int, method, path, token string, body any) map[string]any {
		t.Helper()
		return answer(t, c.call(h, reqValid, method, path, token, body), status)
	}
	// fail sends a request that must fail with status and code; want says
	// whether the document refuses it too.
	fail := func(want reqWant, status int, code kapsel.Code, method, path, token string, body any) {
		t.Helper()
		requireProblem(t, c.call(h, want, method, path, token, body), status, code)
	}

	// The document itself, without a token.
	rec := c.call(h, reqValid, "GET", service.OpenAPIPath, "", nil)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != service.OpenAPIContentType ||
		rec.Body.String() != string(service.OpenAPI()) {
		t.Fatalf("GET %s: %d %v", service.OpenAPIPath, rec.Code, rec.Header())
	}

	// Tenants (admin).
	tenant := ok(201, "POST", "/v1/tenants", adminToken, map[string]any{"name": "acme", "rate_limit": 100, "rate_burst": 200})
	tenantID := tenant["id"].(string)
	ok(200, "GET", "/v1/tenants/"+tenantID, adminToken, nil)
	key := ok(200, "POST", "/v1/tenants/"+tenantID+"/rotate-api-key", adminToken, nil)["api_key"].(string)
	_, otherKey := f.tenant("other")

	fail(reqInvalid, 401, kapsel.CodeUnauthenticated, "POST", "/v1/tenants", "", map[string]any{"name": "x"})
	fail(reqValid, 401, kapsel.CodeUnauthenticated, "GET", "/v1/tenants/"+tenantID, key, nil) // an API key is not the admin token
	fail(reqValid, 404, kapsel.CodeNotFound, "GET", "/v1/tenants/ten_01M8KRGK1E3HVSJ44HAE1XDXFM", adminToken, nil)
	fail(reqInvalid, 404, kapsel.CodeNotFound, "POST", "/v1/tenants/nope/rotate-api-key", adminToken, nil)
	fail(reqInvalid, 400, kapsel.CodeMalformedRequest, "POST", "/v1/tenants", adminToken, `{"name":`)
	fail(reqInvalid, 400, kapsel.CodeMalformedRequest, "POST", "/v1/tenants", adminToken, map[string]any{"name": "x", "plan": "gold"})
	fail(reqInvalid, 400, kapsel.CodeMalformedRequest, "POST", "/v1/tenants", adminToken, map[string]any{"name": "x", "rate_limit": -1})
	fail(reqInvalid, 413, kapsel.CodeBodyTooLarge, "POST", "/v1/tenants", adminToken, map[string]any{"name": strings.Repeat("a", 2<<20)})

	// The tenants list, a patch and a delete (of a tenant of its own).
	first := ok(200, "GET", "/v1/tenants?limit=1", adminToken, nil)
	if first["has_more"] != true || first["next_cursor"] == nil {
		t.Fatalf("first page of tenants: %v", first)
	}
	if page := ok(200, "GET", "/v1/tenants?cursor="+first["next_cursor"].(string), adminToken, nil); len(data(t, page)) != 1 || page["has_more"] != false {
		t.Fatalf("second page of the two tenants: %v", page)
	}
	if got := ok(200, "PATCH", "/v1/tenants/"+tenantID, adminToken, map[string]any{"name": "acme-2", "rate_limit": nil}); got["name"] != "acme-2" || got["rate_limit"] != 100.0 {
		t.Fatalf("patched tenant: %v", got)
	}
	ok(200, "PATCH", "/v1/tenants/"+tenantID, adminToken, map[string]any{"rate_limit": 0, "rate_burst": 0})
	doomed := ok(201, "POST", "/v1/tenants", adminToken, map[string]any{"name": "doomed"})
	ok(204, "DELETE", "/v1/tenants/"+doomed["id"].(string), adminToken, nil)
	fail(reqValid, 401, kapsel.CodeUnauthenticated, "GET", "/v1/sources", doomed["api_key"].(string), nil)
	fail(reqValid, 404, kapsel.CodeNotFound, "DELETE", "/v1/tenants/"+doomed["id"].(string), adminToken, nil)
	fail(reqValid, 404, kapsel.CodeNotFound, "PATCH", "/v1/tenants/"+doomed["id"].(string), adminToken, map[string]any{"name": "back"})
	fail(reqInvalid, 404, kapsel.CodeNotFound, "DELETE", "/v1/tenants/nope", adminToken, nil)
	fail(reqValid, 401, kapsel.CodeUnauthenticated, "GET", "/v1/tenants", key, nil)
	fail(reqValid, 401, kapsel.CodeUnauthenticated, "PATCH", "/v1/tenants/"+tenantID, key, map[string]any{"name": "mine"})
	fail(reqValid, 401, kapsel.CodeUnauthenticated, "DELETE", "/v1/tenants/"+tenantID, key, nil)
	fail(reqInvalid, 400, kapsel.CodeMalformedRequest, "GET", "/v1/tenants?limit=501", adminToken, nil)
	fail(reqInvalid, 400, kapsel.CodeMalformedRequest, "GET", "/v1/tenants?cursor=ep_01M8KRGKE0VYVQGH2M6M1VXAAA", adminToken, nil)
	fail(reqValid, 400, kapsel.CodeMalformedRequest, "PATCH", "/v1/tenants/"+tenantID, adminToken, map[string]any{"name": "   "})
	fail(reqInvalid, 400, kapsel.CodeMalformedRequest, "PATCH", "/v1/tenants/"+tenantID, adminToken, map[string]any{"rate_burst": -1})
	fail(reqInvalid, 400, kapsel.CodeMalformedRequest, "PATCH", "/v1/tenants/"+tenantID, adminToken, map[string]any{"api_key": "kap_mine"})
	fail(reqInvalid, 413, kapsel.CodeBodyTooLarge, "PATCH", "/v1/tenants/"+tenantID, adminToken, map[string]any{"name": strings.Repeat("a", 2<<20)})

	// Sources.
	srcOut := ok(201, "POST", "/v1/sources", key, map[string]any{
		"name": "github", "verifier": map[string]any{"scheme": "hmac-sha256", "secrets": []string{"s1", "s2"}, "header": "X-Sig"},
		"event_type_from": "header:X-Event", "idempotency_key_from": "json:/id",
	})
	src := srcOut["id"].(string)
	if srcOut["ingest_url"] != "/ingest/"+src {
		t.Fatalf("source: %v", srcOut)
	}
	src2 := ok(201, "POST", "/v1/sources", key, map[string]any{})["id"].(string)
	if page := ok(200, "GET", "/v1/sources?limit=1", key, nil); page["has_more"] != true || page["next_cursor"] == nil {
		t.Fatalf("first page of sources: %v", page)
	}
	ok(200, "GET", "/v1/sources?cursor="+src, key, nil)
	ok(200, "GET", "/v1/sources/"+src, key, nil)
	ok(200, "PATCH", "/v1/sources/"+src, key, map[string]any{
		"name": "github-2", "verifier": map[string]any{"scheme": "github", "secrets": []string{"new", "old"}},
		"event_type_from": "", "idempotency_key_from": nil,
	})
	ok(200, "POST", "/v1/sources/"+src2+"/pause", key, nil)
	ok(200, "POST", "/v1/sources/"+src2+"/resume", key, nil)

	fail(reqInvalid, 400, kapsel.CodeMalformedRequest, "POST", "/v1/sources", key, map[string]any{"name": "x", "url": "https://example.com/"})
	fail(reqInvalid, 400, kapsel.CodeMalformedRequest, "POST", "/v1/sources", key, map[string]any{"event_type_from": "xml:/type"})
	fail(reqValid, 400, kapsel.CodeMalformedRequest, "POST", "/v1/sources", key, map[string]any{"event_type_from": "header:X Event"})
	fail(reqValid, 400, kapsel.CodeMalformedRequest, "POST", "/v1/sources", key, map[string]any{"verifier": map[string]any{"scheme": "md5", "secrets": []string{"x"}}})
	fail(reqValid, 400, kapsel.CodeMalformedRequest, "PATCH", "/v1/sources/"+src, key, map[string]any{"verifier": map[string]any{"scheme": "github"}})
	fail(reqInvalid, 400, kapsel.CodeMalformedRequest, "GET", "/v1/sources?limit=0", key, nil)
	fail(reqInvalid, 400, kapsel.CodeMalformedRequest, "GET", "/v1/sources?cursor="+tenantID, key, nil)
	fail(reqValid, 401, kapsel.CodeUnauthenticated, "GET", "/v1/sources", adminToken, nil)
	fail(reqValid, 404, kapsel.CodeNotFound, "GET", "/v1/sources/"+src, otherKey, nil)
	fail(reqInvalid, 404, kapsel.CodeNotFound, "GET", "/v1/sources/src_nope", key, nil)
	fail(reqValid, 404, kapsel.CodeNotFound, "PATCH", "/v1/sources/src_01M8KRGKE0VYVQGH2M6M1VXAAA", key, map[string]any{"name": "x"})
	fail(reqValid, 404, kapsel.CodeNotFound, "POST", "/v1/sources/src_01M8KRGKE0VYVQGH2M6M1VXAAA/pause", key, nil)
	fail(reqValid, 404, kapsel.CodeNotFound, "POST", "/v1/sources/"+src+"/resume", otherKey, nil)
	fail(reqInvalid, 413, kapsel.CodeBodyTooLarge, "PATCH", "/v1/sources/"+src, key, map[string]any{"name": strings.Repeat("a", 2<<20)})

	// Endpoints.
	full := ok(201, "POST", "/v1/endpoints", key, map[string]any{
		"name": "orders", "url": "https://example.com/webhooks",
		"retry_policy": map[string]any{"max_attempts": 10, "initial_interval_ms": 1000},
		"timeout_ms":   10000,
		"headers":      map[string]string{"X-Team": "payments", "Authorization": "Bearer dest-token"},
		"event_types":  []string{"invoice.*"}, "channels": []string{"org_42"}, "source_ids": []string{src},
	})
	ep := full["id"].(string)
	ep2 := ok(201, "POST", "/v1/endpoints", key, map[string]any{
		"url": "https://example.com/b", "signing_secret": "whsec_" + strings.Repeat("QUFB", 8),
	})["id"].(string)
	page := ok(200, "GET", "/v1/endpoints?limit=1", key, nil)
	if page["has_more"] != true || page["next_cursor"] == nil {
		t.Fatalf("first page: %v", page)
	}
	ok(200, "GET", "/v1/endpoints?limit=1&cursor="+page["next_cursor"].(string), key, nil)
	ok(200, "GET", "/v1/endpoints/"+ep, key, nil)
	ok(200, "PATCH", "/v1/endpoints/"+ep, key, map[string]any{
		"name": "orders-v2", "headers": map[string]string{"Authorization": service.RedactedValue, "X-Team": "billing"},
		"retry_policy": map[string]any{"retry_4xx": false}, "event_types": nil, "channels": []string{}, "source_ids": []string{},
	})
	ok(200, "POST", "/v1/endpoints/"+ep+"/pause", key, nil)
	ok(200, "POST", "/v1/endpoints/"+ep+"/resume", key, nil)
	rot := ok(200, "POST", "/v1/endpoints/"+ep+"/rotate-signing-secret", key, map[string]any{"grace_period_s": 3600})
	if rot["previous_expires_at"] == nil {
		t.Fatalf("rotation: %v", rot)
	}
	ok(200, "POST", "/v1/endpoints/"+ep+"/rotate-signing-secret", key, nil)
	if rot = ok(200, "POST", "/v1/endpoints/"+ep2+"/rotate-signing-secret", key, map[string]any{"grace_period_s": 0}); rot["previous_expires_at"] != nil {
		t.Fatalf("rotation without grace: %v", rot)
	}
	if hl := ok(200, "GET", "/v1/endpoints/"+ep+"/health", key, nil); hl["success_rate"] != nil {
		t.Fatalf("health without attempts: %v", hl)
	}

	fail(reqValid, 401, kapsel.CodeUnauthenticated, "GET", "/v1/endpoints", "kap_wrong", nil)
	fail(reqInvalid, 401, kapsel.CodeUnauthenticated, "GET", "/v1/endpoints/"+ep, "", nil)
	fail(reqValid, 401, kapsel.CodeUnauthenticated, "POST", "/v1/endpoints", adminToken, map[string]any{"url": "https://example.com/"})
	fail(reqValid, 404, kapsel.CodeNotFound, "GET", "/v1/endpoints/"+ep, otherKey, nil) // another tenant's
	fail(reqInvalid, 404, kapsel.CodeNotFound, "PATCH", "/v1/endpoints/ep_nope", key, map[string]any{"name": "x"})
	fail(reqValid, 404, kapsel.CodeNotFound, "POST", "/v1/endpoints/ep_01M8KRGKE0VYVQGH2M6M1VXAAA/pause", key, nil)
	fail(reqValid, 404, kapsel.CodeNotFound, "POST", "/v1/endpoints", key, map[string]any{"url": "https://example.com/", "source_ids": []string{"src_01M8KRGKE0VYVQGH2M6M1VXAAA"}})
	fail(reqInvalid, 400, kapsel.CodeMalformedRequest, "POST", "/v1/endpoints", key, "")
	fail(reqInvalid, 400, kapsel.CodeMalformedRequest, "POST", "/v1/endpoints", key, map[string]any{"url": "https://example.com/", "colour": "red"})
	fail(reqInvalid, 400, kapsel.CodeMalformedRequest, "POST", "/v1/endpoints", key, map[string]any{"url": "https://example.com/", "timeout_ms": 5})
	fail(reqValid, 400, kapsel.CodeMalformedRequest, "POST", "/v1/endpoints", key, map[string]any{"url": "https://example.com/", "event_types": []string{"invoice*"}})
	fail(reqInvalid, 400, kapsel.CodeMalformedRequest, "POST", "/v1/endpoints", key, map[string]any{"url": "https://example.com/", "ingest_verifier": map[string]any{"scheme": "github"}})
	fail(reqInvalid, 400, kapsel.CodeMalformedRequest, "PATCH", "/v1/endpoints/"+ep, key, map[string]any{"signing_secret": "whsec_x"})
	fail(reqInvalid, 400, kapsel.CodeMalformedRequest, "GET", "/v1/endpoints?limit=0", key, nil)
	fail(reqInvalid, 400, kapsel.CodeMalformedRequest, "GET", "/v1/endpoints?limit=501", key, nil)
	fail(reqInvalid, 400, kapsel.CodeMalformedRequest, "GET", "/v1/endpoints?cursor=bogus", key, nil)
	fail(reqInvalid, 400, kapsel.CodeMalformedRequest, "POST", "/v1/endpoints/"+ep+"/rotate-signing-secret", key, map[string]any{"grace_period_s": 1 << 40})
	fail(reqValid, 422, kapsel.CodeInvalidURL, "POST", "/v1/endpoints", key, map[string]any{"url": "http://169.254.169.254/latest"})
	fail(reqValid, 422, kapsel.CodeInvalidHeader, "PATCH", "/v1/endpoints/"+ep, key, map[string]any{"headers": map[string]string{"Host": "evil"}})
	fail(reqInvalid, 413, kapsel.CodeBodyTooLarge, "PATCH", "/v1/endpoints/"+ep, key, map[string]any{"name": strings.Repeat("a", 2<<20)})

	// A disabled endpoint with an open breaker: the nullable fields set.
	ctx := context.Background()
	if _, err := f.store.EndpointSetState(ctx, &kapsel.EndpointSetStateParams{
		ID: kapsel.EndpointID(ep2), TenantID: kapsel.TenantID(tenantID), State: kapsel.EndpointDisabled,
		DisabledReason: kapsel.DisabledGone, Now: f.clock.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	now := f.clock.Now()
	if _, err := f.store.BreakerSave(ctx, &kapsel.BreakerSaveParams{State: &kapsel.BreakerState{
		EndpointID: kapsel.EndpointID(ep2), Status: kapsel.BreakerOpen, Trips: 2,
		OpenUntil: now.Add(time.Minute), FailingSince: now.Add(-time.Hour),
	}, Now: now}); err != nil {
		t.Fatal(err)
	}
	if hl := ok(200, "GET", "/v1/endpoints/"+ep2+"/health", key, nil); hl["disabled_reason"] != "gone" {
		t.Fatalf("health of a disabled endpoint: %v", hl)
	}

	// Events, deliveries and attempts: one delivered (ingested by the
	// source), one failed with a binary answer, one pending with a binary
	// body.
	tid := kapsel.TenantID(tenantID)
	delivered := f.insert(&kapsel.EventInsertParams{TenantID: tid, SourceID: kapsel.SourceID(src), Type: "push", Body: []byte(`{"n":1}`)})
	f.attempt(200)
	failed := f.event(tid, ep, `{"n":2}`)
	f.attempt(500)
	pending := f.event(tid, ep, "\xff\xfe")
	ok(200, "GET", "/v1/events", key, nil)
	ok(200, "GET", "/v1/events?limit=1", key, nil)
	ok(200, "GET", fmt.Sprintf("/v1/events?source_id=%s&type=", src), key, nil)
	ok(200, "GET", "/v1/events?cursor="+string(delivered), key, nil)
	if ev := ok(200, "GET", "/v1/events/"+string(delivered)+"?include=body", key, nil); ev["body_encoding"] != "text" || ev["source_id"] != src {
		t.Fatalf("event: %v", ev)
	}
	if ev := ok(200, "GET", "/v1/events/"+string(pending)+"?include=body", key, nil); ev["body_encoding"] != "base64" || ev["source_id"] != nil {
		t.Fatalf("event: %v", ev)
	}
	ok(200, "GET", "/v1/events/"+string(failed), key, nil)
	ok(200, "GET", "/v1/events/"+string(failed)+"/attempts", key, nil)
	ok(200, "GET", "/v1/events/"+string(delivered)+"/attempts?include=response_body&limit=1", key, nil)
	if hl := ok(200, "GET", "/v1/endpoints/"+ep+"/health", key, nil); hl["success_rate"] == nil {
		t.Fatalf("health with attempts: %v", hl)
	}
	dlvs := data(t, ok(200, "GET", "/v1/deliveries?event_id="+string(failed), key, nil))
	if len(dlvs) != 1 {
		t.Fatalf("deliveries of the failed event: %v", dlvs)
	}
	failedDlv := dlvs[0]["id"].(string)
	ok(200, "GET", "/v1/deliveries", key, nil)
	ok(200, "GET", fmt.Sprintf("/v1/deliveries?endpoint_id=%s&status=failed&limit=1", ep), key, nil)
	ok(200, "GET", "/v1/deliveries?cursor="+failedDlv, key, nil)
	ok(200, "GET", "/v1/deliveries/"+failedDlv, key, nil)
	ok(200, "GET", "/v1/deliveries/"+failedDlv+"/attempts", key, nil)
	ok(200, "GET", "/v1/deliveries/"+failedDlv+"/attempts?include=response_body&limit=1", key, nil)
	ok(202, "POST", "/v1/deliveries/"+failedDlv+"/retry", key, nil)
	ok(202, "POST", "/v1/events/"+string(delivered)+"/retry", key, nil)
	ok(202, "POST", "/v1/endpoints/"+ep+"/replay", key, map[string]any{
		"status": "failed", "since": now.Add(-time.Hour).Format(time.RFC3339), "until": nil,
	})
	ok(202, "POST", "/v1/endpoints/"+ep2+"/backfill", key, map[string]any{"since": now.Add(-time.Hour).Format(time.RFC3339), "until": nil})
	if out := ok(202, "POST", "/v1/endpoints/"+ep2+"/backfill", key, nil); out["count"] != 0.0 || out["has_more"] != false {
		t.Fatalf("a second backfill: %v", out)
	}

	fail(reqValid, 400, kapsel.CodeMalformedRequest, "POST", "/v1/deliveries/"+failedDlv+"/retry", key, nil) // pending now
	fail(reqValid, 404, kapsel.CodeNotFound, "GET", "/v1/deliveries/"+failedDlv, otherKey, nil)
	fail(reqValid, 404, kapsel.CodeNotFound, "GET", "/v1/deliveries/"+failedDlv+"/attempts", otherKey, nil)
	fail(reqInvalid, 404, kapsel.CodeNotFound, "GET", "/v1/deliveries/dlv_nope", key, nil)
	fail(reqValid, 404, kapsel.CodeNotFound, "POST", "/v1/deliveries/dlv_01M8KRGKE0VYVQGH2M6M1VXAAA/retry", key, nil)
	fail(reqInvalid, 400, kapsel.CodeMalformedRequest, "GET", "/v1/deliveries?status=lost", key, nil)
	fail(reqInvalid, 400, kapsel.CodeMalformedRequest, "GET", "/v1/deliveries?endpoint_id=ep_bad", key, nil)
	fail(reqInvalid, 400, kapsel.CodeMalformedRequest, "GET", "/v1/deliveries?cursor="+string(pending), key, nil)
	fail(reqInvalid, 400, kapsel.CodeMalformedRequest, "GET", "/v1/deliveries/"+failedDlv+"/attempts?include=body", key, nil)
	fail(reqValid, 404, kapsel.CodeNotFound, "GET", "/v1/events/"+string(pending), otherKey, nil)
	fail(reqValid, 404, kapsel.CodeNotFound, "POST", "/v1/events/"+string(pending)+"/retry", otherKey, nil)
	fail(reqInvalid, 404, kapsel.CodeNotFound, "GET", "/v1/events/evt_nope/attempts", key, nil)
	fail(reqInvalid, 400, kapsel.CodeMalformedRequest, "GET", "/v1/events?source_id=src_bad", key, nil)
	fail(reqValid, 400, kapsel.CodeMalformedRequest, "GET", "/v1/events?endpoint_id="+ep, key, nil) // 0.1's filter, refused by the handler
	fail(reqInvalid, 400, kapsel.CodeMalformedRequest, "GET", "/v1/events?type="+strings.Repeat("t", 256), key, nil)
	fail(reqInvalid, 400, kapsel.CodeMalformedRequest, "GET", "/v1/events/"+string(pending)+"?include=headers", key, nil)
	fail(reqInvalid, 400, kapsel.CodeMalformedRequest, "GET", "/v1/events/"+string(pending)+"/attempts?include=body", key, nil)
	fail(reqInvalid, 400, kapsel.CodeMalformedRequest, "POST", "/v1/endpoints/"+ep+"/replay", key, map[string]any{"status": "pending"})
	fail(reqValid, 400, kapsel.CodeMalformedRequest, "POST", "/v1/endpoints/"+ep+"/replay", key, map[string]any{
		"status": "failed", "since": now.Format(time.RFC3339), "until": now.Add(-time.Hour).Format(time.RFC3339),
	})
	fail(reqValid, 400, kapsel.CodeMalformedRequest, "POST", "/v1/endpoints/"+ep+"/backfill", key, map[string]any{
		"since": now.Format(time.RFC3339), "until": now.Add(-time.Hour).Format(time.RFC3339),
	})
	fail(reqInvalid, 400, kapsel.CodeMalformedRequest, "POST", "/v1/endpoints/"+ep+"/backfill", key, map[string]any{"status": "failed"})
	fail(reqValid, 404, kapsel.CodeNotFound, "POST", "/v1/endpoints/"+ep+"/backfill", otherKey, nil)
	// Expunge: one event's body, then every body of a (deleted) tenant.
	fail(reqValid, 404, kapsel.CodeNotFound, "DELETE", "/v1/events/"+string(failed)+"/body", otherKey, nil)
	if ev := ok(200, "DELETE", "/v1/events/"+string(failed)+"/body", key, nil); ev["body_expired"] != true ||
		ev["body_erasure"] != "expunged" || ev["body_erased_at"] == nil || ev["size"] == 0.0 {
		t.Fatalf("expunged event: %v", ev)
	}
	if ev := ok(200, "GET", "/v1/events/"+string(failed)+"?include=body", key, nil); ev["body"] != nil || ev["body_expired"] != true {
		t.Fatalf("an expunged event read with its body: %v", ev)
	}
	if ev := ok(200, "GET", "/v1/events/"+string(delivered), key, nil); ev["body_expired"] != false || ev["body_erasure"] != nil {
		t.Fatalf("an event with its body: %v", ev)
	}
	fail(reqInvalid, 404, kapsel.CodeNotFound, "DELETE", "/v1/events/evt_nope/body", key, nil)
	if out := ok(200, "DELETE", "/v1/tenants/"+doomed["id"].(string)+"/event-bodies", adminToken, nil); out["count"] != 0.0 {
		t.Fatalf("expunging a tenant without events: %v", out)
	}
	fail(reqValid, 401, kapsel.CodeUnauthenticated, "DELETE", "/v1/tenants/"+tenantID+"/event-bodies", key, nil)
	fail(reqInvalid, 404, kapsel.CodeNotFound, "DELETE", "/v1/tenants/nope/event-bodies", adminToken, nil)
	// Sends need a running ingester: before Start, 503 E3003.
	fail(reqValid, 503, kapsel.CodeShuttingDown, "POST", "/v1/events", key, map[string]any{"payload": 1})

	ok(204, "DELETE", "/v1/endpoints/"+ep2, key, nil)
	fail(reqValid, 404, kapsel.CodeNotFound, "DELETE", "/v1/endpoints/"+ep2, key, nil)
	fail(reqValid, 404, kapsel.CodeNotFound, "GET", "/v1/endpoints/"+ep2+"/health", key, nil)
	ok(204, "DELETE", "/v1/sources/"+src2, key, nil)
	fail(reqValid, 404, kapsel.CodeNotFound, "DELETE", "/v1/sources/"+src2, key, nil)

	// The store failing: 503 with Retry-After, then 500.
	fs := &flakyStore{Store: f.store, err: fmt.Errorf("dial: %w", kapsel.ErrUnavailable)}
	h = managementHandler(t, fs, service.Config{AdminToken: adminToken, Logger: newTextLogger(&strings.Builder{})})
	fail(reqValid, 503, kapsel.CodeStorageUnavailable, "GET", "/v1/endpoints", key, nil)
	fs.err = fmt.Errorf("boom")
	fail(reqValid, 500, kapsel.CodeInternal, "GET", "/v1/endpoints", key, nil)

	// Sends, on a running service whose endpoints are paused (nothing is
	// delivered).
	sendContract(t, c)

	c.requireCovered("/v1/")
	c.requireStatuses("POST /v1/tenants", 201, 400, 401, 413)
	c.requireStatuses("GET /v1/tenants", 200, 400, 401)
	c.requireStatuses("PATCH /v1/tenants/{id}", 200, 400, 401, 404, 413)
	c.requireStatuses("DELETE /v1/tenants/{id}", 204, 401, 404)
	c.requireStatuses("POST /v1/sources", 201, 400)
	c.requireStatuses("POST /v1/endpoints", 201, 400, 401, 404, 422)
	c.requireStatuses("PATCH /v1/endpoints/{id}", 200, 400, 404, 413, 422)
	c.requireStatuses("GET /v1/endpoints", 200, 400, 401, 500, 503)
	c.requireStatuses("POST /v1/events", 200, 202, 400, 404, 422, 429, 503)
}

// sendContract drives POST /v1/events of a running service through its
// answers, validating each against openapi.yaml.
func sendContract(t *testing.T, c *contract) {
	t.Helper()
	svc, err := service.New(memstore.New(), &service.Config{AdminToken: adminToken, MaxBodyBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(context.Background()) })
	h := svc.Handler()
	call := func(want reqWant, status int, method, path, token string, body any) map[string]any {
		t.Helper()
		return answer(t, c.call(h, want, method, path, token, body), status)
	}
	fail := func(want reqWant, status int, code kapsel.Code, method, path, token string, body any) {
		t.Helper()
		requireProblem(t, c.call(h, want, method, path, token, body), status, code)
	}
	key := call(reqValid, 201, "POST", "/v1/tenants", adminToken, map[string]any{"name": "acme"})["api_key"].(string)
	slowKey := call(reqValid, 201, "POST", "/v1/tenants", adminToken, map[string]any{"name": "slow", "rate_limit": 0.0001, "rate_burst": 1})["api_key"].(string)
	otherEP := call(reqValid, 201, "POST", "/v1/endpoints", slowKey, map[string]any{"url": "https://example.com/"})["id"].(string)
	call(reqValid, 200, "POST", "/v1/endpoints/"+otherEP+"/pause", slowKey, nil)
	var eps []string
	for _, types := range [][]string{{"invoice.*"}, {"user.*"}} {
		id := call(reqValid, 201, "POST", "/v1/endpoints", key, map[string]any{"url": "https://example.com/", "event_types": types})["id"].(string)
		call(reqValid, 200, "POST", "/v1/endpoints/"+id+"/pause", key, nil)
		eps = append(eps, id)
	}

	sent := call(reqValid, 202, "POST", "/v1/events", key, map[string]any{
		"type": "invoice.paid", "channels": []string{"org_42"}, "payload": map[string]any{"n": 1}, "idempotency_key": "inv-1",
	})
	if sent["deliveries"] != 1.0 || sent["duplicate"] != false {
		t.Fatalf("send: %v", sent)
	}
	if again := call(reqValid, 200, "POST", "/v1/events", key, map[string]any{
		"type": "invoice.paid", "channels": []string{"org_42"}, "payload": map[string]any{"n": 1}, "idempotency_key": "inv-1",
	}); again["id"] != sent["id"] || again["duplicate"] != true || again["deliveries"] != 0.0 {
		t.Fatalf("repeated send: %v", again)
	}
	if named := call(reqValid, 202, "POST", "/v1/events", key, map[string]any{
		"body": "/wA=", "content_type": "application/octet-stream", "endpoint_ids": eps,
	}); named["deliveries"] != 2.0 {
		t.Fatalf("send to named endpoints: %v", named)
	}
	if ev := call(reqValid, 200, "GET", "/v1/events/"+sent["id"].(string)+"?include=body", key, nil); ev["body"] != `{"n":1}` {
		t.Fatalf("the sent event: %v", ev)
	}

	fail(reqInvalid, 400, kapsel.CodeMalformedRequest, "POST", "/v1/events", key, map[string]any{"type": "x"})
	fail(reqInvalid, 400, kapsel.CodeMalformedRequest, "POST", "/v1/events", key, map[string]any{"payload": 1, "body": "MQ=="})
	fail(reqInvalid, 400, kapsel.CodeMalformedRequest, "POST", "/v1/events", key, map[string]any{"payload": 1, "endpoint_ids": []string{}})
	fail(reqValid, 400, kapsel.CodeMalformedRequest, "POST", "/v1/events", key, map[string]any{"body": "not base64!"})
	fail(reqValid, 400, kapsel.CodeMalformedRequest, "POST", "/v1/events", key, map[string]any{"payload": 1, "type": "a\tb"})
	fail(reqValid, 400, kapsel.CodeBadIdempotencyKey, "POST", "/v1/events", key, map[string]any{"payload": 1, "idempotency_key": "é"})
	fail(reqValid, 404, kapsel.CodeNotFound, "POST", "/v1/events", key, map[string]any{"payload": 1, "endpoint_ids": []string{otherEP}})
	fail(reqValid, 413, kapsel.CodeBodyTooLarge, "POST", "/v1/events", key, map[string]any{"payload": strings.Repeat("x", 2048)})
	fail(reqValid, 422, kapsel.CodeIdempotencyReused, "POST", "/v1/events", key, map[string]any{"payload": 2, "idempotency_key": "inv-1"})
	fail(reqInvalid, 401, kapsel.CodeUnauthenticated, "POST", "/v1/events", "", map[string]any{"payload": 1})
	call(reqValid, 202, "POST", "/v1/events", slowKey, map[string]any{"payload": 1})
	fail(reqValid, 429, kapsel.CodeRateLimited, "POST", "/v1/events", slowKey, map[string]any{"payload": 2})
}

// TestOpenAPIIngestContract drives POST /ingest/{source_id} of a running
// service through its answers, validating each against openapi.yaml.
func TestOpenAPIIngestContract(t *testing.T) {
	t.Parallel()
	c := newContract(t)
	svc, err := service.New(memstore.New(), &service.Config{AdminToken: adminToken, MaxBodyBytes: 1024,
		Ingest: ingest.Config{SourceCacheTTL: -1}})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(context.Background()) })
	h := svc.Handler()
	call := func(want reqWant, status int, method, path, token string, body any) map[string]any {
		t.Helper()
		return answer(t, c.call(h, want, method, path, token, body), status)
	}
	key := call(reqValid, 201, "POST", "/v1/tenants", adminToken, map[string]any{"name": "acme"})["api_key"].(string)
	slowKey := call(reqValid, 201, "POST", "/v1/tenants", adminToken, map[string]any{"name": "slow", "rate_limit": 0.0001, "rate_burst": 1})["api_key"].(string)
	// Two endpoints per tenant, paused: the deliveries wait, so nothing is
	// delivered during the test.
	source := func(key string) string {
		for range 2 {
			id := call(reqValid, 201, "POST", "/v1/endpoints", key, map[string]any{"url": "https://example.com/"})["id"].(string)
			call(reqValid, 200, "POST", "/v1/endpoints/"+id+"/pause", key, nil)
		}
		return call(reqValid, 201, "POST", "/v1/sources", key, map[string]any{
			"verifier": map[string]any{"scheme": "hmac-sha256", "secrets": []string{"s3cret"}},
		})["id"].(string)
	}
	src, slowSrc := source(key), source(slowKey)

	ingestReq := func(src, body, idemKey string, sign bool) *http.Request {
		req := httptest.NewRequest("POST", "/ingest/"+src, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if idemKey != "" {
			req.Header.Set("Idempotency-Key", idemKey)
		}
		if sign {
			m := hmac.New(sha256.New, []byte("s3cret"))
			m.Write([]byte(body))
			req.Header.Set("X-Kapsel-Signature", "sha256="+hex.EncodeToString(m.Sum(nil)))
		}
		return req
	}
	send := func(want reqWant, req *http.Request, status int) *httptest.ResponseRecorder {
		t.Helper()
		rec := c.exchange(h, req, want)
		if rec.Code != status {
			t.Fatalf("ingest: %d, want %d; %s", rec.Code, status, rec.Body)
		}
		return rec
	}
	first := send(reqValid, ingestReq(src, `{"n":1}`, "k1", true), http.StatusAccepted)
	var res ingest.Response
	if err := json.Unmarshal(first.Body.Bytes(), &res); err != nil || res.Duplicate || res.Deliveries != 2 {
		t.Fatalf("ingest: %v %s", err, first.Body)
	}
	if again := send(reqValid, ingestReq(src, `{"n":1}`, "k1", true), http.StatusOK); again.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatalf("duplicate: %v", again.Header())
	}
	requireProblem(t, send(reqValid, ingestReq(src, `{"n":2}`, "k1", true), 422), 422, kapsel.CodeIdempotencyReused)
	requireProblem(t, send(reqValid, ingestReq(src, `{"n":3}`, "", false), 401), 401, kapsel.CodeSignature)
	requireProblem(t, send(reqValid, ingestReq("src_01M8KRGKE0VYVQGH2M6M1VXAAA", `{}`, "", true), 404), 404, kapsel.CodeUnknownSource)
	requireProblem(t, send(reqValid, ingestReq(src, `{"n":4}`, strings.Repeat("k", 300), true), 400), 400, kapsel.CodeBadIdempotencyKey)
	big := `{"pad":"` + strings.Repeat("x", 2048) + `"}`
	requireProblem(t, send(reqValid, ingestReq(src, big, "", true), 413), 413, kapsel.CodeBodyTooLarge)
	send(reqValid, ingestReq(slowSrc, `{"n":1}`, "", true), http.StatusAccepted)
	limited := send(reqValid, ingestReq(slowSrc, `{"n":2}`, "", true), http.StatusTooManyRequests)
	requireProblem(t, limited, 429, kapsel.CodeRateLimited)
	// A paused source: 503 with Retry-After.
	call(reqValid, 200, "POST", "/v1/sources/"+src+"/pause", key, nil)
	paused := send(reqValid, ingestReq(src, `{"n":5}`, "", true), http.StatusServiceUnavailable)
	requireProblem(t, paused, 503, kapsel.CodeStorageUnavailable)
	if paused.Header().Get("Retry-After") == "" {
		t.Fatalf("a paused source answered without Retry-After: %v", paused.Header())
	}

	// The ingested event as the management API shows it.
	ev := call(reqValid, 200, "GET", "/v1/events/"+string(res.ID)+"?include=body", key, nil)
	if ev["idempotency_key"] != "k1" || ev["source_id"] != src {
		t.Fatalf("event: %v", ev)
	}
	c.requireStatuses("POST /ingest/{source_id}", 200, 202, 400, 401, 404, 413, 422, 429, 503)
}

// TestOpenAPIDescribesEveryRoute: every route of the management mux and
// ingest has an operation in the document, and every operation of the
// document is a route of the service or of kapseld (whose own test checks
// its routes).
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	t.Parallel()
	doc, err := openAPIDoc()
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(memstore.New(), nil)
	if err != nil {
		t.Fatal(err)
	}
	served := append(svc.RoutePatterns(), ingest.Pattern,
		// kapseld's operational routes (cmd/kapseld/server.go).
		"GET /healthz", "GET /readyz", "GET /metrics")
	var documented []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	slices.Sort(served)
	slices.Sort(documented)
	if !slices.Equal(served, documented) {
		t.Fatalf("routes and openapi.yaml differ:\nserved:     %q\ndocumented: %q", served, documented)
	}
	if doc.Info.Version != kapsel.Version {
		t.Fatalf("openapi.yaml info.version %q, kapsel.Version %q", doc.Info.Version, kapsel.Version)
	}
}

// TestOpenAPIRefusesUndocumentedFields: the contract can fail. An answer
// with a field, a status or a value the document does not describe is
// refused by the same validation the scenario applies.
func TestOpenAPIRefusesUndocumentedFields(t *testing.T) {
	t.Parallel()
	c := newContract(t)
	f := setup(t)
	_, key := f.tenant("acme")
	ep := f.endpoint(key, nil)
	real := f.do("GET", "/v1/endpoints/"+ep["id"].(string), key, nil)
	if real.Code != 200 {
		t.Fatalf("GET: %d", real.Code)
	}
	for name, tamper := range map[string]func(m map[string]any) (int, string){
		"extra field":         func(m map[string]any) (int, string) { m["internal"] = 1; return 200, "application/json" },
		"signing secret":      func(m map[string]any) (int, string) { m["signing_secret"] = "whsec_x"; return 200, "application/json" },
		"missing field":       func(m map[string]any) (int, string) { delete(m, "state"); return 200, "application/json" },
		"unknown state":       func(m map[string]any) (int, string) { m["state"] = "sleeping"; return 200, "application/json" },
		"null list":           func(m map[string]any) (int, string) { m["event_types"] = nil; return 200, "application/json" },
		"undocumented status": func(m map[string]any) (int, string) { return 201, "application/json" },
		"wrong content type":  func(m map[string]any) (int, string) { return 200, "text/plain" },
	} {
		var m map[string]any
		if err := json.Unmarshal(real.Body.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		status, ct := tamper(m)
		body, _ := json.Marshal(m)
		fake := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ct)
			w.WriteHeader(status)
			_, _ = w.Write(body)
		})
		if !failsContract(t, c, fake, "/v1/endpoints/"+ep["id"].(string), key) {
			t.Errorf("%s: the contract accepted a tampered answer: %s", name, body)
		}
	}
	// And a problem with another code than its status documents.
	wrong := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(404)
		_, _ = w.Write([]byte(`{"type":"https://kapsel.dev/errors/E1009","title":"Malformed request","status":404,"code":"E1009"}`))
	})
	if !failsContract(t, c, wrong, "/v1/endpoints/"+ep["id"].(string), key) {
		t.Error("a 404 answering E1009 passed")
	}
}

// failsContract reports whether the exchange with h fails the contract.
func failsContract(t *testing.T, c *contract, h http.Handler, path, key string) (failed bool) {
	t.Helper()
	rec := &recordingTB{TB: t}
	probe := &contract{t: rec, doc: c.doc, router: c.router, seen: map[string]map[int]bool{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { _ = recover() }()
		probe.call(h, reqValid, "GET", path, key, nil)
	}()
	<-done
	return rec.failed
}

// recordingTB records a Fatalf instead of failing the test, and stops the
// goroutine that called it.
type recordingTB struct {
	testing.TB
	failed bool
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.failed = true
	panic(fmt.Sprintf(format, args...))
}

func (r *recordingTB) Fatal(args ...any) {
	r.failed = true
	panic(fmt.Sprint(args...))
}
