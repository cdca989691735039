package oteltracing_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/service"
	"github.com/kapsel-dev/kapsel/store/memstore"
	"github.com/kapsel-dev/kapsel/tracing/oteltracing"
)

// discard is a span exporter that drops what it is given: what the SDK
// costs up to the wire.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// BenchmarkWebhook measures one webhook end to end in one process: the
// ingest handler (hmac-sha256 checked, group commit on the in-memory
// store, answered after its commit), then the dispatcher's attempt to a
// real HTTP destination on 127.0.0.1, one webhook at a time. Three
// services run side by side and each op sends one webhook through each in
// turn, so that the machine's load weighs on all three alike: no tracing
// hooks (off_µs, kapseld's default), tracing on with every span sampled and
// batched to an exporter that drops them (on_µs: the SDK's whole cost
// short of the network), and tracing on with nothing sampled
// (unsampled_µs). Each is the mean time from the ingest request to the
// destination's receipt.
//
//	go test ./tracing/oteltracing/ -run '^$' -bench Webhook -benchtime 3000x -count 3
func BenchmarkWebhook(b *testing.B) {
	type mode struct {
		name  string
		run   func(i int)
		total time.Duration
	}
	var modes []*mode
	for _, name := range []string{"off", "on", "unsampled"} {
		var hooks kapsel.Hooks
		switch name {
		case "on":
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}))
			defer func() { _ = tp.Shutdown(context.Background()) }()
			hooks = oteltracing.New(tp).Hooks(hooks)
		case "unsampled":
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}), sdktrace.WithSampler(sdktrace.NeverSample()))
			defer func() { _ = tp.Shutdown(context.Background()) }()
			hooks = oteltracing.New(tp).Hooks(hooks)
		}
		modes = append(modes, &mode{name: name, run: webhookRunner(b, hooks)})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		for _, m := range modes {
			start := time.Now()
			m.run(i)
			m.total += time.Since(start)
		}
	}
	for _, m := range modes {
		b.ReportMetric(float64(m.total.Nanoseconds())/1e3/float64(b.N), m.name+"_µs")
	}
}

// webhookRunner starts a service with hooks and returns a function that
// ingests webhook i and returns once the destination received it.
func webhookRunner(b *testing.B, hooks kapsel.Hooks) func(i int) {
	got := make(chan struct{}, 1)
	dest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
		got <- struct{}{}
	}))
	b.Cleanup(dest.Close)
	svc, err := service.New(memstore.New(), &service.Config{
		Logger:       slog.New(slog.DiscardHandler),
		AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Hooks:        hooks,
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := svc.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = svc.Stop(ctx) })
	ten, _, err := svc.CreateTenant(ctx, service.TenantCreate{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	src, err := svc.CreateSource(ctx, ten.ID, service.SourceCreate{
		Verifier: kapsel.VerifierConfig{Scheme: kapsel.SchemeHMACSHA256, Secrets: []string{sourceSecret}}})
	if err != nil {
		b.Fatal(err)
	}
	if _, _, err := svc.CreateEndpoint(ctx, ten.ID, service.EndpointCreate{URL: dest.URL}); err != nil {
		b.Fatal(err)
	}
	h := svc.Handler()
	path := service.IngestURL(src.ID)
	sig := signature()
	return func(i int) {
		req := httptest.NewRequest("POST", path, strings.NewReader(webhookBody))
		req.Header.Set("X-Kapsel-Signature", sig)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", strconv.Itoa(i))
		req.Header.Set("traceparent", "00-"+inboundTrace+"-"+inboundParent+"-01")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusAccepted {
			b.Fatalf("ingest answered %d: %s", w.Code, w.Body)
		}
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			b.Fatal("not delivered within 10 s")
		}
	}
}

// BenchmarkHooks measures the tracing hooks alone, as one webhook with one
// attempt calls them: StartIngest and EndIngest (with its three step
// children) and StartAttempt and EndAttempt, every span sampled and
// batched to an exporter that drops them.
//
//	go test ./tracing/oteltracing/ -run '^$' -bench Hooks -benchtime 200000x -count 5
func BenchmarkHooks(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	h := oteltracing.New(tp).Hooks(kapsel.Hooks{})
	in := kapsel.TraceContext{Parent: "00-" + inboundTrace + "-" + inboundParent + "-01", State: inboundState}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		ictx, stored := h.StartIngest(ctx, kapsel.IngestStart{SourceID: "src_01M8PGWRS0EBCPJE5ZKMPE947N", Trace: in})
		now := time.Now()
		h.EndIngest(ictx, kapsel.IngestInfo{SourceID: "src_01M8PGWRS0EBCPJE5ZKMPE947N", TenantID: "ten_01M8PGWRRT7HHNNHA7N8ZTR6R2",
			Status: 202, Deliveries: 1, EventID: "evt_01M8PGWRS48KJ99HNNRHJ4HVQH", Verified: now, Queued: now, Committing: now})
		actx, _ := h.StartAttempt(ctx, kapsel.AttemptStart{EndpointID: "ep_01M8PGWRS2MVH6E6K4YYSXCTV2", EventID: "evt_01M8PGWRS48KJ99HNNRHJ4HVQH",
			DeliveryID: "dlv_01M8PGWRS48KJ99HNNRHJ4HVQJ", EventType: "invoice.paid", Number: 1, Trigger: kapsel.TriggerScheduled, Trace: stored})
		h.EndAttempt(actx, kapsel.AttemptInfo{EndpointID: "ep_01M8PGWRS2MVH6E6K4YYSXCTV2", Number: 1, Outcome: kapsel.OutcomeDelivered, StatusCode: 204})
	}
}
