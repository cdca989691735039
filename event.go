package kapsel

import (
	"net/http"
	"time"
)

// EventStatus is where an [Event] is in its lifecycle.
//
//	pending ──claim──▶ delivering ──2xx──────────────▶ delivered
//	   ▲                 │  │
//	   │   retry later   │  └──retries exhausted / final──▶ failed
//	   └─────────────────┘
//	   ▲  (also: lease expired or released)
//	   └── manual retry or replay ── delivered, failed
type EventStatus string

// Event statuses.
const (
	EventPending    EventStatus = "pending"
	EventDelivering EventStatus = "delivering"
	EventDelivered  EventStatus = "delivered"
	EventFailed     EventStatus = "failed"
)

// Valid reports whether s is one of the documented statuses.
func (s EventStatus) Valid() bool {
	switch s {
	case EventPending, EventDelivering, EventDelivered, EventFailed:
		return true
	}
	return false
}

// CanTransitionTo reports whether the lifecycle allows moving from s to next.
func (s EventStatus) CanTransitionTo(next EventStatus) bool {
	switch s {
	case EventPending:
		return next == EventDelivering
	case EventDelivering:
		// delivered; failed; pending = rescheduled, released or lease expired.
		return next == EventDelivered || next == EventFailed || next == EventPending
	case EventDelivered, EventFailed:
		// Manual retry and replay put finished events back in the queue.
		return next == EventPending
	}
	return false
}

// Terminal reports whether s is an end state (delivered or failed).
func (s EventStatus) Terminal() bool { return s == EventDelivered || s == EventFailed }

// AttemptTrigger says why an attempt was made.
type AttemptTrigger string

// Attempt triggers.
const (
	TriggerScheduled AttemptTrigger = "scheduled" // first delivery or an automatic retry
	TriggerManual    AttemptTrigger = "manual"    // a retry or replay asked for by hand
)

// Event is one accepted webhook and its delivery state.
type Event struct {
	ID         EventID
	TenantID   TenantID
	EndpointID EndpointID
	// Type is the event type ("invoice.paid", GitHub's "push"): read from
	// the request by its verifier scheme (docs/ingest.md) or given by the
	// application's send. Empty when it has none. At most MaxEventTypeLen
	// bytes.
	Type string
	// Channels are the channels the event is sent on (given by a send; an
	// ingested event has none), at most MaxEventChannels. Endpoints
	// subscribe to channels ([Subscription]).
	Channels []string
	// Body is the request body, byte for byte. Lists may leave it nil.
	Body        []byte
	ContentType string
	// Headers are the forwarded end-to-end request headers.
	Headers        http.Header
	IdempotencyKey string
	// BodyHash is the SHA-256 of Body.
	BodyHash []byte
	// Size is len(Body), kept even when Body is not loaded.
	Size   int
	Status EventStatus
	// Attempts counts the attempts made so far.
	Attempts      int
	NextAttemptAt time.Time
	// NextTrigger is the trigger the next attempt is recorded with.
	NextTrigger AttemptTrigger
	// LeaseToken and LeaseExpiresAt are set while the event is delivering.
	LeaseToken     string
	LeaseExpiresAt time.Time
	LastError      string
	CreatedAt      time.Time
	// DeliveredAt is zero until the event is delivered.
	DeliveredAt time.Time
}

// Attempt is the audit record of one HTTP request sent to a destination.
type Attempt struct {
	ID         AttemptID
	EventID    EventID
	EndpointID EndpointID
	TenantID   TenantID
	// Number is 1 for the first attempt of the event.
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
