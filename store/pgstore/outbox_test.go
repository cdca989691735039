package pgstore_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/store/pgstore"
)

// orders is the application's business table in the outbox tests.
func (f *fixture) createOrders() {
	f.t.Helper()
	if _, err := f.s.Pool().Exec(f.t.Context(), `CREATE TABLE orders (id text PRIMARY KEY)`); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) orderExists(id string) bool {
	f.t.Helper()
	var ok bool
	if err := f.s.Pool().QueryRow(f.t.Context(), `SELECT EXISTS (SELECT FROM orders WHERE id = $1)`, id).Scan(&ok); err != nil {
		f.t.Fatal(err)
	}
	return ok
}

// placeOrder writes an order and its webhook in one application transaction
// and commits or rolls back.
func (f *fixture) placeOrder(id string, commit bool) *kapsel.EventInsertResult {
	f.t.Helper()
	ctx := f.t.Context()
	var res *kapsel.EventInsertResult
	err := pgx.BeginFunc(ctx, f.s.Pool(), func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO orders (id) VALUES ($1)`, id); err != nil {
			return err
		}
		body := []byte(`{"order":"` + id + `"}`)
		sum := sha256.Sum256(body)
		var err error
		res, err = f.s.EventInsertTx(ctx, tx, &pgstore.EventInsertTxParams{Event: &kapsel.EventInsertParams{
			TenantID: f.ep.TenantID, Type: "order.placed", Body: body, BodyHash: sum[:], ContentType: "application/json",
			IdempotencyKey: "order-" + id,
		}})
		if err != nil {
			return err
		}
		if !commit {
			return errRollback
		}
		return nil
	})
	if err != nil && !errors.Is(err, errRollback) {
		f.t.Fatalf("order transaction: %v", err)
	}
	return res
}

var errRollback = errors.New("roll back")

func TestOutboxCommit(t *testing.T) {
	f := setup(t)
	f.createOrders()
	ch, err := f.s.DeliveryListen(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	res := f.placeOrder("o1", true)
	if res.Err != nil || res.Duplicate || res.Event == nil || res.Event.Deliveries.Total != 1 {
		t.Fatalf("EventInsertTx: %+v, want a new event with one delivery", res)
	}
	if !f.orderExists("o1") {
		t.Fatal("the order was not committed")
	}
	got, err := f.s.EventGet(t.Context(), &kapsel.EventGetParams{ID: res.Event.ID, IncludeBody: true})
	if err != nil {
		t.Fatalf("the webhook was not committed with the order: %v", err)
	}
	if string(got.Body) != `{"order":"o1"}` || got.Deliveries != (kapsel.DeliverySummary{Total: 1, Pending: 1}) ||
		got.TenantID != f.ep.TenantID || got.Type != "order.placed" {
		t.Fatalf("stored event = %+v", got)
	}
	if time.Since(got.CreatedAt) > time.Minute {
		t.Fatalf("CreatedAt = %v, want the wall clock when Now is zero", got.CreatedAt)
	}
	waitWake(t, ch, "after the application's commit")
	ds, err := f.s.DeliveryClaim(t.Context(), &kapsel.DeliveryClaimParams{Limit: 10, LeaseDuration: time.Minute, Now: time.Now()})
	if err != nil || len(ds) != 1 || ds[0].EventID != res.Event.ID || ds[0].EndpointID != f.ep.ID {
		t.Fatalf("claim after commit = %v, %v; want the outbox event's delivery", ds, err)
	}
}

func TestOutboxRollback(t *testing.T) {
	f := setup(t)
	f.createOrders()
	l := f.rawListener()
	res := f.placeOrder("o2", false)
	if res.Err != nil || res.Event == nil {
		t.Fatalf("EventInsertTx: %+v", res)
	}
	if f.orderExists("o2") {
		t.Fatal("the order survived the rollback")
	}
	if _, err := f.s.EventGet(t.Context(), &kapsel.EventGetParams{ID: res.Event.ID}); !errors.Is(err, kapsel.ErrNotFound) {
		t.Fatalf("EventGet of a rolled-back webhook = %v, want ErrNotFound", err)
	}
	if n := f.count(`SELECT count(*) FROM deliveries`); n != 0 {
		t.Fatalf("%d deliveries survived the rollback", n)
	}
	if n := l.count(300 * time.Millisecond); n != 0 {
		t.Fatalf("a rolled-back transaction sent %d notifications, want 0", n)
	}
	// The rolled-back key was never taken: the retried order goes through.
	retried := f.placeOrder("o2", true)
	if retried.Err != nil || retried.Duplicate {
		t.Fatalf("retrying the order after a rollback: %+v, want a new event", retried)
	}
	if n := l.count(300 * time.Millisecond); n != 1 {
		t.Fatalf("the committed retry sent %d notifications, want 1", n)
	}
}

func TestOutboxIdempotencyAcrossTransactions(t *testing.T) {
	f := setup(t)
	f.createOrders()
	first := f.placeOrder("o3", true)
	ctx := t.Context()
	err := pgx.BeginFunc(ctx, f.s.Pool(), func(tx pgx.Tx) error {
		body := []byte(`{"order":"o3"}`)
		sum := sha256.Sum256(body)
		res, err := f.s.EventInsertManyTx(ctx, tx, &kapsel.EventInsertManyParams{Events: []*kapsel.EventInsertParams{
			{TenantID: f.ep.TenantID, Body: body, BodyHash: sum[:], IdempotencyKey: "order-o3"},
			{TenantID: f.ep.TenantID, Body: []byte("other"), BodyHash: []byte("x"), IdempotencyKey: "order-o3"},
		}})
		if err != nil {
			return err
		}
		if !res[0].Duplicate || res[0].Event.ID != first.Event.ID {
			t.Errorf("same key, same body in a later transaction: %+v, want a duplicate of %s", res[0], first.Event.ID)
		}
		if !errors.Is(res[1].Err, kapsel.ErrIdempotencyConflict) {
			t.Errorf("same key, other body: %v, want ErrIdempotencyConflict", res[1].Err)
		}
		// The application's transaction is still usable.
		_, err = tx.Exec(ctx, `INSERT INTO orders (id) VALUES ('o4')`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !f.orderExists("o4") {
		t.Fatal("the application's write after the duplicate was lost")
	}
}

func TestOutboxUnknownEndpointKeepsTransaction(t *testing.T) {
	f := setup(t)
	f.createOrders()
	ctx := t.Context()
	err := pgx.BeginFunc(ctx, f.s.Pool(), func(tx pgx.Tx) error {
		res, err := f.s.EventInsertTx(ctx, tx, &pgstore.EventInsertTxParams{Event: &kapsel.EventInsertParams{
			TenantID: f.ep.TenantID, EndpointIDs: []kapsel.EndpointID{"ep_01J00000000000000000000000"}, Body: []byte("b"),
		}})
		if err != nil || !errors.Is(res.Err, kapsel.ErrNotFound) {
			t.Errorf("EventInsertTx naming an unknown endpoint = %+v, %v; want a result with ErrNotFound", res, err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO orders (id) VALUES ('o5')`)
		return err
	})
	if err != nil {
		t.Fatalf("the transaction after ErrNotFound: %v", err)
	}
	if !f.orderExists("o5") {
		t.Fatal("the order was lost")
	}
	if _, err := f.s.EventInsertTx(context.Background(), nil, &pgstore.EventInsertTxParams{}); !errors.Is(err, kapsel.ErrInvalid) {
		t.Fatalf("EventInsertTx with a nil tx = %v, want ErrInvalid", err)
	}
}

// TestOutboxRefusalLeavesTxUsable: EventInsertTx's doc promises that
// ErrInvalid and ErrNotFound leave the application's transaction usable. A
// statement that failed in Postgres (a class-22 error for bytes it cannot
// store) would abort it, so everything that can be refused is refused before
// the first statement, and outside text is made safe rather than refused.
func TestOutboxRefusalLeavesTxUsable(t *testing.T) {
	f := setup(t)
	f.createOrders()
	ctx := t.Context()
	body := []byte(`{"order":"o2"}`)
	sum := sha256.Sum256(body)
	var stored *kapsel.EventInsertResult
	err := pgx.BeginFunc(ctx, f.s.Pool(), func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO orders (id) VALUES ('o1')`); err != nil {
			return err
		}
		// An idempotency key without a body hash: refused (I2 of docs/guarantees.md).
		_, err := f.s.EventInsertTx(ctx, tx, &pgstore.EventInsertTxParams{Event: &kapsel.EventInsertParams{
			TenantID: f.ep.TenantID, Body: body, IdempotencyKey: "order-o2",
		}})
		if !errors.Is(err, kapsel.ErrInvalid) {
			t.Errorf("EventInsertTx without BodyHash: got %v, want ErrInvalid", err)
		}
		// An endpoint id holding bytes Postgres cannot store: unknown.
		res, err := f.s.EventInsertTx(ctx, tx, &pgstore.EventInsertTxParams{Event: &kapsel.EventInsertParams{
			TenantID: f.ep.TenantID, EndpointIDs: []kapsel.EndpointID{"ep_\xff\x00"}, Body: body, BodyHash: sum[:],
		}})
		if err != nil || !errors.Is(res.Err, kapsel.ErrNotFound) {
			t.Errorf("EventInsertTx naming a malformed endpoint id: got %+v, %v; want a result with ErrNotFound", res, err)
		}
		// Outside bytes in the content type, headers, type and source id:
		// stored, made safe.
		stored, err = f.s.EventInsertTx(ctx, tx, &pgstore.EventInsertTxParams{Event: &kapsel.EventInsertParams{
			TenantID: f.ep.TenantID, SourceID: "src_\xfe", Type: "t\x00", Body: body, BodyHash: sum[:], ContentType: "text/plain; x=\xff\x00",
			Headers: map[string][]string{"X-Note": {"\xfe"}}, IdempotencyKey: "order-o2",
		}})
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO orders (id) VALUES ('o2')`)
		return err
	})
	if err != nil {
		t.Fatalf("the application's transaction failed after a refusal: %v", err)
	}
	for _, id := range []string{"o1", "o2"} {
		if !f.orderExists(id) {
			t.Fatalf("order %s was not committed", id)
		}
	}
	got, err := f.s.EventGet(ctx, &kapsel.EventGetParams{ID: stored.Event.ID})
	if err != nil {
		t.Fatal(err)
	}
	if got.ContentType != "text/plain; x=\uFFFD\uFFFD" || got.Headers.Get("X-Note") != "\uFFFD" ||
		got.SourceID != "src_\uFFFD" || got.Type != "t\uFFFD" {
		t.Fatalf("stored ContentType %q, X-Note %q, source %q, type %q", got.ContentType, got.Headers.Get("X-Note"), got.SourceID, got.Type)
	}
}

// TestEndpointDeleteWaitsForOutboxFanOut: an application's transaction
// that fanned an event out to an endpoint holds its tenant's lock, shared,
// until it ends, so a concurrent EndpointDelete waits for its commit and
// then ends the delivery it created — no pending delivery survives for a
// deleted endpoint. And an insert that starts after the delete no longer
// sees the endpoint.
func TestEndpointDeleteWaitsForOutboxFanOut(t *testing.T) {
	f := setup(t)
	ctx := t.Context()
	tx, res := f.outboxFanOut(t)
	var pid int
	if err := tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	deleted := make(chan error, 1)
	go func() {
		deleted <- f.s.EndpointDelete(ctx, &kapsel.EndpointDeleteParams{ID: f.ep.ID, Now: f.now})
	}()
	// The delete waits for the lock. Prove it is waiting on us, not merely
	// slow: the server says so.
	deadline := time.Now().Add(10 * time.Second)
	for !f.blocking(pid) {
		if time.Now().After(deadline) {
			t.Fatal("EndpointDelete is not waiting for the transaction that fanned out to the endpoint")
		}
		select {
		case err := <-deleted:
			t.Fatalf("EndpointDelete returned %v while the fan-out's transaction was open", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-deleted; err != nil {
		t.Fatalf("EndpointDelete: %v", err)
	}
	ds, err := f.s.DeliveryList(ctx, &kapsel.DeliveryListParams{EventID: res.Event.ID})
	if err != nil || len(ds) != 1 || ds[0].Status != kapsel.DeliveryFailed || ds[0].LastError != kapsel.LastErrorEndpointDeleted {
		t.Fatalf("the committed delivery after the delete = %+v, %v; want failed, %q", ds, err, kapsel.LastErrorEndpointDeleted)
	}
	after := f.insert([]*kapsel.EventInsertParams{{TenantID: f.ep.TenantID, Body: []byte("c")}})
	if after[0].Err != nil || after[0].Event.Deliveries.Total != 0 {
		t.Fatalf("an insert after the delete = %+v, want an event with no delivery", after[0])
	}
}

// blocking reports whether a backend waits for a lock that the backend
// pid holds.
func (f *fixture) blocking(pid int) bool {
	f.t.Helper()
	var n int
	if err := f.s.Pool().QueryRow(f.t.Context(),
		`SELECT count(*) FROM pg_stat_activity WHERE $1::int = ANY (pg_blocking_pids(pid))`, pid).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n > 0
}

// outboxFanOut begins an application transaction (rolled back at the end
// of the test unless committed) and fans one event out in it to the
// fixture's endpoint: the open transaction holds the tenant's lock shared.
func (f *fixture) outboxFanOut(t *testing.T) (pgx.Tx, *kapsel.EventInsertResult) {
	t.Helper()
	ctx := t.Context()
	tx, err := f.s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) }) // after Commit it is a no-op
	res, err := f.s.EventInsertTx(ctx, tx, &pgstore.EventInsertTxParams{
		Event: &kapsel.EventInsertParams{TenantID: f.ep.TenantID, Body: []byte("b")}, Now: f.now})
	if err != nil || res.Event.Deliveries.Total != 1 {
		t.Fatalf("EventInsertTx: %+v, %v; want one delivery", res, err)
	}
	return tx, res
}
