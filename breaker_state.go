package kapsel

import "time"

// BreakerStatus is the state of an endpoint's circuit breaker.
type BreakerStatus string

// Breaker statuses.
const (
	BreakerClosed   BreakerStatus = "closed"    // deliveries flow
	BreakerOpen     BreakerStatus = "open"      // no attempts until OpenUntil
	BreakerHalfOpen BreakerStatus = "half_open" // one probe attempt decides
)

// BreakerState is the persisted state of one endpoint's circuit breaker,
// shared by every dispatcher on the same store. It changes only on breaker
// transitions, never on every attempt.
type BreakerState struct {
	EndpointID EndpointID
	Status     BreakerStatus
	// Trips counts consecutive openings without a success in between; it
	// grows the cool-down.
	Trips int
	// OpenUntil is when an open breaker lets one probe through.
	OpenUntil time.Time
	// ProbeUntil: while half-open, the probe belongs to whoever set it until
	// then; after it, another dispatcher may take the probe over.
	ProbeUntil time.Time
	// FailingSince is when the current run of failures began; zero after a
	// success. It drives the auto-disable.
	FailingSince  time.Time
	LastSuccessAt time.Time
	LastFailureAt time.Time
	// Version is incremented by every save; saves are compare-and-set on it.
	Version   int64
	UpdatedAt time.Time
}
