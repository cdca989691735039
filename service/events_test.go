package service_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/kapseltest"
	"github.com/kapsel-dev/kapsel/service"
)

func TestEventAndDeliveryOperations(t *testing.T) {
	t.Parallel()
	e := newEnv(t, service.Config{})
	dest := kapseltest.NewDestination(t)
	ten := e.tenant()
	other := e.tenant()
	src := e.source(ten)
	a := e.endpoint(ten, dest.URL+"/a")
	b := e.endpoint(ten, dest.URL+"/b")

	status, answer := e.post(service.IngestURL(src.ID), []byte(`{"n":1}`))
	if status != http.StatusAccepted {
		t.Fatalf("ingest answered %d %s", status, answer)
	}
	page, err := e.svc.ListEvents(e.ctx, ten.ID, service.EventFilter{SourceID: src.ID})
	if err != nil || len(page.Data) != 1 || page.HasMore || page.Data[0].SourceID != src.ID {
		t.Fatalf("ListEvents(source) = %+v, %v; want one event", page, err)
	}
	id := page.Data[0].ID
	kapseltest.RequireAllDelivered(t, e.store, id, 10*time.Second)

	got, err := e.svc.GetEvent(e.ctx, ten.ID, id, true)
	if err != nil || string(got.Body) != `{"n":1}` || got.Deliveries != (kapsel.DeliverySummary{Total: 2, Delivered: 2}) {
		t.Fatalf("GetEvent(include body) = %+v, %v; want the body and 2 delivered", got, err)
	}
	if got, err := e.svc.GetEvent(e.ctx, ten.ID, id, false); err != nil || got.Body != nil {
		t.Fatalf("GetEvent without body = %+v, %v", got, err)
	}
	_, err = e.svc.GetEvent(e.ctx, other.ID, id, false)
	requireCode(t, err, kapsel.CodeNotFound, "GetEvent of another tenant's event")
	_, err = e.svc.ListEvents(e.ctx, other.ID, service.EventFilter{SourceID: src.ID})
	requireCode(t, err, kapsel.CodeNotFound, "ListEvents by another tenant's source")
	_, err = e.svc.ListDeliveries(e.ctx, other.ID, service.DeliveryFilter{EventID: id})
	requireCode(t, err, kapsel.CodeNotFound, "ListDeliveries by another tenant's event")
	for name, f := range map[string]service.EventFilter{
		"a malformed source id":  {SourceID: "src_nope"},
		"a limit over the cap":   {ListOptions: service.ListOptions{Limit: kapsel.MaxPageLimit + 1}},
		"a malformed cursor":     {ListOptions: service.ListOptions{Cursor: "evt_nope"}},
		"a cursor of a delivery": {ListOptions: service.ListOptions{Cursor: string(kapsel.NewDeliveryID())}},
	} {
		_, err := e.svc.ListEvents(e.ctx, ten.ID, f)
		requireCode(t, err, kapsel.CodeMalformedRequest, "ListEvents with "+name)
	}

	// Its deliveries, one per endpoint.
	ds, err := e.svc.ListDeliveries(e.ctx, ten.ID, service.DeliveryFilter{EventID: id})
	if err != nil || len(ds.Data) != 2 {
		t.Fatalf("ListDeliveries(event) = %+v, %v; want 2", ds, err)
	}
	toA, err := e.svc.ListDeliveries(e.ctx, ten.ID, service.DeliveryFilter{EndpointID: a.ID, Status: kapsel.DeliveryDelivered})
	if err != nil || len(toA.Data) != 1 || toA.Data[0].EventID != id || toA.Data[0].Attempts != 1 {
		t.Fatalf("ListDeliveries(endpoint a, delivered) = %+v, %v", toA, err)
	}
	da := toA.Data[0]
	if d, err := e.svc.GetDelivery(e.ctx, ten.ID, da.ID); err != nil || d.EndpointID != a.ID || d.DeliveredAt.IsZero() {
		t.Fatalf("GetDelivery = %+v, %v", d, err)
	}
	if p, err := e.svc.ListDeliveries(e.ctx, ten.ID, service.DeliveryFilter{Status: kapsel.DeliveryPending}); err != nil || len(p.Data) != 0 {
		t.Fatalf("ListDeliveries(pending) = %+v, %v; want none", p, err)
	}
	_, err = e.svc.ListDeliveries(e.ctx, other.ID, service.DeliveryFilter{EndpointID: a.ID})
	requireCode(t, err, kapsel.CodeNotFound, "ListDeliveries by another tenant's endpoint")
	for name, f := range map[string]service.DeliveryFilter{
		"an unknown status":       {Status: "lost"},
		"a malformed endpoint id": {EndpointID: "ep_nope"},
		"a malformed event id":    {EventID: "evt_nope"},
		"a malformed cursor":      {ListOptions: service.ListOptions{Cursor: string(id)}},
	} {
		_, err := e.svc.ListDeliveries(e.ctx, ten.ID, f)
		requireCode(t, err, kapsel.CodeMalformedRequest, "ListDeliveries with "+name)
	}

	// One delivery retried: one more attempt to that endpoint only, with
	// the event's webhook-id.
	retried, err := e.svc.RetryDelivery(e.ctx, ten.ID, da.ID)
	if err != nil || retried.Status != kapsel.DeliveryPending {
		t.Fatalf("RetryDelivery = %+v, %v", retried, err)
	}
	kapseltest.WaitForDelivery(t, e.store, id, a.ID, 10*time.Second, func(d *kapsel.Delivery) bool {
		return d.Status == kapsel.DeliveryDelivered && d.Attempts == 2
	})
	reqs := dest.WaitForRequests(t, 3, 10*time.Second)
	if r := reqs[2]; r.Path != "/a" || r.WebhookID != string(id) || r.Attempt != 2 {
		t.Fatalf("the retried delivery sent %s attempt %d webhook-id %q", r.Path, r.Attempt, r.WebhookID)
	}
	attempts, err := e.svc.ListDeliveryAttempts(e.ctx, ten.ID, da.ID, service.AttemptListOptions{ListOptions: service.ListOptions{Limit: 1}})
	if err != nil || len(attempts.Data) != 1 || !attempts.HasMore || attempts.Data[0].DeliveryID != da.ID || attempts.Data[0].Number != 1 {
		t.Fatalf("ListDeliveryAttempts(limit 1) = %+v, %v; want attempt 1 and a cursor", attempts, err)
	}
	rest, err := e.svc.ListDeliveryAttempts(e.ctx, ten.ID, da.ID, service.AttemptListOptions{ListOptions: service.ListOptions{Cursor: attempts.NextCursor}})
	if err != nil || len(rest.Data) != 1 || rest.HasMore || rest.Data[0].Number != 2 || rest.Data[0].Trigger != kapsel.TriggerManual {
		t.Fatalf("ListDeliveryAttempts(second page) = %+v, %v; want manual attempt 2 and no more", rest, err)
	}

	// The event retried: every finished delivery once more.
	n, err := e.svc.RetryEvent(e.ctx, ten.ID, id)
	if err != nil || n != 2 {
		t.Fatalf("RetryEvent = %d, %v; want 2", n, err)
	}
	kapseltest.WaitForDelivery(t, e.store, id, b.ID, 10*time.Second, func(d *kapsel.Delivery) bool {
		return d.Status == kapsel.DeliveryDelivered && d.Attempts == 2
	})
	kapseltest.WaitForDelivery(t, e.store, id, a.ID, 10*time.Second, func(d *kapsel.Delivery) bool {
		return d.Status == kapsel.DeliveryDelivered && d.Attempts == 3
	})
	all, err := e.svc.ListAttempts(e.ctx, ten.ID, id, service.AttemptListOptions{})
	if err != nil || len(all.Data) != 5 {
		t.Fatalf("ListAttempts(event) = %+v, %v; want the 5 attempts of both deliveries", all, err)
	}
	for i, at := range all.Data {
		if at.EventID != id || (at.EndpointID != a.ID && at.EndpointID != b.ID) || (i > 0 && at.ID <= all.Data[i-1].ID) {
			t.Fatalf("attempt %d of the event = %+v", i, at.Attempt)
		}
	}

	_, err = e.svc.ListAttempts(e.ctx, other.ID, id, service.AttemptListOptions{})
	requireCode(t, err, kapsel.CodeNotFound, "ListAttempts of another tenant's event")
	_, err = e.svc.ListDeliveryAttempts(e.ctx, other.ID, da.ID, service.AttemptListOptions{})
	requireCode(t, err, kapsel.CodeNotFound, "ListDeliveryAttempts of another tenant's delivery")
	_, err = e.svc.GetDelivery(e.ctx, other.ID, da.ID)
	requireCode(t, err, kapsel.CodeNotFound, "GetDelivery of another tenant's delivery")
	_, err = e.svc.RetryDelivery(e.ctx, other.ID, da.ID)
	requireCode(t, err, kapsel.CodeNotFound, "RetryDelivery of another tenant's delivery")
	_, err = e.svc.RetryEvent(e.ctx, other.ID, id)
	requireCode(t, err, kapsel.CodeNotFound, "RetryEvent of another tenant's event")
}

func TestRetryLeavesUnfinishedDeliveries(t *testing.T) {
	t.Parallel()
	e := newEnv(t, service.Config{})
	ten := e.tenant()
	ep := e.endpoint(ten, "http://127.0.0.1:9/")
	if _, err := e.svc.PauseEndpoint(e.ctx, ten.ID, ep.ID); err != nil {
		t.Fatal(err)
	}
	res, err := e.svc.Send(e.ctx, ten.ID, service.Send{Body: []byte(`x`)})
	if err != nil || res.Deliveries != 1 {
		t.Fatalf("Send = %+v, %v", res, err)
	}
	page, err := e.svc.ListDeliveries(e.ctx, ten.ID, service.DeliveryFilter{Status: kapsel.DeliveryPending})
	if err != nil || len(page.Data) != 1 {
		t.Fatalf("ListDeliveries(pending) = %+v, %v", page, err)
	}
	_, err = e.svc.RetryDelivery(e.ctx, ten.ID, page.Data[0].ID)
	requireCode(t, err, kapsel.CodeMalformedRequest, "RetryDelivery of a pending delivery")
	if n, err := e.svc.RetryEvent(e.ctx, ten.ID, res.Event.ID); err != nil || n != 0 {
		t.Fatalf("RetryEvent of an event with only a pending delivery = %d, %v; want 0", n, err)
	}
}
