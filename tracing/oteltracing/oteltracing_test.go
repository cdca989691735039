package oteltracing_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/tracing/oteltracing"
)

// One webhook, retried twice: its ingest span continues the provider's
// trace; the three attempts are client spans, children of the ingest span
// and linked to it, each with its number, endpoint, event type, status and
// error code; each request carried its own attempt's traceparent to a real
// destination; the breaker that two failures opened, and the probe that
// closed it, are events of the attempts that moved it; and no span holds a
// secret or the body.
func TestWebhookRetriedTwice(t *testing.T) {
	t.Parallel()
	f := setup(t, http.StatusInternalServerError, http.StatusServiceUnavailable)
	inbound := "00-" + inboundTrace + "-" + inboundParent + "-01"
	if status := f.ingest("traceparent", inbound, "tracestate", inboundState); status != http.StatusAccepted {
		t.Fatalf("ingest answered %d", status)
	}
	f.driveUntil(3)
	f.stop()
	spans := f.exp.GetSpans()
	if testing.Verbose() {
		t.Log("\n" + formatTrace(spans))
	}

	// The ingest span and its steps.
	ingest := only(t, spans, oteltracing.SpanIngest)
	if got := ingest.SpanContext.TraceID().String(); got != inboundTrace {
		t.Fatalf("ingest span's trace %s, want the provider's %s", got, inboundTrace)
	}
	if !ingest.Parent.IsRemote() || ingest.Parent.SpanID().String() != inboundParent {
		t.Fatalf("ingest span's parent %v, want the provider's remote span %s", ingest.Parent, inboundParent)
	}
	if ingest.SpanKind != trace.SpanKindServer {
		t.Fatalf("ingest span kind %v", ingest.SpanKind)
	}
	if got := ingest.SpanContext.TraceState().String(); got != inboundState {
		t.Fatalf("ingest span's tracestate %q, want the provider's %q", got, inboundState)
	}
	eventID := attr(t, ingest, oteltracing.AttrEventID).AsString()
	wantAttrs(t, ingest, map[attribute.Key]any{
		oteltracing.AttrSourceID: string(f.src.ID), oteltracing.AttrTenantID: string(f.tenant.ID),
		oteltracing.AttrStatusCode: int64(202), oteltracing.AttrDeliveries: int64(1), oteltracing.AttrDuplicate: false,
	})
	var prevEnd = ingest.StartTime
	for _, name := range []string{oteltracing.SpanIngestVerify, oteltracing.SpanIngestQueue, oteltracing.SpanIngestCommit} {
		s := only(t, spans, name)
		if s.Parent.SpanID() != ingest.SpanContext.SpanID() {
			t.Fatalf("%s is not a child of the ingest span", name)
		}
		if s.StartTime.Before(prevEnd) || s.EndTime.After(ingest.EndTime) {
			t.Fatalf("%s runs %v–%v, out of order within the ingest's %v–%v", name, s.StartTime, s.EndTime, ingest.StartTime, ingest.EndTime)
		}
		prevEnd = s.EndTime
	}

	// The event keeps the ingest span's context.
	ev, err := f.svc.GetEvent(context.Background(), f.tenant.ID, kapsel.EventID(eventID), false)
	if err != nil {
		t.Fatal(err)
	}
	if want := (kapsel.TraceContext{Parent: traceparent(ingest.SpanContext), State: inboundState}); ev.Trace != want {
		t.Fatalf("event's trace context %+v, want the ingest span's %+v", ev.Trace, want)
	}

	// Three attempts, children of the ingest span and linked to it.
	attempts := named(spans, oteltracing.SpanAttempt)
	if len(attempts) != 3 {
		t.Fatalf("%d attempt spans, want 3", len(attempts))
	}
	slices.SortFunc(attempts, func(a, b tracetest.SpanStub) int {
		return int(attr(t, a, oteltracing.AttrAttempt).AsInt64() - attr(t, b, oteltracing.AttrAttempt).AsInt64())
	})
	sent := f.dest.headers()
	wantStatus := []int64{500, 503, 200}
	wantCode := []string{string(kapsel.CodeAttemptStatus), string(kapsel.CodeAttemptStatus), ""}
	wantOutcome := []string{"retry", "retry", "delivered"}
	for i, a := range attempts {
		if a.SpanKind != trace.SpanKindClient {
			t.Fatalf("attempt %d kind %v, want client", i+1, a.SpanKind)
		}
		if a.SpanContext.TraceID() != ingest.SpanContext.TraceID() || a.Parent.SpanID() != ingest.SpanContext.SpanID() {
			t.Fatalf("attempt %d: trace %s parent %s, want the ingest span %s/%s", i+1,
				a.SpanContext.TraceID(), a.Parent.SpanID(), ingest.SpanContext.TraceID(), ingest.SpanContext.SpanID())
		}
		if len(a.Links) != 1 || a.Links[0].SpanContext.SpanID() != ingest.SpanContext.SpanID() {
			t.Fatalf("attempt %d links %+v, want one to the ingest span", i+1, a.Links)
		}
		w := map[attribute.Key]any{
			oteltracing.AttrAttempt: int64(i + 1), oteltracing.AttrEndpointID: string(f.ep.ID),
			oteltracing.AttrEventID: eventID, oteltracing.AttrEventType: "invoice.paid", oteltracing.AttrStatusCode: wantStatus[i],
			oteltracing.AttrOutcome: wantOutcome[i], oteltracing.AttrMethod: "POST",
		}
		if wantCode[i] != "" {
			w[oteltracing.AttrErrorCode] = wantCode[i]
		} else if _, ok := find(a, oteltracing.AttrErrorCode); ok {
			t.Fatalf("the delivered attempt has an error code")
		}
		wantAttrs(t, a, w)
		if failed := wantCode[i] != ""; failed != (a.Status.Code == codes.Error) {
			t.Fatalf("attempt %d status %v", i+1, a.Status)
		}
		// The destination saw this attempt's own traceparent, and the
		// provider's tracestate.
		if got, want := sent[i].Get("traceparent"), traceparent(a.SpanContext); got != want {
			t.Fatalf("request %d sent traceparent %q, want its attempt span's %q", i+1, got, want)
		}
		if got := sent[i].Get("tracestate"); got != inboundState {
			t.Fatalf("request %d sent tracestate %q, want %q", i+1, got, inboundState)
		}
	}

	// The breaker: opened by attempt 2 (two failures in a row), closed by
	// the probe, attempt 3.
	if got := transitions(attempts[0]); got != "" {
		t.Fatalf("attempt 1 moved the breaker: %s", got)
	}
	if got := transitions(attempts[1]); got != "closed>open" {
		t.Fatalf("attempt 2's breaker events %q, want closed>open", got)
	}
	if got := transitions(attempts[2]); got != "half_open>closed" {
		t.Fatalf("attempt 3's breaker events %q, want half_open>closed", got)
	}

	// No name, attribute, event, link or status holds a secret or the body.
	secrets := []string{sourceSecret, f.signing, strings.TrimPrefix(f.signing, "whsec_"), f.apiKey, customHeader,
		urlToken, webhookBody, "4242-4242-body-marker", sent[0].Get("webhook-signature")}
	for _, s := range spans {
		text := spanText(s)
		for _, secret := range secrets {
			if secret != "" && strings.Contains(text, secret) {
				t.Fatalf("span %s holds %q:\n%s", s.Name, secret, text)
			}
		}
	}
}

// A send continues the trace of its POST /v1/events request; with tracing
// on, the event keeps the send span's context.
func TestSendContinuesRequestTrace(t *testing.T) {
	t.Parallel()
	f := setup(t)
	req, err := http.NewRequest("POST", f.app.URL+"/v1/events", strings.NewReader(`{"type":"order.placed","payload":{"n":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+f.apiKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+inboundTrace+"-"+inboundParent+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("send answered %d", resp.StatusCode)
	}
	f.driveUntil(1)
	f.stop()
	spans := f.exp.GetSpans()
	send := only(t, spans, oteltracing.SpanSend)
	if send.SpanKind != trace.SpanKindProducer || send.Parent.SpanID().String() != inboundParent ||
		send.SpanContext.TraceID().String() != inboundTrace {
		t.Fatalf("send span kind %v parent %s trace %s", send.SpanKind, send.Parent.SpanID(), send.SpanContext.TraceID())
	}
	if _, ok := find(send, oteltracing.AttrSourceID); ok {
		t.Fatalf("a send span names a source")
	}
	wantAttrs(t, send, map[attribute.Key]any{oteltracing.AttrTenantID: string(f.tenant.ID), oteltracing.AttrStatusCode: int64(202)})
	a := only(t, spans, oteltracing.SpanAttempt)
	if a.Parent.SpanID() != send.SpanContext.SpanID() {
		t.Fatalf("attempt's parent %s, want the send span %s", a.Parent.SpanID(), send.SpanContext.SpanID())
	}
	wantAttrs(t, a, map[attribute.Key]any{oteltracing.AttrEventType: "order.placed"})
}

// A traceparent that is not valid starts a new trace (W3C Trace Context:
// ignore what cannot be parsed); the webhook is accepted all the same.
func TestInvalidTraceparentStartsTrace(t *testing.T) {
	t.Parallel()
	f := setup(t)
	if status := f.ingest("traceparent", "00-"+strings.ToUpper(inboundTrace)+"-"+inboundParent+"-01"); status != http.StatusAccepted {
		t.Fatalf("ingest answered %d", status)
	}
	f.driveUntil(1)
	f.stop()
	ingest := only(t, f.exp.GetSpans(), oteltracing.SpanIngest)
	if ingest.Parent.IsValid() {
		t.Fatalf("ingest span has parent %v, want a new trace", ingest.Parent)
	}
	if got, want := f.dest.headers()[0].Get("traceparent"), ""; got == want || strings.Contains(got, strings.ToUpper(inboundTrace)) {
		t.Fatalf("destination got traceparent %q", got)
	}
}

func named(spans tracetest.SpanStubs, name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

func only(t *testing.T, spans tracetest.SpanStubs, name string) tracetest.SpanStub {
	t.Helper()
	got := named(spans, name)
	if len(got) != 1 {
		t.Fatalf("%d %s spans, want 1", len(got), name)
	}
	return got[0]
}

func find(s tracetest.SpanStub, k attribute.Key) (attribute.Value, bool) {
	for _, kv := range s.Attributes {
		if kv.Key == k {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

func attr(t *testing.T, s tracetest.SpanStub, k attribute.Key) attribute.Value {
	t.Helper()
	v, ok := find(s, k)
	if !ok {
		t.Fatalf("span %s has no attribute %s", s.Name, k)
	}
	return v
}

func wantAttrs(t *testing.T, s tracetest.SpanStub, want map[attribute.Key]any) {
	t.Helper()
	for k, w := range want {
		if got := attr(t, s, k).AsInterface(); got != w {
			t.Fatalf("span %s: %s = %#v, want %#v", s.Name, k, got, w)
		}
	}
}

// transitions lists a span's breaker events as "from>to", comma-separated.
func transitions(s tracetest.SpanStub) string {
	var out []string
	for _, e := range s.Events {
		if e.Name != oteltracing.EventBreakerTransition {
			continue
		}
		var from, to string
		for _, kv := range e.Attributes {
			switch kv.Key {
			case oteltracing.AttrBreakerFrm:
				from = kv.Value.AsString()
			case oteltracing.AttrBreakerTo:
				to = kv.Value.AsString()
			}
		}
		out = append(out, from+">"+to)
	}
	return strings.Join(out, ",")
}

func traceparent(sc trace.SpanContext) string {
	return fmt.Sprintf("00-%s-%s-%s", sc.TraceID(), sc.SpanID(), sc.TraceFlags())
}

// spanText is everything a span says, as text.
func spanText(s tracetest.SpanStub) string {
	var b strings.Builder
	fmt.Fprintln(&b, s.Name, s.Status.Description)
	for _, kv := range s.Attributes {
		fmt.Fprintln(&b, kv.Key, kv.Value.String())
	}
	for _, e := range s.Events {
		fmt.Fprintln(&b, e.Name)
		for _, kv := range e.Attributes {
			fmt.Fprintln(&b, kv.Key, kv.Value.String())
		}
	}
	for _, l := range s.Links {
		for _, kv := range l.Attributes {
			fmt.Fprintln(&b, kv.Key, kv.Value.String())
		}
	}
	for _, kv := range s.Resource.Attributes() {
		fmt.Fprintln(&b, kv.Key, kv.Value.String())
	}
	return b.String()
}
