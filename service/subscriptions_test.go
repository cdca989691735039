package service_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/kapseltest"
	"github.com/kapsel-dev/kapsel/service"
)

// TestEndpointSubscription: the front door stores an endpoint's filter,
// replaces each list it is given and keeps the others, and refuses what
// kapsel.Subscription.Validate refuses (E1009) without writing anything.
func TestEndpointSubscription(t *testing.T) {
	t.Parallel()
	e := newEnv(t, service.Config{})
	dest := kapseltest.NewDestination(t)
	ten := e.tenant()
	src := e.source(ten).ID
	ep, _, err := e.svc.CreateEndpoint(e.ctx, ten.ID, service.EndpointCreate{
		URL: dest.URL, EventTypes: []string{"invoice.*", "customer.created"}, SourceIDs: []kapsel.SourceID{src},
		Channels: []string{"eu"},
	})
	if err != nil {
		t.Fatalf("CreateEndpoint: %v", err)
	}
	want := kapsel.Subscription{EventTypes: []string{"invoice.*", "customer.created"}, SourceIDs: []kapsel.SourceID{src}, Channels: []string{"eu"}}
	sameSub := func(what string, got kapsel.Subscription) {
		t.Helper()
		if !slices.Equal(got.EventTypes, want.EventTypes) || !slices.Equal(got.SourceIDs, want.SourceIDs) || !slices.Equal(got.Channels, want.Channels) {
			t.Fatalf("%s: %+v, want %+v", what, got, want)
		}
	}
	sameSub("created", ep.Subscription)
	got, err := e.svc.GetEndpoint(e.ctx, ten.ID, ep.ID)
	if err != nil {
		t.Fatalf("GetEndpoint: %v", err)
	}
	sameSub("got", got.Subscription)

	// A nil list keeps the stored one; a set one replaces it whole.
	name := "renamed"
	up, err := e.svc.UpdateEndpoint(e.ctx, ten.ID, ep.ID, service.EndpointUpdate{Name: &name})
	if err != nil {
		t.Fatalf("UpdateEndpoint of the name: %v", err)
	}
	sameSub("after renaming", up.Subscription)
	up, err = e.svc.UpdateEndpoint(e.ctx, ten.ID, ep.ID, service.EndpointUpdate{Channels: []string{"us", "apac"}})
	if err != nil {
		t.Fatalf("UpdateEndpoint of the channels: %v", err)
	}
	want.Channels = []string{"us", "apac"}
	sameSub("after changing channels", up.Subscription)
	up, err = e.svc.UpdateEndpoint(e.ctx, ten.ID, ep.ID, service.EndpointUpdate{EventTypes: []string{}, SourceIDs: []kapsel.SourceID{}})
	if err != nil {
		t.Fatalf("UpdateEndpoint emptying two lists: %v", err)
	}
	want.EventTypes, want.SourceIDs = nil, nil
	sameSub("after emptying types and sources", up.Subscription)

	for name, u := range map[string]service.EndpointUpdate{
		"a leading wildcard":   {EventTypes: []string{"*.paid"}},
		"an empty type":        {EventTypes: []string{""}},
		"a type twice":         {EventTypes: []string{"a", "a"}},
		"an endpoint id":       {SourceIDs: []kapsel.SourceID{kapsel.SourceID(ep.ID)}},
		"a channel with space": {Channels: []string{"a b"}},
		"a star channel":       {Channels: []string{"*"}},
	} {
		_, err := e.svc.UpdateEndpoint(e.ctx, ten.ID, ep.ID, u)
		requireCode(t, err, kapsel.CodeMalformedRequest, "UpdateEndpoint with "+name)
		_, _, err = e.svc.CreateEndpoint(e.ctx, ten.ID, service.EndpointCreate{
			URL: dest.URL, EventTypes: u.EventTypes, SourceIDs: u.SourceIDs, Channels: u.Channels,
		})
		requireCode(t, err, kapsel.CodeMalformedRequest, "CreateEndpoint with "+name)
	}
	got, err = e.svc.GetEndpoint(e.ctx, ten.ID, ep.ID)
	if err != nil {
		t.Fatalf("GetEndpoint: %v", err)
	}
	sameSub("after refused updates", got.Subscription)
	page, err := e.svc.ListEndpoints(e.ctx, ten.ID, service.ListOptions{})
	if err != nil || len(page.Data) != 1 {
		t.Fatalf("ListEndpoints = %+v, %v; want only the first endpoint (refused creations write nothing)", page, err)
	}
}

// TestSendChannels: a send's channels are stored with the event and
// decide, with its type, which endpoints receive it; bad ones are refused
// with E1009 before anything is stored.
func TestSendChannels(t *testing.T) {
	t.Parallel()
	e := newEnv(t, service.Config{})
	dest := kapseltest.NewDestination(t)
	ten := e.tenant()
	create := func(path string, in service.EndpointCreate) *kapsel.Endpoint {
		t.Helper()
		in.URL = dest.URL + path
		ep, _, err := e.svc.CreateEndpoint(e.ctx, ten.ID, in)
		if err != nil {
			t.Fatalf("CreateEndpoint: %v", err)
		}
		return ep
	}
	us := create("/us", service.EndpointCreate{EventTypes: []string{"invoice.*"}, Channels: []string{"us"}})
	eu := create("/eu", service.EndpointCreate{EventTypes: []string{"invoice.*"}, Channels: []string{"eu", "apac"}})
	anyEP := create("/any", service.EndpointCreate{})
	res, err := e.svc.Send(e.ctx, ten.ID, service.Send{Type: "invoice.paid", Channels: []string{"eu", "org_1"}, Body: []byte(`{"n":1}`)})
	if err != nil || !slices.Equal(res.Event.Channels, []string{"eu", "org_1"}) || res.Deliveries != 2 {
		t.Fatalf("Send = %+v, %v; want an event on eu and org_1 with 2 deliveries", res, err)
	}
	got, err := e.svc.GetEvent(e.ctx, ten.ID, res.Event.ID, false)
	if err != nil || !slices.Equal(got.Channels, []string{"eu", "org_1"}) {
		t.Fatalf("GetEvent = %+v, %v", got, err)
	}
	for _, ep := range []*kapsel.Endpoint{eu, anyEP} {
		kapseltest.RequireDelivered(t, e.store, res.Event.ID, ep.ID, 10*time.Second)
	}
	if ds, err := e.svc.ListDeliveries(e.ctx, ten.ID, service.DeliveryFilter{EndpointID: us.ID}); err != nil || len(ds.Data) != 0 {
		t.Fatalf("deliveries to the endpoint on another channel = %+v, %v; want none", ds, err)
	}

	eleven := make([]string, kapsel.MaxEventChannels+1)
	for i := range eleven {
		eleven[i] = fmt.Sprint("c", i)
	}
	for name, ch := range map[string][]string{
		"a channel twice":     {"eu", "eu"},
		"an empty channel":    {""},
		"a space":             {"a b"},
		"a star":              {"*"},
		"non-ASCII":           {"é"},
		"too long a channel":  {strings.Repeat("c", kapsel.MaxChannelLen+1)},
		"more than the limit": eleven,
	} {
		_, err := e.svc.Send(e.ctx, ten.ID, service.Send{Channels: ch, Body: []byte(`{}`), IdempotencyKey: "k-" + name[:3]})
		requireCode(t, err, kapsel.CodeMalformedRequest, "Send with "+name)
	}
	all, err := e.svc.ListEvents(e.ctx, ten.ID, service.EventFilter{})
	if err != nil || len(all.Data) != 1 {
		t.Fatalf("ListEvents: %d events, %v; want only the first (refused sends store nothing)", len(all.Data), err)
	}
	if n := dest.Count(); n != 2 {
		t.Fatalf("the destination received %d requests, want 2", n)
	}
}

// TestEndpointSubscriptionJSON: event_types, source_ids and channels on
// endpoints over HTTP, in and out; absent keeps, [] empties, bad is 400
// E1009 naming the list.
func TestEndpointSubscriptionJSON(t *testing.T) {
	t.Parallel()
	f := setup(t)
	_, key := f.tenant("acme")
	src := f.source(key, nil)["id"].(string)

	plain := f.endpoint(key, nil)
	for _, field := range []string{"event_types", "source_ids", "channels"} {
		if l, ok := plain[field].([]any); !ok || len(l) != 0 {
			t.Fatalf("endpoint without a filter: %s = %#v, want []", field, plain[field])
		}
	}

	out := f.endpoint(key, map[string]any{
		"event_types": []string{"invoice.*", "push"}, "source_ids": []string{src}, "channels": []string{"eu"},
	})
	id := out["id"].(string)
	requireList(t, out, "event_types", "invoice.*", "push")
	requireList(t, out, "source_ids", src)
	requireList(t, out, "channels", "eu")
	got := f.ok(200, "GET", "/v1/endpoints/"+id, key, nil)
	requireList(t, got, "event_types", "invoice.*", "push")
	listed := data(t, f.ok(200, "GET", "/v1/endpoints", key, nil))
	for _, e := range listed {
		if e["id"] == id {
			requireList(t, e, "channels", "eu")
		}
	}

	// PATCH: an absent or null list is kept, a present one replaces.
	out = f.ok(200, "PATCH", "/v1/endpoints/"+id, key, `{"channels":["us","apac"],"source_ids":null}`)
	requireList(t, out, "event_types", "invoice.*", "push")
	requireList(t, out, "source_ids", src)
	requireList(t, out, "channels", "us", "apac")
	out = f.ok(200, "PATCH", "/v1/endpoints/"+id, key, map[string]any{"event_types": []string{}})
	requireList(t, out, "event_types")
	requireList(t, out, "channels", "us", "apac")

	for body, field := range map[string]string{
		`{"event_types":["invoice*"]}`:        "event_types[0]",
		`{"event_types":["a","a"]}`:           "event_types[1]",
		`{"source_ids":["ep_nope"]}`:          "source_ids[0]",
		`{"channels":["ok","with space"]}`:    "channels[1]",
		`{"channels":["*"]}`:                  "channels[0]",
		`{"event_types":"invoice.paid"}`:      "",
		`{"channels":[1]}`:                    "",
		`{"source_ids":["` + src + `",null]}`: "source_ids[1]",
	} {
		p := f.problem(400, kapsel.CodeMalformedRequest, "PATCH", "/v1/endpoints/"+id, key, body)
		if field != "" && !strings.Contains(fmt.Sprint(p["detail"]), field) {
			t.Fatalf("PATCH %s: detail %q does not name %s", body, p["detail"], field)
		}
		f.problem(400, kapsel.CodeMalformedRequest, "POST", "/v1/endpoints", key,
			`{"url":"https://example.com/hook",`+body[1:])
	}
	got = f.ok(200, "GET", "/v1/endpoints/"+id, key, nil)
	requireList(t, got, "event_types")
	requireList(t, got, "channels", "us", "apac")
	if n := len(data(t, f.ok(200, "GET", "/v1/endpoints", key, nil))); n != 2 {
		t.Fatalf("%d endpoints after refused creations, want 2", n)
	}
}

// TestEventChannelsJSON: events carry their channels over HTTP, [] when
// they have none.
func TestEventChannelsJSON(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ten, key := f.tenant("acme")
	ep := f.endpoint(key, nil)["id"].(string)
	on := f.eventOn(ten, ep, "a", "eu", "org_1")
	none := f.eventOn(ten, ep, "b")
	requireList(t, f.ok(200, "GET", "/v1/events/"+string(on), key, nil), "channels", "eu", "org_1")
	requireList(t, f.ok(200, "GET", "/v1/events/"+string(none), key, nil), "channels")
	for _, e := range data(t, f.ok(200, "GET", "/v1/events", key, nil)) {
		if e["id"] == string(on) {
			requireList(t, e, "channels", "eu", "org_1")
		} else {
			requireList(t, e, "channels")
		}
	}
}

// eventOn stores an event on the channels for the endpoint directly.
func (f *fixture) eventOn(tenant kapsel.TenantID, endpoint, body string, channels ...string) kapsel.EventID {
	f.t.Helper()
	return f.insert(&kapsel.EventInsertParams{
		TenantID: tenant, EndpointIDs: []kapsel.EndpointID{kapsel.EndpointID(endpoint)}, Channels: channels, Body: []byte(body),
	})
}

// requireList requires out[field] to be a JSON array of exactly want (an
// empty array, never null, for none).
func requireList(t *testing.T, out map[string]any, field string, want ...string) {
	t.Helper()
	l, ok := out[field].([]any)
	if !ok {
		t.Fatalf("%s = %#v, want a JSON array", field, out[field])
	}
	got := make([]string, len(l))
	for i, v := range l {
		got[i] = fmt.Sprint(v)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s = %q, want %q", field, got, want)
	}
}
