package oteltracing_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/breaker"
	"github.com/kapsel-dev/kapsel/kapseltest"
	"github.com/kapsel-dev/kapsel/service"
	"github.com/kapsel-dev/kapsel/store/memstore"
	"github.com/kapsel-dev/kapsel/tracing/oteltracing"
)

// The secrets and body of the tests: no span may hold any of them.
const (
	sourceSecret  = "ingest-secret-9f2c1d"
	customHeader  = "hdr-token-77ab3e"
	urlToken      = "url-token-5d1e0c"
	webhookBody   = `{"type":"invoice.paid","card":"4242-4242-body-marker"}`
	inboundTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	inboundParent = "00f067aa0ba902b7"
	inboundState  = "provider=t61rcWkgMzE"
)

// fixture is a started service whose spans go to an in-memory exporter,
// with a source and an endpoint at a real destination that answers from a
// script.
type fixture struct {
	t       *testing.T
	exp     *tracetest.InMemoryExporter
	clock   *kapseltest.Clock
	svc     *service.Service
	app     *httptest.Server
	dest    *destination
	tenant  *kapsel.Tenant
	apiKey  string
	src     *kapsel.Source
	ep      *kapsel.Endpoint
	signing string
	// recorded counts the attempts whose outcome was recorded (OnAttempt).
	recorded atomic.Int64
}

func setup(t *testing.T, statuses ...int) *fixture {
	t.Helper()
	f := &fixture{t: t, exp: tracetest.NewInMemoryExporter(), clock: kapseltest.NewClock(time.Now())}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(f.exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	f.dest = newDestination(t, statuses...)
	svc, err := service.New(memstore.New(), &service.Config{
		Logger:       slog.New(slog.DiscardHandler),
		AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Clock:        f.clock,
		Hooks:        oteltracing.New(tp).Hooks(kapsel.Hooks{OnAttempt: func(kapsel.AttemptInfo) { f.recorded.Add(1) }}),
		// Two failures in a row open an endpoint's breaker.
		Breaker: breaker.Config{ConsecutiveFailures: 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	t.Cleanup(func() { f.stop() })
	f.app = httptest.NewServer(svc.Handler())
	t.Cleanup(f.app.Close)
	if f.tenant, f.apiKey, err = svc.CreateTenant(ctx, service.TenantCreate{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	f.src, err = svc.CreateSource(ctx, f.tenant.ID, service.SourceCreate{Name: "provider", EventTypeFrom: "json:/type",
		Verifier: kapsel.VerifierConfig{Scheme: kapsel.SchemeHMACSHA256, Secrets: []string{sourceSecret}}})
	if err != nil {
		t.Fatal(err)
	}
	f.ep, f.signing, err = svc.CreateEndpoint(ctx, f.tenant.ID, service.EndpointCreate{
		URL: f.dest.srv.URL + "/hook?token=" + urlToken, Headers: map[string]string{"X-Api-Token": customHeader},
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// stop stops the service: every attempt under way ends, and with it its
// span. Stopping twice is safe.
func (f *fixture) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.svc.Stop(ctx); err != nil {
		f.t.Errorf("stop: %v", err)
	}
}

// ingest posts webhookBody, signed, to the source with the given extra
// headers and returns the status.
func (f *fixture) ingest(header ...string) int {
	f.t.Helper()
	req, err := http.NewRequest("POST", f.app.URL+service.IngestURL(f.src.ID), strings.NewReader(webhookBody))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("X-Kapsel-Signature", signature())
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// signature is webhookBody's hmac-sha256 signature with sourceSecret.
func signature() string {
	mac := hmac.New(sha256.New, []byte(sourceSecret))
	mac.Write([]byte(webhookBody))
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// driveUntil moves the fake clock 10 s at a time — to the retries'
// backoff and past the breaker's cool-down — until the destination got n
// requests. It moves only once every request received has its attempt
// recorded, and by less than a lease (25 s): a jump past a lease in flight
// would expire it and have the attempt made again, as after a crash.
func (f *fixture) driveUntil(n int) {
	f.t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for range 2000 {
		if f.dest.count() >= n {
			return
		}
		<-tick.C
		if f.recorded.Load() >= int64(f.dest.count()) {
			f.clock.Advance(10 * time.Second)
		}
	}
	f.t.Fatalf("destination got %d requests, want %d", f.dest.count(), n)
}

// destination is a real HTTP server that answers its script's statuses in
// turn, then 200, and keeps the trace headers of each request.
type destination struct {
	srv      *httptest.Server
	mu       sync.Mutex
	statuses []int
	got      []http.Header
}

func newDestination(t *testing.T, statuses ...int) *destination {
	d := &destination{statuses: statuses}
	d.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		d.mu.Lock()
		status := http.StatusOK
		if n := len(d.got); n < len(d.statuses) {
			status = d.statuses[n]
		}
		d.got = append(d.got, r.Header.Clone())
		d.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(d.srv.Close)
	return d
}

func (d *destination) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.got)
}

func (d *destination) headers() []http.Header {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]http.Header(nil), d.got...)
}
