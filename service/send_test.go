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

func TestSendDeliversAndDeduplicates(t *testing.T) {
	t.Parallel()
	e := newEnv(t, service.Config{MaxBodyBytes: 64})
	dest := kapseltest.NewDestination(t)
	ten := e.tenant()
	ep := e.endpoint(ten, dest.URL)

	in := service.Send{EndpointID: ep.ID, Body: []byte(`{"order":1}`), IdempotencyKey: "order-1",
		Headers: http.Header{"X-Trace": {"abc"}, "Authorization": {"Bearer nope"}}}
	first, err := e.svc.Send(e.ctx, ten.ID, in)
	if err != nil || first.Duplicate {
		t.Fatalf("Send = %+v, %v", first, err)
	}
	req := dest.WaitForRequests(t, 1, 10*time.Second)[0]
	if !bytes.Equal(req.Body, in.Body) || req.Header.Get("Content-Type") != "application/json" ||
		req.Header.Get("X-Trace") != "abc" || req.Header.Get("Authorization") != "" {
		t.Fatalf("delivered %q with headers %v", req.Body, req.Header)
	}
	again, err := e.svc.Send(e.ctx, ten.ID, in)
	if err != nil || !again.Duplicate || again.Event.ID != first.Event.ID {
		t.Fatalf("a repeated Send = %+v, %v; want the first event, duplicate", again, err)
	}
	in.Body = []byte(`{"order":2}`)
	_, err = e.svc.Send(e.ctx, ten.ID, in)
	requireCode(t, err, kapsel.CodeIdempotencyReused, "Send reusing a key with another body")

	for name, c := range map[string]struct {
		in   service.Send
		code kapsel.Code
	}{
		"another tenant's endpoint": {service.Send{EndpointID: e.endpoint(e.tenant(), dest.URL).ID}, kapsel.CodeNotFound},
		"body over the limit":       {service.Send{EndpointID: ep.ID, Body: bytes.Repeat([]byte("x"), 65)}, kapsel.CodeBodyTooLarge},
		"bad idempotency key":       {service.Send{EndpointID: ep.ID, IdempotencyKey: "tab\there"}, kapsel.CodeBadIdempotencyKey},
		"unstorable content type":   {service.Send{EndpointID: ep.ID, ContentType: "text/\xff"}, kapsel.CodeMalformedRequest},
	} {
		_, err := e.svc.Send(e.ctx, ten.ID, c.in)
		requireCode(t, err, c.code, name)
	}
	if n := dest.Count(); n != 1 {
		t.Fatalf("destination received %d requests, want 1", n)
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
		res, err := svc.SendTx(ctx, tx, ten.ID, service.Send{EndpointID: ep.ID, Body: []byte(`{}`)})
		if err != nil {
			return nil, err
		}
		if commit {
			return res, tx.Commit(ctx)
		}
		return res, nil
	}
	committed, err := send(1, true)
	if err != nil {
		t.Fatalf("SendTx then commit: %v", err)
	}
	if _, err := svc.GetEvent(ctx, ten.ID, committed.Event.ID, false); err != nil {
		t.Fatalf("the committed event: %v", err)
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
	_, err = svc.SendTx(ctx, tx, ten.ID, service.Send{EndpointID: ep.ID, IdempotencyKey: "\x00"})
	requireCode(t, err, kapsel.CodeBadIdempotencyKey, "SendTx with a bad key")
	_, err = svc.SendTx(ctx, tx, e2Tenant(t, svc), service.Send{EndpointID: ep.ID})
	requireCode(t, err, kapsel.CodeNotFound, "SendTx to another tenant's endpoint")
	// Decided inside tx, by the store: a key reused with another body.
	if _, err := svc.SendTx(ctx, tx, ten.ID, service.Send{EndpointID: ep.ID, Body: []byte(`{"a":1}`), IdempotencyKey: "order-3"}); err != nil {
		t.Fatalf("SendTx with a new key: %v", err)
	}
	_, err = svc.SendTx(ctx, tx, ten.ID, service.Send{EndpointID: ep.ID, Body: []byte(`{"a":2}`), IdempotencyKey: "order-3"})
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
	_, err := e.svc.SendTx(e.ctx, nil, ten.ID, service.Send{EndpointID: e.endpoint(ten, "https://example.com/").ID})
	requireCode(t, err, kapsel.CodeInternal, "SendTx on a memstore")
}

// TestSendNotFoundComesFirst: a send naming an endpoint that is not the
// tenant's — another tenant's, or one deleted a moment ago while the
// ingester's endpoint cache still holds it — answers E1011 whatever else is
// wrong with it, as every operation a tenant calls does.
func TestSendNotFoundComesFirst(t *testing.T) {
	t.Parallel()
	e := newEnv(t, service.Config{})
	ten := e.tenant()
	ep := e.endpoint(ten, "https://example.com/hook")
	if _, err := e.svc.Send(e.ctx, ten.ID, service.Send{EndpointID: ep.ID, Body: []byte(`{}`)}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if err := e.svc.DeleteEndpoint(e.ctx, ten.ID, ep.ID); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.Send(e.ctx, ten.ID, service.Send{EndpointID: ep.ID, Body: []byte(`{}`)})
	requireCode(t, err, kapsel.CodeNotFound, "Send to an endpoint deleted a moment ago")

	foreign := e.endpoint(e.tenant(), "https://example.com/hook")
	_, err = e.svc.Send(e.ctx, ten.ID, service.Send{EndpointID: foreign.ID, IdempotencyKey: "\x00bad"})
	requireCode(t, err, kapsel.CodeNotFound, "Send to another tenant's endpoint with a bad key")
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
	ep, _, err := svc.CreateEndpoint(ctx, ten.ID, service.EndpointCreate{URL: "https://billing.example.com/hooks"})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := store.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := svc.SendTx(ctx, tx, ten.ID, service.Send{EndpointID: ep.ID, Body: []byte(`{}`)}); err != nil {
		t.Fatalf("SendTx through a wrapping store: %v", err)
	}
}
