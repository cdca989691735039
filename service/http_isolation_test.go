package service_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// TestTenantIsolation sends tenant B's key against every route with tenant
// A's ids: each answers 404 E1011 and nothing of A's changes (I9 of docs/guarantees.md).
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	f := setup(t)
	tidA, keyA := f.tenant("a")
	tidB, keyB := f.tenant("b")
	epA := f.endpoint(keyA, map[string]any{"headers": map[string]string{"X-Team": "a"}})
	ep := epA["id"].(string)
	secretA := epA["signing_secret"].(string)
	src := f.source(keyA, map[string]any{"verifier": map[string]any{"scheme": "github", "secrets": []string{"gh-secret-a"}}})["id"].(string)
	delivered := string(f.insert(&kapsel.EventInsertParams{TenantID: tidA, SourceID: kapsel.SourceID(src), Body: []byte(`{"secret_body":"a"}`)}))
	f.attempt(200)
	failed := string(f.event(tidA, ep, `{"secret_body":"b"}`))
	f.attempt(500)
	var dlvs []string
	for _, d := range data(t, f.ok(200, "GET", "/v1/deliveries", keyA, nil)) {
		dlvs = append(dlvs, d["id"].(string))
	}
	ctx := t.Context()
	if _, err := f.store.BreakerSave(ctx, &kapsel.BreakerSaveParams{
		State: &kapsel.BreakerState{EndpointID: kapsel.EndpointID(ep), Status: kapsel.BreakerOpen, OpenUntil: f.clock.Now().Add(time.Hour)},
		Now:   f.clock.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	// B has its own endpoint and event, which must not be affected either.
	epB := f.endpoint(keyB, nil)["id"].(string)
	f.event(tidB, epB, "b's")

	snapshot := func() any {
		e, err := f.store.EndpointGet(ctx, &kapsel.EndpointGetParams{ID: kapsel.EndpointID(ep)})
		if err != nil {
			t.Fatalf("A's endpoint is gone: %v", err)
		}
		s, err := f.store.SourceGet(ctx, &kapsel.SourceGetParams{ID: kapsel.SourceID(src)})
		if err != nil {
			t.Fatalf("A's source is gone: %v", err)
		}
		var ds []*kapsel.Delivery
		for _, id := range dlvs {
			d, err := f.store.DeliveryGet(ctx, &kapsel.DeliveryGetParams{ID: kapsel.DeliveryID(id)})
			if err != nil {
				t.Fatal(err)
			}
			ds = append(ds, d)
		}
		var evs []*kapsel.Event
		for _, id := range []string{delivered, failed} {
			ev, err := f.store.EventGet(ctx, &kapsel.EventGetParams{ID: kapsel.EventID(id), IncludeBody: true})
			if err != nil {
				t.Fatal(err)
			}
			evs = append(evs, ev)
		}
		b, err := f.store.BreakerGet(ctx, &kapsel.BreakerGetParams{EndpointID: kapsel.EndpointID(ep)})
		if err != nil {
			t.Fatalf("A's breaker was reset: %v", err)
		}
		return []any{e, s, evs, ds, b}
	}
	before := snapshot()

	epPath, evPath, srcPath := "/v1/endpoints/"+ep, "/v1/events/"+failed, "/v1/sources/"+src
	for _, tc := range []struct {
		method, path string
		body         any
	}{
		{"GET", srcPath, nil},
		{"PATCH", srcPath, map[string]any{"name": "stolen"}},
		{"DELETE", srcPath, nil},
		{"POST", srcPath + "/pause", nil},
		{"POST", srcPath + "/resume", nil},
		{"GET", epPath, nil},
		{"PATCH", epPath, map[string]any{"name": "stolen"}},
		{"DELETE", epPath, nil},
		{"POST", epPath + "/pause", nil},
		{"POST", epPath + "/resume", nil},
		{"POST", epPath + "/rotate-signing-secret", map[string]any{"grace_period_s": 0}},
		{"GET", epPath + "/health", nil},
		{"POST", epPath + "/replay", map[string]any{"status": "failed"}},
		{"POST", epPath + "/replay", map[string]any{"status": "delivered"}},
		{"POST", epPath + "/backfill", nil},
		{"GET", evPath, nil},
		{"GET", evPath + "?include=body", nil},
		{"GET", "/v1/events/" + delivered + "/attempts", nil},
		{"GET", evPath + "/attempts", nil},
		{"POST", evPath + "/retry", nil},
		{"POST", "/v1/events/" + delivered + "/retry", nil},
		{"GET", "/v1/deliveries/" + dlvs[0], nil},
		{"GET", "/v1/deliveries/" + dlvs[1] + "/attempts", nil},
		{"POST", "/v1/deliveries/" + dlvs[0] + "/retry", nil},
		{"POST", "/v1/deliveries/" + dlvs[1] + "/retry", nil},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			rec := f.do(tc.method, tc.path, keyB, tc.body)
			requireProblem(t, rec, 404, kapsel.CodeNotFound)
			requireNoSecret(t, rec.Body.String(), secretA, "gh-secret-a", "secret_body", "stolen")
		})
	}
	if after := snapshot(); !reflect.DeepEqual(before, after) {
		t.Fatalf("tenant B changed tenant A's resources:\nbefore %+v\nafter  %+v", before, after)
	}

	// B's lists show only B's resources, whatever filter names A's.
	eps := data(t, f.ok(200, "GET", "/v1/endpoints", keyB, nil))
	if len(eps) != 1 || eps[0]["id"] != epB {
		t.Fatalf("B's endpoints %v", eps)
	}
	if srcs := data(t, f.ok(200, "GET", "/v1/sources", keyB, nil)); len(srcs) != 0 {
		t.Fatalf("B's sources %v", srcs)
	}
	evs := f.do("GET", "/v1/events", keyB, nil)
	if strings.Contains(evs.Body.String(), ep) || len(data(t, f.ok(200, "GET", "/v1/events", keyB, nil))) != 1 {
		t.Fatalf("B's events %s", evs.Body)
	}
	// A filter naming A's source, endpoint or event answers 404 like any
	// foreign id (I9), not an empty page.
	for _, q := range []string{"/v1/events?source_id=" + src, "/v1/deliveries?endpoint_id=" + ep, "/v1/deliveries?event_id=" + failed} {
		rec := f.do("GET", q, keyB, nil)
		requireProblem(t, rec, 404, kapsel.CodeNotFound)
		requireNoSecret(t, rec.Body.String(), secretA, "gh-secret-a", "secret_body", "stolen")
	}
	if ds := data(t, f.ok(200, "GET", "/v1/deliveries", keyB, nil)); len(ds) != 1 {
		t.Fatalf("B's deliveries %v", ds)
	}
	// And A still sees all of its own.
	if got := data(t, f.ok(200, "GET", "/v1/events", keyA, nil)); len(got) != 2 {
		t.Fatalf("A's events %v", got)
	}
}
