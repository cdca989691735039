package ingest

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/kapsel-dev/kapsel"
)

const (
	testTraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	testTraceState  = "provider=t61rcWkgMzE"
)

// Without tracing hooks the event keeps the trace context it arrived with;
// one that is not valid is dropped and the webhook accepted all the same.
func TestTraceContextKeptWithoutTracing(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	src := e.source(nil, kapsel.VerifierConfig{})
	accepted(t, e.post(src.ID, `{"a":1}`, "traceparent", testTraceParent, "tracestate", testTraceState), http.StatusAccepted)
	accepted(t, e.post(src.ID, `{"a":2}`, "traceparent", "00-not-a-traceparent", "tracestate", testTraceState), http.StatusAccepted)
	accepted(t, e.post(src.ID, `{"a":3}`), http.StatusAccepted)
	want := map[string]kapsel.TraceContext{
		`{"a":1}`: {Parent: testTraceParent, State: testTraceState},
		`{"a":2}`: {},
		`{"a":3}`: {},
	}
	evs := e.events(src.ID)
	if len(evs) != 3 {
		t.Fatalf("%d events, want 3", len(evs))
	}
	for _, ev := range evs {
		if got := ev.Trace; got != want[string(ev.Body)] {
			t.Fatalf("event %s: trace %+v, want %+v", ev.Body, got, want[string(ev.Body)])
		}
	}
}

// fakeTracer records what the ingest tracing hooks are given.
type fakeTracer struct {
	mu     sync.Mutex
	starts []kapsel.IngestStart
	ends   []kapsel.IngestInfo
	ctxOK  []bool
}

type fakeSpanKey struct{}

// ownTrace is the trace context the fake tracer has events stored with.
var ownTrace = kapsel.TraceContext{Parent: "00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01", State: testTraceState}

func (f *fakeTracer) hooks() kapsel.Hooks {
	return kapsel.Hooks{
		StartIngest: func(ctx context.Context, s kapsel.IngestStart) (context.Context, kapsel.TraceContext) {
			f.mu.Lock()
			f.starts = append(f.starts, s)
			f.mu.Unlock()
			return context.WithValue(ctx, fakeSpanKey{}, s.SourceID), ownTrace
		},
		EndIngest: func(ctx context.Context, info kapsel.IngestInfo) {
			f.mu.Lock()
			f.ends = append(f.ends, info)
			f.ctxOK = append(f.ctxOK, ctx.Value(fakeSpanKey{}) == info.SourceID)
			f.mu.Unlock()
		},
	}
}

// With tracing hooks, StartIngest gets the inbound context, the event is
// stored with the one it returns, and EndIngest gets StartIngest's
// context with the outcome and the steps' times, in order; a refused
// ingest ends too, without the steps it did not reach.
func TestTracingHooks(t *testing.T) {
	t.Parallel()
	var f fakeTracer
	e := setup(t, &Config{Hooks: f.hooks()})
	src := e.source(nil, kapsel.VerifierConfig{Scheme: kapsel.SchemeHMACSHA256, Secrets: []string{"s3cret"}})
	body := `{"a":1}`
	res := accepted(t, e.post(src.ID, body, "X-Kapsel-Signature", hmacHex("s3cret", body),
		"traceparent", testTraceParent, "tracestate", testTraceState), http.StatusAccepted)
	refused(t, e.post(src.ID, body, "X-Kapsel-Signature", "bad"), http.StatusUnauthorized, kapsel.CodeSignature)

	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.starts) != 2 || len(f.ends) != 2 {
		t.Fatalf("%d starts and %d ends, want 2 each", len(f.starts), len(f.ends))
	}
	if want := (kapsel.IngestStart{SourceID: src.ID, Trace: kapsel.TraceContext{Parent: testTraceParent, State: testTraceState}}); f.starts[0] != want {
		t.Fatalf("StartIngest got %+v, want %+v", f.starts[0], want)
	}
	if !f.starts[1].Trace.IsZero() {
		t.Fatalf("StartIngest of a request without traceparent got %+v", f.starts[1].Trace)
	}
	if !f.ctxOK[0] || !f.ctxOK[1] {
		t.Fatalf("EndIngest did not get StartIngest's context")
	}
	ok := f.ends[0]
	if ok.EventID != res.ID || ok.Status != 202 || ok.Deliveries != 0 {
		t.Fatalf("EndIngest of the accepted webhook: %+v", ok)
	}
	if ok.Verified.IsZero() || ok.Queued.Before(ok.Verified) || ok.Committing.Before(ok.Queued) {
		t.Fatalf("steps out of order: verified %v, queued %v, committing %v", ok.Verified, ok.Queued, ok.Committing)
	}
	bad := f.ends[1]
	if bad.Status != 401 || bad.Code != kapsel.CodeSignature || bad.EventID != "" || !bad.Verified.IsZero() || !bad.Queued.IsZero() {
		t.Fatalf("EndIngest of the refused webhook: %+v", bad)
	}
	if evs := e.events(src.ID); len(evs) != 1 || evs[0].Trace != ownTrace {
		t.Fatalf("stored %d events, trace %+v; want the tracer's %+v", len(evs), evs[0].Trace, ownTrace)
	}
}
