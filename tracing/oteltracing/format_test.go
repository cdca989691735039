package oteltracing_test

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// formatTrace prints spans as a tree, parents first and children by start
// time, with their attributes and events: the example trace of
// docs/operations.md comes from it (go test -v -run TestWebhookRetriedTwice
// ./tracing/oteltracing/).
func formatTrace(spans tracetest.SpanStubs) string {
	children := map[trace.SpanID][]tracetest.SpanStub{}
	ids := map[trace.SpanID]bool{}
	for _, s := range spans {
		ids[s.SpanContext.SpanID()] = true
	}
	var roots []tracetest.SpanStub
	for _, s := range spans {
		if p := s.Parent.SpanID(); p.IsValid() && ids[p] {
			children[p] = append(children[p], s)
		} else {
			roots = append(roots, s)
		}
	}
	byStart := func(a, b tracetest.SpanStub) int { return a.StartTime.Compare(b.StartTime) }
	slices.SortFunc(roots, byStart)
	var b strings.Builder
	var walk func(s tracetest.SpanStub, depth int)
	walk = func(s tracetest.SpanStub, depth int) {
		ind := strings.Repeat("  ", depth)
		parent := ""
		if s.Parent.IsRemote() {
			parent = " parent=" + s.Parent.SpanID().String() + " (remote)"
		}
		fmt.Fprintf(&b, "%s%s [%s] trace=%s span=%s%s %s\n", ind, s.Name, s.SpanKind, s.SpanContext.TraceID(),
			s.SpanContext.SpanID(), parent, s.EndTime.Sub(s.StartTime).Round(10*time.Microsecond))
		var attrs []string
		for _, kv := range s.Attributes {
			attrs = append(attrs, fmt.Sprintf("%s=%s", kv.Key, kv.Value.String()))
		}
		if len(attrs) > 0 {
			fmt.Fprintf(&b, "%s    %s\n", ind, strings.Join(attrs, " "))
		}
		for _, l := range s.Links {
			fmt.Fprintf(&b, "%s    link → span %s\n", ind, l.SpanContext.SpanID())
		}
		for _, e := range s.Events {
			var ea []string
			for _, kv := range e.Attributes {
				ea = append(ea, fmt.Sprintf("%s=%s", kv.Key, kv.Value.String()))
			}
			fmt.Fprintf(&b, "%s    event %s %s\n", ind, e.Name, strings.Join(ea, " "))
		}
		if s.Status.Code != 0 {
			fmt.Fprintf(&b, "%s    status %s %s\n", ind, s.Status.Code, s.Status.Description)
		}
		kids := children[s.SpanContext.SpanID()]
		slices.SortFunc(kids, byStart)
		for _, c := range kids {
			walk(c, depth+1)
		}
	}
	for _, r := range roots {
		walk(r, 0)
	}
	return b.String()
}
