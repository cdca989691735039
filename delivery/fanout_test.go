package delivery_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/delivery"
	"github.com/kapsel-dev/kapsel/kapseltest"
	"github.com/kapsel-dev/kapsel/store/memstore"
	"github.com/kapsel-dev/kapsel/store/sqlitestore"
)

// subscriber is an endpoint of a fan-out test with its own destination and
// signing secret.
type subscriber struct {
	ep     *kapsel.Endpoint
	dest   *kapseltest.Destination
	secret string
}

// newSubscriber creates an endpoint of the fixture's tenant with its own
// destination (which verifies signatures with the endpoint's own secret
// only) and subscription.
func (f *fixture) newSubscriber(name string, sub kapsel.Subscription) *subscriber {
	f.t.Helper()
	s := &subscriber{dest: kapseltest.NewDestination(f.t), secret: newSecret(f.t)}
	s.dest.VerifyWith(f.t, s.secret)
	ep, err := f.store.EndpointInsert(context.Background(), &kapsel.EndpointInsertParams{
		Endpoint: &kapsel.Endpoint{
			TenantID:       f.tenant.ID,
			Name:           name,
			URL:            s.dest.URL + "/" + name,
			SigningSecrets: []kapsel.SigningSecret{{Secret: s.secret}},
			RetryPolicy:    kapsel.DefaultRetryPolicy(),
			Timeout:        10 * time.Second,
			Subscription:   sub,
		},
		Now: f.clock.Now(),
	})
	if err != nil {
		f.t.Fatal(err)
	}
	s.ep = ep
	return s
}

// setupFanOut is a fixture whose tenant has no endpoint yet: the fan-out
// tests create their own subscribers.
func setupFanOut(t *testing.T, store testStore, edit func(*delivery.Config)) *fixture {
	t.Helper()
	f := setupOn(t, store, kapseltest.NewClock(time.Time{}), edit)
	if err := f.store.EndpointDelete(context.Background(), &kapsel.EndpointDeleteParams{ID: f.ep.ID, Now: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestFanOutEndToEnd(t *testing.T) {
	t.Parallel()
	testFanOutEndToEnd(t, memstore.New())
}

// TestFanOutEndToEndOnSQLite is TestFanOutEndToEnd on the embedded store.
func TestFanOutEndToEndOnSQLite(t *testing.T) {
	t.Parallel()
	s, err := sqlitestore.Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	testFanOutEndToEnd(t, s)
}

// testFanOutEndToEnd: events of one tenant fan out by the endpoints'
// filters. Three endpoints with different filters, each behind its own
// HTTP server and secret; each receives exactly the events it subscribed
// to — once each, signed with its own secret — and every endpoint that
// receives an event gets it under the same webhook-id, the event id. The
// attempts, hooks and deliveries agree.
func testFanOutEndToEnd(t *testing.T, store testStore) {
	var mu sync.Mutex
	hooked := map[kapsel.DeliveryID]kapsel.AttemptInfo{}
	f := setupFanOut(t, store, func(c *delivery.Config) {
		c.Hooks.OnAttempt = func(info kapsel.AttemptInfo) {
			mu.Lock()
			hooked[info.DeliveryID] = info
			mu.Unlock()
		}
	})
	invoices := f.newSubscriber("invoices", kapsel.Subscription{EventTypes: []string{"invoice.*"}})
	euPaid := f.newSubscriber("eu-paid", kapsel.Subscription{EventTypes: []string{"invoice.paid"}, Channels: []string{"eu"}})
	everything := f.newSubscriber("everything", kapsel.Subscription{})
	subs := []*subscriber{invoices, euPaid, everything}

	events := []struct {
		typ      string
		channels []string
		want     []*subscriber
	}{
		{"invoice.paid", []string{"eu"}, []*subscriber{invoices, euPaid, everything}},
		{"invoice.paid", []string{"us"}, []*subscriber{invoices, everything}},
		{"invoice.created", []string{"eu"}, []*subscriber{invoices, everything}},
		{"order.placed", nil, []*subscriber{everything}},
		{"", nil, []*subscriber{everything}},
	}
	want := map[*subscriber][]string{} // webhook-ids each destination must receive
	var all []*kapsel.Event
	for i, e := range events {
		ev := f.insertEvent(&kapsel.EventInsertParams{
			TenantID: f.tenant.ID, Type: e.typ, Channels: e.channels,
			Body: []byte(`{"n":` + string(rune('0'+i)) + `}`), ContentType: "application/json",
		})
		if ev.Deliveries.Total != len(e.want) {
			t.Fatalf("event %d (%s %v) fanned out to %d endpoints, want %d", i, e.typ, e.channels, ev.Deliveries.Total, len(e.want))
		}
		for _, s := range e.want {
			want[s] = append(want[s], string(ev.ID))
		}
		all = append(all, ev)
	}

	for _, ev := range all {
		kapseltest.RequireAllDelivered(t, f.store, ev.ID, waitLong)
	}
	for _, s := range subs {
		reqs := s.dest.Requests()
		var got []string
		for _, r := range reqs {
			got = append(got, r.WebhookID)
			if r.SignatureErr != nil {
				t.Errorf("%s: request for %s does not verify with the endpoint's own secret: %v", s.ep.Name, r.WebhookID, r.SignatureErr)
			}
			if r.Path != "/"+s.ep.Name || r.Attempt != 1 {
				t.Errorf("%s: request to %s, attempt %d", s.ep.Name, r.Path, r.Attempt)
			}
		}
		slices.Sort(got)
		w := slices.Clone(want[s])
		slices.Sort(w)
		if !slices.Equal(got, w) {
			t.Errorf("%s received webhook-ids %v, want exactly %v", s.ep.Name, got, w)
		}
	}

	// The first event reached all three: the same body and event type to
	// each, and one delivery, one attempt and one hook per endpoint.
	first := all[0]
	for _, s := range subs {
		var req *kapseltest.Request
		for _, r := range s.dest.Requests() {
			if r.WebhookID == string(first.ID) {
				req = &r
			}
		}
		if req == nil || string(req.Body) != `{"n":0}` || req.Header.Get(delivery.HeaderEventType) != "invoice.paid" {
			t.Fatalf("%s: the first event arrived as %+v", s.ep.Name, req)
		}
		dl := f.deliveryTo(first.ID, s.ep.ID)
		as := f.attemptsOf(dl.ID)
		if dl.Status != kapsel.DeliveryDelivered || dl.Attempts != 1 || len(as) != 1 ||
			as[0].EventID != first.ID || as[0].EndpointID != s.ep.ID || as[0].DeliveryID != dl.ID {
			t.Fatalf("%s: delivery %+v with attempts %+v", s.ep.Name, dl, as)
		}
		mu.Lock()
		info, ok := hooked[dl.ID]
		mu.Unlock()
		if !ok || info.EventID != first.ID || info.EndpointID != s.ep.ID || info.EventType != "invoice.paid" ||
			info.Outcome != kapsel.OutcomeDelivered {
			t.Fatalf("%s: OnAttempt %+v", s.ep.Name, info)
		}
	}
	ev, err := f.store.EventGet(context.Background(), &kapsel.EventGetParams{ID: first.ID})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Deliveries != (kapsel.DeliverySummary{Total: 3, Delivered: 3}) {
		t.Fatalf("the first event's summary %+v, want 3 delivered", ev.Deliveries)
	}
}

// TestFanOutOneEndpointFailingDoesNotHoldBackAnother: one event to two
// endpoints; one destination answers 500 every time, the other 200. The
// healthy endpoint's delivery is delivered at once; the failing one's is
// retried on its own schedule, with its own attempt numbers, and fails on
// its own when its retries are spent — never touching the other.
func TestFanOutOneEndpointFailingDoesNotHoldBackAnother(t *testing.T) {
	t.Parallel()
	f := setupFanOut(t, memstore.New(), nil)
	good := f.newSubscriber("good", kapsel.Subscription{})
	bad := f.newSubscriber("bad", kapsel.Subscription{})
	bad.dest.SetDefault(kapseltest.Response{Status: 500})
	if _, err := f.store.EndpointUpdate(context.Background(), &kapsel.EndpointUpdateParams{
		ID: bad.ep.ID, Now: f.clock.Now(),
		Update: func(e *kapsel.Endpoint) error {
			e.RetryPolicy.MaxAttempts = 3
			return nil
		},
	}); err != nil {
		t.Fatal(err)
	}
	ev := f.insertEvent(&kapsel.EventInsertParams{TenantID: f.tenant.ID, Type: "invoice.paid", Body: []byte(`{}`)})
	goodDl, badDl := f.deliveryTo(ev.ID, good.ep.ID), f.deliveryTo(ev.ID, bad.ep.ID)

	f.requireDelivered(goodDl)
	first := f.waitAttempts(badDl, 1)
	if first.Status != kapsel.DeliveryPending || first.LastError == "" {
		t.Fatalf("the failing endpoint's delivery after one attempt: %+v", first)
	}
	for n := 2; n <= 3; n++ {
		next := f.delivery(badDl.ID).NextAttemptAt
		f.advanceUntil(next, func() bool { return f.delivery(badDl.ID).Attempts >= n })
		f.waitAttempts(badDl, n)
	}
	failed := kapseltest.RequireStatus(t, f.store, ev.ID, bad.ep.ID, kapsel.DeliveryFailed, waitLong)
	if failed.Attempts != 3 {
		t.Fatalf("failed after %d attempts, want 3", failed.Attempts)
	}
	reqs := bad.dest.Requests()
	if len(reqs) != 3 {
		t.Fatalf("the failing destination got %d requests, want 3", len(reqs))
	}
	for i, r := range reqs {
		if r.Attempt != i+1 || r.WebhookID != string(ev.ID) {
			t.Fatalf("failing destination request %d: attempt %d webhook-id %s", i+1, r.Attempt, r.WebhookID)
		}
	}
	// The healthy endpoint got the event exactly once, whatever the other did.
	if n := good.dest.Count(); n != 1 {
		t.Fatalf("the healthy destination got %d requests, want 1", n)
	}
	if got := f.delivery(goodDl.ID); got.Status != kapsel.DeliveryDelivered || got.Attempts != 1 {
		t.Fatalf("the healthy delivery: %s after %d attempts", got.Status, got.Attempts)
	}
	got, err := f.store.EventGet(context.Background(), &kapsel.EventGetParams{ID: ev.ID})
	if err != nil {
		t.Fatal(err)
	}
	if got.Deliveries != (kapsel.DeliverySummary{Total: 2, Delivered: 1, Failed: 1}) {
		t.Fatalf("event summary %+v, want one delivered and one failed", got.Deliveries)
	}
}

// endpointBreakers is a breaker that is open for the endpoints in open and
// closed for the rest.
type endpointBreakers struct {
	mu      sync.Mutex
	open    map[kapsel.EndpointID]time.Time // open until
	allowed []kapsel.EndpointID
}

func (b *endpointBreakers) Allow(_ context.Context, ep kapsel.EndpointID, now time.Time) (kapsel.BreakerPermit, time.Time, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if until, ok := b.open[ep]; ok && now.Before(until) {
		return kapsel.BreakerPermit{}, until, nil
	}
	b.allowed = append(b.allowed, ep)
	return kapsel.BreakerPermit{Allowed: true}, time.Time{}, nil
}

func (b *endpointBreakers) Record(context.Context, kapsel.EndpointID, kapsel.BreakerPermit, bool, time.Time) error {
	return nil
}

// TestFanOutBreakerOpenForOneEndpoint: one event to two endpoints, one of
// whose breaker is open. The other's delivery is made at once; the open
// one's is released to the breaker's probe time without an attempt (no
// attempt spent, nothing sent), then made once the breaker lets it.
func TestFanOutBreakerOpenForOneEndpoint(t *testing.T) {
	t.Parallel()
	until := time.Date(2026, 1, 1, 0, 10, 0, 0, time.UTC)
	b := &endpointBreakers{open: map[kapsel.EndpointID]time.Time{}}
	f := setupFanOut(t, memstore.New(), func(c *delivery.Config) { c.Breakers = b })
	healthy := f.newSubscriber("healthy", kapsel.Subscription{})
	tripped := f.newSubscriber("tripped", kapsel.Subscription{})
	b.mu.Lock()
	b.open[tripped.ep.ID] = until
	b.mu.Unlock()

	ev := f.insertEvent(&kapsel.EventInsertParams{TenantID: f.tenant.ID, Body: []byte(`{}`)})
	f.requireDelivered(f.deliveryTo(ev.ID, healthy.ep.ID))
	held := f.waitFor(f.deliveryTo(ev.ID, tripped.ep.ID), func(d *kapsel.Delivery) bool {
		return d.Status == kapsel.DeliveryPending && d.NextAttemptAt.Equal(until)
	})
	if held.Attempts != 0 || tripped.dest.Count() != 0 {
		t.Fatalf("behind an open breaker: %d attempts, %d requests; want none", held.Attempts, tripped.dest.Count())
	}
	if healthy.dest.Count() != 1 {
		t.Fatalf("the healthy destination got %d requests, want 1", healthy.dest.Count())
	}

	f.advanceUntil(until, func() bool { return tripped.dest.Count() > 0 })
	got := f.requireDelivered(held)
	if got.Attempts != 1 {
		t.Fatalf("delivered after %d attempts, want 1 (the refusal spent none)", got.Attempts)
	}
	if r := tripped.dest.Requests()[0]; r.WebhookID != string(ev.ID) || r.Attempt != 1 {
		t.Fatalf("after the breaker: webhook-id %s attempt %d", r.WebhookID, r.Attempt)
	}
}

// TestMaxAgeCountsFromTheDelivery: a delivery backfilled long after its
// event was stored gets the whole MaxAge from its own creation, not from
// the event's: a failure is retried, not failed for age.
func TestMaxAgeCountsFromTheDelivery(t *testing.T) {
	t.Parallel()
	f := setupFanOut(t, memstore.New(), nil)
	ev := f.insertEvent(&kapsel.EventInsertParams{TenantID: f.tenant.ID, Body: []byte(`{}`)})
	if ev.Deliveries.Total != 0 {
		t.Fatalf("an event of a tenant without endpoints has %d deliveries", ev.Deliveries.Total)
	}
	f.clock.Advance(kapsel.DefaultRetryPolicy().MaxAge + time.Hour) // the event is older than MaxAge
	late := f.newSubscriber("late", kapsel.Subscription{})
	late.dest.FailTimes(1, 500)
	res, err := f.store.DeliveryBackfill(context.Background(), &kapsel.DeliveryBackfillParams{
		TenantID: f.tenant.ID, EndpointID: late.ep.ID, Now: f.clock.Now()})
	if err != nil || res.Created != 1 {
		t.Fatalf("backfill: %+v, %v", res, err)
	}
	f.d.Wake()
	dl := f.deliveryTo(ev.ID, late.ep.ID)
	first := f.waitAttempts(dl, 1)
	if first.Status != kapsel.DeliveryPending {
		t.Fatalf("after a 500, the backfilled delivery is %s (last error %q), want pending: max age counts from %s, not from the event's %s",
			first.Status, first.LastError, dl.CreatedAt, ev.CreatedAt)
	}
	f.advanceUntil(first.NextAttemptAt, func() bool { return f.delivery(dl.ID).Attempts >= 2 })
	got := f.requireDelivered(dl)
	if as := f.attemptsOf(dl.ID); len(as) != 2 || as[0].Trigger != kapsel.TriggerManual {
		t.Fatalf("attempts %+v; want two, the first manual (a backfill)", as)
	}
	if got.Attempts != 2 {
		t.Fatalf("delivered after %d attempts, want 2", got.Attempts)
	}
}
