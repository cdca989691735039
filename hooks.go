package kapsel

import (
	"context"
	"time"
)

// Hooks receive what the core does, for metrics and tracing. Every field is
// optional; a nil hook is skipped. Hooks are called synchronously on hot
// paths, so they must be fast and must not block. The Prometheus adapter
// (metrics/prommetrics) is built on them, and so is the OpenTelemetry one
// (tracing/oteltracing): the Start/End pairs carry a context from the start
// of an operation to its end, in which a tracer keeps its span, so the core
// needs no tracing library.
type Hooks struct {
	// OnIngest is called once per ingest request, after it was answered.
	OnIngest func(IngestInfo)
	// OnAttempt is called once per delivery attempt, after its outcome was
	// recorded.
	OnAttempt func(AttemptInfo)
	// OnBreaker is called when an endpoint's circuit breaker changes state.
	// ctx is the context of the attempt whose outcome moved it, when there
	// is one (it carries what StartAttempt returned).
	OnBreaker func(ctx context.Context, info BreakerInfo)
	// OnEndpointDisabled is called when the dispatcher disables an endpoint
	// (410 Gone, or failing for the auto-disable window). ctx is as
	// OnBreaker's.
	OnEndpointDisabled func(ctx context.Context, info EndpointDisabledInfo)
	// OnRetention is called after each retention batch and each expunge,
	// once per table it removed rows from.
	OnRetention func(RetentionInfo)
	// OnRetentionOldest is called after each retention pass, once per
	// table, with the oldest row the table keeps.
	OnRetentionOldest func(RetentionOldestInfo)

	// StartIngest is called as an ingest request or a send begins, before
	// anything is checked. It returns the context the rest of the ingest
	// runs in (EndIngest receives it) and the trace context to store with
	// the event instead of the inbound one (IngestStart.Trace) — a tracer's
	// own span's; zero keeps the inbound one. Set it together with
	// EndIngest.
	StartIngest func(ctx context.Context, start IngestStart) (context.Context, TraceContext)
	// EndIngest is called once for each StartIngest, with its context,
	// once the outcome is known (by the ingest HTTP handler, right after the
	// answer was written).
	EndIngest func(ctx context.Context, info IngestInfo)
	// StartAttempt is called as a delivery attempt begins, before its
	// request is built. It returns the context the attempt runs in
	// (EndAttempt, OnBreaker and OnEndpointDisabled receive it) and the
	// trace context the request carries as its traceparent and tracestate
	// headers, replacing forwarded ones; zero sends the event's headers as
	// they are. Set it together with EndAttempt.
	StartAttempt func(ctx context.Context, start AttemptStart) (context.Context, TraceContext)
	// EndAttempt is called once for each StartAttempt, with its context,
	// once the attempt's outcome is decided (before it is recorded; OnAttempt
	// follows the record). Outcome is empty when Stop cut the attempt short
	// before anything was sent: no attempt is recorded then.
	EndAttempt func(ctx context.Context, info AttemptInfo)
}

// IngestStart describes an ingest request or a send as it begins.
type IngestStart struct {
	// SourceID is the source of an ingest, as the request names it (not
	// checked yet); empty for a send.
	SourceID SourceID
	// TenantID is the tenant of a send; empty for an ingest.
	TenantID TenantID
	// Send is true for a send (POST /v1/events, the front door's Send).
	Send bool
	// Trace is the inbound trace context (the request's traceparent and
	// tracestate, a send's Trace), already checked: zero when there is none
	// or it is not valid.
	Trace TraceContext
}

// AttemptStart describes a delivery attempt as it begins. It holds no
// body, header, URL or secret.
type AttemptStart struct {
	EndpointID EndpointID
	EventID    EventID
	DeliveryID DeliveryID
	EventType  string
	Number     int
	Trigger    AttemptTrigger
	// Trace is the trace context stored with the event (Event.Trace); zero
	// when it has none.
	Trace TraceContext
}

// IngestInfo describes one ingest request.
type IngestInfo struct {
	SourceID SourceID // empty when the id was malformed
	TenantID TenantID // empty when the source was not found
	// Status is the HTTP status answered.
	Status int
	// Code is empty on success.
	Code      Code
	Duplicate bool
	// Deliveries is the number of deliveries the event was fanned out to
	// (zero for a duplicate or a refusal).
	Deliveries int
	Duration   time.Duration
	// EventID is the stored event (the first one, for a duplicate); empty
	// when refused.
	EventID EventID
	// Send is true for a send.
	Send bool
	// Verified, Queued and Committing are when the ingest passed its
	// steps, for tracing: the signature was checked (zero for a send),
	// the event joined the group-commit queue, the commit that stored it
	// began. Zero for a step not reached, and all zero unless StartIngest
	// is set (they cost a clock read each).
	Verified, Queued, Committing time.Time
}

// AttemptOutcome is what an attempt led to.
type AttemptOutcome string

// Attempt outcomes.
const (
	OutcomeDelivered AttemptOutcome = "delivered" // 2xx
	OutcomeRetry     AttemptOutcome = "retry"     // failed, rescheduled
	OutcomeFailed    AttemptOutcome = "failed"    // failed, no more retries
	OutcomeDisabled  AttemptOutcome = "disabled"  // 410 Gone: endpoint disabled, delivery waits
	OutcomeLeaseLost AttemptOutcome = "lease_lost"
)

// AttemptInfo describes one delivery attempt.
type AttemptInfo struct {
	EndpointID EndpointID
	EventID    EventID
	DeliveryID DeliveryID
	EventType  string
	Number     int
	Outcome    AttemptOutcome
	StatusCode int
	ErrorCode  Code
	Duration   time.Duration
	// EndToEnd is the time from the delivery's creation to this successful
	// attempt's answer; zero unless Outcome is OutcomeDelivered.
	EndToEnd time.Duration
}

// BreakerInfo describes a circuit breaker transition.
type BreakerInfo struct {
	EndpointID EndpointID
	From, To   BreakerStatus
	Reason     string
}

// EndpointDisabledInfo describes an automatic endpoint disable.
type EndpointDisabledInfo struct {
	EndpointID EndpointID
	Reason     DisabledReason
}
