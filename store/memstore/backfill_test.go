package memstore_test

import (
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

func (f *fixture) backfill(ep kapsel.EndpointID, since, until time.Time, limit int) *kapsel.DeliveryBackfillResult {
	f.t.Helper()
	res, err := f.store.DeliveryBackfill(f.ctx, &kapsel.DeliveryBackfillParams{TenantID: f.tenant, EndpointID: ep,
		Since: since, Until: until, Limit: limit, Now: f.now})
	must(f.t, err)
	return res
}

func (f *fixture) backfillAfter(ep kapsel.EndpointID, cursor kapsel.EventID, limit int) *kapsel.DeliveryBackfillResult {
	f.t.Helper()
	res, err := f.store.DeliveryBackfill(f.ctx, &kapsel.DeliveryBackfillParams{TenantID: f.tenant, EndpointID: ep,
		Cursor: cursor, Limit: limit, Now: f.now})
	must(f.t, err)
	return res
}

func TestBackfillCreatesEachMissingDeliveryOnce(t *testing.T) {
	t.Parallel()
	f := setup(t)
	start := f.now
	// Six events a second apart, before the endpoint exists; odd ones are
	// invoices. Another tenant's invoice is never backfilled.
	var events []*kapsel.Event
	for i := range 6 {
		typ := "order.created"
		if i%2 == 1 {
			typ = "invoice.paid"
		}
		events = append(events, f.insert(event(f.tenant, "", typ, `{}`, ""))[0].Event)
		f.now = f.now.Add(time.Second)
	}
	other := f.newTenant()
	f.insert(event(other, "", "invoice.paid", `{}`, ""))

	ep := f.endpoint(f.tenant, kapsel.Subscription{EventTypes: []string{"invoice.*"}})
	// A later send names the endpoint: it has its delivery already.
	named := event(f.tenant, "", "invoice.paid", `{}`, "")
	named.EndpointIDs = []kapsel.EndpointID{ep}
	_ = f.insert(named)
	// A first backfill of [event 3, event 4) gives event 3 its delivery.
	if res := f.backfill(ep, start.Add(3*time.Second), start.Add(4*time.Second), 0); res.Created != 1 {
		t.Fatalf("backfill of event 3: %+v", res)
	}

	// [event 0, event 5): looks at events 0..4 of which 1 and 3 match; 3
	// has its delivery already.
	res := f.backfill(ep, start, start.Add(5*time.Second), 0)
	if *res != (kapsel.DeliveryBackfillResult{Created: 1}) {
		t.Fatalf("second backfill: %+v, want 1 created", res)
	}
	list := f.deliveries(kapsel.DeliveryListParams{EndpointID: ep})
	if len(list) != 3 {
		t.Fatalf("%d deliveries to the endpoint, want 3", len(list))
	}
	var bf *kapsel.Delivery
	for _, d := range list {
		if d.EventID == events[1].ID {
			bf = d
		}
	}
	if bf == nil || bf.Status != kapsel.DeliveryPending || bf.NextTrigger != kapsel.TriggerManual ||
		!bf.NextAttemptAt.Equal(f.now.Truncate(time.Microsecond)) || bf.TenantID != f.tenant {
		t.Fatalf("backfilled delivery %+v", bf)
	}
	ev, err := f.store.EventGet(f.ctx, &kapsel.EventGetParams{ID: events[1].ID})
	must(t, err)
	if ev.Deliveries != (kapsel.DeliverySummary{Total: 1, Pending: 1}) {
		t.Fatalf("summary of a backfilled event: %+v", ev.Deliveries)
	}

	// Repeated, or over everything: only event 5 is new (the send has its
	// delivery, the other tenant's invoice is not the tenant's).
	if res := f.backfill(ep, start, start.Add(5*time.Second), 0); res.Created != 0 || res.More {
		t.Fatalf("repeated backfill: %+v", res)
	}
	if res := f.backfill(ep, time.Time{}, time.Time{}, 0); res.Created != 1 || res.More {
		t.Fatalf("open-range backfill: %+v, want event 5 only", res)
	}
	if n := len(f.deliveries(kapsel.DeliveryListParams{EndpointID: ep})); n != 4 {
		t.Fatalf("%d deliveries to the endpoint, want 4 (events 1, 3, 5 and the send)", n)
	}
}

func TestBackfillPagesByLimit(t *testing.T) {
	t.Parallel()
	f := setup(t)
	var ids []kapsel.EventID
	for range 5 { // one CreatedAt for all: pages move on by id, not by time
		ids = append(ids, f.insert(event(f.tenant, "", "x", `{}`, ""))[0].Event.ID)
	}
	ep := f.endpoint(f.tenant, kapsel.Subscription{})

	res := f.backfillAfter(ep, "", 2)
	if !res.More || res.Created != 2 || res.Next != ids[1] {
		t.Fatalf("first page: %+v, want 2 created and more after %s", res, ids[1])
	}
	total, calls := res.Created, 1
	for res.More {
		if calls++; calls > 10 {
			t.Fatal("backfill does not end")
		}
		res = f.backfillAfter(ep, res.Next, 2)
		total += res.Created
	}
	if total != 5 || calls != 3 {
		t.Fatalf("created %d in %d calls, want 5 in 3", total, calls)
	}
}

func TestBackfillOfInvisibleEndpoint(t *testing.T) {
	t.Parallel()
	f := setup(t)
	foreign := f.endpoint(f.newTenant(), kapsel.Subscription{})
	_, err := f.store.DeliveryBackfill(f.ctx, &kapsel.DeliveryBackfillParams{TenantID: f.tenant, EndpointID: foreign, Now: f.now})
	wantErr(t, err, kapsel.ErrNotFound)
	_, err = f.store.DeliveryBackfill(f.ctx, &kapsel.DeliveryBackfillParams{TenantID: f.tenant, EndpointID: kapsel.NewEndpointID(), Now: f.now})
	wantErr(t, err, kapsel.ErrNotFound)
}
