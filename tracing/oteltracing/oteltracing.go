// Package oteltracing follows each webhook through Kapsel with OpenTelemetry
// spans (docs/operations.md, Tracing).
//
// The core never imports OpenTelemetry: it reports what it does through
// [kapsel.Hooks], whose Start/End pairs carry a context from an operation's
// start to its end. [New] takes a TracerProvider the application owns —
// never the global one — and [Tracer.Hooks] returns hooks that build spans
// from them, on top of other hooks (metrics), which keep being called:
//
//	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter))
//	hooks := oteltracing.New(tp).Hooks(metrics.Hooks())
//	svc, err := service.New(store, &service.Config{Hooks: hooks})
//
// # Spans
//
//	kapsel.ingest   server    one per POST /ingest/{source_id}; its parent is the
//	                          request's traceparent (or the span already in its
//	                          context); children kapsel.ingest.verify (source,
//	                          body, signature), kapsel.ingest.queue (waiting for
//	                          a group commit) and kapsel.ingest.commit
//	kapsel.send     producer  the same for a send (POST /v1/events, Send)
//	kapsel.attempt  client    one per delivery attempt: child of the span that
//	                          accepted its event (the context stored with the
//	                          event, Event.Trace) and linked to it; the request
//	                          sends the attempt's own traceparent, so the
//	                          destination's spans join the trace
//
// Breaker transitions and endpoint disables caused by an attempt are events
// of its span (breaker.transition, endpoint.disabled).
//
// # Attributes
//
// Ids, numbers and codes only: kapsel.source_id, kapsel.tenant_id,
// kapsel.event_id, kapsel.delivery_id, kapsel.endpoint_id,
// kapsel.event_type, kapsel.attempt, kapsel.trigger, kapsel.outcome,
// kapsel.error_code, kapsel.deliveries, kapsel.duplicate,
// http.request.method, http.response.status_code. Never a body, a header
// value, a URL (its query may hold a token) or a secret: the hooks are not
// given them.
package oteltracing

import (
	"context"
	"encoding/hex"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/kapsel-dev/kapsel"
)

// ScopeName is the instrumentation scope of Kapsel's spans.
const ScopeName = "github.com/kapsel-dev/kapsel"

// Span names.
const (
	SpanIngest       = "kapsel.ingest"
	SpanSend         = "kapsel.send"
	SpanIngestVerify = "kapsel.ingest.verify"
	SpanIngestQueue  = "kapsel.ingest.queue"
	SpanIngestCommit = "kapsel.ingest.commit"
	SpanAttempt      = "kapsel.attempt"
)

// Span event names.
const (
	EventBreakerTransition = "breaker.transition"
	EventEndpointDisabled  = "endpoint.disabled"
)

// Attribute keys.
const (
	AttrSourceID   = attribute.Key("kapsel.source_id")
	AttrTenantID   = attribute.Key("kapsel.tenant_id")
	AttrEventID    = attribute.Key("kapsel.event_id")
	AttrDeliveryID = attribute.Key("kapsel.delivery_id")
	AttrEndpointID = attribute.Key("kapsel.endpoint_id")
	AttrEventType  = attribute.Key("kapsel.event_type")
	AttrAttempt    = attribute.Key("kapsel.attempt")
	AttrTrigger    = attribute.Key("kapsel.trigger")
	AttrOutcome    = attribute.Key("kapsel.outcome")
	AttrErrorCode  = attribute.Key("kapsel.error_code")
	AttrDeliveries = attribute.Key("kapsel.deliveries")
	AttrDuplicate  = attribute.Key("kapsel.duplicate")
	AttrMethod     = attribute.Key("http.request.method")
	AttrStatusCode = attribute.Key("http.response.status_code")
	AttrBreakerTo  = attribute.Key("kapsel.breaker.to")
	AttrBreakerFrm = attribute.Key("kapsel.breaker.from")
	AttrReason     = attribute.Key("kapsel.reason")
)

// Tracer builds Kapsel's spans.
type Tracer struct {
	tracer trace.Tracer
}

// New returns a Tracer whose spans go to tp.
func New(tp trace.TracerProvider) *Tracer {
	return &Tracer{tracer: tp.Tracer(ScopeName, trace.WithInstrumentationVersion(kapsel.Version))}
}

// Hooks returns next with the tracing hooks set: StartIngest, EndIngest,
// StartAttempt and EndAttempt are replaced (next's are not called);
// OnBreaker and OnEndpointDisabled record span events, then call next's.
// The other hooks are next's.
func (t *Tracer) Hooks(next kapsel.Hooks) kapsel.Hooks {
	h := next
	h.StartIngest, h.EndIngest = t.startIngest, t.endIngest
	h.StartAttempt, h.EndAttempt = t.startAttempt, t.endAttempt
	h.OnBreaker = func(ctx context.Context, info kapsel.BreakerInfo) {
		t.onBreaker(ctx, info)
		if next.OnBreaker != nil {
			next.OnBreaker(ctx, info)
		}
	}
	h.OnEndpointDisabled = func(ctx context.Context, info kapsel.EndpointDisabledInfo) {
		t.onEndpointDisabled(ctx, info)
		if next.OnEndpointDisabled != nil {
			next.OnEndpointDisabled(ctx, info)
		}
	}
	return h
}

// extract returns the span context of tc, remote; not valid when tc is
// zero. tc is as kapsel.TraceContext.Storable made it (a valid
// traceparent), so its fields are where W3C Trace Context puts them; a
// tracestate the SDK cannot parse is left out.
func extract(tc kapsel.TraceContext) trace.SpanContext {
	if len(tc.Parent) < 55 {
		return trace.SpanContext{}
	}
	traceID, err1 := trace.TraceIDFromHex(tc.Parent[3:35])
	spanID, err2 := trace.SpanIDFromHex(tc.Parent[36:52])
	var flags [1]byte
	_, err3 := hex.Decode(flags[:], []byte(tc.Parent[53:55]))
	// As the SDK's propagator: version 00 has no reserved flag bits set.
	if err1 != nil || err2 != nil || err3 != nil || (tc.Parent[:2] == "00" && flags[0] > 3) {
		return trace.SpanContext{}
	}
	state, _ := trace.ParseTraceState(tc.State)
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: spanID, TraceFlags: trace.TraceFlags(flags[0]) & (trace.FlagsSampled | trace.FlagsRandom),
		TraceState: state, Remote: true,
	})
}

// inject returns the trace context of span (version 00); zero when it has
// none (a no-op tracer's span).
func inject(span trace.Span) kapsel.TraceContext {
	sc := span.SpanContext()
	if !sc.IsValid() {
		return kapsel.TraceContext{}
	}
	traceID, spanID := sc.TraceID(), sc.SpanID()
	var b [55]byte
	copy(b[:3], "00-")
	hex.Encode(b[3:35], traceID[:])
	b[35] = '-'
	hex.Encode(b[36:52], spanID[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{byte(sc.TraceFlags() & (trace.FlagsSampled | trace.FlagsRandom))})
	return kapsel.TraceContext{Parent: string(b[:]), State: sc.TraceState().String()}
}

// ingestKey keeps an ingest's start time in its context, for its
// kapsel.ingest.verify child.
type ingestKey struct{}

func (t *Tracer) startIngest(ctx context.Context, start kapsel.IngestStart) (context.Context, kapsel.TraceContext) {
	// A span already in ctx (an application's own HTTP instrumentation, or
	// its span around a Send) is the parent; else the inbound trace
	// context; else the ingest starts a trace.
	if !trace.SpanContextFromContext(ctx).IsValid() {
		if sc := extract(start.Trace); sc.IsValid() {
			ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
		}
	}
	name, kind, attrs := SpanIngest, trace.SpanKindServer, []attribute.KeyValue{AttrSourceID.String(string(start.SourceID))}
	if start.Send {
		name, kind, attrs = SpanSend, trace.SpanKindProducer, []attribute.KeyValue{AttrTenantID.String(string(start.TenantID))}
	}
	now := time.Now()
	ctx, span := t.tracer.Start(ctx, name, trace.WithSpanKind(kind), trace.WithTimestamp(now), trace.WithAttributes(attrs...))
	return context.WithValue(ctx, ingestKey{}, now), inject(span)
}

func (t *Tracer) endIngest(ctx context.Context, info kapsel.IngestInfo) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		span.End()
		return
	}
	end := time.Now()
	if start, ok := ctx.Value(ingestKey{}).(time.Time); ok && !info.Verified.IsZero() {
		t.child(ctx, SpanIngestVerify, start, info.Verified)
	}
	if !info.Queued.IsZero() && !info.Committing.IsZero() {
		t.child(ctx, SpanIngestQueue, info.Queued, info.Committing)
		t.child(ctx, SpanIngestCommit, info.Committing, end)
	}
	attrs := []attribute.KeyValue{AttrStatusCode.Int(info.Status)}
	if info.TenantID != "" {
		attrs = append(attrs, AttrTenantID.String(string(info.TenantID)))
	}
	if info.EventID != "" {
		attrs = append(attrs, AttrEventID.String(string(info.EventID)), AttrDeliveries.Int(info.Deliveries),
			AttrDuplicate.Bool(info.Duplicate))
	}
	if info.Code != "" {
		attrs = append(attrs, AttrErrorCode.String(string(info.Code)))
		// A server span is an error when the server failed (5xx), not when
		// the sender did (4xx: a bad signature is the sender's problem).
		if info.Status >= 500 {
			span.SetStatus(codes.Error, string(info.Code))
		}
	}
	span.SetAttributes(attrs...)
	span.End(trace.WithTimestamp(end))
}

// child records a finished child span of ctx's span, from start to end.
func (t *Tracer) child(ctx context.Context, name string, start, end time.Time) {
	if end.Before(start) {
		end = start
	}
	_, span := t.tracer.Start(ctx, name, trace.WithTimestamp(start))
	span.End(trace.WithTimestamp(end))
}

func (t *Tracer) startAttempt(ctx context.Context, start kapsel.AttemptStart) (context.Context, kapsel.TraceContext) {
	opts := []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			AttrAttempt.Int(start.Number),
			AttrEndpointID.String(string(start.EndpointID)),
			AttrEventID.String(string(start.EventID)),
			AttrDeliveryID.String(string(start.DeliveryID)),
			AttrTrigger.String(string(start.Trigger)),
			AttrMethod.String("POST"),
		),
	}
	if start.EventType != "" {
		opts = append(opts, trace.WithAttributes(AttrEventType.String(start.EventType)))
	}
	// The span that accepted the event is the parent, so the webhook's
	// whole path is one trace, and also a link: a retry hours later still
	// names its event's span in backends that cut long traces apart.
	if sc := extract(start.Trace); sc.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
	}
	ctx, span := t.tracer.Start(ctx, SpanAttempt, opts...)
	return ctx, inject(span)
}

func (t *Tracer) endAttempt(ctx context.Context, info kapsel.AttemptInfo) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		span.End()
		return
	}
	attrs := []attribute.KeyValue{AttrOutcome.String(string(info.Outcome))}
	if info.Outcome == "" {
		attrs[0] = AttrOutcome.String("not_sent")
	}
	if info.StatusCode > 0 {
		attrs = append(attrs, AttrStatusCode.Int(info.StatusCode))
	}
	if info.ErrorCode != "" {
		attrs = append(attrs, AttrErrorCode.String(string(info.ErrorCode)))
	}
	span.SetAttributes(attrs...)
	if info.Outcome == kapsel.OutcomeDisabled {
		span.AddEvent(EventEndpointDisabled, trace.WithAttributes(
			AttrEndpointID.String(string(info.EndpointID)), AttrReason.String(string(kapsel.DisabledGone))))
	}
	if info.Outcome != kapsel.OutcomeDelivered {
		span.SetStatus(codes.Error, string(info.ErrorCode))
	}
	span.End()
}

func (t *Tracer) onBreaker(ctx context.Context, info kapsel.BreakerInfo) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	span.AddEvent(EventBreakerTransition, trace.WithAttributes(
		AttrEndpointID.String(string(info.EndpointID)),
		AttrBreakerFrm.String(string(info.From)), AttrBreakerTo.String(string(info.To)),
		AttrReason.String(info.Reason)))
}

func (t *Tracer) onEndpointDisabled(ctx context.Context, info kapsel.EndpointDisabledInfo) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	span.AddEvent(EventEndpointDisabled, trace.WithAttributes(
		AttrEndpointID.String(string(info.EndpointID)), AttrReason.String(string(info.Reason))))
}
