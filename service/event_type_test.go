package service_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/kapseltest"
	"github.com/kapsel-dev/kapsel/service"
)

func TestSendType(t *testing.T) {
	t.Parallel()
	e := newEnv(t, service.Config{})
	dest := kapseltest.NewDestination(t)
	ten := e.tenant()
	e.endpoint(ten, dest.URL)

	res, err := e.svc.Send(e.ctx, ten.ID, service.Send{Type: "invoice.paid", Body: []byte(`{"n":1}`)})
	if err != nil || res.Event.Type != "invoice.paid" {
		t.Fatalf("Send = %+v, %v; want an event of type invoice.paid", res, err)
	}
	untyped, err := e.svc.Send(e.ctx, ten.ID, service.Send{Body: []byte(`{"n":2}`)})
	if err != nil || untyped.Event.Type != "" {
		t.Fatalf("Send without a type = %+v, %v", untyped, err)
	}
	got, err := e.svc.GetEvent(e.ctx, ten.ID, res.Event.ID, false)
	if err != nil || got.Type != "invoice.paid" {
		t.Fatalf("GetEvent = %+v, %v", got, err)
	}
	for name, typ := range map[string]string{
		"over 255 bytes":   strings.Repeat("a", kapsel.MaxEventTypeLen+1),
		"a control char":   "invoice.paid\n",
		"invalid UTF-8":    "invoice.\xff",
		"a NUL":            "invoice\x00paid",
		"a zero-width one": "invoice\u200b.paid",
	} {
		_, err := e.svc.Send(e.ctx, ten.ID, service.Send{Type: typ, Body: []byte(`{}`)})
		requireCode(t, err, kapsel.CodeMalformedRequest, "Send with a type with "+name)
	}
	ok, err := e.svc.Send(e.ctx, ten.ID, service.Send{Type: strings.Repeat("é", 127) + "a", Body: []byte(`{}`)})
	if err != nil || len(ok.Event.Type) != kapsel.MaxEventTypeLen {
		t.Fatalf("Send with a type of exactly 255 bytes = %+v, %v", ok, err)
	}

	page, err := e.svc.ListEvents(e.ctx, ten.ID, service.EventFilter{Type: "invoice.paid"})
	if err != nil || len(page.Data) != 1 || page.Data[0].ID != res.Event.ID {
		t.Fatalf("ListEvents by type = %+v, %v", page, err)
	}
	all, err := e.svc.ListEvents(e.ctx, ten.ID, service.EventFilter{})
	if err != nil || len(all.Data) != 3 {
		t.Fatalf("ListEvents of any type: %d events, %v; want 3", len(all.Data), err)
	}
	_, err = e.svc.ListEvents(e.ctx, ten.ID, service.EventFilter{Type: strings.Repeat("a", kapsel.MaxEventTypeLen+1)})
	requireCode(t, err, kapsel.CodeMalformedRequest, "ListEvents by a type over 255 bytes")
}

// typedEvent stores an event of the type ingested by the source directly.
func (f *fixture) typedEvent(tenant kapsel.TenantID, source, typ, body string) kapsel.EventID {
	f.t.Helper()
	return f.insert(&kapsel.EventInsertParams{TenantID: tenant, SourceID: kapsel.SourceID(source), Type: typ, Body: []byte(body)})
}

func TestListEventsByType(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ten, key := f.tenant("acme")
	otherTen, otherKey := f.tenant("other")
	a := f.source(key, nil)["id"].(string)
	b := f.source(key, nil)["id"].(string)
	foreign := f.source(otherKey, nil)["id"].(string)
	var paid []string
	for i := range 3 {
		paid = append(paid, string(f.typedEvent(ten, a, "invoice.paid", "p"+string(rune('0'+i)))))
	}
	paid = append(paid, string(f.typedEvent(ten, b, "invoice.paid", "p3")))
	refunded := string(f.typedEvent(ten, a, "invoice.refunded", "r"))
	untyped := string(f.typedEvent(ten, a, "", "u"))
	f.typedEvent(otherTen, foreign, "invoice.paid", "f")

	// The type is on every event, listed or got.
	out := f.ok(200, "GET", "/v1/events/"+refunded, key, nil)
	if out["type"] != "invoice.refunded" {
		t.Fatalf("GET event: type %v", out["type"])
	}
	if out := f.ok(200, "GET", "/v1/events/"+untyped, key, nil); out["type"] != "" {
		t.Fatalf("GET untyped event: type %#v, want \"\"", out["type"])
	}

	// Paged by type: two pages of two, only this tenant's.
	var got []string
	cursor := ""
	for range 5 {
		page := f.ok(200, "GET", "/v1/events?type=invoice.paid&limit=2"+cursor, key, nil)
		for _, e := range data(t, page) {
			if e["type"] != "invoice.paid" {
				t.Fatalf("listed by type: an event of type %v", e["type"])
			}
			got = append(got, e["id"].(string))
		}
		if page["has_more"] != true {
			break
		}
		cursor = "&cursor=" + page["next_cursor"].(string)
	}
	if strings.Join(got, ",") != strings.Join(paid, ",") {
		t.Fatalf("events of type invoice.paid: %v, want %v", got, paid)
	}
	if got := data(t, f.ok(200, "GET", "/v1/events?type=invoice.paid&source_id="+b, key, nil)); len(got) != 1 || got[0]["id"] != paid[3] {
		t.Fatalf("by type and source: %v", got)
	}
	if got := data(t, f.ok(200, "GET", "/v1/events?type=invoice.*", key, nil)); len(got) != 0 {
		t.Fatalf("a wildcard is not a filter: %v", got)
	}
	if got := data(t, f.ok(200, "GET", "/v1/events?type=", key, nil)); len(got) != 6 {
		t.Fatalf("an empty type lists every type: %d events", len(got))
	}
	if got := data(t, f.ok(200, "GET", "/v1/events?type=invoice.paid", otherKey, nil)); len(got) != 1 {
		t.Fatalf("the other tenant's events of the type: %v", got)
	}
	f.problem(400, kapsel.CodeMalformedRequest, "GET", "/v1/events?type="+strings.Repeat("a", 256), key, nil)
	f.problem(400, kapsel.CodeMalformedRequest, "GET", "/v1/events?type="+url.QueryEscape("a\xffb"), key, nil)
}
