package kapsel

import (
	"context"
	"net/http"
)

// Version is Kapsel's version, sent in the User-Agent of every delivery.
const Version = "0.1.0"

// Ingester accepts webhooks: it verifies them, stores them durably and only
// then answers. The default implementation is ingest.Ingester; its
// http.Handler serves POST /ingest/{endpoint_id}.
type Ingester interface {
	// Ingest verifies and stores one webhook. It returns only after the event
	// is committed. Errors are *Error values with a documented Code
	// (CodeSignature, CodeUnknownEndpoint, CodeStorageUnavailable, …).
	Ingest(ctx context.Context, req *IngestRequest) (*IngestResult, error)
}

// IngestRequest is one inbound webhook.
type IngestRequest struct {
	// EndpointID is as received, not yet validated.
	EndpointID string
	Header     http.Header
	// Body is the raw request body.
	Body []byte
}

// IngestResult is what Ingest stored.
type IngestResult struct {
	Event *Event
	// Duplicate is true when the idempotency key was already used, with the
	// same body, within its window; Event is then the first event.
	Duplicate bool
}

// Dispatcher delivers stored events to their destinations with retries,
// backoff and circuit breaking. The default implementation is
// delivery.Dispatcher.
type Dispatcher interface {
	// Start begins claiming and delivering in the background. It returns
	// once the dispatcher runs; ctx bounds only the start-up.
	Start(ctx context.Context) error
	// Stop stops claiming, lets in-flight attempts finish until ctx ends,
	// then releases the remaining leases. Stopping twice is safe.
	Stop(ctx context.Context) error
	// Wake tells the dispatcher that new events are due, so it claims now
	// instead of at its next poll. It never blocks.
	Wake()
}

// Waker is anything that can be told that new events are due, such as a
// [Dispatcher]. The ingester wakes one after each commit.
type Waker interface {
	Wake()
}
