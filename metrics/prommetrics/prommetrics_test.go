package prommetrics_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/kapseltest"
	"github.com/kapsel-dev/kapsel/metrics/prommetrics"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

func setup(t *testing.T, cfg *prommetrics.Config) (*prometheus.Registry, kapsel.Hooks) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := prommetrics.New(reg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return reg, m.Hooks()
}

// value returns the value of the series name{labels} in reg, or -1 when it
// is absent. Histograms report their sample count.
func value(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return -1
}

func TestIngestAndAttemptCounters(t *testing.T) {
	t.Parallel()
	reg, h := setup(t, nil)
	for i := range 7 {
		h.OnIngest(kapsel.IngestInfo{Status: 202, Deliveries: i % 3, Duration: 3 * time.Millisecond}) // 0+1+2+0+1+2+0
	}
	for range 2 {
		h.OnIngest(kapsel.IngestInfo{Status: 200, Duplicate: true, Duration: time.Millisecond})
	}
	// A verified Slack url_verification is answered 200 and stores nothing.
	h.OnIngest(kapsel.IngestInfo{Status: 200, Duration: time.Millisecond})
	for range 3 {
		h.OnIngest(kapsel.IngestInfo{Status: 401, Code: kapsel.CodeSignature})
	}
	h.OnIngest(kapsel.IngestInfo{Status: 503, Code: kapsel.CodeStorageUnavailable})
	h.OnIngest(kapsel.IngestInfo{Status: 418, Code: kapsel.Code("E9999")})

	for range 5 {
		h.OnAttempt(kapsel.AttemptInfo{Outcome: kapsel.OutcomeDelivered, StatusCode: 200, Duration: 4 * time.Millisecond, EndToEnd: 9 * time.Millisecond})
	}
	for range 4 {
		h.OnAttempt(kapsel.AttemptInfo{Outcome: kapsel.OutcomeRetry, StatusCode: 500, ErrorCode: kapsel.CodeAttemptStatus})
	}
	h.OnAttempt(kapsel.AttemptInfo{Outcome: kapsel.OutcomeFailed, ErrorCode: kapsel.CodeAttemptTimeout})
	h.OnAttempt(kapsel.AttemptInfo{Outcome: kapsel.AttemptOutcome("weird")})

	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"kapsel_ingest_requests_total", map[string]string{"status": "202", "code": ""}, 7},
		{"kapsel_ingest_requests_total", map[string]string{"status": "200", "code": ""}, 3},
		{"kapsel_ingest_requests_total", map[string]string{"status": "401", "code": "E1001"}, 3},
		{"kapsel_ingest_requests_total", map[string]string{"status": "503", "code": "E3001"}, 1},
		{"kapsel_ingest_requests_total", map[string]string{"status": "418", "code": "other"}, 1},
		{"kapsel_ingest_duration_seconds", nil, 15},
		{"kapsel_events_ingested_total", nil, 7},
		{"kapsel_deliveries_created_total", nil, 6},
		{"kapsel_deliveries_ended_total", map[string]string{"status": "delivered"}, 5},
		{"kapsel_deliveries_ended_total", map[string]string{"status": "failed"}, 1},
		{"kapsel_attempts_total", map[string]string{"outcome": "delivered", "code": ""}, 5},
		{"kapsel_attempts_total", map[string]string{"outcome": "retry", "code": "E2005"}, 4},
		{"kapsel_attempts_total", map[string]string{"outcome": "failed", "code": "E2001"}, 1},
		{"kapsel_attempts_total", map[string]string{"outcome": "other"}, 1},
		{"kapsel_attempt_duration_seconds", map[string]string{"outcome": "delivered"}, 5},
		{"kapsel_attempt_duration_seconds", map[string]string{"outcome": "retry"}, 4},
		{"kapsel_delivery_latency_seconds", nil, 5},
	} {
		if got := value(t, reg, tc.name, tc.labels); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	// The latency histogram holds the observed values: 5 × 9 ms.
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "kapsel_delivery_latency_seconds" {
			if sum := mf.GetMetric()[0].GetHistogram().GetSampleSum(); sum < 0.0449 || sum > 0.0451 {
				t.Fatalf("latency sum %v, want 0.045", sum)
			}
		}
	}
	// No series is left without help text or with a bad name.
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", err, problems)
	}
}

func TestBreakerStates(t *testing.T) {
	t.Parallel()
	reg, h := setup(t, nil)
	a, b, c := kapsel.NewEndpointID(), kapsel.NewEndpointID(), kapsel.NewEndpointID()
	h.OnBreaker(context.Background(), kapsel.BreakerInfo{EndpointID: a, From: kapsel.BreakerClosed, To: kapsel.BreakerOpen})
	h.OnBreaker(context.Background(), kapsel.BreakerInfo{EndpointID: b, From: kapsel.BreakerClosed, To: kapsel.BreakerOpen})
	h.OnBreaker(context.Background(), kapsel.BreakerInfo{EndpointID: c, From: kapsel.BreakerClosed, To: kapsel.BreakerOpen})
	h.OnBreaker(context.Background(), kapsel.BreakerInfo{EndpointID: a, From: kapsel.BreakerOpen, To: kapsel.BreakerHalfOpen})
	h.OnBreaker(context.Background(), kapsel.BreakerInfo{EndpointID: b, From: kapsel.BreakerOpen, To: kapsel.BreakerHalfOpen})
	h.OnBreaker(context.Background(), kapsel.BreakerInfo{EndpointID: b, From: kapsel.BreakerHalfOpen, To: kapsel.BreakerClosed})
	h.OnEndpointDisabled(context.Background(), kapsel.EndpointDisabledInfo{EndpointID: c, Reason: kapsel.DisabledFailing})
	h.OnEndpointDisabled(context.Background(), kapsel.EndpointDisabledInfo{EndpointID: c, Reason: kapsel.DisabledGone})
	d := kapsel.NewEndpointID() // an unknown state is not tracked
	h.OnBreaker(context.Background(), kapsel.BreakerInfo{EndpointID: d, From: kapsel.BreakerClosed, To: kapsel.BreakerStatus("weird")})

	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"kapsel_breakers", map[string]string{"state": "open"}, 1},
		{"kapsel_breakers", map[string]string{"state": "half_open"}, 1},
		{"kapsel_breaker_transitions_total", map[string]string{"to": "open"}, 3},
		{"kapsel_breaker_transitions_total", map[string]string{"to": "half_open"}, 2},
		{"kapsel_breaker_transitions_total", map[string]string{"to": "closed"}, 1},
		{"kapsel_endpoints_disabled_total", map[string]string{"reason": "failing"}, 1},
		{"kapsel_endpoints_disabled_total", map[string]string{"reason": "gone"}, 1},
	} {
		if got := value(t, reg, tc.name, tc.labels); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	// No id appears in any label, whatever the hooks were told.
	h.OnIngest(kapsel.IngestInfo{SourceID: kapsel.NewSourceID(), TenantID: kapsel.NewTenantID(), Status: 202, Deliveries: 1})
	h.OnAttempt(kapsel.AttemptInfo{EndpointID: a, EventID: kapsel.NewEventID(), DeliveryID: kapsel.NewDeliveryID(),
		EventType: "invoice.paid", Outcome: kapsel.OutcomeDelivered})
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				for _, prefix := range []string{"ep_", "src_", "ten_", "evt_", "dlv_", "invoice"} {
					if strings.HasPrefix(lp.GetValue(), prefix) {
						t.Fatalf("%s has a label %s=%q", mf.GetName(), lp.GetName(), lp.GetValue())
					}
				}
			}
		}
	}
}

func TestQueueCollector(t *testing.T) {
	t.Parallel()
	store := memstore.New()
	clock := kapseltest.NewClock(time.Time{})
	reg, _ := setup(t, &prommetrics.Config{Store: store, Clock: clock})
	if got := value(t, reg, "kapsel_queue_depth", map[string]string{"status": "pending"}); got != 0 {
		t.Fatalf("empty queue depth %v", got)
	}
	if got := value(t, reg, "kapsel_queue_oldest_due_age_seconds", nil); got != 0 {
		t.Fatalf("empty queue age %v", got)
	}

	// Three events fanned out to two endpoints each: the queue holds six
	// deliveries.
	fillQueue(t, store, 3, 2, clock.Now())
	clock.Advance(42 * time.Second)
	if got := value(t, reg, "kapsel_queue_depth", map[string]string{"status": "pending"}); got != 6 {
		t.Fatalf("pending depth %v, want 6 (3 events × 2 endpoints)", got)
	}
	// The history is not read from the store: no delivered or failed depth.
	for _, status := range []string{"delivered", "failed"} {
		if got := value(t, reg, "kapsel_queue_depth", map[string]string{"status": status}); got != -1 {
			t.Fatalf("%s depth %v, want no such series", status, got)
		}
	}
	if got := value(t, reg, "kapsel_queue_depth_capped", map[string]string{"status": "pending"}); got != 0 {
		t.Fatalf("pending depth capped %v, want 0", got)
	}
	if got := value(t, reg, "kapsel_queue_oldest_due_age_seconds", nil); got != 42 {
		t.Fatalf("oldest due age %v, want 42", got)
	}
}

type failingStats struct{}

func (failingStats) DeliveryStats(context.Context, *kapsel.DeliveryStatsParams) (*kapsel.DeliveryStats, error) {
	return nil, errors.New("connection refused")
}

func TestQueueCollectorStoreDown(t *testing.T) {
	t.Parallel()
	clock := kapseltest.NewClock(time.Time{})
	reg, h := setup(t, &prommetrics.Config{Store: failingStats{}, Clock: clock})
	h.OnIngest(kapsel.IngestInfo{Status: 202})
	// The scrape still succeeds, without the queue series.
	if got := value(t, reg, "kapsel_queue_depth", map[string]string{"status": "pending"}); got != -1 {
		t.Fatalf("queue depth present while the store is down: %v", got)
	}
	if got := value(t, reg, "kapsel_events_ingested_total", nil); got != 1 {
		t.Fatalf("other series missing: %v", got)
	}
	// One failed read per cache period, however many scrapes.
	if got := value(t, reg, "kapsel_queue_stats_errors_total", nil); got != 1 {
		t.Fatalf("stats errors %v, want 1", got)
	}
	clock.Advance(prommetrics.DefaultStatsCacheTTL)
	if got := value(t, reg, "kapsel_queue_stats_errors_total", nil); got != 2 {
		t.Fatalf("stats errors after the cache period %v, want 2", got)
	}
}

func TestRegistries(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	if _, err := prommetrics.New(reg, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := prommetrics.New(reg, nil); err == nil {
		t.Fatal("registering twice on one registry should fail")
	}
	// Another namespace on the same registry is fine; the global registry is untouched.
	if _, err := prommetrics.New(reg, &prommetrics.Config{Namespace: "other"}); err != nil {
		t.Fatal(err)
	}
	mfs, _ := prometheus.DefaultGatherer.Gather()
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "kapsel_") {
			t.Fatalf("%s registered globally", mf.GetName())
		}
	}
}
