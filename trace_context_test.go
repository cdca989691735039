package kapsel_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/kapsel-dev/kapsel"
)

func TestValidTraceParent(t *testing.T) {
	t.Parallel()
	const ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, c := range []struct {
		in   string
		want bool
	}{
		{ok, true},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true},
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future", true},
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true},
		{"", false},
		{ok[:54], false},
		{ok + "-", false},
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", false},
		{"ff" + ok[2:], false},
		{strings.ToUpper(ok), false},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", false},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false},
		{"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
		{"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", false},
		{"0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
	} {
		if got := kapsel.ValidTraceParent(c.in); got != c.want {
			t.Errorf("ValidTraceParent(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestTraceContextFromHeader(t *testing.T) {
	t.Parallel()
	const p = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, c := range []struct {
		name string
		h    http.Header
		want kapsel.TraceContext
	}{
		{"none", http.Header{}, kapsel.TraceContext{}},
		{"parent and state", http.Header{"Traceparent": {p}, "Tracestate": {"a=1"}}, kapsel.TraceContext{Parent: p, State: "a=1"}},
		{"several states are one list", http.Header{"Traceparent": {p}, "Tracestate": {"a=1", "b=2"}}, kapsel.TraceContext{Parent: p, State: "a=1,b=2"}},
		{"two parents are none", http.Header{"Traceparent": {p, p}}, kapsel.TraceContext{}},
		{"state alone is none", http.Header{"Tracestate": {"a=1"}}, kapsel.TraceContext{}},
		{"bad state dropped", http.Header{"Traceparent": {p}, "Tracestate": {"a=\x7f"}}, kapsel.TraceContext{Parent: p}},
	} {
		if got := kapsel.TraceContextFromHeader(c.h); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

// FuzzTraceContextStorable: whatever a request carries, what is stored is
// either nothing or a valid traceparent with a state that can be sent again,
// and storing it again changes nothing.
func FuzzTraceContextStorable(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "congo=t61rcWkgMzE")
	f.Add("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", "")
	f.Add("garbage", "a=\x00")
	f.Fuzz(func(t *testing.T, parent, state string) {
		got := kapsel.TraceContext{Parent: parent, State: state}.Storable()
		if got.IsZero() {
			if got.State != "" {
				t.Fatalf("state %q kept without a parent", got.State)
			}
			return
		}
		if !kapsel.ValidTraceParent(got.Parent) || got.Parent != parent {
			t.Fatalf("stored parent %q from %q", got.Parent, parent)
		}
		if len(got.State) > kapsel.MaxTraceStateLen || (got.State != "" && got.State != state) {
			t.Fatalf("stored state %q from %q", got.State, state)
		}
		if again := got.Storable(); again != got {
			t.Fatalf("Storable is not idempotent: %+v then %+v", got, again)
		}
	})
}

// BenchmarkTraceContextFromHeader is what reading the trace context costs
// every ingest with tracing off: most requests carry none.
//
//	go test . -run '^$' -bench TraceContextFromHeader
func BenchmarkTraceContextFromHeader(b *testing.B) {
	for _, c := range []struct {
		name string
		h    http.Header
	}{
		{"none", http.Header{"Content-Type": {"application/json"}, "X-Github-Event": {"push"}}},
		{"traceparent", http.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, "Tracestate": {"congo=t61rcWkgMzE"}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				_ = kapsel.TraceContextFromHeader(c.h)
			}
		})
	}
}
