package delivery

import (
	"context"
	"net/http"

	"github.com/kapsel-dev/kapsel"
)

// Tracing. With Hooks.StartAttempt and Hooks.EndAttempt set, each attempt
// runs in the context StartAttempt returns — which the breaker hooks see
// too — and its request carries the trace context StartAttempt gives as
// its traceparent and tracestate, so the destination's trace joins.
// Without those hooks none of this runs, and a request carries the
// traceparent the event was ingested with, if any, among its forwarded
// headers, as before tracing existed (docs/operations.md, Tracing).

// tracing reports whether attempts are traced.
func (d *Dispatcher) tracing() bool {
	return d.cfg.Hooks.StartAttempt != nil && d.cfg.Hooks.EndAttempt != nil
}

// startAttempt calls StartAttempt when attempts are traced.
func (d *Dispatcher) startAttempt(ctx context.Context, start kapsel.AttemptStart) (context.Context, kapsel.TraceContext) {
	if !d.tracing() {
		return ctx, kapsel.TraceContext{}
	}
	return d.cfg.Hooks.StartAttempt(ctx, start)
}

// endAttempt calls EndAttempt when attempts are traced.
func (d *Dispatcher) endAttempt(ctx context.Context, info kapsel.AttemptInfo) {
	if d.tracing() {
		d.cfg.Hooks.EndAttempt(ctx, info)
	}
}

// setTraceHeaders makes h carry tc, replacing forwarded trace headers; a
// zero tc leaves h as it is.
func setTraceHeaders(h http.Header, tc kapsel.TraceContext) {
	if tc.IsZero() {
		return
	}
	h.Set(kapsel.HeaderTraceParent, tc.Parent)
	if tc.State != "" {
		h.Set(kapsel.HeaderTraceState, tc.State)
	} else {
		h.Del(kapsel.HeaderTraceState)
	}
}
