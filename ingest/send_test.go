package ingest

import (
	"testing"

	"github.com/kapsel-dev/kapsel"
)

// TestSend: an application's event fans out to its tenant's subscribed
// endpoints, or goes to exactly the endpoints it names; one naming an
// endpoint that is not its tenant's is refused with 404 E1011 and stores
// nothing; its idempotency key is the tenant's, apart from every source's.
func TestSend(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	tn := e.tenant(0, 0)
	invoices := e.endpoint(tn.ID, kapsel.Subscription{EventTypes: []string{"invoice.*"}})
	eu := e.endpoint(tn.ID, kapsel.Subscription{Channels: []string{"eu"}})
	fromSource := e.endpoint(tn.ID, kapsel.Subscription{SourceIDs: []kapsel.SourceID{kapsel.NewSourceID()}})
	foreign := e.endpoint(e.tenant(0, 0).ID, kapsel.Subscription{})
	send := func(p kapsel.EventInsertParams) (*kapsel.IngestResult, error) {
		t.Helper()
		p.TenantID = tn.ID
		if p.Body == nil {
			p.Body = []byte(`{}`)
		}
		return e.in.Send(e.ctx, &p)
	}
	deliveredTo := func(id kapsel.EventID) map[kapsel.EndpointID]bool {
		t.Helper()
		dls, err := e.store.DeliveryList(e.ctx, &kapsel.DeliveryListParams{EventID: id})
		if err != nil {
			t.Fatal(err)
		}
		out := map[kapsel.EndpointID]bool{}
		for _, d := range dls {
			out[d.EndpointID] = true
		}
		return out
	}

	// By subscription: a send has no source, so fromSource never matches.
	res, err := send(kapsel.EventInsertParams{Type: "invoice.paid", Channels: []string{"eu"}})
	if err != nil || res.Event.Deliveries.Total != 2 || res.Event.SourceID != "" {
		t.Fatalf("Send by subscription: %+v, %v", res, err)
	}
	if got := deliveredTo(res.Event.ID); len(got) != 2 || !got[invoices] || !got[eu] {
		t.Fatalf("delivered to %v, want invoices and eu", got)
	}
	// Named endpoints, whatever their filters.
	res, err = send(kapsel.EventInsertParams{Type: "order.placed", EndpointIDs: []kapsel.EndpointID{fromSource, invoices, fromSource}})
	if err != nil || res.Event.Deliveries.Total != 2 {
		t.Fatalf("Send to named endpoints: %+v, %v", res, err)
	}
	if got := deliveredTo(res.Event.ID); len(got) != 2 || !got[invoices] || !got[fromSource] {
		t.Fatalf("delivered to %v, want exactly the two named", got)
	}
	// Another tenant's endpoint, or one that does not exist: 404 E1011, nothing stored.
	before := e.countEvents(tn.ID)
	for _, bad := range []kapsel.EndpointID{foreign, kapsel.NewEndpointID()} {
		_, err := send(kapsel.EventInsertParams{EndpointIDs: []kapsel.EndpointID{invoices, bad}})
		if kapsel.CodeOf(err) != kapsel.CodeNotFound {
			t.Fatalf("Send naming %s: %v, want E1011", bad, err)
		}
	}
	if n := e.countEvents(tn.ID); n != before {
		t.Fatalf("%d events stored by refused sends", n-before)
	}
	// A send has no source; too many endpoints is malformed; an unknown
	// tenant is not found.
	if _, err := send(kapsel.EventInsertParams{SourceID: kapsel.NewSourceID()}); kapsel.CodeOf(err) != kapsel.CodeMalformedRequest {
		t.Fatalf("Send with a source: %v, want E1009", err)
	}
	many := make([]kapsel.EndpointID, kapsel.MaxSendEndpoints+1)
	for i := range many {
		many[i] = kapsel.NewEndpointID()
	}
	if _, err := send(kapsel.EventInsertParams{EndpointIDs: many}); kapsel.CodeOf(err) != kapsel.CodeMalformedRequest {
		t.Fatalf("Send to %d endpoints: %v, want E1009", len(many), err)
	}
	if _, err := e.in.Send(e.ctx, &kapsel.EventInsertParams{TenantID: kapsel.NewTenantID(), Body: []byte(`{}`)}); kapsel.CodeOf(err) != kapsel.CodeNotFound {
		t.Fatalf("Send for an unknown tenant: %v, want E1011", err)
	}

	// The key's scope is the tenant: the same key again is a duplicate
	// (no new delivery); the same key at one of the tenant's sources is
	// another event.
	first, err := send(kapsel.EventInsertParams{Type: "invoice.paid", IdempotencyKey: "order-1"})
	if err != nil || first.Duplicate {
		t.Fatalf("first keyed send: %+v, %v", first, err)
	}
	dup, err := send(kapsel.EventInsertParams{Type: "invoice.paid", IdempotencyKey: "order-1"})
	if err != nil || !dup.Duplicate || dup.Event.ID != first.Event.ID || dup.Event.Deliveries.Total != 0 {
		t.Fatalf("keyed send again: %+v, %v; want the duplicate of %s", dup, err, first.Event.ID)
	}
	src := e.source(tn, kapsel.VerifierConfig{})
	if r := accepted(t, e.post(src.ID, "{}", "Idempotency-Key", "order-1"), 202); r.ID == first.Event.ID {
		t.Fatal("a source's key was taken by a send's")
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if info := e.infos[0]; info.SourceID != "" || info.TenantID != tn.ID || info.Status != 202 || info.Deliveries != 2 {
		t.Fatalf("OnIngest of a send %+v", info)
	}
}

// countEvents counts a tenant's events.
func (e *env) countEvents(tenant kapsel.TenantID) int {
	e.t.Helper()
	list, err := e.store.EventList(e.ctx, &kapsel.EventListParams{TenantID: tenant, Limit: kapsel.MaxPageLimit})
	if err != nil {
		e.t.Fatal(err)
	}
	return len(list)
}
