package service_test

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/service"
)

func TestCreateEndpoint(t *testing.T) {
	t.Parallel()
	f := setup(t)
	tenantID, key := f.tenant("acme")
	src := f.source(key, nil)["id"].(string)
	out := f.endpoint(key, map[string]any{
		"event_types":  []string{"invoice.*"},
		"source_ids":   []string{src},
		"retry_policy": map[string]any{"max_attempts": 5, "initial_interval_ms": 500, "retry_4xx": false},
		"timeout_ms":   10000,
		"headers":      map[string]string{"X-Team": "payments", "Authorization": "Bearer dest-token"},
	})
	id := out["id"].(string)
	secret, _ := out["signing_secret"].(string)
	if !strings.HasPrefix(secret, kapsel.SigningSecretPrefix) || len(secret) != len("whsec_")+44 {
		t.Fatalf("signing_secret %q is not whsec_ + base64 of 32 bytes", secret)
	}
	want := map[string]any{
		"name": "orders", "url": "https://example.com/hook", "state": "active", "disabled_reason": nil,
		"timeout_ms": 10000.0, "tenant_id": string(tenantID),
		"created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
	}
	for k, v := range want {
		if out[k] != v {
			t.Errorf("%s = %v, want %v", k, out[k], v)
		}
	}
	if out["ingest_url"] != nil || out["ingest_verifier"] != nil {
		t.Errorf("an endpoint answered with 0.1's ingest fields: %v", out)
	}
	if fmt.Sprint(out["event_types"], out["source_ids"], out["channels"]) != fmt.Sprintf("[invoice.*] [%s] []", src) {
		t.Errorf("subscription %v %v %v", out["event_types"], out["source_ids"], out["channels"])
	}
	rp := out["retry_policy"].(map[string]any)
	if rp["max_attempts"] != 5.0 || rp["initial_interval_ms"] != 500.0 || rp["max_interval_ms"] != 3600000.0 ||
		rp["max_age_s"] != 259200.0 || rp["retry_4xx"] != false {
		t.Errorf("retry_policy %v", rp)
	}
	h := out["headers"].(map[string]any)
	if h["X-Team"] != "payments" || h["Authorization"] != service.RedactedValue {
		t.Errorf("headers %v", h)
	}

	// Stored as asked.
	e, err := f.store.EndpointGet(t.Context(), &kapsel.EndpointGetParams{ID: kapsel.EndpointID(id)})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.SigningSecrets) != 1 || e.SigningSecrets[0].Secret != secret || e.Headers["Authorization"] != "Bearer dest-token" ||
		e.RetryPolicy.Multiplier != kapsel.DefaultMultiplier || e.Timeout.Milliseconds() != 10000 {
		t.Fatalf("stored endpoint %+v", e)
	}

	// Reads never reveal any secret.
	for _, path := range []string{"/v1/endpoints/" + id, "/v1/endpoints", "/v1/endpoints/" + id + "/health"} {
		rec := f.do("GET", path, key, nil)
		if rec.Code != 200 {
			t.Fatalf("GET %s: %d", path, rec.Code)
		}
		requireNoSecret(t, rec.Body.String(), secret, "dest-token")
	}
}

func TestCreateEndpointDefaults(t *testing.T) {
	t.Parallel()
	f := setup(t)
	_, key := f.tenant("acme")
	out := f.endpoint(key, map[string]any{"signing_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
	if out["signing_secret"] != "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" {
		t.Fatalf("supplied signing_secret not kept: %v", out["signing_secret"])
	}
	if out["timeout_ms"] != 30000.0 || len(out["event_types"].([]any)) != 0 || len(out["source_ids"].([]any)) != 0 {
		t.Fatalf("defaults %v", out)
	}
	if rp := out["retry_policy"].(map[string]any); rp["max_attempts"] != 25.0 || rp["retry_4xx"] != true {
		t.Fatalf("default retry policy %v", rp)
	}
}

func TestEndpointValidation(t *testing.T) {
	t.Parallel()
	f := setup(t)
	_, key := f.tenant("acme")
	for _, tc := range []struct {
		name   string
		body   map[string]any
		status int
		code   kapsel.Code
	}{
		{"no url", map[string]any{"url": ""}, 422, kapsel.CodeInvalidURL},
		{"ftp url", map[string]any{"url": "ftp://example.com/x"}, 422, kapsel.CodeInvalidURL},
		{"credentials", map[string]any{"url": "https://u:p@example.com/"}, 422, kapsel.CodeInvalidURL},
		{"loopback", map[string]any{"url": "http://127.0.0.1:8080/"}, 422, kapsel.CodeInvalidURL},
		{"metadata", map[string]any{"url": "http://169.254.169.254/latest"}, 422, kapsel.CodeInvalidURL},
		{"mapped loopback", map[string]any{"url": "http://[::ffff:127.0.0.1]/"}, 422, kapsel.CodeInvalidURL},
		{"localhost", map[string]any{"url": "http://localhost:3000/"}, 422, kapsel.CodeInvalidURL},
		{"header CRLF", map[string]any{"headers": map[string]string{"X-A": "a\r\nX-B: b"}}, 422, kapsel.CodeInvalidHeader},
		{"header Host", map[string]any{"headers": map[string]string{"host": "evil"}}, 422, kapsel.CodeInvalidHeader},
		{"header Content-Length", map[string]any{"headers": map[string]string{"Content-Length": "1"}}, 422, kapsel.CodeInvalidHeader},
		{"header webhook-id", map[string]any{"headers": map[string]string{"Webhook-Id": "x"}}, 422, kapsel.CodeInvalidHeader},
		{"header bad name", map[string]any{"headers": map[string]string{"X A": "x"}}, 422, kapsel.CodeInvalidHeader},
		{"0.1's ingest verifier", map[string]any{"ingest_verifier": map[string]any{"scheme": "github", "secrets": []string{"s"}}}, 400, kapsel.CodeMalformedRequest},
		{"unknown source", map[string]any{"source_ids": []string{string(kapsel.NewSourceID())}}, 404, kapsel.CodeNotFound},
		{"malformed source id", map[string]any{"source_ids": []string{"src_x"}}, 400, kapsel.CodeMalformedRequest},
		{"wildcard in the middle", map[string]any{"event_types": []string{"a.*.b"}}, 400, kapsel.CodeMalformedRequest},
		{"channel with a space", map[string]any{"channels": []string{"a b"}}, 400, kapsel.CodeMalformedRequest},
		{"headers differing only in case", map[string]any{"headers": map[string]string{"x-a": "1", "X-A": "2"}}, 422, kapsel.CodeInvalidHeader},
		{"User-Agent header", map[string]any{"headers": map[string]string{"User-Agent": "x"}}, 422, kapsel.CodeInvalidHeader},
		{"Proxy-* header", map[string]any{"headers": map[string]string{"Proxy-Authorization": "x"}}, 422, kapsel.CodeInvalidHeader},
		{"bad signing secret", map[string]any{"signing_secret": "whsec_short"}, 400, kapsel.CodeMalformedRequest},
		{"signing secret prefix", map[string]any{"signing_secret": "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, 400, kapsel.CodeMalformedRequest},
		{"timeout low", map[string]any{"timeout_ms": 999}, 400, kapsel.CodeMalformedRequest},
		{"timeout zero (not the default)", map[string]any{"timeout_ms": 0}, 400, kapsel.CodeMalformedRequest},
		{"timeout high", map[string]any{"timeout_ms": 120001}, 400, kapsel.CodeMalformedRequest},
		{"timeout overflow", map[string]any{"timeout_ms": int64(1) << 62}, 400, kapsel.CodeMalformedRequest},
		{"max attempts", map[string]any{"retry_policy": map[string]any{"max_attempts": 0}}, 400, kapsel.CodeMalformedRequest},
		{"intervals", map[string]any{"retry_policy": map[string]any{"initial_interval_ms": 5000, "max_interval_ms": 1000}}, 400, kapsel.CodeMalformedRequest},
		{"interval overflow", map[string]any{"retry_policy": map[string]any{"max_interval_ms": int64(1) << 62}}, 400, kapsel.CodeMalformedRequest},
		{"max age", map[string]any{"retry_policy": map[string]any{"max_age_s": 0}}, 400, kapsel.CodeMalformedRequest},
		{"unknown field", map[string]any{"state": "paused"}, 400, kapsel.CodeMalformedRequest},
		{"url type", map[string]any{"url": 5}, 400, kapsel.CodeMalformedRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := map[string]any{"name": "x", "url": "https://example.com/"}
			for k, v := range tc.body {
				req[k] = v
			}
			rec := f.do("POST", "/v1/endpoints", key, req)
			p := requireProblem(t, rec, tc.status, tc.code)
			if d, _ := p["detail"].(string); d == "" {
				t.Fatalf("problem without detail: %v", p)
			}
		})
	}
	// Nothing was created by the refused calls.
	if out := f.ok(200, "GET", "/v1/endpoints", key, nil); len(data(t, out)) != 0 {
		t.Fatalf("refused creations left endpoints: %v", out)
	}
}

func TestEndpointPrivateDestinationsAllowed(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.handler = managementHandler(t, f.store, service.Config{AdminToken: adminToken, AllowPrivateDestinations: true})
	_, key := f.tenant("acme")
	f.endpoint(key, map[string]any{"url": "http://127.0.0.1:9999/hook"})
	// Credentials stay refused even then.
	f.problem(422, kapsel.CodeInvalidURL, "POST", "/v1/endpoints", key, map[string]any{"url": "http://a:b@127.0.0.1/"})
}

// TestEndpointGuardAllowedCIDRs: the API checks URLs with the dispatcher's
// own guard, so a range delivery may dial is accepted, and
// one it may not is refused (issue 9 item 18: the API ignored AllowedCIDRs).
func TestEndpointGuardAllowedCIDRs(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.handler = managementHandler(t, f.store, service.Config{
		AdminToken: adminToken,
		// The service hands its dispatcher's guard to the endpoint
		// operations: the same AllowedCIDRs decide both.
		AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
	})
	_, key := f.tenant("acme")
	f.endpoint(key, map[string]any{"url": "http://10.1.2.3:8080/hook"})
	p := f.problem(422, kapsel.CodeInvalidURL, "POST", "/v1/endpoints", key, map[string]any{"url": "http://192.168.1.1/hook"})
	if !strings.Contains(p["detail"].(string), "blocked") {
		t.Fatalf("detail %v, want the guard's reason", p["detail"])
	}
	// Syntax comes first, whatever the guard allows.
	f.problem(422, kapsel.CodeInvalidURL, "POST", "/v1/endpoints", key, map[string]any{"url": "ftp://10.1.2.3/"})
}

func TestListEndpointsPagination(t *testing.T) {
	t.Parallel()
	f := setup(t)
	_, key := f.tenant("acme")
	var ids []string
	for i := range 5 {
		ids = append(ids, f.endpoint(key, map[string]any{"name": fmt.Sprint("ep", i)})["id"].(string))
	}
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		path := "/v1/endpoints?limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		out := f.ok(200, "GET", path, key, nil)
		items := data(t, out)
		for _, it := range items {
			got = append(got, it["id"].(string))
		}
		more := out["has_more"].(bool)
		if more != (len(got) < 5) {
			t.Fatalf("has_more %v after %d items", more, len(got))
		}
		if !more {
			if out["next_cursor"] != nil {
				t.Fatalf("next_cursor %v on the last page", out["next_cursor"])
			}
			break
		}
		cursor = out["next_cursor"].(string)
		if cursor != got[len(got)-1] {
			t.Fatalf("next_cursor %s, want the last id %s", cursor, got[len(got)-1])
		}
	}
	slices.Sort(ids) // lists are in id order; endpoint ids are random within a millisecond
	if strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Fatalf("listed %v, want %v", got, ids)
	}
	// Default limit and an exact fit: has_more false.
	if out := f.ok(200, "GET", "/v1/endpoints?limit=5", key, nil); out["has_more"] != false || len(data(t, out)) != 5 {
		t.Fatalf("exact page: %v", out)
	}
	for _, q := range []string{"limit=0", "limit=501", "limit=x", "limit=-1", "cursor=nope", "cursor=evt_01J00000000000000000000000"} {
		f.problem(400, kapsel.CodeMalformedRequest, "GET", "/v1/endpoints?"+q, key, nil)
	}
}

func TestListEndpointsMaxLimitHasMore(t *testing.T) {
	t.Parallel()
	f := setup(t)
	_, key := f.tenant("acme")
	ctx := t.Context()
	tn, err := f.store.TenantGetByAPIKey(ctx, &kapsel.TenantGetByAPIKeyParams{APIKeyHash: service.HashAPIKey(key)})
	if err != nil {
		t.Fatal(err)
	}
	tid := tn.ID
	for n := 0; n < kapsel.MaxPageLimit+1; n++ {
		_, err := f.store.EndpointInsert(ctx, &kapsel.EndpointInsertParams{
			Endpoint: &kapsel.Endpoint{TenantID: tid, URL: "https://example.com/", RetryPolicy: kapsel.DefaultRetryPolicy()},
			Now:      f.clock.Now(),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	out := f.ok(200, "GET", "/v1/endpoints?limit=500", key, nil)
	if len(data(t, out)) != 500 || out["has_more"] != true {
		t.Fatalf("500 of 501: %d items, has_more %v", len(data(t, out)), out["has_more"])
	}
	out = f.ok(200, "GET", "/v1/endpoints?limit=500&cursor="+out["next_cursor"].(string), key, nil)
	if len(data(t, out)) != 1 || out["has_more"] != false {
		t.Fatalf("last of 501: %d items, has_more %v", len(data(t, out)), out["has_more"])
	}
}

func TestUpdateEndpoint(t *testing.T) {
	t.Parallel()
	f := setup(t)
	_, key := f.tenant("acme")
	ep := f.endpoint(key, map[string]any{
		"headers":      map[string]string{"X-Api-Key": "dest-key", "X-Team": "a"},
		"retry_policy": map[string]any{"max_attempts": 7},
		"event_types":  []string{"invoice.paid"},
	})
	path := "/v1/endpoints/" + ep["id"].(string)
	f.clock.Advance(61e9)
	out := f.ok(200, "PATCH", path, key, map[string]any{
		"name":         "renamed",
		"url":          "https://example.org/new",
		"headers":      map[string]string{"X-Api-Key": service.RedactedValue, "X-Team": "b"},
		"retry_policy": map[string]any{"retry_4xx": false},
	})
	if out["name"] != "renamed" || out["url"] != "https://example.org/new" || out["updated_at"] != "2026-01-01T00:01:01Z" ||
		out["created_at"] != "2026-01-01T00:00:00Z" {
		t.Fatalf("patched %v", out)
	}
	if rp := out["retry_policy"].(map[string]any); rp["max_attempts"] != 7.0 || rp["retry_4xx"] != false {
		t.Fatalf("retry_policy merge %v", rp)
	}
	if fmt.Sprint(out["event_types"]) != "[invoice.paid]" {
		t.Fatalf("event_types kept %v", out["event_types"])
	}
	e, err := f.store.EndpointGet(t.Context(), &kapsel.EndpointGetParams{ID: kapsel.EndpointID(ep["id"].(string))})
	if err != nil {
		t.Fatal(err)
	}
	if e.Headers["X-Api-Key"] != "dest-key" || e.Headers["X-Team"] != "b" || e.SigningSecrets[0].Secret != ep["signing_secret"] {
		t.Fatalf("stored after patch %+v", e)
	}
	// Bad patches change nothing.
	f.problem(422, kapsel.CodeInvalidURL, "PATCH", path, key, map[string]any{"url": "http://10.0.0.1/"})
	f.problem(422, kapsel.CodeInvalidHeader, "PATCH", path, key, map[string]any{"headers": map[string]string{"Host": "x"}})
	f.problem(400, kapsel.CodeMalformedRequest, "PATCH", path, key, map[string]any{"signing_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
	f.problem(400, kapsel.CodeMalformedRequest, "PATCH", path, key, "[]")
	f.problem(404, kapsel.CodeNotFound, "PATCH", path, key, map[string]any{"source_ids": []string{string(kapsel.NewSourceID())}})
	f.problem(400, kapsel.CodeMalformedRequest, "PATCH", path, key, map[string]any{"ingest_verifier": nil})
	if got := f.ok(200, "GET", path, key, nil); got["url"] != "https://example.org/new" || got["name"] != "renamed" {
		t.Fatalf("refused patch changed the endpoint: %v", got)
	}
	// Clearing headers.
	if got := f.ok(200, "PATCH", path, key, map[string]any{"headers": map[string]string{}}); len(got["headers"].(map[string]any)) != 0 {
		t.Fatalf("headers not cleared: %v", got["headers"])
	}
}

func TestDeleteEndpoint(t *testing.T) {
	t.Parallel()
	f := setup(t)
	tid, key := f.tenant("acme")
	ep := f.endpoint(key, nil)
	id := ep["id"].(string)
	evt := f.event(tid, id, `{"a":1}`)
	kept := f.endpoint(key, nil)["id"].(string)
	both := f.event(tid, "", `{"b":2}`)
	f.ok(204, "DELETE", "/v1/endpoints/"+id, key, nil)
	f.problem(404, kapsel.CodeNotFound, "GET", "/v1/endpoints/"+id, key, nil)
	f.problem(404, kapsel.CodeNotFound, "DELETE", "/v1/endpoints/"+id, key, nil)
	if eps := data(t, f.ok(200, "GET", "/v1/endpoints", key, nil)); len(eps) != 1 || eps[0]["id"] != kept {
		t.Fatalf("endpoints after the delete: %v", eps)
	}
	// Its events stay readable (audit trail), and its unfinished
	// deliveries ended as failed, still listed; the other endpoint's
	// delivery of the same event is untouched.
	f.ok(200, "GET", "/v1/events/"+string(evt), key, nil)
	ds := data(t, f.ok(200, "GET", "/v1/deliveries?endpoint_id="+id, key, nil))
	if len(ds) != 2 {
		t.Fatalf("deliveries of the deleted endpoint: %v", ds)
	}
	for _, d := range ds {
		if d["status"] != "failed" || d["last_error"] != kapsel.LastErrorEndpointDeleted || d["next_attempt_at"] != nil {
			t.Fatalf("a delivery of the deleted endpoint: %v", d)
		}
	}
	sum := f.ok(200, "GET", "/v1/events/"+string(both), key, nil)["deliveries"].(map[string]any)
	if sum["total"] != 2.0 || sum["failed"] != 1.0 || sum["pending"] != 1.0 {
		t.Fatalf("the event of both endpoints: %v", sum)
	}
	if pending := data(t, f.ok(200, "GET", "/v1/deliveries?status=pending", key, nil)); len(pending) != 1 || pending[0]["endpoint_id"] != kept {
		t.Fatalf("pending deliveries after the delete: %v", pending)
	}
	// A failed delivery of a deleted endpoint cannot be retried.
	f.problem(404, kapsel.CodeNotFound, "POST", "/v1/deliveries/"+ds[0]["id"].(string)+"/retry", key, nil)
}
