package memstore_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// endpointsOf returns the endpoints the event has deliveries to, sorted.
func (f *fixture) endpointsOf(ev kapsel.EventID) []kapsel.EndpointID {
	f.t.Helper()
	var ids []kapsel.EndpointID
	for _, d := range f.deliveries(kapsel.DeliveryListParams{EventID: ev}) {
		ids = append(ids, d.EndpointID)
	}
	slices.Sort(ids)
	return ids
}

func sorted(ids ...kapsel.EndpointID) []kapsel.EndpointID {
	slices.Sort(ids)
	return ids
}

func TestFanOutFollowsSubscriptions(t *testing.T) {
	t.Parallel()
	f := setup(t)
	s1, s2 := f.source(f.tenant), f.source(f.tenant)
	all := f.endpoint(f.tenant, kapsel.Subscription{})
	invoices := f.endpoint(f.tenant, kapsel.Subscription{EventTypes: []string{"invoice.*"}})
	fromS2 := f.endpoint(f.tenant, kapsel.Subscription{SourceIDs: []kapsel.SourceID{s2}})
	onC1 := f.endpoint(f.tenant, kapsel.Subscription{Channels: []string{"c1"}})
	paused := f.endpoint(f.tenant, kapsel.Subscription{})
	_, err := f.store.EndpointSetState(f.ctx, &kapsel.EndpointSetStateParams{ID: paused, State: kapsel.EndpointPaused, Now: f.now})
	must(t, err)
	deleted := f.endpoint(f.tenant, kapsel.Subscription{})
	must(t, f.store.EndpointDelete(f.ctx, &kapsel.EndpointDeleteParams{ID: deleted, Now: f.now}))
	f.endpoint(f.newTenant(), kapsel.Subscription{}) // another tenant's: never

	send := event(f.tenant, "", "order.created", `{}`, "")
	send.Channels = []string{"c2", "c1"}
	res := f.insert(
		event(f.tenant, s1, "invoice.paid", `{}`, ""),
		event(f.tenant, s2, "order.created", `{}`, ""),
		send,
	)
	for i, want := range [][]kapsel.EndpointID{
		sorted(all, invoices, paused),
		sorted(all, fromS2, paused),
		sorted(all, onC1, paused),
	} {
		r := res[i]
		if r.Err != nil {
			t.Fatalf("row %d: %v", i, r.Err)
		}
		if got := f.endpointsOf(r.Event.ID); !slices.Equal(got, want) {
			t.Errorf("row %d: deliveries to %v, want %v", i, got, want)
		}
		if r.Event.Deliveries != (kapsel.DeliverySummary{Total: len(want), Pending: len(want)}) {
			t.Errorf("row %d: summary %+v, want %d pending", i, r.Event.Deliveries, len(want))
		}
	}

	// Every new delivery is pending, due now, scheduled, unattempted.
	for _, d := range f.deliveries(kapsel.DeliveryListParams{TenantID: f.tenant}) {
		if !strings.HasPrefix(string(d.ID), kapsel.DeliveryIDPrefix) || d.TenantID != f.tenant ||
			d.Status != kapsel.DeliveryPending || d.Attempts != 0 || d.NextTrigger != kapsel.TriggerScheduled ||
			!d.NextAttemptAt.Equal(f.now.Truncate(time.Microsecond)) || !d.CreatedAt.Equal(d.NextAttemptAt) {
			t.Fatalf("new delivery %+v", d)
		}
	}

	// The paused endpoint's deliveries wait: a claim takes the others only.
	claimed := f.claim(100)
	if len(claimed) != 6 || slices.ContainsFunc(claimed, func(d *kapsel.Delivery) bool { return d.EndpointID == paused }) {
		t.Fatalf("claimed %d deliveries (paused endpoint's included?), want the 6 others", len(claimed))
	}
}

func TestFanOutIsFrozenAtInsert(t *testing.T) {
	t.Parallel()
	f := setup(t)
	a := f.endpoint(f.tenant, kapsel.Subscription{})
	ev := f.insert(event(f.tenant, "", "x", `{}`, ""))[0].Event
	f.endpoint(f.tenant, kapsel.Subscription{}) // created later: not fanned out to
	_, err := f.store.EndpointUpdate(f.ctx, &kapsel.EndpointUpdateParams{ID: a, Now: f.now, Update: func(e *kapsel.Endpoint) error {
		e.Subscription.EventTypes = []string{"other"}
		return nil
	}})
	must(t, err)
	if got := f.endpointsOf(ev.ID); !slices.Equal(got, []kapsel.EndpointID{a}) {
		t.Fatalf("deliveries to %v after later endpoint changes, want [%s]", got, a)
	}
}

func TestFanOutToNoEndpoint(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.endpoint(f.tenant, kapsel.Subscription{EventTypes: []string{"invoice.paid"}})
	res := f.insert(event(f.tenant, "", "order.created", `{}`, ""))
	if res[0].Err != nil || res[0].Event.Deliveries.Total != 0 {
		t.Fatalf("insert: %+v", res[0])
	}
	got, err := f.store.EventGet(f.ctx, &kapsel.EventGetParams{ID: res[0].Event.ID, TenantID: f.tenant})
	must(t, err)
	if got.Deliveries != (kapsel.DeliverySummary{}) {
		t.Fatalf("stored event without deliveries has summary %+v", got.Deliveries)
	}
}

func TestFanOutToNamedEndpoints(t *testing.T) {
	t.Parallel()
	f := setup(t)
	a := f.endpoint(f.tenant, kapsel.Subscription{EventTypes: []string{"never"}}) // filter ignored when named
	b := f.endpoint(f.tenant, kapsel.Subscription{})
	f.endpoint(f.tenant, kapsel.Subscription{}) // a subscriber not named: none
	foreign := f.endpoint(f.newTenant(), kapsel.Subscription{})
	deleted := f.endpoint(f.tenant, kapsel.Subscription{})
	must(t, f.store.EndpointDelete(f.ctx, &kapsel.EndpointDeleteParams{ID: deleted, Now: f.now}))

	named := event(f.tenant, "", "x", `{}`, "")
	named.EndpointIDs = []kapsel.EndpointID{a, b, a}
	withForeign := event(f.tenant, "", "x", `{}`, "k1")
	withForeign.EndpointIDs = []kapsel.EndpointID{b, foreign}
	withDeleted := event(f.tenant, "", "x", `{}`, "k2")
	withDeleted.EndpointIDs = []kapsel.EndpointID{deleted}
	withUnknown := event(f.tenant, "", "x", `{}`, "k3")
	withUnknown.EndpointIDs = []kapsel.EndpointID{kapsel.NewEndpointID()}
	res := f.insert(named, withForeign, withDeleted, withUnknown)

	if res[0].Err != nil || res[0].Event.Deliveries.Total != 2 {
		t.Fatalf("named row: %+v", res[0])
	}
	if got := f.endpointsOf(res[0].Event.ID); !slices.Equal(got, sorted(a, b)) {
		t.Fatalf("named row: deliveries to %v, want %v", got, sorted(a, b))
	}
	for i := 1; i < len(res); i++ {
		wantErr(t, res[i].Err, kapsel.ErrNotFound)
		if res[i].Event != nil {
			t.Fatalf("row %d failed but returned an event", i)
		}
	}
	events, err := f.store.EventList(f.ctx, &kapsel.EventListParams{TenantID: f.tenant})
	must(t, err)
	if len(events) != 1 || len(f.deliveries(kapsel.DeliveryListParams{})) != 2 {
		t.Fatalf("%d events stored, want only the named row's", len(events))
	}
	// A failed row took no idempotency key.
	again := event(f.tenant, "", "x", `{}`, "k1")
	if r := f.insert(again)[0]; r.Err != nil || r.Duplicate {
		t.Fatalf("key of a failed row: %+v", r)
	}
}

func TestInsertUnknownTenantWritesNothing(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.endpoint(f.tenant, kapsel.Subscription{})
	res, err := f.store.EventInsertMany(f.ctx, &kapsel.EventInsertManyParams{Now: f.now, Events: []*kapsel.EventInsertParams{
		event(f.tenant, "", "x", `{}`, ""),
		event(kapsel.NewTenantID(), "", "x", `{}`, ""),
	}})
	must(t, err)
	wantErr(t, res[1].Err, kapsel.ErrNotFound)
	if res[0].Err != nil || res[1].Event != nil {
		t.Fatalf("results %+v: want the known tenant's row written and the other refused", res)
	}
	if n := len(f.deliveries(kapsel.DeliveryListParams{})); n != 1 {
		t.Fatalf("%d deliveries written, want the known tenant's one", n)
	}
}
