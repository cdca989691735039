package service_test

import (
	"crypto/sha256"
	"sync"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
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
	insert := func(ten kapsel.TenantID, n int) []kapsel.EventID {
		t.Helper()
		var in []*kapsel.EventInsertParams
		for range n {
			body := []byte(`{"user":"someone@example.com"}`)
			h := sha256.Sum256(body)
			in = append(in, &kapsel.EventInsertParams{TenantID: ten, Body: body, BodyHash: h[:]})
		}
		res, err := store.EventInsertMany(ctx, &kapsel.EventInsertManyParams{Events: in, Now: time.Now()})
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
