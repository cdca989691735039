package service_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/kapseltest"
	"github.com/kapsel-dev/kapsel/service"
)

func TestEventOperations(t *testing.T) {
	t.Parallel()
	e := newEnv(t, service.Config{})
	dest := kapseltest.NewDestination(t)
	ten := e.tenant()
	ep := e.endpoint(ten, dest.URL)
	other := e.tenant()

	status, answer := e.post("/ingest/"+string(ep.ID), []byte(`{"n":1}`))
	if status != http.StatusAccepted {
		t.Fatalf("ingest answered %d %s", status, answer)
	}
	dest.WaitForRequests(t, 1, 10*time.Second)
	page, err := e.svc.ListEvents(e.ctx, ten.ID, service.EventFilter{EndpointID: ep.ID})
	if err != nil || len(page.Data) != 1 || page.HasMore {
		t.Fatalf("ListEvents = %+v, %v; want one event", page, err)
	}
	id := page.Data[0].ID
	ev := kapseltest.RequireDelivered(t, e.store, id, 10*time.Second)
	if ev.Body != nil {
		t.Fatal("EventGet without body returned a body")
	}

	got, err := e.svc.GetEvent(e.ctx, ten.ID, id, true)
	if err != nil || string(got.Body) != `{"n":1}` {
		t.Fatalf("GetEvent(include body) = %v, %v", got, err)
	}
	_, err = e.svc.GetEvent(e.ctx, other.ID, id, false)
	requireCode(t, err, kapsel.CodeNotFound, "GetEvent of another tenant's event")
	_, err = e.svc.ListEvents(e.ctx, other.ID, service.EventFilter{EndpointID: ep.ID})
	requireCode(t, err, kapsel.CodeNotFound, "ListEvents of another tenant's endpoint")
	_, err = e.svc.ListEvents(e.ctx, ten.ID, service.EventFilter{Status: "lost"})
	requireCode(t, err, kapsel.CodeMalformedRequest, "ListEvents with an unknown status")
	_, err = e.svc.ListEvents(e.ctx, ten.ID, service.EventFilter{ListOptions: service.ListOptions{Limit: kapsel.MaxPageLimit + 1}})
	requireCode(t, err, kapsel.CodeMalformedRequest, "ListEvents with a limit over the cap")
	_, err = e.svc.ListEvents(e.ctx, ten.ID, service.EventFilter{ListOptions: service.ListOptions{Cursor: "evt_nope"}})
	requireCode(t, err, kapsel.CodeMalformedRequest, "ListEvents with a malformed cursor")

	// A delivered event can be retried: one more attempt, same webhook-id.
	if _, err := e.svc.RetryEvent(e.ctx, ten.ID, id); err != nil {
		t.Fatalf("RetryEvent: %v", err)
	}
	reqs := dest.WaitForRequests(t, 2, 10*time.Second)
	if a, b := reqs[0].Header.Get("webhook-id"), reqs[1].Header.Get("webhook-id"); a != b || a != string(id) {
		t.Fatalf("webhook-id of the attempts = %q, %q; want %s twice", a, b, id)
	}
	kapseltest.WaitForEvent(t, e.store, id, 10*time.Second, func(ev *kapsel.Event) bool {
		return ev.Status == kapsel.EventDelivered && ev.Attempts == 2
	})
	attempts, err := e.svc.ListAttempts(e.ctx, ten.ID, id, service.AttemptListOptions{ListOptions: service.ListOptions{Limit: 1}})
	if err != nil || len(attempts.Data) != 1 || !attempts.HasMore || attempts.NextCursor != string(attempts.Data[0].ID) {
		t.Fatalf("ListAttempts(limit 1) = %+v, %v; want one attempt and a cursor", attempts, err)
	}
	rest, err := e.svc.ListAttempts(e.ctx, ten.ID, id, service.AttemptListOptions{ListOptions: service.ListOptions{Cursor: attempts.NextCursor}})
	if err != nil || len(rest.Data) != 1 || rest.HasMore || rest.Data[0].Number != 2 {
		t.Fatalf("ListAttempts(second page) = %+v, %v; want attempt 2 and no more", rest, err)
	}
	_, err = e.svc.ListAttempts(e.ctx, other.ID, id, service.AttemptListOptions{})
	requireCode(t, err, kapsel.CodeNotFound, "ListAttempts of another tenant's event")
	_, err = e.svc.RetryEvent(e.ctx, other.ID, id)
	requireCode(t, err, kapsel.CodeNotFound, "RetryEvent of another tenant's event")
}

func TestRetryRefusesAnUnfinishedEvent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, service.Config{})
	ten := e.tenant()
	ep := e.endpoint(ten, "http://127.0.0.1:9/")
	if _, err := e.svc.PauseEndpoint(e.ctx, ten.ID, ep.ID); err != nil {
		t.Fatal(err)
	}
	status, answer := e.post("/ingest/"+string(ep.ID), []byte(`x`))
	if status != http.StatusAccepted {
		t.Fatalf("ingest answered %d %s", status, answer)
	}
	page, err := e.svc.ListEvents(e.ctx, ten.ID, service.EventFilter{Status: kapsel.EventPending})
	if err != nil || len(page.Data) != 1 {
		t.Fatalf("ListEvents(pending) = %+v, %v", page, err)
	}
	_, err = e.svc.RetryEvent(e.ctx, ten.ID, page.Data[0].ID)
	requireCode(t, err, kapsel.CodeMalformedRequest, "RetryEvent of a pending event")
}
