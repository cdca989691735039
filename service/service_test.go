package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/breaker"
	"github.com/kapsel-dev/kapsel/kapseltest"
	"github.com/kapsel-dev/kapsel/service"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

// loopback lets the tests deliver to httptest servers on 127.0.0.1.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

type env struct {
	t     *testing.T
	ctx   context.Context
	store *memstore.Store
	svc   *service.Service
	srv   *httptest.Server
}

// newEnv builds a started service over a memstore, served on an httptest
// server, and stops both when the test ends.
func newEnv(t *testing.T, cfg service.Config) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), store: memstore.New()}
	if cfg.AllowedCIDRs == nil {
		cfg.AllowedCIDRs = loopback
	}
	svc, err := service.New(e.store, &cfg)
	if err != nil {
		t.Fatalf("service.New: %v", err)
	}
	if err := svc.Start(e.ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	e.svc = svc
	e.srv = httptest.NewServer(svc.Handler())
	t.Cleanup(func() {
		e.srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := svc.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return e
}

func (e *env) tenant() *kapsel.Tenant {
	e.t.Helper()
	ten, _, err := e.svc.CreateTenant(e.ctx, service.TenantCreate{Name: "acme"})
	if err != nil {
		e.t.Fatalf("CreateTenant: %v", err)
	}
	return ten
}

// endpoint creates an endpoint delivering to url, subscribed to every
// event of the tenant.
func (e *env) endpoint(ten *kapsel.Tenant, url string) *kapsel.Endpoint {
	e.t.Helper()
	ep, _, err := e.svc.CreateEndpoint(e.ctx, ten.ID, service.EndpointCreate{Name: "dest", URL: url})
	if err != nil {
		e.t.Fatalf("CreateEndpoint: %v", err)
	}
	return ep
}

// source creates a source with no verifier.
func (e *env) source(ten *kapsel.Tenant) *kapsel.Source {
	e.t.Helper()
	src, err := e.svc.CreateSource(e.ctx, ten.ID, service.SourceCreate{Name: "provider"})
	if err != nil {
		e.t.Fatalf("CreateSource: %v", err)
	}
	return src
}

// post sends body to path on the service's handler and returns the status
// and the answer.
func (e *env) post(path string, body []byte) (int, []byte) {
	e.t.Helper()
	resp, err := http.Post(e.srv.URL+path, "application/json", bytes.NewReader(body))
	if err != nil {
		e.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func requireCode(t *testing.T, err error, code kapsel.Code, what string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want %s", what, code)
	}
	if got := kapsel.CodeOf(err); got != code {
		t.Fatalf("%s: code %s (%v), want %s", what, got, err, code)
	}
}

func TestNewRefusesANilStoreAndBadConfig(t *testing.T) {
	t.Parallel()
	if _, err := service.New(nil, &service.Config{}); !errors.Is(err, kapsel.ErrInvalid) {
		t.Fatalf("New(nil store) = %v, want ErrInvalid", err)
	}
	if _, err := service.New(memstore.New(), &service.Config{Workers: -1}); err == nil {
		t.Fatal("New with Workers -1 succeeded")
	}
	if _, err := service.New(memstore.New(), &service.Config{Breaker: breaker.Config{FailureRate: 2}}); !errors.Is(err, kapsel.ErrInvalid) ||
		!strings.Contains(err.Error(), "FailureRate") {
		t.Fatalf("New with an invalid breaker config = %v, want ErrInvalid naming FailureRate", err)
	}
	if _, err := service.New(memstore.New(), nil); err != nil {
		t.Fatalf("New with a nil config (the zero Config): %v", err)
	}
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, err := service.New(memstore.New(), &service.Config{})
	if err != nil {
		t.Fatalf("New with the zero Config: %v", err)
	}
	// Before Start, ingest answers 503 E3003: nothing is accepted that
	// would not be delivered.
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/ingest/src_01J0000000000000000000000", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("ingest before Start answered %d, want 503", resp.StatusCode)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := svc.Start(ctx); err == nil {
		t.Fatal("a second Start succeeded")
	}
	if err := svc.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := svc.Stop(ctx); err != nil {
		t.Fatalf("a second Stop: %v", err)
	}
	if err := svc.Start(ctx); err == nil {
		t.Fatal("Start after Stop succeeded")
	}
}

func TestStopBeforeStartIsSafe(t *testing.T) {
	t.Parallel()
	svc, err := service.New(memstore.New(), &service.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Stop(context.Background()); err != nil {
		t.Fatalf("Stop before Start: %v", err)
	}
}

func TestHandlerIngestsAndFansOut(t *testing.T) {
	t.Parallel()
	e := newEnv(t, service.Config{})
	ten := e.tenant()
	src := e.source(ten)
	dest := kapseltest.NewDestination(t)
	a := e.endpoint(ten, dest.URL+"/a")
	b := e.endpoint(ten, dest.URL+"/b")

	status, answer := e.post(service.IngestURL(src.ID), []byte(`{"hello":"world"}`))
	if status != http.StatusAccepted {
		t.Fatalf("ingest answered %d %s, want 202", status, answer)
	}
	var res struct {
		ID         kapsel.EventID `json:"id"`
		Deliveries int            `json:"deliveries"`
	}
	if err := json.Unmarshal(answer, &res); err != nil || res.Deliveries != 2 {
		t.Fatalf("ingest answer %s: want 2 deliveries (%v)", answer, err)
	}
	for _, ep := range []*kapsel.Endpoint{a, b} {
		kapseltest.RequireDelivered(t, e.store, res.ID, ep.ID, 10*time.Second)
	}
	reqs := dest.WaitForRequests(t, 2, 10*time.Second)
	paths := map[string]bool{}
	for _, r := range reqs {
		if got := string(r.Body); got != `{"hello":"world"}` || r.Header.Get("webhook-id") != string(res.ID) {
			t.Fatalf("destination received %q with webhook-id %q", got, r.Header.Get("webhook-id"))
		}
		paths[r.Path] = true
	}
	if !paths["/a"] || !paths["/b"] {
		t.Fatalf("deliveries went to %v, want /a and /b", paths)
	}
	// Unknown routes answer problem+json 404 from the one handler.
	if status, _ := e.post("/nowhere", nil); status != http.StatusNotFound {
		t.Fatalf("unknown route answered %d, want 404", status)
	}
}

func TestSeparateHandlersServeTheirRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, service.Config{AdminToken: "admin"})
	mux := http.NewServeMux()
	mux.Handle("/ingest/", e.svc.IngestHandler())
	mux.Handle("/v1/", e.svc.ManagementHandler())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/tenants", bytes.NewReader([]byte(`{"name":"acme"}`)))
	req.Header.Set("Authorization", "Bearer admin")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /v1/tenants on the management handler answered %d, want 201", resp.StatusCode)
	}
	resp, err = http.Post(srv.URL+"/ingest/src_nope", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("ingest of a malformed id on the ingest handler answered %d, want 404", resp.StatusCode)
	}
}
