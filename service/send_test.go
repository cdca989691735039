package service_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/internal/testdb"
	"github.com/kapsel-dev/kapsel/kapseltest"
	"github.com/kapsel-dev/kapsel/service"
	"github.com/kapsel-dev/kapsel/store/pgstore"
)

func TestSendFansOutToTheSubscribedEndpoints(t *testing.T) {
	t.Parallel()
	e := newEnv(t, service.Config{})
	dest := kapseltest.NewDestination(t)
	ten := e.tenant()
	create := func(path string, in service.EndpointCreate) *kapsel.Endpoint {
		in.URL = dest.URL + path
		ep, _, err := e.svc.CreateEndpoint(e.ctx, ten.ID, in)
		if err != nil {
			t.Fatal(err)
		}
		return ep
	}
	invoices := create("/invoices", service.EndpointCreate{EventTypes: []string{"invoice.*"}})
	org := create("/org", service.EndpointCreate{Channels: []string{"org_1"}})
	other := create("/other", service.EndpointCreate{EventTypes: []string{"user.created"}})
	paused := create("/paused", service.EndpointCreate{EventTypes: []string{"invoice.paid"}})
	if _, err := e.svc.PauseEndpoint(e.ctx, ten.ID, paused.ID); err != nil {
		t.Fatal(err)
	}

	in := service.Send{Type: "invoice.paid", Channels: []string{"org_1"}, Payload: map[string]int{"invoice": 7},
		IdempotencyKey: "invoice-7", Headers: http.Header{"X-Trace": {"abc"}, "Authorization": {"Bearer nope"}}}
	first, err := e.svc.Send(e.ctx, ten.ID, in)
	if err != nil || first.Duplicate || first.Deliveries != 3 {
		t.Fatalf("Send = %+v, %v; want 3 deliveries (invoices, org, paused)", first, err)
	}
	for _, ep := range []*kapsel.Endpoint{invoices, org} {
		kapseltest.RequireDelivered(t, e.store, first.Event.ID, ep.ID, 10*time.Second)
	}
	kapseltest.RequireStatus(t, e.store, first.Event.ID, paused.ID, kapsel.DeliveryPending, time.Second)
	for _, req := range dest.Requests() {
		if string(req.Body) != `{"invoice":7}` || req.Header.Get("Content-Type") != "application/json" ||
			req.Header.Get("X-Trace") != "abc" || req.Header.Get("Authorization") != "" ||
			req.Header.Get("X-Kapsel-Event-Type") != "invoice.paid" {
			t.Fatalf("delivered %q with headers %v", req.Body, req.Header)
		}
	}
	page, err := e.svc.ListDeliveries(e.ctx, ten.ID, service.DeliveryFilter{EndpointID: other.ID})
	if err != nil || len(page.Data) != 0 {
		t.Fatalf("deliveries to the endpoint the event does not match = %+v, %v; want none", page, err)
	}

	// The key is the tenant's: again is a duplicate with no new delivery,
	// another body is refused, another tenant may use it.
	again, err := e.svc.Send(e.ctx, ten.ID, in)
	if err != nil || !again.Duplicate || again.Event.ID != first.Event.ID || again.Deliveries != 0 {
		t.Fatalf("a repeated Send = %+v, %v; want the first event, duplicate, no deliveries", again, err)
	}
	in.Payload = map[string]int{"invoice": 8}
	_, err = e.svc.Send(e.ctx, ten.ID, in)
	requireCode(t, err, kapsel.CodeIdempotencyReused, "Send reusing a key with another body")
	if res, err := e.svc.Send(e.ctx, e.tenant().ID, in); err != nil || res.Duplicate || res.Deliveries != 0 {
		t.Fatalf("another tenant's send with the same key = %+v, %v; want a new event without deliveries", res, err)
	}

	// An event nobody subscribes to is stored with no delivery.
	none, err := e.svc.Send(e.ctx, ten.ID, service.Send{Type: "misc", Body: []byte("x"), ContentType: "text/plain"})
	if err != nil || none.Deliveries != 0 {
		t.Fatalf("Send matching no endpoint = %+v, %v", none, err)
	}
	if ev, err := e.svc.GetEvent(e.ctx, ten.ID, none.Event.ID, true); err != nil || ev.Deliveries.Total != 0 || string(ev.Body) != "x" {
		t.Fatalf("the event matching no endpoint = %+v, %v", ev, err)
	}
	if n := dest.Count(); n != 2 {
		t.Fatalf("destination received %d requests, want 2", n)
	}
}

func TestSendToNamedEndpoints(t *testing.T) {
	t.Parallel()
	e := newEnv(t, service.Config{MaxBodyBytes: 64})
	dest := kapseltest.NewDestination(t)
	ten := e.tenant()
	subscribed := e.endpoint(ten, dest.URL+"/all")
	named, _, err := e.svc.CreateEndpoint(e.ctx, ten.ID, service.EndpointCreate{URL: dest.URL + "/named", EventTypes: []string{"nothing.*"}})
	if err != nil {
		t.Fatal(err)
	}
	// Named endpoints get the event whatever their filters, and only they
	// do; a name given twice counts once.
	res, err := e.svc.Send(e.ctx, ten.ID, service.Send{Type: "order.created", Body: []byte(`{}`),
		EndpointIDs: []kapsel.EndpointID{named.ID, named.ID}})
	if err != nil || res.Deliveries != 1 {
		t.Fatalf("Send naming one endpoint = %+v, %v; want 1 delivery", res, err)
	}
	kapseltest.RequireDelivered(t, e.store, res.Event.ID, named.ID, 10*time.Second)
	if ds, err := e.svc.ListDeliveries(e.ctx, ten.ID, service.DeliveryFilter{EventID: res.Event.ID}); err != nil ||
		len(ds.Data) != 1 || ds.Data[0].EndpointID != named.ID {
		t.Fatalf("deliveries of a send naming its endpoint = %+v, %v", ds, err)
	}

	deleted := e.endpoint(ten, dest.URL+"/gone")
	if err := e.svc.DeleteEndpoint(e.ctx, ten.ID, deleted.ID); err != nil {
		t.Fatal(err)
	}
	many := make([]kapsel.EndpointID, kapsel.MaxSendEndpoints+1)
	for i := range many {
		many[i] = kapsel.NewEndpointID()
	}
	foreign := e.endpoint(e.tenant(), dest.URL)
	for name, c := range map[string]struct {
		in   service.Send
		code kapsel.Code
	}{
		"another tenant's endpoint": {service.Send{EndpointIDs: []kapsel.EndpointID{subscribed.ID, foreign.ID}}, kapsel.CodeNotFound},
		"a deleted endpoint":        {service.Send{EndpointIDs: []kapsel.EndpointID{deleted.ID}}, kapsel.CodeNotFound},
		"an unknown endpoint":       {service.Send{EndpointIDs: []kapsel.EndpointID{kapsel.NewEndpointID()}}, kapsel.CodeNotFound},
		"a malformed endpoint id":   {service.Send{EndpointIDs: []kapsel.EndpointID{"ep_nope"}}, kapsel.CodeMalformedRequest},
		"an empty endpoint list":    {service.Send{EndpointIDs: []kapsel.EndpointID{}}, kapsel.CodeMalformedRequest},
		"too many endpoints":        {service.Send{EndpointIDs: many}, kapsel.CodeMalformedRequest},
		"payload and body":          {service.Send{Payload: 1, Body: []byte("1")}, kapsel.CodeMalformedRequest},
		"payload not JSON":          {service.Send{Payload: func() {}}, kapsel.CodeMalformedRequest},
		"body over the limit":       {service.Send{Body: bytes.Repeat([]byte("x"), 65)}, kapsel.CodeBodyTooLarge},
		"bad idempotency key":       {service.Send{IdempotencyKey: "tab\there"}, kapsel.CodeBadIdempotencyKey},
		"unstorable content type":   {service.Send{ContentType: "text/\xff"}, kapsel.CodeMalformedRequest},
		"bad type":                  {service.Send{Type: "a\x00b"}, kapsel.CodeMalformedRequest},
		"bad channel":               {service.Send{Channels: []string{"has space"}}, kapsel.CodeMalformedRequest},
	} {
		_, err := e.svc.Send(e.ctx, ten.ID, c.in)
		requireCode(t, err, c.code, name)
	}
	kapseltest.RequireDelivered(t, e.store, res.Event.ID, named.ID, time.Second)
	if n := dest.Count(); n != 1 {
		t.Fatalf("destination received %d requests, want only the named endpoint's", n)
	}
}

func TestSendTxCommitsWithTheCallersTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.New(t)
	store, err := pgstore.Open(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(store, &service.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ten, _, err := svc.CreateTenant(ctx, service.TenantCreate{Name: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	ep, _, err := svc.CreateEndpoint(ctx, ten.ID, service.EndpointCreate{URL: "https://billing.example.com/hooks"})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	if _, err := conn.Exec(ctx, `CREATE TABLE orders (id bigint PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}

	send := func(order int, commit bool) (*service.SendResult, error) {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, `INSERT INTO orders VALUES ($1)`, order); err != nil {
			t.Fatal(err)
		}
		res, err := svc.SendTx(ctx, tx, ten.ID, service.Send{Type: "order.created", Body: []byte(`{}`)})
		if err != nil {
			return nil, err
		}
		if commit {
			return res, tx.Commit(ctx)
		}
		return res, nil
	}
	committed, err := send(1, true)
	if err != nil || committed.Deliveries != 1 {
		t.Fatalf("SendTx then commit = %+v, %v; want 1 delivery (fanned out in tx)", committed, err)
	}
	if ev, err := svc.GetEvent(ctx, ten.ID, committed.Event.ID, false); err != nil || ev.Deliveries.Pending != 1 {
		t.Fatalf("the committed event = %+v, %v; want its delivery pending", ev, err)
	}
	rolledBack, err := send(2, false)
	if err != nil {
		t.Fatalf("SendTx then rollback: %v", err)
	}
	_, err = svc.GetEvent(ctx, ten.ID, rolledBack.Event.ID, false)
	requireCode(t, err, kapsel.CodeNotFound, "the event of a rolled-back transaction")

	// A refused send leaves the transaction usable: the business write
	// still commits.
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO orders VALUES (3)`); err != nil {
		t.Fatal(err)
	}
	_, err = svc.SendTx(ctx, tx, ten.ID, service.Send{IdempotencyKey: "\x00"})
	requireCode(t, err, kapsel.CodeBadIdempotencyKey, "SendTx with a bad key")
	_, err = svc.SendTx(ctx, tx, e2Tenant(t, svc), service.Send{EndpointIDs: []kapsel.EndpointID{ep.ID}})
	requireCode(t, err, kapsel.CodeNotFound, "SendTx to another tenant's endpoint")
	_, err = svc.SendTx(ctx, tx, kapsel.NewTenantID(), service.Send{})
	requireCode(t, err, kapsel.CodeNotFound, "SendTx for an unknown tenant")
	// Decided inside tx, by the store: a key reused with another body.
	if _, err := svc.SendTx(ctx, tx, ten.ID, service.Send{EndpointIDs: []kapsel.EndpointID{ep.ID}, Body: []byte(`{"a":1}`), IdempotencyKey: "order-3"}); err != nil {
		t.Fatalf("SendTx with a new key: %v", err)
	}
	_, err = svc.SendTx(ctx, tx, ten.ID, service.Send{Body: []byte(`{"a":2}`), IdempotencyKey: "order-3"})
	requireCode(t, err, kapsel.CodeIdempotencyReused, "SendTx reusing a key with another body in the same transaction")
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("commit after refused sends: %v", err)
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM orders WHERE id = 3`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("order 3 after refused sends: %d, %v", n, err)
	}
}

func e2Tenant(t *testing.T, svc *service.Service) kapsel.TenantID {
	t.Helper()
	ten, _, err := svc.CreateTenant(context.Background(), service.TenantCreate{Name: "other"})
	if err != nil {
		t.Fatal(err)
	}
	return ten.ID
}

func TestSendTxNeedsATxStore(t *testing.T) {
	t.Parallel()
	e := newEnv(t, service.Config{})
	ten := e.tenant()
	_, err := e.svc.SendTx(e.ctx, nil, ten.ID, service.Send{EndpointIDs: []kapsel.EndpointID{e.endpoint(ten, "https://example.com/").ID}})
	requireCode(t, err, kapsel.CodeInternal, "SendTx on a memstore")
}

// unwrappingStore is a decorating store that exposes the one it wraps.
type unwrappingStore struct{ kapsel.Store }

func (s unwrappingStore) Unwrap() kapsel.Store { return s.Store }

// TestSendTxThroughAWrappingStore: a store wrapped by the application (for
// metrics, say) still offers SendTx when the wrapper has Unwrap.
func TestSendTxThroughAWrappingStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.New(t)
	store, err := pgstore.Open(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(unwrappingStore{store}, &service.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ten, _, err := svc.CreateTenant(ctx, service.TenantCreate{Name: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.CreateEndpoint(ctx, ten.ID, service.EndpointCreate{URL: "https://billing.example.com/hooks"}); err != nil {
		t.Fatal(err)
	}
	tx, err := store.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if res, err := svc.SendTx(ctx, tx, ten.ID, service.Send{Body: []byte(`{}`)}); err != nil || res.Deliveries != 1 {
		t.Fatalf("SendTx through a wrapping store = %+v, %v; want 1 delivery", res, err)
	}
}
