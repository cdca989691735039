package pgstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/kapsel-dev/kapsel"
)

// TestTenantDeleteWaitsForOutboxFanOut: as EndpointDelete does, TenantDelete
// takes the tenant's lock exclusive, so it waits for an application's
// transaction that fanned an event out for the tenant (holding the lock
// shared) and then ends the delivery that transaction committed. An
// insert after the delete is refused (ErrNotFound).
func TestTenantDeleteWaitsForOutboxFanOut(t *testing.T) {
	f := setup(t)
	ctx := t.Context()
	tx, res := f.outboxFanOut(t)
	deleted := make(chan error, 1)
	go func() {
		deleted <- f.s.TenantDelete(ctx, &kapsel.TenantDeleteParams{ID: f.ep.TenantID, Now: f.now})
	}()
	f.waitBlocked(tx, deleted, "TenantDelete")
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-deleted; err != nil {
		t.Fatalf("TenantDelete: %v", err)
	}
	ds, err := f.s.DeliveryList(ctx, &kapsel.DeliveryListParams{EventID: res.Event.ID})
	if err != nil || len(ds) != 1 || ds[0].Status != kapsel.DeliveryFailed || ds[0].LastError != kapsel.LastErrorEndpointDeleted {
		t.Fatalf("the committed delivery after the delete = %+v, %v; want failed, %q", ds, err, kapsel.LastErrorEndpointDeleted)
	}
	after := f.insert([]*kapsel.EventInsertParams{{TenantID: f.ep.TenantID, Body: []byte("c")}})
	if !errors.Is(after[0].Err, kapsel.ErrNotFound) {
		t.Fatalf("an insert after the delete = %+v, want ErrNotFound", after[0])
	}
}

// TestInsertsWaitForTenantDelete: SourceInsert and EndpointInsert read the
// tenant FOR SHARE, which conflicts with the lock of TenantDelete's UPDATE
// of the tenant row. While a transaction holds that lock (as TenantDelete
// does until it commits), both wait; once it commits the tenant deleted,
// both answer ErrNotFound and write nothing. The foreign key alone would
// not wait (its FOR KEY SHARE does not conflict with the UPDATE) and would
// accept the deleted tenant's id.
func TestInsertsWaitForTenantDelete(t *testing.T) {
	f := setup(t)
	ctx := t.Context()
	tenant := f.ep.TenantID
	tx, err := f.s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
	if _, err := tx.Exec(ctx, `UPDATE tenants SET deleted_at = $2 WHERE id = $1`, tenant, f.now); err != nil {
		t.Fatal(err)
	}
	srcDone, epDone := make(chan error, 1), make(chan error, 1)
	go func() {
		_, err := f.s.SourceInsert(ctx, &kapsel.SourceInsertParams{
			Source: &kapsel.Source{TenantID: tenant, Verifier: kapsel.VerifierConfig{Scheme: kapsel.SchemeNone}}, Now: f.now})
		srcDone <- err
	}()
	go func() {
		_, err := f.s.EndpointInsert(ctx, &kapsel.EndpointInsertParams{Endpoint: &kapsel.Endpoint{
			TenantID: tenant, URL: "https://example.com/new", RetryPolicy: kapsel.DefaultRetryPolicy(),
		}, Now: f.now})
		epDone <- err
	}()
	f.waitBlockedN(tx, 2, "SourceInsert and EndpointInsert", srcDone, epDone)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	for what, done := range map[string]chan error{"SourceInsert": srcDone, "EndpointInsert": epDone} {
		if err := <-done; !errors.Is(err, kapsel.ErrNotFound) {
			t.Fatalf("%s for the tenant deleted meanwhile: %v, want ErrNotFound", what, err)
		}
	}
	var sources, endpoints int
	if err := f.s.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM sources WHERE tenant_id = $1),
		(SELECT count(*) FROM endpoints WHERE tenant_id = $1)`, tenant).Scan(&sources, &endpoints); err != nil {
		t.Fatal(err)
	}
	if sources != 0 || endpoints != 1 {
		t.Fatalf("the deleted tenant has %d sources and %d endpoints, want none besides the fixture's endpoint", sources, endpoints)
	}
}

// waitBlocked waits until a backend waits for a lock that tx's backend
// holds, failing when done delivers first or after 10 s.
func (f *fixture) waitBlocked(tx pgx.Tx, done chan error, what string) {
	f.t.Helper()
	f.waitBlockedN(tx, 1, what, done)
}

// waitBlockedN waits until n backends wait for a lock that tx's backend
// holds: proof that they wait on it, not merely that they are slow. It
// fails when one of done delivers first, or after 10 s.
func (f *fixture) waitBlockedN(tx pgx.Tx, n int, what string, done ...chan error) {
	f.t.Helper()
	var pid int
	if err := tx.QueryRow(f.t.Context(), `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(f.t.Context(), 10*time.Second)
	defer cancel()
	for {
		var waiting int
		if err := f.s.Pool().QueryRow(ctx,
			`SELECT count(*) FROM pg_stat_activity WHERE $1::int = ANY (pg_blocking_pids(pid))`, pid).Scan(&waiting); err != nil {
			f.t.Fatalf("%s: not waiting for the open transaction's lock: %v", what, err)
		}
		if waiting >= n {
			return
		}
		for _, d := range done {
			select {
			case err := <-d:
				f.t.Fatalf("%s returned %v while the transaction was open", what, err)
			default:
			}
		}
		select {
		case <-ctx.Done():
			f.t.Fatalf("%s: not waiting for the open transaction's lock after 10 s", what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
