package delivery

import (
	"net/http"
	"testing"

	"github.com/kapsel-dev/kapsel"
)

// An attempt's trace context replaces the forwarded trace headers, a
// tracestate included when it has none; without one (tracing off) the
// forwarded headers go as they came.
func TestSetTraceHeaders(t *testing.T) {
	t.Parallel()
	const fwd, own = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01"
	forwarded := func() http.Header { return http.Header{"Traceparent": {fwd}, "Tracestate": {"provider=1"}} }
	for _, c := range []struct {
		name          string
		tc            kapsel.TraceContext
		parent, state string
	}{
		{"off", kapsel.TraceContext{}, fwd, "provider=1"},
		{"own with state", kapsel.TraceContext{Parent: own, State: "kapsel=2"}, own, "kapsel=2"},
		{"own without state", kapsel.TraceContext{Parent: own}, own, ""},
	} {
		h := forwarded()
		setTraceHeaders(h, c.tc)
		if h.Get("traceparent") != c.parent || h.Get("tracestate") != c.state || len(h.Values("traceparent")) != 1 {
			t.Errorf("%s: traceparent %v tracestate %q; want %q and %q", c.name, h.Values("traceparent"), h.Get("tracestate"), c.parent, c.state)
		}
	}
}
