package kapsel

import "time"

// Hooks receive what the core does, for metrics and tracing. Every field is
// optional; a nil hook is skipped. Hooks are called synchronously on hot
// paths, so they must be fast and must not block. The Prometheus adapter
// (metrics/prommetrics) is built on them.
type Hooks struct {
	// OnIngest is called once per ingest request, after it was answered.
	OnIngest func(IngestInfo)
	// OnAttempt is called once per delivery attempt, after its outcome was
	// recorded.
	OnAttempt func(AttemptInfo)
	// OnBreaker is called when an endpoint's circuit breaker changes state.
	OnBreaker func(BreakerInfo)
	// OnEndpointDisabled is called when the dispatcher disables an endpoint
	// (410 Gone, or failing for the auto-disable window).
	OnEndpointDisabled func(EndpointDisabledInfo)
	// OnRetention is called after each retention batch and each expunge,
	// once per table it removed rows from.
	OnRetention func(RetentionInfo)
	// OnRetentionOldest is called after each retention pass, once per
	// table, with the oldest row the table keeps.
	OnRetentionOldest func(RetentionOldestInfo)
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
