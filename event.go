package kapsel

import (
	"net/http"
	"time"
)

// DeliveryStatus is where a [Delivery] is in its lifecycle.
//
//	pending ──claim──▶ delivering ──2xx──────────────▶ delivered
//	   ▲                 │  │
//	   │   retry later   │  └──retries exhausted / final──▶ failed
//	   └─────────────────┘
//	   ▲  (also: lease expired or released)
//	   └── manual retry or replay ── delivered, failed
type DeliveryStatus string

// Delivery statuses.
const (
	DeliveryPending    DeliveryStatus = "pending"
	DeliveryDelivering DeliveryStatus = "delivering"
	DeliveryDelivered  DeliveryStatus = "delivered"
	DeliveryFailed     DeliveryStatus = "failed"
)

// Valid reports whether s is one of the documented statuses.
func (s DeliveryStatus) Valid() bool {
	switch s {
	case DeliveryPending, DeliveryDelivering, DeliveryDelivered, DeliveryFailed:
		return true
	}
	return false
}

// CanTransitionTo reports whether the lifecycle allows moving from s to next.
func (s DeliveryStatus) CanTransitionTo(next DeliveryStatus) bool {
	switch s {
	case DeliveryPending:
		// delivering; failed = its endpoint was deleted.
		return next == DeliveryDelivering || next == DeliveryFailed
	case DeliveryDelivering:
		// delivered; failed; pending = rescheduled, released or lease expired.
		return next == DeliveryDelivered || next == DeliveryFailed || next == DeliveryPending
	case DeliveryDelivered, DeliveryFailed:
		// Manual retry and replay put finished deliveries back in the queue.
		return next == DeliveryPending
	}
	return false
}

// Terminal reports whether s is an end state (delivered or failed).
func (s DeliveryStatus) Terminal() bool { return s == DeliveryDelivered || s == DeliveryFailed }

// AttemptTrigger says why an attempt was made.
type AttemptTrigger string

// Attempt triggers.
const (
	TriggerScheduled AttemptTrigger = "scheduled" // first delivery or an automatic retry
	TriggerManual    AttemptTrigger = "manual"    // a retry, replay or backfill asked for by hand
)

// Event is one accepted webhook or sent event. It is immutable once stored:
// what happens to it afterwards is on its deliveries, one per endpoint it
// was fanned out to (I10 of docs/guarantees.md).
type Event struct {
	ID       EventID
	TenantID TenantID
	// SourceID is the source the event was ingested by; empty for a send.
	SourceID SourceID
	// Type is the event type ("invoice.paid", GitHub's "push"): read from
	// the request by its source (docs/ingest.md) or given by the
	// application's send. Empty when it has none. At most MaxEventTypeLen
	// bytes.
	Type string
	// Channels are the channels the event is sent on (given by a send; an
	// ingested event has none), at most MaxEventChannels. Endpoints
	// subscribe to channels ([Subscription]).
	Channels []string
	// Body is the request body, byte for byte. Lists may leave it nil. It
	// is empty once erased (BodyErasure).
	Body        []byte
	ContentType string
	// Headers are the forwarded end-to-end request headers.
	Headers        http.Header
	IdempotencyKey string
	// BodyHash is the SHA-256 of Body.
	BodyHash []byte
	// Size is len(Body), kept even when Body is not loaded or was erased.
	Size int
	// Trace is the W3C trace context the event continues: with tracing on
	// (Hooks.StartIngest), that of the span that accepted it; otherwise the
	// traceparent and tracestate it arrived with. Zero when it has none.
	// Each delivery attempt's span continues it (docs/operations.md).
	// Lists may leave it zero, as they leave Body.
	Trace     TraceContext
	CreatedAt time.Time
	// BodyErasure says why Body (and Headers) are no longer stored:
	// BodyKept (""), BodyExpired or BodyExpunged. BodyErasedAt is when
	// they were erased; zero while kept.
	BodyErasure  BodyErasure
	BodyErasedAt time.Time
	// Deliveries summarises the event's deliveries by status. Filled in by
	// EventGet, EventList and EventInsertMany; zero where a method says so.
	Deliveries DeliverySummary
}

// Routing returns what subscriptions are matched against.
func (e *Event) Routing() EventRouting {
	return EventRouting{TenantID: e.TenantID, SourceID: e.SourceID, Type: e.Type, Channels: e.Channels}
}

// DeliverySummary counts an event's deliveries by status. An event that
// matched no endpoint has Total 0: it is stored and says so.
type DeliverySummary struct {
	Total      int
	Pending    int
	Delivering int
	Delivered  int
	Failed     int
}

// Add counts one delivery of status s.
func (s *DeliverySummary) Add(status DeliveryStatus, n int) {
	s.Total += n
	switch status {
	case DeliveryPending:
		s.Pending += n
	case DeliveryDelivering:
		s.Delivering += n
	case DeliveryDelivered:
		s.Delivered += n
	case DeliveryFailed:
		s.Failed += n
	}
}

// Delivery is one event on its way to one endpoint: the unit that is
// leased, fenced, retried, held by breakers, capped per endpoint and
// replayed. There is exactly one per (event, endpoint) pair (I10). It is a
// small row; the body lives once, on its event.
type Delivery struct {
	ID         DeliveryID
	TenantID   TenantID
	EventID    EventID
	EndpointID EndpointID
	Status     DeliveryStatus
	// Attempts counts the attempts made so far.
	Attempts      int
	NextAttemptAt time.Time
	// NextTrigger is the trigger the next attempt is recorded with.
	NextTrigger AttemptTrigger
	// LeaseToken and LeaseExpiresAt are set while the delivery is delivering.
	LeaseToken     string
	LeaseExpiresAt time.Time
	LastError      string
	CreatedAt      time.Time
	// DeliveredAt is zero until the delivery is delivered.
	DeliveredAt time.Time
	// Event is set by DeliveryClaim, with its body and headers; nil
	// elsewhere.
	Event *Event
}

// LastErrorEndpointDeleted is the LastError of the deliveries that
// EndpointDelete ended as failed.
const LastErrorEndpointDeleted = "endpoint deleted"

// Attempt is the audit record of one HTTP request sent to a destination.
type Attempt struct {
	ID         AttemptID
	DeliveryID DeliveryID
	EventID    EventID
	EndpointID EndpointID
	TenantID   TenantID
	// Number is 1 for the first attempt of the delivery.
	Number    int
	Trigger   AttemptTrigger
	StartedAt time.Time
	Duration  time.Duration
	// StatusCode is 0 when no response was received.
	StatusCode int
	// ResponseBody is at most [MaxResponseBody] bytes of the response.
	ResponseBody []byte
	// ErrorCode is empty on success, an E2xxx code otherwise.
	ErrorCode Code
	Error     string
}

// Succeeded reports whether the attempt got a 2xx answer.
func (a *Attempt) Succeeded() bool { return a.StatusCode >= 200 && a.StatusCode < 300 }

// MaxResponseBody is the most of a destination's response body that is read
// and kept on an attempt.
const MaxResponseBody = 64 << 10
