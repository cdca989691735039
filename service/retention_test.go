package service_test

import (
	"crypto/sha256"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/retention"
	"github.com/kapsel-dev/kapsel/service"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

// TestExpungeTenantBodies erases every body of a deleted tenant, in more
// than one batch, and no other tenant's.
func TestExpungeTenantBodies(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	erased := 0
	store := memstore.New()
	svc, err := service.New(store, &service.Config{Hooks: kapsel.Hooks{OnRetention: func(i kapsel.RetentionInfo) {
		mu.Lock()
		defer mu.Unlock()
		if i.Table == kapsel.RetentionEventBodies && i.Cause == kapsel.BodyExpunged {
			erased += i.Rows
		}
	}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	insert := func(ten kapsel.TenantID, n int) []kapsel.EventID { return insertEvents(t, store, ten, n) }
	a, _, err := svc.CreateTenant(ctx, service.TenantCreate{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := svc.CreateTenant(ctx, service.TenantCreate{Name: "b"})
	if err != nil {
		t.Fatal(err)
	}
	mine := insert(a.ID, kapsel.DefaultRetentionBatch+5) // two batches
	theirs := insert(b.ID, 3)
	if err := svc.DeleteTenant(ctx, a.ID); err != nil {
		t.Fatal(err)
	}

	n, err := svc.ExpungeTenantBodies(ctx, a.ID)
	if err != nil || n != len(mine) {
		t.Fatalf("ExpungeTenantBodies = %d, %v; want %d", n, err, len(mine))
	}
	for _, id := range []kapsel.EventID{mine[0], mine[len(mine)-1]} {
		e, err := svc.GetEvent(ctx, a.ID, id, true)
		if err != nil || len(e.Body) != 0 || e.BodyErasure != kapsel.BodyExpunged || e.BodyErasedAt.IsZero() {
			t.Fatalf("event %s after the expunge: %+v, %v", id, e, err)
		}
	}
	for _, id := range theirs {
		if e, err := svc.GetEvent(ctx, b.ID, id, true); err != nil || e.BodyErasure != kapsel.BodyKept || len(e.Body) == 0 {
			t.Fatalf("the other tenant's event %s: %+v, %v", id, e, err)
		}
	}
	mu.Lock()
	if erased != len(mine) {
		t.Errorf("OnRetention reported %d bodies expunged, want %d", erased, len(mine))
	}
	mu.Unlock()
	if n, err := svc.ExpungeTenantBodies(ctx, a.ID); err != nil || n != 0 {
		t.Fatalf("a second ExpungeTenantBodies = %d, %v; want 0", n, err)
	}
}

// TestExpungeTenantBodiesEndsAtItsStart: a tenant expunge erases the events
// created up to its start and ends even while the tenant keeps ingesting
// faster than it erases (here: a batch's worth after every batch).
func TestExpungeTenantBodiesEndsAtItsStart(t *testing.T) {
	t.Parallel()
	const batch = kapsel.DefaultRetentionBatch
	store := memstore.New()
	ctx := t.Context()
	var tenant kapsel.TenantID
	var arrivals [][]kapsel.EventID
	insert := func(n int) []kapsel.EventID { return insertEvents(t, store, tenant, n) }
	// Each batch's report lets a batch's worth of new events in, at most
	// 20 times (a bound for the test, should the expunge not end).
	svc, err := service.New(store, &service.Config{Hooks: kapsel.Hooks{OnRetention: func(i kapsel.RetentionInfo) {
		if i.Cause == kapsel.BodyExpunged && len(arrivals) < 20 {
			arrivals = append(arrivals, insert(batch))
		}
	}}})
	if err != nil {
		t.Fatal(err)
	}
	a, _, err := svc.CreateTenant(ctx, service.TenantCreate{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	tenant = a.ID
	before := insert(batch + 5)

	n, err := svc.ExpungeTenantBodies(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Every event created before the call, and at most the last batch's
	// worth of those that arrived during it.
	if n < len(before) || n > len(before)+batch {
		t.Fatalf("ExpungeTenantBodies erased %d bodies (%d batches of arrivals); want the %d created before it and at most one batch more", n, len(arrivals), len(before))
	}
	for _, id := range []kapsel.EventID{before[0], before[len(before)-1]} {
		if e, err := svc.GetEvent(ctx, a.ID, id, true); err != nil || e.BodyErasure != kapsel.BodyExpunged {
			t.Fatalf("event %s created before the expunge: %+v, %v", id, e, err)
		}
	}
	last := arrivals[len(arrivals)-1]
	if e, err := svc.GetEvent(ctx, a.ID, last[len(last)-1], true); err != nil || e.BodyErasure != kapsel.BodyKept {
		t.Fatalf("the newest event, arrived during the expunge: %+v, %v; want its body kept", e, err)
	}
}

// TestRetentionIsOptIn: the zero Config runs no retention (an application
// upgrading from 0.1 loses nothing without asking); a Retention config
// turns it on. A store without kapsel.RetentionStore (an optional
// capability) works without retention, refuses a Retention config, and
// answers expunges with ErrInvalid.
func TestRetentionIsOptIn(t *testing.T) {
	t.Parallel()
	svc, err := service.New(memstore.New(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if svc.RetentionOn() {
		t.Error("the zero Config runs retention; want it off")
	}
	if svc, err = service.New(memstore.New(), &service.Config{Retention: &retention.Config{}}); err != nil || !svc.RetentionOn() {
		t.Fatalf("Retention: &retention.Config{}: on=%v, %v; want on", svc != nil && svc.RetentionOn(), err)
	}

	plain := struct{ kapsel.Store }{memstore.New()} // no RetentionStore
	if _, err := service.New(plain, &service.Config{Retention: &retention.Config{}}); !errors.Is(err, kapsel.ErrInvalid) {
		t.Fatalf("retention on a store without RetentionStore: %v, want ErrInvalid", err)
	}
	svc, err = service.New(plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	ten, _, err := svc.CreateTenant(t.Context(), service.TenantCreate{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ExpungeEvent(t.Context(), ten.ID, kapsel.NewEventID()); !errors.Is(err, kapsel.ErrInvalid) {
		t.Fatalf("ExpungeEvent without RetentionStore: %v, want ErrInvalid", err)
	}
	if _, err := svc.ExpungeTenantBodies(t.Context(), ten.ID); !errors.Is(err, kapsel.ErrInvalid) {
		t.Fatalf("ExpungeTenantBodies without RetentionStore: %v, want ErrInvalid", err)
	}
}

// insertEvents inserts n events of tenant straight into store and returns
// their ids.
func insertEvents(t *testing.T, store kapsel.Store, tenant kapsel.TenantID, n int) []kapsel.EventID {
	t.Helper()
	var in []*kapsel.EventInsertParams
	for range n {
		body := []byte(`{"user":"someone@example.com"}`)
		h := sha256.Sum256(body)
		in = append(in, &kapsel.EventInsertParams{TenantID: tenant, Body: body, BodyHash: h[:]})
	}
	res, err := store.EventInsertMany(t.Context(), &kapsel.EventInsertManyParams{Events: in, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	var ids []kapsel.EventID
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		ids = append(ids, r.Event.ID)
	}
	return ids
}
