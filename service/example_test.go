package service_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/service"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

// The examples run on the in-memory store and deliver to httptest servers on
// 127.0.0.1, which the SSRF guard refuses unless allowed. They print codes,
// counts, states and booleans only: ids, times and secrets differ per run.

// exampleConfig is the configuration of the examples: quiet logs and
// loopback destinations allowed.
func exampleConfig() *service.Config {
	return &service.Config{
		Logger:       slog.New(slog.DiscardHandler),
		AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	}
}

// start builds and starts a service on a new in-memory store, with a tenant.
func start(ctx context.Context) (*service.Service, *kapsel.Tenant) {
	svc, err := service.New(memstore.New(), exampleConfig())
	if err != nil {
		panic(err)
	}
	if err := svc.Start(ctx); err != nil {
		panic(err)
	}
	tenant, _, err := svc.CreateTenant(ctx, service.TenantCreate{Name: "acme"})
	if err != nil {
		panic(err)
	}
	return svc, tenant
}

// stop stops the service within a bounded time.
func stop(svc *service.Service) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := svc.Stop(ctx); err != nil {
		panic(err)
	}
}

// destination is an httptest server that answers 204 and hands each body it
// receives, with its webhook-id, to the returned channel.
func destination() (*httptest.Server, <-chan delivered) {
	got := make(chan delivered, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- delivered{webhookID: r.Header.Get("webhook-id"), body: string(body)}
		w.WriteHeader(http.StatusNoContent)
	}))
	return srv, got
}

type delivered struct {
	webhookID string
	body      string
}

// receive waits for the next delivery.
func receive(got <-chan delivered) delivered {
	select {
	case d := <-got:
		return d
	case <-time.After(10 * time.Second):
		panic("nothing delivered within 10 s")
	}
}

// waitDelivered polls an event until all of its deliveries are delivered.
func waitDelivered(ctx context.Context, svc *service.Service, tenant kapsel.TenantID, id kapsel.EventID) *kapsel.Event {
	deadline := time.Now().Add(10 * time.Second)
	for {
		ev, err := svc.GetEvent(ctx, tenant, id, false)
		if err != nil {
			panic(err)
		}
		if ev.Deliveries.Delivered == ev.Deliveries.Total {
			return ev
		}
		if time.Now().After(deadline) {
			panic(fmt.Sprintf("deliveries after 10 s: %+v", ev.Deliveries))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// A service is built from a store and a Config whose zero value works,
// started, and stopped. Stopping twice is safe.
func ExampleNew() {
	ctx := context.Background()
	svc, err := service.New(memstore.New(), &service.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println("New:", err)
		return
	}
	if err := svc.Start(ctx); err != nil {
		fmt.Println("Start:", err)
		return
	}
	fmt.Println("started")

	// Operations work once the service is built; ingest and sends need it
	// started.
	tenant, _, err := svc.CreateTenant(ctx, service.TenantCreate{Name: "acme"})
	fmt.Println("tenant:", tenant.Name, err)

	fmt.Println("stop:", svc.Stop(ctx))
	fmt.Println("stop again:", svc.Stop(ctx))
	fmt.Println("start after stop fails:", svc.Start(ctx) != nil)
	// Output:
	// started
	// tenant: acme <nil>
	// stop: <nil>
	// stop again: <nil>
	// start after stop fails: true
}

// A tenant's API key is returned once; only its hash is stored. The key
// authenticates the tenant until it is rotated.
func ExampleService_CreateTenant() {
	ctx := context.Background()
	svc, err := service.New(memstore.New(), &service.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	defer stop(svc)

	rate, burst := 100.0, 20
	tenant, apiKey, err := svc.CreateTenant(ctx, service.TenantCreate{Name: "  acme  ", RateLimit: &rate, RateBurst: &burst})
	if err != nil {
		panic(err)
	}
	fmt.Printf("name %q, rate %v/s, burst %d\n", tenant.Name, tenant.RateLimit, tenant.RateBurst)
	fmt.Println("key prefix:", strings.HasPrefix(apiKey, service.APIKeyPrefix))

	who, err := svc.AuthenticateTenant(ctx, apiKey)
	fmt.Println("authenticated as the tenant:", err == nil && who.ID == tenant.ID)

	_, newKey, err := svc.RotateTenantAPIKey(ctx, tenant.ID)
	if err != nil {
		panic(err)
	}
	_, err = svc.AuthenticateTenant(ctx, apiKey)
	fmt.Println("old key:", kapsel.CodeOf(err))
	_, err = svc.AuthenticateTenant(ctx, newKey)
	fmt.Println("new key:", err)

	_, _, err = svc.CreateTenant(ctx, service.TenantCreate{Name: " "})
	fmt.Println("no name:", kapsel.CodeOf(err))
	// Output:
	// name "acme", rate 100/s, burst 20
	// key prefix: true
	// authenticated as the tenant: true
	// old key: E1010
	// new key: <nil>
	// no name: E1009
}

// CreateEndpoint validates the destination with the same rules delivery
// applies: the scheme, credentials in the URL and the SSRF guard. Its errors
// carry a code, and the code its HTTP status.
func ExampleService_CreateEndpoint() {
	ctx := context.Background()
	// The zero Config: the SSRF guard refuses loopback and private addresses.
	svc, err := service.New(memstore.New(), &service.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	defer stop(svc)
	tenant, _, err := svc.CreateTenant(ctx, service.TenantCreate{Name: "acme"})
	if err != nil {
		panic(err)
	}

	for _, url := range []string{
		"ftp://files.example.com/hooks",
		"https://user:pass@example.com/hooks",
		"http://127.0.0.1:8080/hooks",
	} {
		_, _, err := svc.CreateEndpoint(ctx, tenant.ID, service.EndpointCreate{URL: url})
		code := kapsel.CodeOf(err)
		fmt.Println(code, code.Info().Status, url)
	}
	_, _, err = svc.CreateEndpoint(ctx, tenant.ID, service.EndpointCreate{
		URL: "https://example.com/hooks", Headers: map[string]string{"Host": "evil.example"},
	})
	fmt.Println(kapsel.CodeOf(err), "Host header")

	ep, secret, err := svc.CreateEndpoint(ctx, tenant.ID, service.EndpointCreate{
		Name: "orders", URL: "https://example.com/hooks",
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("created:", ep.Name, ep.State, ep.RetryPolicy.MaxAttempts, "attempts")
	fmt.Println("signing secret returned once:", strings.HasPrefix(secret, "whsec_"))
	// Output:
	// E1007 422 ftp://files.example.com/hooks
	// E1007 422 https://user:pass@example.com/hooks
	// E1007 422 http://127.0.0.1:8080/hooks
	// E1008 Host header
	// created: orders active 25 attempts
	// signing secret returned once: true
}

// Send stores an event the application produces itself, with one delivery
// to each endpoint subscribed to it, and returns once they are committed;
// the dispatcher delivers them at once. A repeated send with the same
// idempotency key returns the first event.
func ExampleService_Send() {
	ctx := context.Background()
	svc, tenant := start(ctx)
	defer stop(svc)
	dest, got := destination()
	defer dest.Close()
	for _, types := range [][]string{{"order.*"}, {"invoice.*"}} {
		if _, _, err := svc.CreateEndpoint(ctx, tenant.ID, service.EndpointCreate{URL: dest.URL, EventTypes: types}); err != nil {
			panic(err)
		}
	}

	in := service.Send{Type: "order.placed", Payload: map[string]int{"order": 42}, IdempotencyKey: "order-42"}
	res, err := svc.Send(ctx, tenant.ID, in)
	if err != nil {
		panic(err)
	}
	fmt.Println("deliveries:", res.Deliveries)
	d := receive(got)
	fmt.Println("destination received:", d.body)
	fmt.Println("webhook-id is the event id:", d.webhookID == string(res.Event.ID))
	ev := waitDelivered(ctx, svc, tenant.ID, res.Event.ID)
	fmt.Printf("event: %+v\n", ev.Deliveries)

	again, err := svc.Send(ctx, tenant.ID, in)
	fmt.Println("again: duplicate", again.Duplicate, "same event", again.Event.ID == res.Event.ID, err)

	_, err = svc.Send(ctx, tenant.ID, service.Send{EndpointIDs: []kapsel.EndpointID{kapsel.NewEndpointID()}, Body: []byte(`{}`)})
	fmt.Println("unknown endpoint:", kapsel.CodeOf(err))
	// Output:
	// deliveries: 1
	// destination received: {"order":42}
	// webhook-id is the event id: true
	// event: {Total:1 Pending:0 Delivering:0 Delivered:1 Failed:0}
	// again: duplicate true same event true <nil>
	// unknown endpoint: E1011
}

// An event fans out to every endpoint subscribed to it: by type (exact or
// "prefix.*"), by source, by channel. With EndpointIDs, a send goes to
// exactly the endpoints it names.
func ExampleService_Send_fanOut() {
	ctx := context.Background()
	svc, tenant := start(ctx)
	defer stop(svc)
	create := func(in service.EndpointCreate) kapsel.EndpointID {
		in.URL = "https://example.com/hooks"
		ep, _, err := svc.CreateEndpoint(ctx, tenant.ID, in)
		if err != nil {
			panic(err)
		}
		// Paused: the deliveries wait, so the example does not depend on
		// the network.
		if _, err := svc.PauseEndpoint(ctx, tenant.ID, ep.ID); err != nil {
			panic(err)
		}
		return ep.ID
	}
	create(service.EndpointCreate{Name: "everything"})
	create(service.EndpointCreate{Name: "invoices", EventTypes: []string{"invoice.*"}})
	create(service.EndpointCreate{Name: "eu invoices", EventTypes: []string{"invoice.*"}, Channels: []string{"eu"}})
	audit := create(service.EndpointCreate{Name: "audit", EventTypes: []string{"audit.entry"}})

	for _, in := range []service.Send{
		{Type: "invoice.paid", Channels: []string{"eu"}, Payload: 1},
		{Type: "invoice.paid", Channels: []string{"us"}, Payload: 2},
		{Type: "user.created", Payload: 3},
		{Type: "invoice.paid", EndpointIDs: []kapsel.EndpointID{audit}, Payload: 4},
	} {
		res, err := svc.Send(ctx, tenant.ID, in)
		if err != nil {
			panic(err)
		}
		fmt.Println(in.Type, in.Channels, in.EndpointIDs != nil, "→", res.Deliveries, "deliveries")
	}
	// Output:
	// invoice.paid [eu] false → 3 deliveries
	// invoice.paid [us] false → 2 deliveries
	// user.created [] false → 1 deliveries
	// invoice.paid [] true → 1 deliveries
}

// A source is where a provider sends its webhooks: its ingest URL, checked
// by its verifier. The verifier is validated with the rules ingest applies;
// its secrets are never shown again.
func ExampleService_CreateSource() {
	ctx := context.Background()
	svc, tenant := start(ctx)
	defer stop(svc)

	_, err := svc.CreateSource(ctx, tenant.ID, service.SourceCreate{Verifier: kapsel.VerifierConfig{Scheme: "github"}})
	fmt.Println("github without a secret:", kapsel.CodeOf(err))
	_, err = svc.CreateSource(ctx, tenant.ID, service.SourceCreate{EventTypeFrom: "body:type"})
	fmt.Println("a bad field reference:", kapsel.CodeOf(err))

	src, err := svc.CreateSource(ctx, tenant.ID, service.SourceCreate{
		Name:          "stripe",
		Verifier:      kapsel.VerifierConfig{Scheme: kapsel.SchemeStripe, Secrets: []string{"whsec_stripe_secret"}},
		EventTypeFrom: "json:/type",
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(src.Name, src.State, src.Verifier.Scheme, strings.HasPrefix(service.IngestURL(src.ID), "/ingest/src_"))

	src, err = svc.PauseSource(ctx, tenant.ID, src.ID)
	fmt.Println("paused:", src.State, err)
	// Output:
	// github without a secret: E1009
	// a bad field reference: E1009
	// stripe active stripe true
	// paused: paused <nil>
}

// A paused endpoint keeps getting its deliveries; they wait, and are
// delivered once it is resumed.
func ExampleService_PauseEndpoint() {
	ctx := context.Background()
	svc, tenant := start(ctx)
	defer stop(svc)
	dest, got := destination()
	defer dest.Close()
	ep, _, err := svc.CreateEndpoint(ctx, tenant.ID, service.EndpointCreate{URL: dest.URL})
	if err != nil {
		panic(err)
	}

	ep, err = svc.PauseEndpoint(ctx, tenant.ID, ep.ID)
	if err != nil {
		panic(err)
	}
	fmt.Println("endpoint:", ep.State)
	res, err := svc.Send(ctx, tenant.ID, service.Send{Body: []byte(`{"n":1}`)})
	if err != nil {
		panic(err)
	}
	ev, _ := svc.GetEvent(ctx, tenant.ID, res.Event.ID, false)
	fmt.Println("pending while paused:", ev.Deliveries.Pending)

	ep, err = svc.ResumeEndpoint(ctx, tenant.ID, ep.ID)
	if err != nil {
		panic(err)
	}
	fmt.Println("endpoint:", ep.State)
	fmt.Println("delivered:", receive(got).body)
	fmt.Println("delivered deliveries:", waitDelivered(ctx, svc, tenant.ID, res.Event.ID).Deliveries.Delivered)
	// Output:
	// endpoint: paused
	// pending while paused: 1
	// endpoint: active
	// delivered: {"n":1}
	// delivered deliveries: 1
}

// ResumeEndpoint makes a paused (or disabled) endpoint active and resets its
// circuit breaker; another tenant cannot touch it.
func ExampleService_ResumeEndpoint() {
	ctx := context.Background()
	svc, tenant := start(ctx)
	defer stop(svc)
	ep, _, err := svc.CreateEndpoint(ctx, tenant.ID, service.EndpointCreate{URL: "https://example.com/hooks"})
	if err != nil {
		panic(err)
	}
	if _, err := svc.PauseEndpoint(ctx, tenant.ID, ep.ID); err != nil {
		panic(err)
	}

	other, _, err := svc.CreateTenant(ctx, service.TenantCreate{Name: "other"})
	if err != nil {
		panic(err)
	}
	_, err = svc.ResumeEndpoint(ctx, other.ID, ep.ID)
	fmt.Println("another tenant:", kapsel.CodeOf(err))

	ep, err = svc.ResumeEndpoint(ctx, tenant.ID, ep.ID)
	fmt.Println("owner:", ep.State, err)
	h, err := svc.EndpointHealth(ctx, tenant.ID, ep.ID)
	fmt.Println("breaker:", h.Breaker.Status, err)
	// Output:
	// another tenant: E1011
	// owner: active <nil>
	// breaker: closed <nil>
}

// Rotating a signing secret keeps the previous one signing during a grace
// period, so receivers can switch over; deliveries carry a signature for
// each secret still valid.
func ExampleService_RotateSigningSecret() {
	ctx := context.Background()
	svc, tenant := start(ctx)
	defer stop(svc)
	ep, first, err := svc.CreateEndpoint(ctx, tenant.ID, service.EndpointCreate{URL: "https://example.com/hooks"})
	if err != nil {
		panic(err)
	}

	grace := time.Hour
	second, expires, err := svc.RotateSigningSecret(ctx, tenant.ID, ep.ID, service.Rotation{Grace: &grace})
	if err != nil {
		panic(err)
	}
	ep, _ = svc.GetEndpoint(ctx, tenant.ID, ep.ID)
	fmt.Println("new secret differs:", second != first)
	fmt.Println("previous secret expires:", !expires.IsZero(), "signing secrets:", len(ep.SigningSecrets))
	fmt.Println("current secret first:", ep.SigningSecrets[0].Secret == second)

	none := time.Duration(0)
	_, expires, err = svc.RotateSigningSecret(ctx, tenant.ID, ep.ID, service.Rotation{Grace: &none})
	if err != nil {
		panic(err)
	}
	ep, _ = svc.GetEndpoint(ctx, tenant.ID, ep.ID)
	// The secret of the first rotation stops at once; the original one keeps
	// its grace period.
	fmt.Println("no grace: previous expires", !expires.IsZero(), "signing secrets:", len(ep.SigningSecrets))

	tooLong := service.MaxGracePeriod + time.Hour
	_, _, err = svc.RotateSigningSecret(ctx, tenant.ID, ep.ID, service.Rotation{Grace: &tooLong})
	fmt.Println("grace too long:", kapsel.CodeOf(err))
	// Output:
	// new secret differs: true
	// previous secret expires: true signing secrets: 2
	// current secret first: true
	// no grace: previous expires false signing secrets: 2
	// grace too long: E1009
}

// ListEvents pages through a tenant's events, oldest first, filtered by
// source and type; ListDeliveries through their deliveries, filtered by
// endpoint, event and status.
func ExampleService_ListEvents() {
	ctx := context.Background()
	svc, tenant := start(ctx)
	defer stop(svc)
	ep, _, err := svc.CreateEndpoint(ctx, tenant.ID, service.EndpointCreate{URL: "https://example.com/hooks"})
	if err != nil {
		panic(err)
	}
	// Paused, so the deliveries stay pending and the example does not
	// depend on delivery.
	if _, err := svc.PauseEndpoint(ctx, tenant.ID, ep.ID); err != nil {
		panic(err)
	}
	for n := range 3 {
		if _, err := svc.Send(ctx, tenant.ID, service.Send{Type: "order.placed", Payload: n}); err != nil {
			panic(err)
		}
	}

	f := service.EventFilter{Type: "order.placed"}
	f.Limit = 2
	for page := 1; ; page++ {
		p, err := svc.ListEvents(ctx, tenant.ID, f)
		if err != nil {
			panic(err)
		}
		fmt.Println("page", page, "events:", len(p.Data), "more:", p.HasMore)
		if !p.HasMore {
			break
		}
		f.Cursor = p.NextCursor
	}

	pending, _ := svc.ListDeliveries(ctx, tenant.ID, service.DeliveryFilter{EndpointID: ep.ID, Status: kapsel.DeliveryPending})
	fmt.Println("pending deliveries:", len(pending.Data))
	_, err = svc.ListDeliveries(ctx, tenant.ID, service.DeliveryFilter{Status: "lost"})
	fmt.Println("unknown status:", kapsel.CodeOf(err))
	// Output:
	// page 1 events: 2 more: true
	// page 2 events: 1 more: false
	// pending deliveries: 3
	// unknown status: E1009
}

// RetryEvent delivers each finished delivery of an event once more, with
// the same webhook-id so that the receiver can tell it is the same event;
// RetryDelivery does it for one.
func ExampleService_RetryEvent() {
	ctx := context.Background()
	svc, tenant := start(ctx)
	defer stop(svc)
	dest, got := destination()
	defer dest.Close()
	ep, _, err := svc.CreateEndpoint(ctx, tenant.ID, service.EndpointCreate{URL: dest.URL})
	if err != nil {
		panic(err)
	}
	res, err := svc.Send(ctx, tenant.ID, service.Send{Body: []byte(`{"n":1}`)})
	if err != nil {
		panic(err)
	}
	first := receive(got)
	waitDelivered(ctx, svc, tenant.ID, res.Event.ID)

	n, err := svc.RetryEvent(ctx, tenant.ID, res.Event.ID)
	fmt.Println("retried deliveries:", n, err)
	second := receive(got)
	fmt.Println("same webhook-id:", second.webhookID == first.webhookID)
	waitDelivered(ctx, svc, tenant.ID, res.Event.ID)
	attempts, _ := svc.ListAttempts(ctx, tenant.ID, res.Event.ID, service.AttemptListOptions{})
	fmt.Println("attempts:", len(attempts.Data))

	// Only finished deliveries can be retried.
	if _, err := svc.PauseEndpoint(ctx, tenant.ID, ep.ID); err != nil {
		panic(err)
	}
	pending, _ := svc.Send(ctx, tenant.ID, service.Send{Body: []byte(`{"n":2}`)})
	ds, _ := svc.ListDeliveries(ctx, tenant.ID, service.DeliveryFilter{EventID: pending.Event.ID})
	_, err = svc.RetryDelivery(ctx, tenant.ID, ds.Data[0].ID)
	fmt.Println("pending delivery:", kapsel.CodeOf(err))
	// Output:
	// retried deliveries: 1 <nil>
	// same webhook-id: true
	// attempts: 2
	// pending delivery: E1009
}

// BackfillEndpoint gives a new endpoint the deliveries of past events its
// filter matches, once each.
func ExampleService_BackfillEndpoint() {
	ctx := context.Background()
	svc, tenant := start(ctx)
	defer stop(svc)
	for _, typ := range []string{"invoice.paid", "invoice.refunded", "user.created"} {
		if _, err := svc.Send(ctx, tenant.ID, service.Send{Type: typ, Payload: typ}); err != nil {
			panic(err)
		}
	}
	ep, _, err := svc.CreateEndpoint(ctx, tenant.ID, service.EndpointCreate{URL: "https://example.com/hooks", EventTypes: []string{"invoice.*"}})
	if err != nil {
		panic(err)
	}
	if _, err := svc.PauseEndpoint(ctx, tenant.ID, ep.ID); err != nil {
		panic(err)
	}

	res, err := svc.BackfillEndpoint(ctx, tenant.ID, ep.ID, service.Backfill{})
	fmt.Println("created:", res.Created, "more:", res.More, err)
	res, err = svc.BackfillEndpoint(ctx, tenant.ID, ep.ID, service.Backfill{})
	fmt.Println("again:", res.Created, err)
	// Output:
	// created: 2 more: false <nil>
	// again: 0 <nil>
}

// Handler serves ingest (POST /ingest/{source_id}) and the management API
// (/v1/…) on the application's own mux.
func ExampleService_Handler() {
	ctx := context.Background()
	svc, tenant := start(ctx)
	defer stop(svc)
	dest, got := destination()
	defer dest.Close()
	src, err := svc.CreateSource(ctx, tenant.ID, service.SourceCreate{Name: "provider"})
	if err != nil {
		panic(err)
	}
	if _, _, err := svc.CreateEndpoint(ctx, tenant.ID, service.EndpointCreate{URL: dest.URL}); err != nil {
		panic(err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	mux.Handle("/", svc.Handler())
	app := httptest.NewServer(mux)
	defer app.Close()

	// A provider posts a webhook to the source's ingest URL.
	resp, err := http.Post(app.URL+service.IngestURL(src.ID), "application/json", strings.NewReader(`{"hello":"world"}`))
	if err != nil {
		panic(err)
	}
	_ = resp.Body.Close()
	fmt.Println("ingest:", resp.StatusCode)
	fmt.Println("delivered:", receive(got).body)

	// The management API needs a tenant's API key.
	resp, err = http.Get(app.URL + "/v1/endpoints")
	if err != nil {
		panic(err)
	}
	_ = resp.Body.Close()
	fmt.Println("management API without a key:", resp.StatusCode)
	// Output:
	// ingest: 202
	// delivered: {"hello":"world"}
	// management API without a key: 401
}

// UpdateEndpoint changes only the fields it sets, with CreateEndpoint's
// rules; a refused update changes nothing.
func ExampleService_UpdateEndpoint() {
	ctx := context.Background()
	svc, tenant := start(ctx)
	defer stop(svc)
	ep, _, err := svc.CreateEndpoint(ctx, tenant.ID, service.EndpointCreate{
		Name: "orders", URL: "https://example.com/hooks", Headers: map[string]string{"X-Team": "shop"},
	})
	if err != nil {
		panic(err)
	}

	name, attempts, timeout := "orders-v2", 5, 10*time.Second
	ep, err = svc.UpdateEndpoint(ctx, tenant.ID, ep.ID, service.EndpointUpdate{
		Name:        &name,
		RetryPolicy: &service.RetryPolicyUpdate{MaxAttempts: &attempts},
		Timeout:     &timeout,
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(ep.Name, ep.RetryPolicy.MaxAttempts, "attempts,", ep.Timeout, "timeout, header kept:", ep.Headers["X-Team"])

	bad := "ftp://example.com/hooks"
	_, err = svc.UpdateEndpoint(ctx, tenant.ID, ep.ID, service.EndpointUpdate{URL: &bad})
	fmt.Println("ftp URL:", kapsel.CodeOf(err))
	zero := 0
	_, err = svc.UpdateEndpoint(ctx, tenant.ID, ep.ID, service.EndpointUpdate{RetryPolicy: &service.RetryPolicyUpdate{MaxAttempts: &zero}})
	fmt.Println("no attempts:", kapsel.CodeOf(err))

	ep, _ = svc.GetEndpoint(ctx, tenant.ID, ep.ID)
	fmt.Println("unchanged:", ep.URL, ep.RetryPolicy.MaxAttempts)
	// Output:
	// orders-v2 5 attempts, 10s timeout, header kept: shop
	// ftp URL: E1007
	// no attempts: E1009
	// unchanged: https://example.com/hooks 5
}

// EndpointHealth reports an endpoint's state, breaker and recent attempts.
func ExampleService_EndpointHealth() {
	ctx := context.Background()
	svc, tenant := start(ctx)
	defer stop(svc)
	dest, got := destination()
	defer dest.Close()
	ep, _, err := svc.CreateEndpoint(ctx, tenant.ID, service.EndpointCreate{URL: dest.URL})
	if err != nil {
		panic(err)
	}
	res, err := svc.Send(ctx, tenant.ID, service.Send{Body: []byte(`{}`)})
	if err != nil {
		panic(err)
	}
	receive(got)
	waitDelivered(ctx, svc, tenant.ID, res.Event.ID)

	h, err := svc.EndpointHealth(ctx, tenant.ID, ep.ID)
	if err != nil {
		panic(err)
	}
	rate, ok := h.SuccessRate()
	fmt.Println(h.Endpoint.State, h.Breaker.Status, "attempts:", h.Attempts.Total, "success rate:", rate, ok)
	// Output:
	// active closed attempts: 1 success rate: 1 true
}
