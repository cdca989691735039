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
	delivered := string(f.event(tidA, ep, `{"secret_body":"a"}`))
	f.attempt(200)
	failed := string(f.event(tidA, ep, `{"secret_body":"b"}`))
	f.attempt(500)
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
		return []any{e, evs, b}
	}
	before := snapshot()

	epPath, evPath := "/v1/endpoints/"+ep, "/v1/events/"+failed
	for _, tc := range []struct {
		method, path string
		body         any
	}{
		{"GET", epPath, nil},
		{"PATCH", epPath, map[string]any{"name": "stolen"}},
		{"DELETE", epPath, nil},
		{"POST", epPath + "/pause", nil},
		{"POST", epPath + "/resume", nil},
		{"POST", epPath + "/rotate-signing-secret", map[string]any{"grace_period_s": 0}},
		{"GET", epPath + "/health", nil},
		{"POST", epPath + "/replay", map[string]any{"status": "failed"}},
		{"POST", epPath + "/replay", map[string]any{"status": "delivered"}},
		{"GET", "/v1/events?endpoint_id=" + ep, nil},
		{"GET", evPath, nil},
		{"GET", evPath + "?include=body", nil},
		{"GET", "/v1/events/" + delivered + "/attempts", nil},
		{"GET", evPath + "/attempts", nil},
		{"POST", evPath + "/retry", nil},
		{"POST", "/v1/events/" + delivered + "/retry", nil},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			rec := f.do(tc.method, tc.path, keyB, tc.body)
			requireProblem(t, rec, 404, kapsel.CodeNotFound)
			requireNoSecret(t, rec.Body.String(), secretA, "secret_body", "stolen")
		})
	}
	if after := snapshot(); !reflect.DeepEqual(before, after) {
		t.Fatalf("tenant B changed tenant A's resources:\nbefore %+v\nafter  %+v", before, after)
	}

	// B's lists show only B's resources.
	eps := data(t, f.ok(200, "GET", "/v1/endpoints", keyB, nil))
	if len(eps) != 1 || eps[0]["id"] != epB {
		t.Fatalf("B's endpoints %v", eps)
	}
	evs := f.do("GET", "/v1/events", keyB, nil)
	if strings.Contains(evs.Body.String(), ep) || len(data(t, f.ok(200, "GET", "/v1/events", keyB, nil))) != 1 {
		t.Fatalf("B's events %s", evs.Body)
	}
	// And A still sees all of its own.
	if got := data(t, f.ok(200, "GET", "/v1/events", keyA, nil)); len(got) != 2 {
		t.Fatalf("A's events %v", got)
	}
}
