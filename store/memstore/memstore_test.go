package memstore_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/store/memstore"
	"github.com/kapsel-dev/kapsel/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) kapsel.Store { return memstore.New() })
}

// The tests below cover memstore's own behaviour, beside the conformance
// suite.

// fixture is a store with one tenant, at a fixed time.
type fixture struct {
	t      *testing.T
	ctx    context.Context
	store  *memstore.Store
	tenant kapsel.TenantID
	now    time.Time
}

func setup(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: context.Background(), store: memstore.New(),
		now: time.Date(2026, 1, 1, 0, 0, 0, 123456000, time.UTC)}
	f.tenant = f.newTenant()
	return f
}

func (f *fixture) newTenant() kapsel.TenantID {
	f.t.Helper()
	tn, err := f.store.TenantInsert(f.ctx, &kapsel.TenantInsertParams{Name: "t", APIKeyHash: []byte(kapsel.NewTenantID()), Now: f.now})
	must(f.t, err)
	return tn.ID
}

func (f *fixture) source(tenant kapsel.TenantID) kapsel.SourceID {
	f.t.Helper()
	src, err := f.store.SourceInsert(f.ctx, &kapsel.SourceInsertParams{Source: &kapsel.Source{TenantID: tenant, Name: "s"}, Now: f.now})
	must(f.t, err)
	return src.ID
}

func (f *fixture) endpoint(tenant kapsel.TenantID, sub kapsel.Subscription) kapsel.EndpointID {
	f.t.Helper()
	ep, err := f.store.EndpointInsert(f.ctx, &kapsel.EndpointInsertParams{Endpoint: &kapsel.Endpoint{
		TenantID: tenant, Name: "e", URL: "https://example.com/hook", Subscription: sub}, Now: f.now})
	must(f.t, err)
	return ep.ID
}

// event describes an event to insert with a body and its hash.
func event(tenant kapsel.TenantID, source kapsel.SourceID, typ, body, key string) *kapsel.EventInsertParams {
	h := sha256.Sum256([]byte(body))
	return &kapsel.EventInsertParams{TenantID: tenant, SourceID: source, Type: typ, Body: []byte(body),
		ContentType: "application/json", IdempotencyKey: key, BodyHash: h[:]}
}

func (f *fixture) insert(events ...*kapsel.EventInsertParams) []kapsel.EventInsertResult {
	f.t.Helper()
	res, err := f.store.EventInsertMany(f.ctx, &kapsel.EventInsertManyParams{Events: events, Now: f.now})
	must(f.t, err)
	if len(res) != len(events) {
		f.t.Fatalf("%d results for %d events", len(res), len(events))
	}
	return res
}

func (f *fixture) deliveries(params kapsel.DeliveryListParams) []*kapsel.Delivery {
	f.t.Helper()
	list, err := f.store.DeliveryList(f.ctx, &params)
	must(f.t, err)
	return list
}

func (f *fixture) claim(limit int) []*kapsel.Delivery {
	f.t.Helper()
	list, err := f.store.DeliveryClaim(f.ctx, &kapsel.DeliveryClaimParams{Limit: limit, LeaseDuration: time.Minute, Now: f.now})
	must(f.t, err)
	return list
}

func (f *fixture) complete(d *kapsel.Delivery, status kapsel.DeliveryStatus, code int) error {
	f.t.Helper()
	errs, err := f.store.DeliveryComplete(f.ctx, &kapsel.DeliveryCompleteParams{
		Completions: []kapsel.DeliveryCompletion{{DeliveryID: d.ID, LeaseToken: d.LeaseToken, Status: status,
			NextAttemptAt: f.now.Add(time.Minute), LastError: "boom",
			Attempt: kapsel.Attempt{StatusCode: code, StartedAt: f.now, Duration: time.Millisecond}}},
		Now: f.now,
	})
	must(f.t, err)
	return errs[0]
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
}

func TestInsertClaimComplete(t *testing.T) {
	t.Parallel()
	f := setup(t)
	src := f.source(f.tenant)
	a := f.endpoint(f.tenant, kapsel.Subscription{})
	b := f.endpoint(f.tenant, kapsel.Subscription{})

	res := f.insert(event(f.tenant, src, "invoice.paid", `{"n":1}`, ""))
	if res[0].Err != nil || res[0].Duplicate {
		t.Fatalf("insert: %+v", res[0])
	}
	ev := res[0].Event
	if ev.SourceID != src || string(ev.Body) != `{"n":1}` || ev.Deliveries != (kapsel.DeliverySummary{Total: 2, Pending: 2}) {
		t.Fatalf("inserted event %+v", ev)
	}

	claimed := f.claim(10)
	if len(claimed) != 2 {
		t.Fatalf("claimed %d deliveries, want 2", len(claimed))
	}
	got := map[kapsel.EndpointID]*kapsel.Delivery{}
	for _, d := range claimed {
		if d.Event == nil || d.Event.ID != ev.ID || string(d.Event.Body) != `{"n":1}` || d.Status != kapsel.DeliveryDelivering || d.LeaseToken == "" {
			t.Fatalf("claimed %+v", d)
		}
		got[d.EndpointID] = d
	}
	if got[a] == nil || got[b] == nil {
		t.Fatalf("claimed deliveries to %v, want %s and %s", got, a, b)
	}
	if more := f.claim(10); len(more) != 0 {
		t.Fatalf("claimed %d leased deliveries again", len(more))
	}

	must(t, f.complete(got[a], kapsel.DeliveryDelivered, 200))
	must(t, f.complete(got[b], kapsel.DeliveryPending, 500))
	wantErr(t, f.complete(got[a], kapsel.DeliveryDelivered, 200), kapsel.ErrLeaseLost)

	e, err := f.store.EventGet(f.ctx, &kapsel.EventGetParams{ID: ev.ID, TenantID: f.tenant})
	must(t, err)
	if e.Deliveries != (kapsel.DeliverySummary{Total: 2, Pending: 1, Delivered: 1}) || e.Body != nil {
		t.Fatalf("event after completions: %+v", e)
	}
	da, err := f.store.DeliveryGet(f.ctx, &kapsel.DeliveryGetParams{ID: got[a].ID, TenantID: f.tenant})
	must(t, err)
	if da.Status != kapsel.DeliveryDelivered || da.Attempts != 1 || !da.DeliveredAt.Equal(f.now.Truncate(time.Microsecond)) || da.LeaseToken != "" || da.Event != nil {
		t.Fatalf("delivered delivery %+v", da)
	}
	byDelivery, err := f.store.AttemptList(f.ctx, &kapsel.AttemptListParams{DeliveryID: got[b].ID})
	must(t, err)
	if len(byDelivery) != 1 || byDelivery[0].DeliveryID != got[b].ID || byDelivery[0].EndpointID != b || byDelivery[0].Number != 1 {
		t.Fatalf("attempts of %s: %+v", got[b].ID, byDelivery)
	}
	byEvent, err := f.store.AttemptList(f.ctx, &kapsel.AttemptListParams{EventID: ev.ID})
	must(t, err)
	if len(byEvent) != 2 || byEvent[0].ID >= byEvent[1].ID {
		t.Fatalf("attempts of the event: %+v", byEvent)
	}
	_, err = f.store.AttemptList(f.ctx, &kapsel.AttemptListParams{EventID: ev.ID, DeliveryID: got[b].ID})
	wantErr(t, err, kapsel.ErrInvalid)
	_, err = f.store.AttemptList(f.ctx, &kapsel.AttemptListParams{DeliveryID: got[b].ID, TenantID: f.newTenant()})
	wantErr(t, err, kapsel.ErrNotFound)
}

func TestCopiesOut(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.endpoint(f.tenant, kapsel.Subscription{})
	in := event(f.tenant, "", "t", `{"n":1}`, "")
	in.Channels = []string{"c"}
	res := f.insert(in)
	in.Body[0], in.Channels[0] = 'X', "x"
	res[0].Event.Body[1], res[0].Event.Channels[0] = 'Y', "y"
	claimed := f.claim(1)
	claimed[0].Event.Body[2] = 'Z'
	e, err := f.store.EventGet(f.ctx, &kapsel.EventGetParams{ID: res[0].Event.ID, IncludeBody: true})
	must(t, err)
	if string(e.Body) != `{"n":1}` || e.Channels[0] != "c" {
		t.Fatalf("stored event changed through a caller's value: %q %v", e.Body, e.Channels)
	}
}
