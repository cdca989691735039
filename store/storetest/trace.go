package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// Trace contexts used by testTrace: valid ones, of version 00 and of a
// later version (kept whole, as W3C Trace Context asks), and invalid ones.
const (
	traceParentA      = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	traceParentFuture = "cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-09-what-comes-later"
)

// testTrace checks the W3C trace context kept with an event
// (kapsel.Event.Trace, migration 0007): it reads back as inserted from
// every read — the insert's result, EventGet, a claim's event, a
// duplicate's first event; EventList as stored or zero — and one that is not valid is dropped, never
// refused (kapsel.TraceContext.Storable), without harming its batch.
//
// An expunge erases the tracestate with the body (the sender chose it: it
// may carry anything) and keeps the traceparent (ids and flags only), so
// that the audit trail still links the event's spans.
func testTrace(t *testing.T, newStore func(*testing.T) kapsel.Store) {
	t.Run("ExpungeErasesState", func(t *testing.T) {
		h := setup(t, newStore)
		if _, ok := h.s.(withoutRetention); ok {
			t.Skip("the store does not implement kapsel.RetentionStore (optional)")
		}
		ep := h.endpoint(h.tenant())
		a := input(ep, "", []byte(`{"a":1}`))
		a.Trace = kapsel.TraceContext{Parent: traceParentA, State: "congo=someone-at-example-com"}
		r := h.insertMany(Base, 0, a)[0]
		must(t, r.Err, "insert")
		_, err := h.s.EventExpunge(h.ctx, &kapsel.EventExpungeParams{TenantID: ep.TenantID, ID: r.Event.ID, Now: at(time.Minute)})
		must(t, err, "EventExpunge")
		equal(t, "Trace after the expunge", h.getEvent(r.Event.ID).Trace, kapsel.TraceContext{Parent: traceParentA})
	})
	t.Run("RoundTrip", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		a := input(ep, "k-trace", []byte(`{"a":1}`))
		a.Trace = kapsel.TraceContext{Parent: traceParentA, State: "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"}
		future := input(ep, "", []byte(`{"b":2}`))
		future.Trace = kapsel.TraceContext{Parent: traceParentFuture}
		none := input(ep, "", []byte(`{"c":3}`))
		res := h.insertMany(Base, 0, a, future, none)
		want := []kapsel.TraceContext{a.Trace, future.Trace, {}}
		for i, r := range res {
			must(t, r.Err, "insert")
			equal(t, "inserted event's Trace", r.Event.Trace, want[i])
			equal(t, "EventGet's Trace", h.getEvent(r.Event.ID).Trace, want[i])
		}
		// EventList may leave Trace zero (kapsel.EventStore), as it leaves
		// Body: a store that keeps it after the body would read the body.
		for _, e := range h.listEvents(kapsel.EventListParams{TenantID: ep.TenantID}) {
			for i, r := range res {
				if e.ID == r.Event.ID && !e.Trace.IsZero() {
					equal(t, "EventList's Trace", e.Trace, want[i])
				}
			}
		}
		for _, d := range h.claim(10, time.Minute, Base) {
			for i, r := range res {
				if d.EventID == r.Event.ID {
					equal(t, "claimed event's Trace", d.Event.Trace, want[i])
				}
			}
		}
		// A retry of the first send (same key and body, another trace)
		// answers the first event, with the first event's trace.
		again := input(ep, "k-trace", []byte(`{"a":1}`))
		again.Trace = kapsel.TraceContext{Parent: "00-11111111111111111111111111111111-2222222222222222-01"}
		dup := h.insertMany(Base.Add(time.Second), 0, again)[0]
		must(t, dup.Err, "duplicate insert")
		if !dup.Duplicate {
			t.Fatalf("retry with the same key was not a duplicate")
		}
		equal(t, "duplicate's Trace", dup.Event.Trace, a.Trace)
	})

	t.Run("InvalidDropped", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		cases := []struct {
			name string
			in   kapsel.TraceContext
			want kapsel.TraceContext
		}{
			{"garbage", kapsel.TraceContext{Parent: "not a traceparent", State: "a=b"}, kapsel.TraceContext{}},
			{"uppercase hex", kapsel.TraceContext{Parent: strings.ToUpper(traceParentA), State: "a=b"}, kapsel.TraceContext{}},
			{"zero trace id", kapsel.TraceContext{Parent: "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}, kapsel.TraceContext{}},
			{"zero parent id", kapsel.TraceContext{Parent: "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"}, kapsel.TraceContext{}},
			{"version ff", kapsel.TraceContext{Parent: "ff" + traceParentA[2:]}, kapsel.TraceContext{}},
			{"version 00 with more", kapsel.TraceContext{Parent: traceParentA + "-00"}, kapsel.TraceContext{}},
			{"state without parent", kapsel.TraceContext{State: "a=b"}, kapsel.TraceContext{}},
			{"NUL in parent", kapsel.TraceContext{Parent: traceParentA[:54] + "\x00"}, kapsel.TraceContext{}},
			{"state not ASCII", kapsel.TraceContext{Parent: traceParentA, State: "a=\xff\x00"}, kapsel.TraceContext{Parent: traceParentA}},
			{"state too long", kapsel.TraceContext{Parent: traceParentA, State: "a=" + strings.Repeat("b", kapsel.MaxTraceStateLen)}, kapsel.TraceContext{Parent: traceParentA}},
		}
		ins := make([]*kapsel.EventInsertParams, len(cases))
		for i, c := range cases {
			ins[i] = input(ep, "", []byte(c.name))
			ins[i].Trace = c.in
		}
		for i, r := range h.insertMany(Base, 0, ins...) {
			must(t, r.Err, cases[i].name+": insert")
			equal(t, cases[i].name+": inserted Trace", r.Event.Trace, cases[i].want)
			equal(t, cases[i].name+": stored Trace", h.getEvent(r.Event.ID).Trace, cases[i].want)
		}
	})
}
