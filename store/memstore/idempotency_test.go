package memstore_test

import (
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

func TestIdempotencyIsScopedPerTenantAndSource(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.endpoint(f.tenant, kapsel.Subscription{})
	s1, s2 := f.source(f.tenant), f.source(f.tenant)
	other := f.newTenant()

	res := f.insert(
		event(f.tenant, s1, "x", `{"a":1}`, "k"), // 0: new
		event(f.tenant, s2, "x", `{"a":1}`, "k"), // 1: another source: new
		event(f.tenant, "", "x", `{"a":1}`, "k"), // 2: a send, the tenant's scope: new
		event(other, "", "x", `{"a":1}`, "k"),    // 3: another tenant's send: new
		event(f.tenant, s1, "x", `{"a":1}`, "k"), // 4: duplicate of 0, in the same call
		event(f.tenant, "", "x", `{"a":2}`, "k"), // 5: conflict with 2
	)
	seen := map[kapsel.EventID]bool{}
	for i := range 4 {
		if res[i].Err != nil || res[i].Duplicate || seen[res[i].Event.ID] {
			t.Fatalf("row %d: %+v, want a new event", i, res[i])
		}
		seen[res[i].Event.ID] = true
	}
	if !res[4].Duplicate || res[4].Event.ID != res[0].Event.ID || res[4].Event.Body != nil ||
		res[4].Event.Deliveries != (kapsel.DeliverySummary{}) {
		t.Fatalf("row 4: %+v, want a duplicate of row 0 without body or summary", res[4])
	}
	wantErr(t, res[5].Err, kapsel.ErrIdempotencyConflict)
	// The duplicate and the conflict created no delivery: one per new
	// event of the tenant (the other tenant has no endpoint).
	if n := len(f.deliveries(kapsel.DeliveryListParams{TenantID: f.tenant})); n != 3 {
		t.Fatalf("%d deliveries, want 3", n)
	}

	// The key is free again once its window has passed.
	f.now = f.now.Add(kapsel.DefaultIdempotencyWindow)
	if r := f.insert(event(f.tenant, s1, "x", `{"a":3}`, "k"))[0]; r.Err != nil || r.Duplicate {
		t.Fatalf("after the window: %+v, want a new event", r)
	}
	f.now = f.now.Add(-time.Microsecond)
	if r := f.insert(event(f.tenant, s2, "x", `{"a":1}`, "k"))[0]; !r.Duplicate || r.Event.ID != res[1].Event.ID {
		t.Fatalf("just inside the window: %+v, want a duplicate of row 1", r)
	}
}
