package prommetrics

import (
	"context"
	"net/http"
	"strconv"

	"github.com/kapsel-dev/kapsel"
)

func (m *Metrics) onIngest(info kapsel.IngestInfo) {
	m.ingestRequests.WithLabelValues(strconv.Itoa(info.Status), boundedCode(info.Code)).Inc()
	m.ingestDuration.Observe(info.Duration.Seconds())
	// 202 is a new event; a duplicate and a verified Slack challenge (which
	// stores nothing) are answered 200.
	if info.Status == http.StatusAccepted {
		m.eventsIngested.Inc()
		m.deliveriesCreated.Add(float64(max(info.Deliveries, 0)))
	}
}

func (m *Metrics) onAttempt(info kapsel.AttemptInfo) {
	outcome := boundedOutcome(info.Outcome)
	m.attempts.WithLabelValues(outcome, boundedCode(info.ErrorCode)).Inc()
	m.attemptDuration.WithLabelValues(outcome).Observe(info.Duration.Seconds())
	switch info.Outcome {
	case kapsel.OutcomeDelivered:
		m.deliveriesEnded.WithLabelValues(string(kapsel.DeliveryDelivered)).Inc()
		if info.EndToEnd > 0 {
			m.deliveryLatency.Observe(info.EndToEnd.Seconds())
		}
	case kapsel.OutcomeFailed:
		m.deliveriesEnded.WithLabelValues(string(kapsel.DeliveryFailed)).Inc()
	}
}

func (m *Metrics) onBreaker(_ context.Context, info kapsel.BreakerInfo) {
	to := boundedBreaker(info.To)
	m.breakerTransits.WithLabelValues(to).Inc()
	m.breakers.set(info.EndpointID, kapsel.BreakerStatus(to))
}

func (m *Metrics) onEndpointDisabled(_ context.Context, info kapsel.EndpointDisabledInfo) {
	reason := string(info.Reason)
	switch info.Reason {
	case kapsel.DisabledGone, kapsel.DisabledFailing, kapsel.DisabledManual:
	default:
		reason = "other"
	}
	m.endpointsDisable.WithLabelValues(reason).Inc()
}

// The bounded* functions keep label values within documented sets, so a
// bug or a custom component can never blow up the number of series.

func boundedCode(c kapsel.Code) string {
	if c == "" || c.Known() {
		return string(c)
	}
	return "other"
}

func boundedOutcome(o kapsel.AttemptOutcome) string {
	switch o {
	case kapsel.OutcomeDelivered, kapsel.OutcomeRetry, kapsel.OutcomeFailed, kapsel.OutcomeDisabled, kapsel.OutcomeLeaseLost:
		return string(o)
	}
	return "other"
}

func boundedBreaker(s kapsel.BreakerStatus) string {
	switch s {
	case kapsel.BreakerClosed, kapsel.BreakerOpen, kapsel.BreakerHalfOpen:
		return string(s)
	}
	return "other"
}
