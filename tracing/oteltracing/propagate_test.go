package oteltracing

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/kapsel-dev/kapsel"
)

// extract and inject read and write the W3C headers as the SDK's own
// propagator does (they are shorter on the hot path).
func TestPropagationMatchesSDK(t *testing.T) {
	t.Parallel()
	var prop propagation.TraceContext
	for _, tc := range []kapsel.TraceContext{
		{Parent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", State: "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"},
		{Parent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"},
		{Parent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03", State: "not a list entry"},
		{Parent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09"},
		{Parent: "cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-09-more"},
	} {
		carrier := propagation.MapCarrier{"traceparent": tc.Parent, "tracestate": tc.State}
		want := trace.SpanContextFromContext(prop.Extract(context.Background(), carrier))
		got := extract(tc.Storable())
		if !got.Equal(want) || got.IsRemote() != want.IsRemote() {
			t.Fatalf("extract(%+v) = %+v, want the SDK's %+v", tc, got, want)
		}
		out := propagation.MapCarrier{}
		prop.Inject(trace.ContextWithSpanContext(context.Background(), want), out)
		if back := inject(trace.SpanFromContext(trace.ContextWithSpanContext(context.Background(), got))); back.Parent != out["traceparent"] || back.State != out["tracestate"] {
			t.Fatalf("inject of %+v = %+v, want the SDK's %v", tc, back, out)
		}
	}
	if sc := extract(kapsel.TraceContext{}); sc.IsValid() {
		t.Fatalf("extract of no trace context is valid: %+v", sc)
	}
	if tc := inject(trace.SpanFromContext(context.Background())); !tc.IsZero() {
		t.Fatalf("inject of no span = %+v", tc)
	}
}
