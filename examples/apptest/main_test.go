package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/kapseltest"
	"github.com/kapsel-dev/kapsel/service"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

// fixture is a shop wired to a started service on the in-memory store,
// delivering to a fake destination.
type fixture struct {
	ctx      context.Context
	svc      *service.Service
	tenant   kapsel.TenantID
	dest     *kapseltest.Destination
	endpoint kapsel.EndpointID // the warehouse, subscribed to order.*
	shop     *Shop
}

// setup builds the shop on an in-memory Kapsel that delivers to a fake
// destination verifying the endpoint's signatures. Retries are a few
// milliseconds apart, and the dispatcher polls often enough to pick them up
// at once, so a test with retries takes milliseconds.
func setup(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	cfg := service.Config{
		// Kapsel's logs go to the test's output: shown when it fails or
		// with -v.
		Logger:       slog.New(slog.NewTextHandler(t.Output(), nil)),
		AllowedCIDRs: kapseltest.Loopback, // the fake destination is on 127.0.0.1
	}
	// A failed attempt is claimed again at the dispatcher's next poll after
	// its backoff, so a short poll makes short retries short.
	cfg.Delivery.PollInterval = 5 * time.Millisecond
	svc, err := service.New(memstore.New(), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := svc.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})

	tenant, _, err := svc.CreateTenant(ctx, service.TenantCreate{Name: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	dest := kapseltest.NewDestination(t)
	backoff := 2 * time.Millisecond
	ep, secret, err := svc.CreateEndpoint(ctx, tenant.ID, service.EndpointCreate{
		Name: "warehouse", URL: dest.URL + "/webhooks", EventTypes: []string{"order.*"},
		RetryPolicy: &service.RetryPolicyUpdate{InitialInterval: &backoff},
	})
	if err != nil {
		t.Fatal(err)
	}
	dest.VerifyWith(t, secret)
	return &fixture{ctx: ctx, svc: svc, tenant: tenant.ID, dest: dest, endpoint: ep.ID, shop: NewShop(svc, tenant.ID)}
}

func TestPlaceOrderSendsSignedWebhookUntilDelivered(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.dest.FailTimes(2, http.StatusServiceUnavailable)

	order := Order{ID: "1001", SKU: "kettle", Quantity: 2}
	id, err := f.shop.PlaceOrder(f.ctx, order)
	if err != nil {
		t.Fatalf("PlaceOrder: %v", err)
	}

	d := kapseltest.RequireDelivered(t, f.svc.Store(), id, f.endpoint, 10*time.Second)
	if d.Attempts != 3 {
		t.Fatalf("delivered after %d attempts, want 3 (two 503s, then 200)", d.Attempts)
	}
	reqs := f.dest.Requests()
	if len(reqs) != 3 {
		t.Fatalf("destination received %d requests, want 3", len(reqs))
	}
	for i, r := range reqs {
		if r.SignatureErr != nil {
			t.Fatalf("request %d: signature does not verify with the endpoint's secret: %v", i+1, r.SignatureErr)
		}
		if r.WebhookID != string(id) {
			t.Fatalf("request %d: webhook-id %q, want the event id %q on every attempt", i+1, r.WebhookID, id)
		}
		if r.Attempt != i+1 {
			t.Fatalf("request %d: X-Kapsel-Attempt %d", i+1, r.Attempt)
		}
		if r.Path != "/webhooks" || r.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("request %d: %s with Content-Type %q", i+1, r.Path, r.Header.Get("Content-Type"))
		}
		var got OrderPlaced
		if err := json.Unmarshal(r.Body, &got); err != nil || got != (OrderPlaced{Type: "order.placed", Order: order}) {
			t.Fatalf("request %d: body %s (%v), want order.placed for %+v", i+1, r.Body, err, order)
		}
	}

	attempts, err := f.svc.ListAttempts(f.ctx, f.tenant, id, service.AttemptListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var codes []int
	for _, a := range attempts.Data {
		codes = append(codes, a.StatusCode)
	}
	if len(codes) != 3 || codes[0] != 503 || codes[1] != 503 || codes[2] != 200 {
		t.Fatalf("attempt status codes %v, want [503 503 200]", codes)
	}
}

func TestPlaceOrderTwiceSendsOneWebhook(t *testing.T) {
	t.Parallel()
	f := setup(t)
	order := Order{ID: "1002", SKU: "mug", Quantity: 1}

	first, err := f.shop.PlaceOrder(f.ctx, order)
	if err != nil {
		t.Fatal(err)
	}
	again, err := f.shop.PlaceOrder(f.ctx, order)
	if err != nil {
		t.Fatal(err)
	}
	if again != first {
		t.Fatalf("placing order %s again sent event %s, want the first one, %s", order.ID, again, first)
	}
	kapseltest.RequireDelivered(t, f.svc.Store(), first, f.endpoint, 10*time.Second)
	if n := f.dest.Count(); n != 1 {
		t.Fatalf("destination received %d requests, want 1", n)
	}
}

// TestPlaceOrderReachesEverySubscriber: a second subscriber to order events
// gets each order too, with the same webhook-id; one subscribed to other
// events gets nothing.
func TestPlaceOrderReachesEverySubscriber(t *testing.T) {
	t.Parallel()
	f := setup(t)
	analytics := kapseltest.NewDestination(t)
	billing := kapseltest.NewDestination(t)
	var eps []kapsel.EndpointID
	for _, sub := range []struct {
		url   string
		types []string
	}{{analytics.URL, []string{"order.placed"}}, {billing.URL, []string{"invoice.*"}}} {
		ep, _, err := f.svc.CreateEndpoint(f.ctx, f.tenant, service.EndpointCreate{URL: sub.url, EventTypes: sub.types})
		if err != nil {
			t.Fatal(err)
		}
		eps = append(eps, ep.ID)
	}

	id, err := f.shop.PlaceOrder(f.ctx, Order{ID: "1004", SKU: "teapot", Quantity: 1})
	if err != nil {
		t.Fatal(err)
	}
	kapseltest.RequireAllDelivered(t, f.svc.Store(), id, 10*time.Second)
	for _, dest := range []*kapseltest.Destination{f.dest, analytics} {
		if reqs := dest.Requests(); len(reqs) != 1 || reqs[0].WebhookID != string(id) {
			t.Fatalf("a subscriber received %d requests, want 1 with webhook-id %s", len(reqs), id)
		}
	}
	ds, err := f.svc.ListDeliveries(f.ctx, f.tenant, service.DeliveryFilter{EndpointID: eps[1]})
	if err != nil || len(ds.Data) != 0 || billing.Count() != 0 {
		t.Fatalf("the endpoint subscribed to invoices got %d deliveries, %d requests (%v)", len(ds.Data), billing.Count(), err)
	}
}

func TestPlaceOrderRefusesAnEmptyOrder(t *testing.T) {
	t.Parallel()
	f := setup(t)
	if _, err := f.shop.PlaceOrder(f.ctx, Order{ID: "1003"}); err == nil {
		t.Fatal("PlaceOrder accepted an order with no quantity")
	}
	page, err := f.svc.ListEvents(f.ctx, f.tenant, service.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Data) != 0 {
		t.Fatalf("%d events stored for a refused order, want 0", len(page.Data))
	}
}

func TestRun(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	if err := run(context.Background(), &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if want := "subscriber verified and received order.placed: order 1001, 2 × kettle"; !strings.Contains(out.String(), want) {
		t.Fatalf("output lacks %q:\n%s", want, out.String())
	}
}
