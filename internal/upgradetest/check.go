package upgradetest

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// Check asserts, through s, that the upgraded store holds every row of f
// with its values, the new columns at their defaults (no event type or
// channels, endpoints subscribed to everything); then that a claim takes
// exactly the due events of claimable endpoints, that events held for a
// blocked endpoint are released when it is unblocked, that an old
// idempotency key still deduplicates, and that a new event is stored and
// listed. It changes s.
func Check(t *testing.T, s kapsel.Store, f *Fixture) {
	t.Helper()
	checkRows(t, s, f)
	checkClaims(t, s, f)
	checkInserts(t, s, f)
}

// checkRows reads every row back: the same values, and nothing more.
func checkRows(t *testing.T, s kapsel.Store, f *Fixture) {
	t.Helper()
	ctx := t.Context()
	for _, want := range f.Tenants {
		got, err := s.TenantGet(ctx, &kapsel.TenantGetParams{ID: want.ID})
		requireEqual(t, "tenant", got, err, want)
		got, err = s.TenantGetByAPIKey(ctx, &kapsel.TenantGetByAPIKeyParams{APIKeyHash: want.APIKeyHash})
		requireEqual(t, "tenant by API key", got, err, want)
	}

	live := map[kapsel.TenantID][]kapsel.EndpointID{}
	for _, want := range f.Endpoints {
		got, err := s.EndpointGet(ctx, &kapsel.EndpointGetParams{ID: want.ID})
		if _, deleted := f.DeletedAt[want.ID]; deleted {
			if !errors.Is(err, kapsel.ErrNotFound) {
				t.Fatalf("EndpointGet of the deleted endpoint = %v, %v; want ErrNotFound", got, err)
			}
			continue
		}
		requireEqual(t, "endpoint", got, err, want) // want has an empty Subscription
		live[want.TenantID] = append(live[want.TenantID], want.ID)
	}
	for tenant, want := range live {
		got, err := s.EndpointList(ctx, &kapsel.EndpointListParams{TenantID: tenant, Limit: kapsel.MaxPageLimit})
		requireEqual(t, "endpoint list", ids(got, func(e *kapsel.Endpoint) kapsel.EndpointID { return e.ID }), err, sorted(want))
	}

	byTenant := map[kapsel.TenantID][]kapsel.EventID{}
	for _, want := range f.Events {
		got, err := s.EventGet(ctx, &kapsel.EventGetParams{ID: want.ID, IncludeBody: true})
		requireEqual(t, "event", got, err, want) // want has no Type and no Channels
		byTenant[want.TenantID] = append(byTenant[want.TenantID], want.ID)
	}
	for tenant, want := range byTenant {
		got, err := s.EventList(ctx, &kapsel.EventListParams{TenantID: tenant, Limit: kapsel.MaxPageLimit})
		requireEqual(t, "event list", ids(got, func(e *kapsel.Event) kapsel.EventID { return e.ID }), err, sorted(want))
	}

	attempts := map[kapsel.EventID][]*kapsel.Attempt{}
	for _, a := range f.Attempts {
		attempts[a.EventID] = append(attempts[a.EventID], a)
	}
	if len(attempts) < 3 {
		t.Fatalf("the fixture has attempts of %d events, want several", len(attempts))
	}
	for _, e := range f.Events {
		got, err := s.AttemptList(ctx, &kapsel.AttemptListParams{EventID: e.ID, TenantID: e.TenantID})
		requireEqual(t, "attempts of "+f.label(e.ID), got, err, attempts[e.ID])
	}

	for _, want := range f.Breakers {
		got, err := s.BreakerGet(ctx, &kapsel.BreakerGetParams{EndpointID: want.EndpointID})
		requireEqual(t, "breaker", got, err, want)
	}
}

// checkClaims claims at f.Now: exactly the due pending events and expired
// leases of active endpoints whose breaker lets them through. The due
// events of blocked endpoints stay (held, on a store that holds), and are
// claimed once their endpoint is active again or its breaker reset.
func checkClaims(t *testing.T, s kapsel.Store, f *Fixture) {
	t.Helper()
	ctx := t.Context()
	claim := func() []string {
		t.Helper()
		got, err := s.EventClaim(ctx, &kapsel.EventClaimParams{Limit: 100, LeaseDuration: time.Minute, Now: f.Now})
		if err != nil {
			t.Fatalf("EventClaim: %v", err)
		}
		var labels []string
		for _, e := range got {
			labels = append(labels, f.label(e.ID))
			want := f.ev[f.label(e.ID)]
			if e.Status != kapsel.EventDelivering || e.LeaseToken == "" || e.LeaseToken == want.LeaseToken ||
				string(e.Body) != string(want.Body) || e.Attempts != want.Attempts {
				t.Fatalf("claimed %+v, want %s leased anew with its body and attempts", e, f.label(e.ID))
			}
		}
		slices.Sort(labels)
		return labels
	}
	if got, want := claim(), []string{"closed", "due", "expired", "half-open", "other"}; !slices.Equal(got, want) {
		t.Fatalf("the first claim after the upgrade took %v, want %v", got, want)
	}

	// The expired lease of the paused endpoint was given back, unattempted.
	got, err := s.EventGet(ctx, &kapsel.EventGetParams{ID: f.ev["expired-paused"].ID})
	if err != nil || got.Status != kapsel.EventPending || got.LeaseToken != "" || got.Attempts != 0 {
		t.Fatalf("the expired lease of a paused endpoint after a claim = %+v, %v; want pending, unleased", got, err)
	}

	if _, err := s.EndpointSetState(ctx, &kapsel.EndpointSetStateParams{ID: f.paused.ID, State: kapsel.EndpointActive, Now: f.Now}); err != nil {
		t.Fatal(err)
	}
	if err := s.BreakerDelete(ctx, &kapsel.BreakerDeleteParams{EndpointID: f.open.ID}); err != nil {
		t.Fatal(err)
	}
	if got, want := claim(), []string{"expired-paused", "open", "paused"}; !slices.Equal(got, want) {
		t.Fatalf("the claim after unblocking took %v, want %v", got, want)
	}
	if got := claim(); len(got) != 0 {
		t.Fatalf("a third claim took %v, want nothing (disabled and deleted endpoints stay blocked)", got)
	}
}

// checkInserts inserts after the upgrade: an old live key deduplicates (and
// refuses another body), an old expired key is free, and a new event with a
// type and channels is stored and listed by its type.
func checkInserts(t *testing.T, s kapsel.Store, f *Fixture) {
	t.Helper()
	ctx := t.Context()
	due, delivered, failed := f.ev["due"], f.ev["delivered"], f.ev["failed"]
	res, err := s.EventInsertMany(ctx, &kapsel.EventInsertManyParams{Now: f.Now, Events: []*kapsel.EventInsertParams{
		{EndpointID: due.EndpointID, IdempotencyKey: due.IdempotencyKey, Body: due.Body, BodyHash: due.BodyHash},
		{EndpointID: delivered.EndpointID, IdempotencyKey: delivered.IdempotencyKey, Body: []byte("other"), BodyHash: []byte("other hash")},
		{EndpointID: failed.EndpointID, IdempotencyKey: f.newKey, Body: failed.Body, BodyHash: failed.BodyHash},
	}})
	if err != nil {
		t.Fatalf("EventInsertMany: %v", err)
	}
	if !res[0].Duplicate || res[0].Err != nil || res[0].Event.ID != due.ID {
		t.Fatalf("retrying the key of an old event = %+v, want a duplicate of %s", res[0], due.ID)
	}
	if !errors.Is(res[1].Err, kapsel.ErrIdempotencyConflict) {
		t.Fatalf("reusing the key of an old event with another body = %+v, want ErrIdempotencyConflict", res[1])
	}
	if res[2].Duplicate || res[2].Err != nil || res[2].Event.ID == failed.ID {
		t.Fatalf("reusing an old expired key = %+v, want a new event", res[2])
	}

	res, err = s.EventInsertMany(ctx, &kapsel.EventInsertManyParams{Now: f.Now, Events: []*kapsel.EventInsertParams{{
		EndpointID: f.active.ID, Type: "invoice.paid", Channels: []string{"billing"}, Body: []byte(`{}`), BodyHash: []byte("h"),
	}}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("inserting a typed event after the upgrade: %v, %+v", err, res)
	}
	got, err := s.EventGet(ctx, &kapsel.EventGetParams{ID: res[0].Event.ID})
	if err != nil || got.Type != "invoice.paid" || !slices.Equal(got.Channels, []string{"billing"}) || got.TenantID != f.tenantA.ID {
		t.Fatalf("the typed event reads back as %+v, %v", got, err)
	}
	list, err := s.EventList(ctx, &kapsel.EventListParams{TenantID: f.tenantA.ID, Type: "invoice.paid"})
	if err != nil || len(list) != 1 || list[0].ID != got.ID {
		t.Fatalf("listing by type = %v, %v; want only %s", list, err, got.ID)
	}
	all, err := s.EventList(ctx, &kapsel.EventListParams{TenantID: f.tenantA.ID, Limit: kapsel.MaxPageLimit})
	if want := len(f.Events) - 1 + 2; err != nil || len(all) != want { // tenant B's event out, two new ones in
		t.Fatalf("tenant A lists %d events, %v; want %d", len(all), err, want)
	}
}

// label returns the fixture's name of an event.
func (f *Fixture) label(id kapsel.EventID) string {
	for label, e := range f.ev {
		if e.ID == id {
			return label
		}
	}
	return "unknown " + string(id)
}

// requireEqual fails t unless err is nil and got equals want, times
// compared in UTC (stores read them back in their own zone) and empty
// headers and response bodies as nil.
func requireEqual[T any](t *testing.T, what string, got T, err error, want T) {
	t.Helper()
	if err != nil {
		t.Fatalf("reading %s: %v", what, err)
	}
	if g, w := normalize(got), normalize(want); !reflect.DeepEqual(g, w) {
		t.Fatalf("%s after the upgrade:\n got %+v\nwant %+v", what, g, w)
	}
}

// normalize returns a copy of v with every time.Time in UTC and empty maps
// and slices nil, walking pointers, structs, slices and maps.
func normalize[T any](v T) T {
	return normalizeValue(reflect.ValueOf(&v).Elem()).Interface().(T)
}

func normalizeValue(v reflect.Value) reflect.Value {
	out := reflect.New(v.Type()).Elem()
	switch {
	case v.Type() == reflect.TypeFor[time.Time]():
		out.Set(reflect.ValueOf(v.Interface().(time.Time).UTC()))
	case v.Kind() == reflect.Pointer && !v.IsNil():
		p := reflect.New(v.Type().Elem())
		p.Elem().Set(normalizeValue(v.Elem()))
		out.Set(p)
	case v.Kind() == reflect.Struct:
		for i := range v.NumField() {
			out.Field(i).Set(normalizeValue(v.Field(i)))
		}
	case v.Kind() == reflect.Slice && v.Len() > 0:
		s := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			s.Index(i).Set(normalizeValue(v.Index(i)))
		}
		out.Set(s)
	case v.Kind() == reflect.Map && v.Len() > 0:
		m := reflect.MakeMapWithSize(v.Type(), v.Len())
		for _, k := range v.MapKeys() {
			m.SetMapIndex(k, normalizeValue(v.MapIndex(k)))
		}
		out.Set(m)
	case v.Kind() == reflect.Slice || v.Kind() == reflect.Map || v.Kind() == reflect.Pointer:
		// empty or nil: stays nil
	default:
		out.Set(v)
	}
	return out
}

func ids[T any, ID ~string](items []T, id func(T) ID) []ID {
	out := make([]ID, len(items))
	for i, it := range items {
		out[i] = id(it)
	}
	return out
}

func sorted[ID ~string](l []ID) []ID {
	l = slices.Clone(l)
	slices.Sort(l)
	return l
}
