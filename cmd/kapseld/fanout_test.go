package main

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/service"
	"github.com/kapsel-dev/kapsel/store/sqlitestore"
)

// TestFanOutEndToEnd: over HTTP against kapseld on its embedded store, one
// webhook ingested at a source reaches every endpoint subscribed to it,
// each signed with its own secret and all with the event's webhook-id;
// sends go to the endpoints their type matches or to the ones they name;
// an endpoint created later gets past events by a backfill; and an ingest
// URL of 0.1 (/ingest/ep_…) still reaches the source the upgrade made of
// that endpoint.
func TestFanOutEndToEnd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const admin = "fanout-admin"
	// What the 0.1 → 0.2 upgrade leaves of a 0.1 endpoint (the stores'
	// upgrade tests check that it does): the endpoint, and a source with
	// its id's ULID and its verifier, which the endpoint subscribes to.
	dest := newDestination(t)
	legacyKey, legacyEP := legacyEndpoint(t, dir, dest.srv.URL+"/legacy")

	r := startServer(t, map[string]string{
		"KAPSEL_DATA_DIR":                   dir,
		"KAPSEL_ADMIN_TOKEN":                admin,
		"KAPSEL_ALLOW_PRIVATE_DESTINATIONS": "true",
	})
	key := r.must(201, "POST", "/v1/tenants", admin, map[string]any{"name": "acme"})["api_key"].(string)
	src := r.must(201, "POST", "/v1/sources", key, map[string]any{
		"name": "shop", "verifier": map[string]any{"scheme": "hmac-sha256", "secrets": []string{"shop-secret"}},
		"event_type_from": "header:X-Event-Type",
	})
	endpoint := func(path string, body map[string]any) (id, secret string) {
		t.Helper()
		body["url"] = dest.srv.URL + path
		ep := r.must(201, "POST", "/v1/endpoints", key, body)
		return ep["id"].(string), ep["signing_secret"].(string)
	}
	a, secretA := endpoint("/a", map[string]any{"source_ids": []string{src["id"].(string)}})
	b, secretB := endpoint("/b", map[string]any{"event_types": []string{"order.*"}})
	c, secretC := endpoint("/c", map[string]any{"event_types": []string{"audit.entry"}})

	// One webhook, two deliveries: a (its source) and b (its type).
	body := []byte(`{"order":1}`)
	ev := r.must(202, "POST", src["ingest_url"].(string), "", body,
		"X-Kapsel-Signature", githubSign("shop-secret", body), "X-Event-Type", "order.created")
	id := ev["id"].(string)
	if ev["deliveries"] != 2.0 {
		t.Fatalf("ingest answer %v, want 2 deliveries", ev)
	}
	got := map[string]received{}
	for range 2 {
		d := dest.next(t)
		got[d.path] = d
	}
	for path, secret := range map[string]string{"/a": secretA, "/b": secretB} {
		d, ok := got[path]
		if !ok || d.header.Get("webhook-id") != id || string(d.body) != string(body) || d.header.Get("X-Kapsel-Event-Type") != "order.created" {
			t.Fatalf("%s received %v", path, d)
		}
		if err := verify(t, d, secret); err != nil {
			t.Fatalf("%s: the signature does not verify with its endpoint's secret: %v", path, err)
		}
	}
	if verify(t, got["/a"], secretB) == nil {
		t.Fatal("a's delivery verifies with b's secret: the endpoints share a signature")
	}
	eventually(t, "both deliveries delivered", func() bool {
		_, e, _ := r.call("GET", "/v1/events/"+id, key, nil)
		s, _ := e["deliveries"].(map[string]any)
		return s["delivered"] == 2.0
	})
	ds := r.must(200, "GET", "/v1/deliveries?event_id="+id, key, nil)["data"].([]any)
	var to []string
	for _, d := range ds {
		to = append(to, d.(map[string]any)["endpoint_id"].(string))
	}
	want := []string{a, b}
	slices.Sort(to)
	slices.Sort(want)
	if !slices.Equal(to, want) {
		t.Fatalf("deliveries of the event go to %v, want %v", to, want)
	}

	// Sends: by type to b, by name to c (whatever its filter).
	if out := r.must(202, "POST", "/v1/events", key, map[string]any{"type": "order.paid", "payload": 2}); out["deliveries"] != 1.0 {
		t.Fatalf("send by type %v", out)
	}
	if d := dest.next(t); d.path != "/b" || verify(t, d, secretB) != nil {
		t.Fatalf("the typed send reached %s", d.path)
	}
	if out := r.must(202, "POST", "/v1/events", key, map[string]any{"payload": 3, "endpoint_ids": []string{c}}); out["deliveries"] != 1.0 {
		t.Fatalf("send by name %v", out)
	}
	if d := dest.next(t); d.path != "/c" || verify(t, d, secretC) != nil {
		t.Fatalf("the named send reached %s", d.path)
	}

	// An endpoint created now gets past order events by a backfill only.
	late, secretLate := endpoint("/late", map[string]any{"event_types": []string{"order.*"}})
	if ds := r.must(200, "GET", "/v1/deliveries?endpoint_id="+late, key, nil)["data"].([]any); len(ds) != 0 {
		t.Fatalf("a new endpoint has deliveries %v", ds)
	}
	if out := r.must(202, "POST", "/v1/endpoints/"+late+"/backfill", key, nil); out["count"] != 2.0 {
		t.Fatalf("backfill %v, want the 2 order events", out)
	}
	for range 2 {
		if d := dest.next(t); d.path != "/late" || verify(t, d, secretLate) != nil {
			t.Fatalf("a backfilled delivery reached %s", d.path)
		}
	}
	if out := r.must(202, "POST", "/v1/endpoints/"+late+"/backfill", key, nil); out["count"] != 0.0 {
		t.Fatalf("a second backfill %v, want 0", out)
	}

	// A 0.1 ingest URL.
	legacyBody := []byte(`{"legacy":true}`)
	out := r.must(202, "POST", "/ingest/"+string(legacyEP), "", legacyBody, "X-Hub-Signature-256", githubSign("legacy-secret", legacyBody))
	if out["deliveries"] != 1.0 {
		t.Fatalf("ingest at a 0.1 URL: %v", out)
	}
	if d := dest.next(t); d.path != "/legacy" || d.header.Get("webhook-id") != out["id"] {
		t.Fatalf("the 0.1 URL's event reached %s", d.path)
	}
	if e := r.must(200, "GET", "/v1/events/"+out["id"].(string), legacyKey, nil); e["source_id"] != string(kapsel.LegacySourceID(legacyEP)) {
		t.Fatalf("the 0.1 URL's event: %v", e)
	}
	r.must(401, "POST", "/ingest/"+string(legacyEP), "", legacyBody, "X-Hub-Signature-256", githubSign("wrong", legacyBody))
	r.must(404, "POST", "/ingest/"+a, "", legacyBody) // a 0.2 endpoint's id is no ingest URL

	if err := r.stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

// legacyEndpoint writes, in the embedded store at dir, a tenant and what
// the upgrade makes of a 0.1 endpoint delivering to url, and returns the
// tenant's API key and the endpoint's id.
func legacyEndpoint(t *testing.T, dir, url string) (string, kapsel.EndpointID) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := sqlitestore.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := service.New(st, &service.Config{AllowPrivateDestinations: true})
	if err != nil {
		t.Fatal(err)
	}
	ten, key, err := svc.CreateTenant(ctx, service.TenantCreate{Name: "from 0.1"})
	if err != nil {
		t.Fatal(err)
	}
	ep, _, err := svc.CreateEndpoint(ctx, ten.ID, service.EndpointCreate{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.SourceInsert(ctx, &kapsel.SourceInsertParams{Source: &kapsel.Source{
		ID: kapsel.LegacySourceID(ep.ID), TenantID: ten.ID, Name: "from 0.1",
		Verifier: kapsel.VerifierConfig{Scheme: kapsel.SchemeGitHub, Secrets: []string{"legacy-secret"}},
	}, Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.UpdateEndpoint(ctx, ten.ID, ep.ID, service.EndpointUpdate{SourceIDs: []kapsel.SourceID{kapsel.LegacySourceID(ep.ID)}}); err != nil {
		t.Fatal(err)
	}
	return key, ep.ID
}
