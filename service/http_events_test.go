package service_test

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

func TestGetEvent(t *testing.T) {
	t.Parallel()
	f := setup(t)
	tid, key := f.tenant("acme")
	ep := f.endpoint(key, nil)["id"].(string)
	id := string(f.event(tid, ep, `{"order":42}`))

	out := f.ok(200, "GET", "/v1/events/"+id, key, nil)
	want := map[string]any{
		"id": id, "endpoint_id": ep, "status": "pending", "attempts": 0.0, "next_attempt_at": "2026-01-01T00:00:00Z",
		"last_error": "", "content_type": "application/json", "size": 12.0, "created_at": "2026-01-01T00:00:00Z",
		"delivered_at": nil,
	}
	for k, v := range want {
		if out[k] != v {
			t.Errorf("%s = %v, want %v", k, out[k], v)
		}
	}
	if _, ok := out["body"]; ok {
		t.Fatal("body returned without ?include=body")
	}
	out = f.ok(200, "GET", "/v1/events/"+id+"?include=body", key, nil)
	if out["body"] != `{"order":42}` || out["body_encoding"] != "text" {
		t.Fatalf("text body %v / %v", out["body"], out["body_encoding"])
	}

	// A body that is not UTF-8 comes back in base64.
	raw := string([]byte{0x00, 0xff, 0xfe, 'k'})
	bin := string(f.event(tid, ep, raw))
	out = f.ok(200, "GET", "/v1/events/"+bin+"?include=body", key, nil)
	if out["body_encoding"] != "base64" || out["body"] != base64.StdEncoding.EncodeToString([]byte(raw)) {
		t.Fatalf("binary body %v / %v", out["body"], out["body_encoding"])
	}

	// Delivered: delivered_at set, no next attempt.
	f.clock.Advance(time.Second)
	f.attempt(200)
	out = f.ok(200, "GET", "/v1/events/"+id, key, nil)
	if out["status"] != "delivered" || out["delivered_at"] != "2026-01-01T00:00:01Z" || out["next_attempt_at"] != nil || out["attempts"] != 1.0 {
		t.Fatalf("delivered event %v", out)
	}

	f.problem(400, kapsel.CodeMalformedRequest, "GET", "/v1/events/"+id+"?include=headers", key, nil)
	f.problem(404, kapsel.CodeNotFound, "GET", "/v1/events/"+string(kapsel.NewEventID()), key, nil)
	f.problem(404, kapsel.CodeNotFound, "GET", "/v1/events/"+ep, key, nil)
}

func TestListEvents(t *testing.T) {
	t.Parallel()
	f := setup(t)
	tid, key := f.tenant("acme")
	a := f.endpoint(key, nil)["id"].(string)
	b := f.endpoint(key, nil)["id"].(string)
	var ids []string
	for i := range 3 {
		ids = append(ids, string(f.event(tid, a, "a"+string(rune('0'+i)))))
	}
	f.attempt(500) // all three of a fail
	ids = append(ids, string(f.event(tid, b, "b0")))

	all := data(t, f.ok(200, "GET", "/v1/events", key, nil))
	if len(all) != 4 || all[0]["id"] != ids[0] || all[3]["id"] != ids[3] {
		t.Fatalf("all events %v", all)
	}
	if _, ok := all[0]["body"]; ok {
		t.Fatal("lists carry bodies")
	}
	if got := data(t, f.ok(200, "GET", "/v1/events?endpoint_id="+b, key, nil)); len(got) != 1 || got[0]["id"] != ids[3] {
		t.Fatalf("by endpoint %v", got)
	}
	if got := data(t, f.ok(200, "GET", "/v1/events?status=failed", key, nil)); len(got) != 3 {
		t.Fatalf("failed %v", got)
	}
	if got := data(t, f.ok(200, "GET", "/v1/events?status=pending&endpoint_id="+a, key, nil)); len(got) != 0 {
		t.Fatalf("pending of a %v", got)
	}
	page := f.ok(200, "GET", "/v1/events?limit=3", key, nil)
	if page["has_more"] != true || page["next_cursor"] != ids[2] {
		t.Fatalf("page 1 %v", page)
	}
	page = f.ok(200, "GET", "/v1/events?limit=3&cursor="+ids[2], key, nil)
	if got := data(t, page); len(got) != 1 || got[0]["id"] != ids[3] || page["has_more"] != false {
		t.Fatalf("page 2 %v", page)
	}
	f.problem(400, kapsel.CodeMalformedRequest, "GET", "/v1/events?status=lost", key, nil)
	f.problem(404, kapsel.CodeNotFound, "GET", "/v1/events?endpoint_id=ep_bad", key, nil)
	f.problem(404, kapsel.CodeNotFound, "GET", "/v1/events?endpoint_id="+string(kapsel.NewEndpointID()), key, nil)
	f.problem(400, kapsel.CodeMalformedRequest, "GET", "/v1/events?cursor="+a, key, nil)
}

func TestAttemptsAndRetry(t *testing.T) {
	t.Parallel()
	f := setup(t)
	tid, key := f.tenant("acme")
	ep := f.endpoint(key, nil)["id"].(string)
	id := string(f.event(tid, ep, "x"))

	f.problem(400, kapsel.CodeMalformedRequest, "POST", "/v1/events/"+id+"/retry", key, nil) // pending
	if got := data(t, f.ok(200, "GET", "/v1/events/"+id+"/attempts", key, nil)); len(got) != 0 {
		t.Fatalf("attempts before any %v", got)
	}
	f.attempt(500)
	f.clock.Advance(time.Minute)
	out := f.ok(202, "POST", "/v1/events/"+id+"/retry", key, nil)
	if out["status"] != "pending" || out["next_attempt_at"] != "2026-01-01T00:01:00Z" || out["id"] != id {
		t.Fatalf("retried %v", out)
	}
	f.problem(400, kapsel.CodeMalformedRequest, "POST", "/v1/events/"+id+"/retry", key, nil) // pending again
	f.attempt(200)

	atts := data(t, f.ok(200, "GET", "/v1/events/"+id+"/attempts", key, nil))
	if len(atts) != 2 {
		t.Fatalf("attempts %v", atts)
	}
	first, second := atts[0], atts[1]
	if first["attempt"] != 1.0 || first["trigger"] != "scheduled" || first["status_code"] != 500.0 || first["error_code"] != "E2005" ||
		first["event_id"] != id || first["duration_ms"] != 15.0 || first["started_at"] != "2026-01-01T00:00:00Z" ||
		first["response_body_encoding"] != "base64" || first["error"] != "destination answered 500" {
		t.Fatalf("first attempt %v", first)
	}
	if second["attempt"] != 2.0 || second["trigger"] != "manual" || second["status_code"] != 200.0 || second["error_code"] != "" ||
		second["response_body"] != "ok" || second["response_body_encoding"] != "text" {
		t.Fatalf("second attempt %v", second)
	}
	page := f.ok(200, "GET", "/v1/events/"+id+"/attempts?limit=1", key, nil)
	if page["has_more"] != true || page["next_cursor"] != first["id"] {
		t.Fatalf("attempts page %v", page)
	}
	if got := data(t, f.ok(200, "GET", "/v1/events/"+id+"/attempts?limit=1&cursor="+first["id"].(string), key, nil)); len(got) != 1 || got[0]["id"] != second["id"] {
		t.Fatalf("attempts page 2 %v", got)
	}
	// Delivered events can be retried too.
	f.ok(202, "POST", "/v1/events/"+id+"/retry", key, nil)
	f.problem(404, kapsel.CodeNotFound, "POST", "/v1/events/"+string(kapsel.NewEventID())+"/retry", key, nil)
	f.problem(404, kapsel.CodeNotFound, "GET", "/v1/events/"+string(kapsel.NewEventID())+"/attempts", key, nil)
}
