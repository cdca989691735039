package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/kapsel-dev/kapsel/internal/testdb"
)

// TestEndToEndPostgres walks the whole story over HTTP against kapseld on
// Postgres: tenants, a source and an endpoint subscribed to it, signed
// ingest, signed delivery, events, deliveries and attempts, failure and
// replay, manual retry, secret rotation, pause/resume, isolation, auth,
// metrics, readiness, logs, graceful shutdown.
func TestEndToEndPostgres(t *testing.T) {
	t.Parallel()
	dsn := testdb.New(t)
	dest := newDestination(t)
	const admin = "e2e-admin-token-5b1f"
	r := startServer(t, map[string]string{
		"KAPSEL_DATABASE_URL": dsn,
		"KAPSEL_ADMIN_TOKEN":  admin,
		// The destination is an httptest server on 127.0.0.1.
		"KAPSEL_ALLOW_PRIVATE_DESTINATIONS": "true",
		"KAPSEL_LOG_LEVEL":                  "debug",
	})
	if r.srv.store.kind != "postgres" {
		t.Fatalf("store %s", r.srv.store.kind)
	}
	r.must(200, "GET", "/healthz", "", nil)
	r.must(200, "GET", "/readyz", "", nil)

	// Tenants.
	keyA := r.must(201, "POST", "/v1/tenants", admin, map[string]any{"name": "acme"})["api_key"].(string)
	keyB := r.must(201, "POST", "/v1/tenants", admin, map[string]any{"name": "globex"})["api_key"].(string)

	// A source verifying GitHub signatures, and an endpoint subscribed to
	// it, failing for good after one attempt.
	const ghSecret = "gh-secret-9c2e"
	src := r.must(201, "POST", "/v1/sources", keyA, map[string]any{
		"name": "github", "verifier": map[string]any{"scheme": "github", "secrets": []string{ghSecret}},
	})
	srcID, ingestURL := src["id"].(string), src["ingest_url"].(string)
	if ingestURL != "/ingest/"+srcID || strings.Contains(fmt.Sprint(src), ghSecret) {
		t.Fatalf("source %v", src)
	}
	ep := r.must(201, "POST", "/v1/endpoints", keyA, map[string]any{
		"name":         "orders",
		"url":          dest.srv.URL + "/hooks",
		"source_ids":   []string{srcID},
		"retry_policy": map[string]any{"max_attempts": 1},
		"headers":      map[string]string{"X-Team": "payments"},
	})
	epID, secret1 := ep["id"].(string), ep["signing_secret"].(string)
	// deliveryOf returns the event's one delivery to the endpoint.
	deliveryOf := func(event, endpoint string) map[string]any {
		t.Helper()
		ds := r.must(200, "GET", "/v1/deliveries?event_id="+event+"&endpoint_id="+endpoint, keyA, nil)["data"].([]any)
		if len(ds) != 1 {
			t.Fatalf("deliveries of %s to %s: %v", event, endpoint, ds)
		}
		return ds[0].(map[string]any)
	}
	// waitStatus waits until the event's delivery to the endpoint has the
	// status.
	waitStatus := func(event, endpoint, status string) {
		t.Helper()
		eventually(t, "delivery of "+event+" "+status, func() bool {
			_, p, _ := r.call("GET", "/v1/deliveries?event_id="+event+"&endpoint_id="+endpoint+"&status="+status, keyA, nil)
			ds, _ := p["data"].([]any)
			return len(ds) == 1
		})
	}

	accepted, duplicates, rejected, limited := 0, 0, 0, 0
	ingest := func(path string, body []byte, status int, header ...string) map[string]any {
		t.Helper()
		out := r.must(status, "POST", path, "", body, header...)
		switch status {
		case 202:
			accepted++
		case 200:
			duplicates++
		case 401:
			rejected++
		case 429:
			limited++
		}
		return out
	}
	body1 := []byte(`{"action":"opened","marker":"body-marker-7f3a"}`)
	ev1 := ingest(ingestURL, body1, 202, "X-Hub-Signature-256", githubSign(ghSecret, body1),
		"X-GitHub-Delivery", "d-1", "Content-Type", "application/json")
	id1 := ev1["id"].(string)
	if ev1["deliveries"] != 1.0 || ev1["duplicate"] != false {
		t.Fatalf("ingest answer %v", ev1)
	}
	// A bad signature is refused; the same delivery id again is a duplicate.
	ingest(ingestURL, body1, 401, "X-Hub-Signature-256", githubSign("wrong", body1), "X-GitHub-Delivery", "d-x")
	dup := ingest(ingestURL, body1, 200, "X-Hub-Signature-256", githubSign(ghSecret, body1), "X-GitHub-Delivery", "d-1")
	if dup["id"] != id1 || dup["duplicate"] != true || dup["deliveries"] != 0.0 {
		t.Fatalf("duplicate answer %v", dup)
	}

	// Delivered, byte for byte, signed, with the custom header.
	got := dest.expect(t, id1, secret1)
	if string(got.body) != string(body1) || got.header.Get("X-Team") != "payments" || got.header.Get("X-Kapsel-Attempt") != "1" ||
		got.header.Get("Content-Type") != "application/json" {
		t.Fatalf("delivery %q %v", got.body, got.header)
	}
	waitStatus(id1, epID, "delivered")
	ev := r.must(200, "GET", "/v1/events/"+id1+"?include=body", keyA, nil)
	sum, _ := ev["deliveries"].(map[string]any)
	if ev["body"] != string(body1) || ev["idempotency_key"] != "d-1" || ev["source_id"] != srcID || ev["type"] != "" ||
		sum["total"] != 1.0 || sum["delivered"] != 1.0 {
		t.Fatalf("event %v", ev)
	}
	d1 := deliveryOf(id1, epID)
	if d1["attempts"] != 1.0 || d1["delivered_at"] == nil {
		t.Fatalf("delivery %v", d1)
	}
	atts := r.must(200, "GET", "/v1/events/"+id1+"/attempts", keyA, nil)["data"].([]any)
	if len(atts) != 1 || atts[0].(map[string]any)["status_code"] != 200.0 || atts[0].(map[string]any)["trigger"] != "scheduled" ||
		atts[0].(map[string]any)["delivery_id"] != d1["id"] {
		t.Fatalf("attempts %v", atts)
	}

	// The destination fails: with one attempt allowed the event fails.
	dest.status.Store(500)
	body2 := []byte(`{"action":"closed"}`)
	id2 := ingest(ingestURL, body2, 202, "X-Hub-Signature-256", githubSign(ghSecret, body2), "X-GitHub-Delivery", "d-2")["id"].(string)
	dest.expect(t, id2, secret1)
	waitStatus(id2, epID, "failed")
	d2 := deliveryOf(id2, epID)["id"].(string)
	a := r.must(200, "GET", "/v1/deliveries/"+d2+"/attempts", keyA, nil)["data"].([]any)[0].(map[string]any)
	if a["status_code"] != 500.0 || a["error_code"] != "E2005" {
		t.Fatalf("failed attempt %v", a)
	}

	// The destination recovers; replaying failed events delivers it, same id.
	dest.status.Store(200)
	if out := r.must(202, "POST", "/v1/endpoints/"+epID+"/replay", keyA, map[string]any{"status": "failed"}); out["count"] != 1.0 {
		t.Fatalf("replay %v", out)
	}
	dest.expect(t, id2, secret1)
	waitStatus(id2, epID, "delivered")
	atts = r.must(200, "GET", "/v1/deliveries/"+d2+"/attempts", keyA, nil)["data"].([]any)
	if len(atts) != 2 || atts[1].(map[string]any)["trigger"] != "manual" || atts[1].(map[string]any)["attempt"] != 2.0 {
		t.Fatalf("attempts after replay %v", atts)
	}

	// A manual retry of a delivered event: same webhook-id again.
	if out := r.must(202, "POST", "/v1/events/"+id1+"/retry", keyA, nil); out["count"] != 1.0 {
		t.Fatalf("event retry %v", out)
	}
	if got := dest.expect(t, id1, secret1); got.header.Get("X-Kapsel-Attempt") != "2" {
		t.Fatalf("retry attempt header %q", got.header.Get("X-Kapsel-Attempt"))
	}

	// Rotation: the new secret is shown once; during the grace period both sign.
	rot := r.must(200, "POST", "/v1/endpoints/"+epID+"/rotate-signing-secret", keyA, map[string]any{"grace_period_s": 600})
	secret2 := rot["signing_secret"].(string)
	if secret2 == secret1 || !strings.HasPrefix(secret2, "whsec_") {
		t.Fatalf("rotation %v", rot)
	}
	body3 := []byte(`{"action":"rotated"}`)
	id3 := ingest(ingestURL, body3, 202, "X-Hub-Signature-256", githubSign(ghSecret, body3), "X-GitHub-Delivery", "d-3")["id"].(string)
	// The old secret keeps signing during the grace period, and the new one
	// signs the first delivery after the rotation answered: the front door
	// told its dispatcher, which dropped its cached endpoint.
	got = dest.expect(t, id3, secret1)
	if err := verify(t, got, secret2); err != nil {
		t.Fatalf("the first delivery after the rotation is not signed with the new secret: %v", err)
	}
	if sigs := strings.Fields(got.header.Get("webhook-signature")); len(sigs) != 2 {
		t.Fatalf("during the grace period want two signatures, got %q", sigs)
	}

	// Pause: deliveries wait. A second source and an active endpoint
	// subscribed to it give the barrier showing the dispatcher ran while
	// the first waited.
	r.must(200, "POST", "/v1/endpoints/"+epID+"/pause", keyA, nil)
	plain := r.must(201, "POST", "/v1/sources", keyA, map[string]any{"name": "plain"})
	other := r.must(201, "POST", "/v1/endpoints", keyA, map[string]any{
		"url": dest.srv.URL + "/other", "source_ids": []string{plain["id"].(string)},
	})
	body4 := []byte(`{"action":"while-paused"}`)
	id4 := ingest(ingestURL, body4, 202, "X-Hub-Signature-256", githubSign(ghSecret, body4), "X-GitHub-Delivery", "d-4")["id"].(string)
	id5 := ingest(plain["ingest_url"].(string), []byte("plain text"), 202, "Content-Type", "text/plain")["id"].(string)
	dest.expect(t, id5, other["signing_secret"].(string))
	if d := deliveryOf(id4, epID); d["status"] != "pending" || d["attempts"] != 0.0 {
		t.Fatalf("delivery to a paused endpoint %v", d)
	}
	r.must(200, "POST", "/v1/endpoints/"+epID+"/resume", keyA, nil)
	dest.expect(t, id4, secret1, secret2) // inside the grace period both secrets verify
	waitStatus(id4, epID, "delivered")
	health := r.must(200, "GET", "/v1/endpoints/"+epID+"/health", keyA, nil)
	// Every attempt to the first endpoint, 2xx or not, is in the window.
	if health["state"] != "active" || health["attempts"] != float64(dest.okCount("/hooks")+1) || health["last_failure_at"] == nil {
		t.Fatalf("health %v", health)
	}

	// Isolation over the wire: tenant B's key against every route with
	// tenant A's ids answers 404 E1011 and changes nothing of A's.
	snapshot := func() string {
		srcNow := r.must(200, "GET", "/v1/sources/"+srcID, keyA, nil)
		epNow := r.must(200, "GET", "/v1/endpoints/"+epID, keyA, nil)
		evs := r.must(200, "GET", "/v1/events?source_id="+srcID, keyA, nil)
		ds := r.must(200, "GET", "/v1/deliveries?endpoint_id="+epID, keyA, nil)
		raw, _ := json.Marshal([]any{srcNow, epNow, evs, ds})
		return string(raw)
	}
	before := snapshot()
	srcPath, epPath, evPath, dPath := "/v1/sources/"+srcID, "/v1/endpoints/"+epID, "/v1/events/"+id2, "/v1/deliveries/"+d2
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"GET", srcPath, nil},
		{"PATCH", srcPath, map[string]any{"verifier": map[string]any{"scheme": "none"}}},
		{"POST", srcPath + "/pause", nil},
		{"DELETE", srcPath, nil},
		{"GET", epPath, nil},
		{"PATCH", epPath, map[string]any{"name": "stolen"}},
		{"DELETE", epPath, nil},
		{"POST", epPath + "/pause", nil},
		{"POST", epPath + "/resume", nil},
		{"POST", epPath + "/rotate-signing-secret", map[string]any{"grace_period_s": 0}},
		{"GET", epPath + "/health", nil},
		{"POST", epPath + "/replay", map[string]any{"status": "delivered"}},
		{"POST", epPath + "/backfill", nil},
		{"POST", "/v1/endpoints", map[string]any{"url": dest.srv.URL, "source_ids": []string{srcID}}},
		{"GET", evPath + "?include=body", nil},
		{"GET", evPath + "/attempts", nil},
		{"POST", evPath + "/retry", nil},
		{"GET", dPath, nil},
		{"GET", dPath + "/attempts", nil},
		{"POST", dPath + "/retry", nil},
	} {
		st, p, _ := r.call(c.method, c.path, keyB, c.body)
		if st != 404 || p["code"] != "E1011" {
			t.Fatalf("tenant B %s %s: %d %v", c.method, c.path, st, p)
		}
	}
	if after := snapshot(); after != before {
		t.Fatalf("tenant B changed tenant A's resources:\nbefore %s\nafter  %s", before, after)
	}
	select {
	case got := <-dest.got:
		t.Fatalf("a refused call caused a delivery of %s", got.header.Get("webhook-id"))
	default:
	}
	for _, path := range []string{"/v1/events", "/v1/deliveries", "/v1/sources", "/v1/endpoints"} {
		if list := r.must(200, "GET", path, keyB, nil)["data"].([]any); len(list) != 0 {
			t.Fatalf("tenant B sees %s: %v", path, list)
		}
	}
	// A list filter naming A's ids answers 404, like any foreign id (I9).
	for _, path := range []string{"/v1/events?source_id=" + srcID, "/v1/deliveries?endpoint_id=" + epID} {
		if st, p, _ := r.call("GET", path, keyB, nil); st != 404 || p["code"] != "E1011" {
			t.Fatalf("tenant B lists %s: %d %v, want 404 E1011", path, st, p)
		}
	}
	for _, tok := range []string{"", "nope", keyA + "x", admin} {
		if st, p, _ := r.call("GET", "/v1/endpoints", tok, nil); st != 401 || p["code"] != "E1010" {
			t.Fatalf("token %q: %d %v", tok, st, p)
		}
	}
	_, _, h := r.call("GET", "/v1/endpoints", keyA, nil, "X-Request-Id", "e2e-request-42")
	if h.Get("X-Request-Id") != "e2e-request-42" {
		t.Fatalf("request id not echoed: %v", h)
	}

	// Per-tenant ingest rate limit: one event per 1000 s, burst 1.
	keyC := r.must(201, "POST", "/v1/tenants", admin, map[string]any{"name": "slow", "rate_limit": 0.001, "rate_burst": 1})["api_key"].(string)
	srcC := r.must(201, "POST", "/v1/sources", keyC, map[string]any{"name": "c"})["ingest_url"].(string)
	epC := r.must(201, "POST", "/v1/endpoints", keyC, map[string]any{"url": dest.srv.URL + "/slow"})
	idC := ingest(srcC, []byte("first"), 202)["id"].(string)
	st, p, h := r.call("POST", srcC, "", []byte("second"))
	if st != 429 || p["code"] != "E1006" || h.Get("Retry-After") == "" {
		t.Fatalf("over the rate: %d %v %v", st, p, h)
	}
	limited++
	dest.expect(t, idC, epC["signing_secret"].(string))

	// Metrics match the traffic: 6 accepted, 1 rate-limited, 1 duplicate, 1 bad signature;
	// one failed attempt; as many delivered attempts as the destination
	// answered 2xx (six events, the replay, the retries).
	delivered := float64(dest.okCount(""))
	if delivered < 7 {
		t.Fatalf("destination answered 2xx %v times, want at least 7", delivered)
	}
	want := map[string]float64{
		`kapsel_ingest_requests_total{code="",status="202"}`:      float64(accepted),
		`kapsel_ingest_requests_total{code="",status="200"}`:      float64(duplicates),
		`kapsel_ingest_requests_total{code="E1001",status="401"}`: float64(rejected),
		`kapsel_ingest_requests_total{code="E1006",status="429"}`: float64(limited),
		`kapsel_events_ingested_total`:                            float64(accepted),
		`kapsel_deliveries_created_total`:                         float64(accepted), // one endpoint each
		`kapsel_deliveries_ended_total{status="failed"}`:          1,
		`kapsel_attempts_total{code="",outcome="delivered"}`:      delivered,
		`kapsel_attempts_total{code="E2005",outcome="failed"}`:    1,
		`kapsel_delivery_latency_seconds_count`:                   delivered,
		`kapsel_queue_depth{status="pending"}`:                    0,
		`kapsel_queue_depth{status="delivering"}`:                 0,
	}
	var metrics map[string]float64
	eventually(t, "metrics to match the traffic", func() bool {
		metrics = scrape(t, r.base)
		for k, v := range want {
			if metrics[k] != v {
				return false
			}
		}
		return true
	})
	if accepted != 6 || duplicates != 1 || rejected != 1 || limited != 1 {
		t.Fatalf("traffic bookkeeping %d/%d/%d/%d", accepted, duplicates, rejected, limited)
	}

	// Readiness follows the database: move the schema away, then back.
	schema := searchPath(t, dsn)
	renameSchema(t, dsn, schema, schema+"_away")
	eventually(t, "/readyz 503 without the schema", func() bool {
		st, p, _ := r.call("GET", "/readyz", "", nil)
		return st == 503 && (p["code"] == "E3001" || p["code"] == "E3004")
	})
	r.must(200, "GET", "/healthz", "", nil) // alive all the same
	renameSchema(t, dsn, schema+"_away", schema)
	eventually(t, "/readyz 200 with the schema back", func() bool {
		st, _, _ := r.call("GET", "/readyz", "", nil)
		return st == 200
	})

	// SIGTERM: a clean shutdown returns nil.
	if err := r.stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}

	// No log line carries a secret, a key, a body or an Authorization header.
	lines := r.logs.lines(t)
	if len(lines) < 30 {
		t.Fatalf("only %d log lines", len(lines))
	}
	logs := r.logs.String()
	for _, secret := range []string{admin, keyA, keyB, secret1, secret2, other["signing_secret"].(string), ghSecret,
		"body-marker-7f3a", "while-paused", "plain text", "Bearer", "Authorization"} {
		if strings.Contains(logs, secret) {
			t.Fatalf("logs contain %q", secret)
		}
	}
	if !strings.Contains(logs, `"request_id":"e2e-request-42"`) {
		t.Fatal("the honoured request id is not logged")
	}
	for _, l := range lines {
		if l["msg"] == "request" && l["request_id"] == nil {
			t.Fatalf("request line without id: %v", l)
		}
	}
}
