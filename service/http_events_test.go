package service_test

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

func TestGetEvent(t *testing.T) {
	t.Parallel()
	f := setup(t)
	tid, key := f.tenant("acme")
	a := f.endpoint(key, nil)["id"].(string)
	f.endpoint(key, nil)
	src := f.source(key, nil)["id"].(string)
	id := string(f.insert(&kapsel.EventInsertParams{TenantID: tid, SourceID: kapsel.SourceID(src), Type: "push", Body: []byte(`{"order":42}`)}))

	out := f.ok(200, "GET", "/v1/events/"+id, key, nil)
	want := map[string]any{
		"id": id, "source_id": src, "type": "push", "content_type": "application/json", "size": 12.0,
		"idempotency_key": "", "created_at": "2026-01-01T00:00:00Z",
	}
	for k, v := range want {
		if out[k] != v {
			t.Errorf("%s = %v, want %v", k, out[k], v)
		}
	}
	requireSummary(t, out, 2, 2, 0, 0)
	for _, k := range []string{"body", "status", "endpoint_id", "attempts"} {
		if _, ok := out[k]; ok {
			t.Fatalf("event answered with %q: %v", k, out)
		}
	}
	out = f.ok(200, "GET", "/v1/events/"+id+"?include=body", key, nil)
	if out["body"] != `{"order":42}` || out["body_encoding"] != "text" {
		t.Fatalf("text body %v / %v", out["body"], out["body_encoding"])
	}

	// A body that is not UTF-8 comes back in base64; a send has no source.
	raw := string([]byte{0x00, 0xff, 0xfe, 'k'})
	bin := string(f.event(tid, a, raw))
	out = f.ok(200, "GET", "/v1/events/"+bin+"?include=body", key, nil)
	if out["body_encoding"] != "base64" || out["body"] != base64.StdEncoding.EncodeToString([]byte(raw)) || out["source_id"] != nil {
		t.Fatalf("binary body %v / %v, source %v", out["body"], out["body_encoding"], out["source_id"])
	}
	requireSummary(t, out, 1, 1, 0, 0)

	// The summary follows the deliveries: one delivered, one failed.
	f.clock.Advance(time.Second)
	ds := data(t, f.ok(200, "GET", "/v1/deliveries?event_id="+id, key, nil))
	if len(ds) != 2 {
		t.Fatalf("deliveries %v", ds)
	}
	f.attempt(200) // all three due deliveries delivered
	f.ok(202, "POST", "/v1/deliveries/"+ds[1]["id"].(string)+"/retry", key, nil)
	f.attempt(500)
	requireSummary(t, f.ok(200, "GET", "/v1/events/"+id, key, nil), 2, 0, 1, 1)

	f.problem(400, kapsel.CodeMalformedRequest, "GET", "/v1/events/"+id+"?include=headers", key, nil)
	f.problem(404, kapsel.CodeNotFound, "GET", "/v1/events/"+string(kapsel.NewEventID()), key, nil)
	f.problem(404, kapsel.CodeNotFound, "GET", "/v1/events/"+a, key, nil)
}

// requireSummary checks an event's deliveries summary.
func requireSummary(t *testing.T, ev map[string]any, total, pending, delivered, failed float64) {
	t.Helper()
	s, ok := ev["deliveries"].(map[string]any)
	if !ok || s["total"] != total || s["pending"] != pending || s["delivering"] != 0.0 || s["delivered"] != delivered || s["failed"] != failed {
		t.Fatalf("deliveries summary %v, want total %v pending %v delivered %v failed %v", ev["deliveries"], total, pending, delivered, failed)
	}
}

func TestListEvents(t *testing.T) {
	t.Parallel()
	f := setup(t)
	tid, key := f.tenant("acme")
	_, otherKey := f.tenant("other")
	a := f.source(key, nil)["id"].(string)
	b := f.source(key, nil)["id"].(string)
	var ids []string
	for i := range 3 {
		ids = append(ids, string(f.insert(&kapsel.EventInsertParams{TenantID: tid, SourceID: kapsel.SourceID(a), Body: []byte{'a', byte('0' + i)}})))
	}
	ids = append(ids, string(f.insert(&kapsel.EventInsertParams{TenantID: tid, SourceID: kapsel.SourceID(b), Body: []byte("b0")})))
	ids = append(ids, string(f.event(tid, "", "sent")))

	all := data(t, f.ok(200, "GET", "/v1/events", key, nil))
	if len(all) != 5 || all[0]["id"] != ids[0] || all[4]["id"] != ids[4] || all[4]["source_id"] != nil {
		t.Fatalf("all events %v", all)
	}
	if _, ok := all[0]["body"]; ok {
		t.Fatal("lists carry bodies")
	}
	requireSummary(t, all[0], 0, 0, 0, 0) // no endpoint: stored, and says so
	if got := data(t, f.ok(200, "GET", "/v1/events?source_id="+b, key, nil)); len(got) != 1 || got[0]["id"] != ids[3] {
		t.Fatalf("by source %v", got)
	}
	// A deleted source's events stay listed by it.
	f.ok(204, "DELETE", "/v1/sources/"+a, key, nil)
	if got := data(t, f.ok(200, "GET", "/v1/events?source_id="+a, key, nil)); len(got) != 3 {
		t.Fatalf("by a deleted source %v", got)
	}
	// Another tenant's filter by it, or by an unknown source, answers 404
	// E1011 (I9), not an empty page.
	requireProblem(t, f.do("GET", "/v1/events?source_id="+a, otherKey, nil), 404, kapsel.CodeNotFound)
	requireProblem(t, f.do("GET", "/v1/events?source_id="+b, otherKey, nil), 404, kapsel.CodeNotFound)
	requireProblem(t, f.do("GET", "/v1/events?source_id="+string(kapsel.NewSourceID()), key, nil), 404, kapsel.CodeNotFound)
	page := f.ok(200, "GET", "/v1/events?limit=3", key, nil)
	if page["has_more"] != true || page["next_cursor"] != ids[2] {
		t.Fatalf("page 1 %v", page)
	}
	page = f.ok(200, "GET", "/v1/events?limit=3&cursor="+ids[2], key, nil)
	if got := data(t, page); len(got) != 2 || got[0]["id"] != ids[3] || page["has_more"] != false {
		t.Fatalf("page 2 %v", page)
	}
	f.problem(400, kapsel.CodeMalformedRequest, "GET", "/v1/events?source_id=src_bad", key, nil)
	p := f.problem(400, kapsel.CodeMalformedRequest, "GET", "/v1/events?endpoint_id="+string(kapsel.NewEndpointID()), key, nil)
	if !strings.Contains(p["detail"].(string), "/v1/deliveries") {
		t.Fatalf("0.1's endpoint_id filter: %v", p["detail"])
	}
	f.problem(400, kapsel.CodeMalformedRequest, "GET", "/v1/events?status=failed", key, nil)
	f.problem(400, kapsel.CodeMalformedRequest, "GET", "/v1/events?source_id="+string(kapsel.NewEndpointID()), key, nil)
	f.problem(400, kapsel.CodeMalformedRequest, "GET", "/v1/events?cursor="+a, key, nil)
}

func TestSendHTTP(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.start()
	_, key := f.tenant("acme")
	_, otherKey := f.tenant("other")
	invoices := f.pausedEndpoint(key, map[string]any{"event_types": []string{"invoice.*"}})
	org := f.pausedEndpoint(key, map[string]any{"channels": []string{"org_1"}})
	foreign := f.pausedEndpoint(otherKey, nil)

	// A JSON payload, stored as sent, to every subscribed endpoint.
	out := f.ok(202, "POST", "/v1/events", key, `{"type":"invoice.paid","channels":["org_1"],"payload":{"b": 2, "a": [1]},"idempotency_key":"inv-1"}`)
	id, _ := out["id"].(string)
	if !strings.HasPrefix(id, "evt_") || out["deliveries"] != 2.0 || out["duplicate"] != false {
		t.Fatalf("send: %v", out)
	}
	ev := f.ok(200, "GET", "/v1/events/"+id+"?include=body", key, nil)
	if ev["body"] != `{"b": 2, "a": [1]}` || ev["content_type"] != "application/json" || ev["type"] != "invoice.paid" ||
		ev["idempotency_key"] != "inv-1" || ev["source_id"] != nil {
		t.Fatalf("the sent event %v", ev)
	}
	requireSummary(t, ev, 2, 2, 0, 0)

	// The same key again: 200, the first event, no new delivery.
	rec := f.do("POST", "/v1/events", key, `{"type":"invoice.paid","channels":["org_1"],"payload":{"b": 2, "a": [1]},"idempotency_key":"inv-1"}`)
	if rec.Code != http.StatusOK || rec.Header().Get("Idempotent-Replayed") != "true" ||
		!strings.Contains(rec.Body.String(), `"id":"`+id+`","deliveries":0,"duplicate":true`) {
		t.Fatalf("repeated send: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	// The Idempotency-Key header is the same key.
	req := newRequest("POST", "/v1/events", `{"type":"invoice.paid","channels":["org_1"],"payload":{"b": 2, "a": [1]}}`)
	req.Header.Set("Idempotency-Key", "inv-1")
	if rec := serve(f.handler, authed(req, key)); rec.Code != http.StatusOK {
		t.Fatalf("repeated send by header: %d %s", rec.Code, rec.Body)
	}
	f.problem(422, kapsel.CodeIdempotencyReused, "POST", "/v1/events", key, map[string]any{"payload": 1, "idempotency_key": "inv-1"})

	// A base64 body with its content type, to named endpoints only.
	out = f.ok(202, "POST", "/v1/events", key, map[string]any{
		"body": base64.StdEncoding.EncodeToString([]byte{0xff, 0x00}), "content_type": "application/octet-stream",
		"endpoint_ids": []string{invoices},
	})
	if out["deliveries"] != 1.0 {
		t.Fatalf("send to a named endpoint: %v", out)
	}
	ev = f.ok(200, "GET", "/v1/events/"+out["id"].(string)+"?include=body", key, nil)
	if ev["body"] != "/wA=" || ev["body_encoding"] != "base64" || ev["content_type"] != "application/octet-stream" || ev["type"] != "" {
		t.Fatalf("the binary event %v", ev)
	}
	if ds := data(t, f.ok(200, "GET", "/v1/deliveries?event_id="+out["id"].(string), key, nil)); len(ds) != 1 || ds[0]["endpoint_id"] != invoices {
		t.Fatalf("deliveries of the named send %v", ds)
	}
	// Matching nothing: stored with no delivery.
	if out := f.ok(202, "POST", "/v1/events", key, map[string]any{"type": "user.created", "payload": nil}); out["deliveries"] != 0.0 {
		t.Fatalf("send matching no endpoint: %v", out)
	}
	// Another tenant's key is not this tenant's: a new event.
	if out := f.ok(202, "POST", "/v1/events", otherKey, map[string]any{"payload": 1, "idempotency_key": "inv-1"}); out["deliveries"] != 1.0 {
		t.Fatalf("the other tenant's send: %v", out)
	}

	for _, tc := range []struct {
		body   any
		status int
		code   kapsel.Code
	}{
		{map[string]any{"type": "x"}, 400, kapsel.CodeMalformedRequest},                                      // neither payload nor body
		{map[string]any{"payload": 1, "body": "MQ=="}, 400, kapsel.CodeMalformedRequest},                     // both
		{map[string]any{"body": "not base64!"}, 400, kapsel.CodeMalformedRequest},                            // bad base64
		{map[string]any{"payload": 1, "endpoint_ids": []string{}}, 400, kapsel.CodeMalformedRequest},         // empty list
		{map[string]any{"payload": 1, "endpoint_ids": []string{"ep_bad"}}, 400, kapsel.CodeMalformedRequest}, // malformed id
		{map[string]any{"payload": 1, "endpoint_ids": []string{org, foreign}}, 404, kapsel.CodeNotFound},     // another tenant's
		{map[string]any{"payload": 1, "type": "a\tb"}, 400, kapsel.CodeMalformedRequest},
		{map[string]any{"payload": 1, "channels": []string{"*"}}, 400, kapsel.CodeMalformedRequest},
		{map[string]any{"payload": 1, "idempotency_key": "é"}, 400, kapsel.CodeBadIdempotencyKey},
		{map[string]any{"payload": 1, "content_type": "text/\u0000"}, 400, kapsel.CodeMalformedRequest},
		{map[string]any{"payload": 1, "endpoint_id": org}, 400, kapsel.CodeMalformedRequest}, // unknown field
		{`{"payload":1} {}`, 400, kapsel.CodeMalformedRequest},
	} {
		f.problem(tc.status, tc.code, "POST", "/v1/events", key, tc.body)
	}
	req = newRequest("POST", "/v1/events", `{"payload":1,"idempotency_key":"a"}`)
	req.Header.Set("Idempotency-Key", "b")
	requireProblem(t, serve(f.handler, authed(req, key)), 400, kapsel.CodeMalformedRequest)
	f.problem(401, kapsel.CodeUnauthenticated, "POST", "/v1/events", adminToken, map[string]any{"payload": 1})

	// Before Start and after Stop, a send answers 503 E3003: nothing is
	// accepted that would not be delivered.
	if err := f.svc.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	rec = f.do("POST", "/v1/events", key, map[string]any{"payload": 1})
	requireProblem(t, rec, 503, kapsel.CodeShuttingDown)
	if rec.Header().Get("Retry-After") == "" {
		t.Fatalf("503 without Retry-After: %v", rec.Header())
	}
}

// TestSendHTTPBodyLimit: a send may carry a body up to the ingest limit in
// base64, beyond the management API's request limit; over it, 413.
func TestSendHTTPBodyLimit(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.start()
	_, key := f.tenant("acme")
	big := make([]byte, 2<<20) // over the 1 MiB request limit, under the 10 MiB body limit
	out := f.ok(202, "POST", "/v1/events", key, map[string]any{"body": base64.StdEncoding.EncodeToString(big)})
	if ev := f.ok(200, "GET", "/v1/events/"+out["id"].(string), key, nil); ev["size"] != float64(len(big)) {
		t.Fatalf("size %v", ev["size"])
	}
	over := make([]byte, 10<<20+1)
	f.problem(413, kapsel.CodeBodyTooLarge, "POST", "/v1/events", key, map[string]any{"body": base64.StdEncoding.EncodeToString(over)})
	f.problem(413, kapsel.CodeBodyTooLarge, "POST", "/v1/events", key, `{"payload":"`+strings.Repeat("x", 14<<20)+`"}`)
}

func TestDeliveriesHTTP(t *testing.T) {
	t.Parallel()
	f := setup(t)
	tid, key := f.tenant("acme")
	_, otherKey := f.tenant("other")
	a := f.endpoint(key, nil)["id"].(string)
	b := f.endpoint(key, nil)["id"].(string)
	id := string(f.event(tid, "", "x"))
	ds := data(t, f.ok(200, "GET", "/v1/deliveries?event_id="+id, key, nil))
	if len(ds) != 2 {
		t.Fatalf("deliveries %v", ds)
	}
	byEndpoint := map[string]map[string]any{}
	for _, d := range ds {
		byEndpoint[d["endpoint_id"].(string)] = d
	}
	da, db := byEndpoint[a], byEndpoint[b]
	dlv := da["id"].(string)
	want := map[string]any{
		"event_id": id, "endpoint_id": a, "status": "pending", "attempts": 0.0, "next_attempt_at": "2026-01-01T00:00:00Z",
		"last_error": "", "created_at": "2026-01-01T00:00:00Z", "delivered_at": nil,
	}
	for k, v := range want {
		if da[k] != v {
			t.Errorf("%s = %v, want %v", k, da[k], v)
		}
	}
	if !strings.HasPrefix(dlv, "dlv_") || db == nil {
		t.Fatalf("deliveries %v", ds)
	}
	f.problem(400, kapsel.CodeMalformedRequest, "POST", "/v1/deliveries/"+dlv+"/retry", key, nil) // pending
	if got := data(t, f.ok(200, "GET", "/v1/deliveries/"+dlv+"/attempts", key, nil)); len(got) != 0 {
		t.Fatalf("attempts before any %v", got)
	}
	f.attempt(500)
	f.clock.Advance(time.Minute)
	out := f.ok(202, "POST", "/v1/deliveries/"+dlv+"/retry", key, nil)
	if out["status"] != "pending" || out["next_attempt_at"] != "2026-01-01T00:01:00Z" || out["id"] != dlv || out["last_error"] != "destination answered 500" {
		t.Fatalf("retried %v", out)
	}
	f.problem(400, kapsel.CodeMalformedRequest, "POST", "/v1/deliveries/"+dlv+"/retry", key, nil) // pending again
	if n := f.attempt(200); n != 1 {
		t.Fatalf("attempted %d, want only the retried delivery", n)
	}
	got := f.ok(200, "GET", "/v1/deliveries/"+dlv, key, nil)
	if got["status"] != "delivered" || got["delivered_at"] != "2026-01-01T00:01:00Z" || got["next_attempt_at"] != nil || got["attempts"] != 2.0 {
		t.Fatalf("delivered delivery %v", got)
	}

	atts := data(t, f.ok(200, "GET", "/v1/deliveries/"+dlv+"/attempts", key, nil))
	if len(atts) != 2 {
		t.Fatalf("attempts %v", atts)
	}
	first, second := atts[0], atts[1]
	if first["attempt"] != 1.0 || first["trigger"] != "scheduled" || first["status_code"] != 500.0 || first["error_code"] != "E2005" ||
		first["delivery_id"] != dlv || first["event_id"] != id || first["endpoint_id"] != a || first["duration_ms"] != 15.0 ||
		first["started_at"] != "2026-01-01T00:00:00Z" || first["response_body_encoding"] != "base64" || first["error"] != "destination answered 500" {
		t.Fatalf("first attempt %v", first)
	}
	if second["attempt"] != 2.0 || second["trigger"] != "manual" || second["status_code"] != 200.0 || second["error_code"] != "" ||
		second["response_body"] != "ok" || second["response_body_encoding"] != "text" {
		t.Fatalf("second attempt %v", second)
	}
	page := f.ok(200, "GET", "/v1/deliveries/"+dlv+"/attempts?limit=1", key, nil)
	if page["has_more"] != true || page["next_cursor"] != first["id"] {
		t.Fatalf("attempts page %v", page)
	}
	// The event's attempts are those of both deliveries.
	if got := data(t, f.ok(200, "GET", "/v1/events/"+id+"/attempts", key, nil)); len(got) != 3 {
		t.Fatalf("the event's attempts %v", got)
	}

	// Filters.
	for q, n := range map[string]int{
		"endpoint_id=" + a: 1, "endpoint_id=" + b + "&status=failed": 1, "status=delivered": 1, "status=pending": 0,
		"event_id=" + id + "&status=failed": 1,
	} {
		if got := data(t, f.ok(200, "GET", "/v1/deliveries?"+q, key, nil)); len(got) != n {
			t.Fatalf("deliveries?%s: %d, want %d", q, len(got), n)
		}
	}
	// An unknown or foreign id in a filter answers 404 E1011 (I9), not an
	// empty page.
	for _, tc := range []struct{ q, key string }{
		{"event_id=" + string(kapsel.NewEventID()), key},
		{"endpoint_id=" + string(kapsel.NewEndpointID()), key},
		{"event_id=" + id, otherKey},
		{"endpoint_id=" + a, otherKey},
		{"endpoint_id=" + a + "&event_id=" + id, otherKey},
	} {
		requireProblem(t, f.do("GET", "/v1/deliveries?"+tc.q, tc.key, nil), 404, kapsel.CodeNotFound)
	}
	page = f.ok(200, "GET", "/v1/deliveries?limit=1", key, nil)
	if page["has_more"] != true || page["next_cursor"] != ds[0]["id"] {
		t.Fatalf("deliveries page %v", page)
	}

	// The event retried: each finished delivery once more.
	if out := f.ok(202, "POST", "/v1/events/"+id+"/retry", key, nil); out["count"] != 2.0 {
		t.Fatalf("event retry %v", out)
	}
	if out := f.ok(202, "POST", "/v1/events/"+id+"/retry", key, nil); out["count"] != 0.0 {
		t.Fatalf("event retry with every delivery pending %v", out)
	}

	for _, q := range []string{"status=lost", "endpoint_id=ep_bad", "event_id=" + a, "cursor=" + id, "limit=0"} {
		f.problem(400, kapsel.CodeMalformedRequest, "GET", "/v1/deliveries?"+q, key, nil)
	}
	for _, path := range []string{"/v1/deliveries/" + dlv, "/v1/deliveries/" + dlv + "/attempts"} {
		f.problem(404, kapsel.CodeNotFound, "GET", path, otherKey, nil)
	}
	f.problem(404, kapsel.CodeNotFound, "POST", "/v1/deliveries/"+dlv+"/retry", otherKey, nil)
	f.problem(404, kapsel.CodeNotFound, "POST", "/v1/events/"+id+"/retry", otherKey, nil)
	f.problem(404, kapsel.CodeNotFound, "GET", "/v1/deliveries/"+id, key, nil)
	f.problem(404, kapsel.CodeNotFound, "GET", "/v1/deliveries/"+string(kapsel.NewDeliveryID())+"/attempts", key, nil)
	f.problem(404, kapsel.CodeNotFound, "GET", "/v1/events/"+string(kapsel.NewEventID())+"/attempts", key, nil)
}
