package kapsel

import (
	"context"
	"net/http"
	"time"
)

// Version is Kapsel's version, sent in the User-Agent of every delivery.
const Version = "0.2.0"

// Ingester accepts webhooks: it verifies them, stores them durably and only
// then answers. The default implementation is ingest.Ingester; its
// http.Handler serves POST /ingest/{source_id}.
type Ingester interface {
	// Ingest verifies and stores one webhook. It returns only after the event
	// and its deliveries are committed. Errors are *Error values with a
	// documented Code (CodeSignature, CodeUnknownSource,
	// CodeStorageUnavailable, …).
	Ingest(ctx context.Context, req *IngestRequest) (*IngestResult, error)
}

// IngestRequest is one inbound webhook.
type IngestRequest struct {
	// SourceID is as received, not yet validated: a source id, or the id
	// of a 0.1 endpoint whose source the upgrade made ([LegacySourceID]).
	SourceID string
	Header   http.Header
	// Body is the raw request body.
	Body []byte
}

// IngestResult is what Ingest stored.
type IngestResult struct {
	Event *Event
	// Duplicate is true when the idempotency key was already used, with the
	// same body, within its window; Event is then the first event.
	Duplicate bool
	// Challenge is set, and Event is nil, when the request was a verified
	// handshake that asks for an answer instead of being an event — Slack's
	// url_verification: nothing was stored, and the answer must carry this
	// value (ingest's handler answers 200 text/plain with it).
	Challenge string
}

// Dispatcher delivers stored events' deliveries to their destinations with retries,
// backoff and circuit breaking. The default implementation is
// delivery.Dispatcher.
type Dispatcher interface {
	// Start begins claiming and delivering in the background. It returns
	// once the dispatcher runs; ctx bounds only the start-up.
	Start(ctx context.Context) error
	// Stop stops claiming, lets in-flight attempts finish until ctx ends,
	// then releases the remaining leases. Stopping twice is safe.
	Stop(ctx context.Context) error
	// Wake tells the dispatcher that new deliveries are due, so it claims now
	// instead of at its next poll. It never blocks.
	Wake()
}

// Waker is anything that can be told that new deliveries are due, such as a
// [Dispatcher]. The ingester wakes one after each commit.
type Waker interface {
	Wake()
}

// Breakers guards endpoints with circuit breakers. The dispatcher asks it
// before each attempt and tells it each outcome; the default implementation
// is breaker.Set, which persists state through a [BreakerStore].
type Breakers interface {
	// Allow reports whether an attempt to the endpoint may start at now, in
	// permit.Allowed. When it may not, retryAt is when the next attempt (a
	// probe) may be made. In the half-open state it allows exactly one
	// caller, the probe, across every dispatcher sharing the store; that
	// caller's permit carries the probe's token.
	Allow(ctx context.Context, endpoint EndpointID, now time.Time) (permit BreakerPermit, retryAt time.Time, err error)
	// Record reports the outcome of an attempt that Allow let through, with
	// the permit Allow gave it. Only the probe's own outcome (its permit)
	// settles a half-open breaker; outcomes of attempts allowed before the
	// breaker opened do not move it.
	Record(ctx context.Context, endpoint EndpointID, permit BreakerPermit, success bool, now time.Time) error
}

// BreakerPermit is Allow's answer for one attempt, handed back to Record
// with that attempt's outcome. The zero value is an ordinary attempt's
// permit without the allowance: Record counts it as an ordinary outcome.
type BreakerPermit struct {
	// Allowed reports whether the attempt may start.
	Allowed bool
	// Probe is non-zero when the attempt is the half-open breaker's probe:
	// it identifies that probe, so that Record settles the breaker with the
	// probe's outcome and with no other.
	Probe int64
}
