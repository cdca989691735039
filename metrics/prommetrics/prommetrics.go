// Package prommetrics exports Kapsel's metrics to Prometheus (docs/operations.md).
//
// The core never imports Prometheus: it reports what it does through
// [kapsel.Hooks]. [New] registers the series on a registry the application
// owns — never the global one — and [Metrics.Hooks] returns the hooks to put
// in the ingest, delivery and breaker configurations. With [Config.Store]
// set, queue depth and the age of the oldest due delivery are read from the
// store at scrape time. The queue is made of deliveries — one per event and
// endpoint it fans out to — so depths, attempts and latencies count
// deliveries, while kapsel_events_ingested_total counts events.
//
//	reg := prometheus.NewRegistry()
//	m, err := prommetrics.New(reg, &prommetrics.Config{Store: store})
//	hooks := m.Hooks()
//	ing, err := ingest.New(store, &ingest.Config{Hooks: hooks})
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// # Series
//
//	kapsel_ingest_requests_total{status,code}     counter   ingest requests (and sends) by HTTP status and error code
//	kapsel_ingest_duration_seconds                histogram time to answer an ingest request
//	kapsel_events_ingested_total                  counter   new events stored by ingest and sends (duplicates excluded)
//	kapsel_deliveries_created_total               counter   deliveries those events were fanned out to
//	kapsel_deliveries_ended_total{status}         counter   deliveries that ended delivered or failed, by this process
//	kapsel_attempts_total{outcome,code}           counter   delivery attempts by outcome and E2xxx code
//	kapsel_attempt_duration_seconds{outcome}      histogram duration of one attempt
//	kapsel_delivery_latency_seconds               histogram delivery creation (its event's) → successful answer
//	kapsel_breaker_transitions_total{to}          counter   circuit breaker transitions
//	kapsel_breakers{state}                        gauge     endpoints per breaker state, as seen by this process
//	kapsel_endpoints_disabled_total{reason}       counter   automatic endpoint disables
//	kapsel_queue_depth{status}                    gauge     pending and delivering deliveries (from the store), up to DepthLimit
//	kapsel_queue_depth_capped{status}             gauge     1 when that count stopped at DepthLimit
//	kapsel_queue_oldest_due_age_seconds           gauge     how long the due delivery a claim would take first has waited
//	kapsel_queue_stats_errors_total               counter   failed store reads
//	kapsel_retention_rows_removed_total{table,cause}      counter   rows removed by retention and expunges, per table
//	kapsel_retention_bytes_removed_total{table,cause}     counter   bytes of bodies and response bodies removed
//	kapsel_retention_batch_duration_seconds               histogram one retention batch (one store transaction)
//	kapsel_retention_oldest_row_timestamp_seconds{table}  gauge     creation time of the oldest row kept
//
// Since 0.2 (fan-out) the series keep their 0.1 names: what 0.1 counted
// per event (queue depth, attempts, latency) it now counts per delivery,
// and with one endpoint per event, as every 0.1 event had, the numbers are
// the same. kapsel_deliveries_created_total and
// kapsel_deliveries_ended_total are new. No series was renamed.
//
// # Cost of a scrape
//
// The queue series cost one [kapsel.DeliveryStore.DeliveryStats] read per
// StatsCacheTTL (5 s), shared by every scrape in that period, concurrent ones
// included. That read counts only the queue's live part (pending and
// delivering deliveries) and stops at DepthLimit (10,000) deliveries per
// status, so it costs the same with an empty table as with millions of
// delivered ones or a paused endpoint's backlog of any size; past the
// limit, kapsel_queue_depth reads the limit and kapsel_queue_depth_capped 1.
// Delivered and failed totals are not read from the store (that read would
// grow with the history): kapsel_deliveries_ended_total counts them, per
// process (as do kapsel_attempts_total{outcome="delivered"} and
// {outcome="failed"}).
//
// # Cardinality
//
// No label carries a source, endpoint, tenant, event or delivery id: every label takes a
// handful of values (HTTP statuses, documented codes, outcomes, states), so
// the number of series does not grow with traffic or tenants. Breaker states
// are exported as counts per state; kapsel_breakers reflects the
// transitions this process has observed since it started (endpoints whose
// breaker opened before that count as closed until their next transition).
package prommetrics

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kapsel-dev/kapsel"
)

// Defaults of [Config].
const (
	DefaultNamespace     = "kapsel"
	DefaultStatsTimeout  = 2 * time.Second
	DefaultStatsCacheTTL = 5 * time.Second
	DefaultDepthLimit    = kapsel.DefaultStatsLimit
)

// DefaultDurationBuckets are the buckets, in seconds, of the ingest and
// attempt duration and delivery latency histograms: 1 ms to 2 min, dense
// where docs/benchmarks.md's targets lie (10–50 ms).
var DefaultDurationBuckets = []float64{
	.001, .0025, .005, .01, .015, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120,
}

// Config configures the metrics. The zero value works.
type Config struct {
	// Namespace prefixes every series. Defaults to "kapsel".
	Namespace string
	// Store, when set, is read for queue depth and the age of the oldest due
	// delivery. Defaults to none: those series are absent.
	Store StatsSource
	// StatsTimeout bounds one store read. Defaults to 2 s.
	StatsTimeout time.Duration
	// StatsCacheTTL is how long one store read serves scrapes. Defaults to
	// 5 s (DefaultStatsCacheTTL).
	StatsCacheTTL time.Duration
	// DepthLimit is where queue depth counts stop (DeliveryStatsParams.Limit):
	// the bound on what one read costs. Defaults to 10,000
	// (DefaultDepthLimit).
	DepthLimit int
	// Clock is the source of time for ages. Defaults to the system clock.
	Clock kapsel.Clock
	// Buckets of the duration histograms, in seconds. Defaults to
	// DefaultDurationBuckets.
	Buckets []float64
	// Logger receives failed store reads. Defaults to slog.Default().
	Logger *slog.Logger
}

// Metrics holds the registered series; feed it through [Metrics.Hooks].
type Metrics struct {
	ingestRequests    *prometheus.CounterVec
	ingestDuration    prometheus.Histogram
	eventsIngested    prometheus.Counter
	deliveriesCreated prometheus.Counter
	deliveriesEnded   *prometheus.CounterVec
	attempts          *prometheus.CounterVec
	attemptDuration   *prometheus.HistogramVec
	deliveryLatency   prometheus.Histogram
	breakerTransits   *prometheus.CounterVec
	endpointsDisable  *prometheus.CounterVec
	breakers          *breakerTracker
	retention         *retentionMetrics
}

// New creates the series and registers them, and the store collector when
// cfg.Store is set, on reg. It fails when a series is already registered.
// cfg may be nil.
func New(reg prometheus.Registerer, cfg *Config) (*Metrics, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	if c.StatsTimeout <= 0 {
		c.StatsTimeout = DefaultStatsTimeout
	}
	if c.StatsCacheTTL <= 0 {
		c.StatsCacheTTL = DefaultStatsCacheTTL
	}
	if c.DepthLimit <= 0 {
		c.DepthLimit = DefaultDepthLimit
	}
	if c.Clock == nil {
		c.Clock = kapsel.SystemClock()
	}
	if len(c.Buckets) == 0 {
		c.Buckets = DefaultDurationBuckets
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	ns := c.Namespace
	m := &Metrics{
		ingestRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "ingest_requests_total",
			Help: "Ingest requests by HTTP status and error code (empty on success).",
		}, []string{"status", "code"}),
		ingestDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "ingest_duration_seconds",
			Help: "Time to answer an ingest request, commit included.", Buckets: c.Buckets,
		}),
		eventsIngested: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "events_ingested_total",
			Help: "New events stored by ingest and sends (idempotent duplicates excluded).",
		}),
		deliveriesCreated: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "deliveries_created_total",
			Help: "Deliveries created with new events: one per event and endpoint it was fanned out to.",
		}),
		deliveriesEnded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "deliveries_ended_total",
			Help: "Deliveries whose attempt by this process ended them, by status (delivered, failed).",
		}, []string{"status"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "attempts_total",
			Help: "Attempts of deliveries by outcome and error code (empty on success).",
		}, []string{"outcome", "code"}),
		attemptDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "attempt_duration_seconds",
			Help: "Duration of one attempt of a delivery.", Buckets: c.Buckets,
		}, []string{"outcome"}),
		deliveryLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "delivery_latency_seconds",
			Help: "End-to-end latency: a delivery's creation (with its event) to the destination's successful answer.", Buckets: c.Buckets,
		}),
		breakerTransits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "breaker_transitions_total",
			Help: "Circuit breaker transitions by the state entered.",
		}, []string{"to"}),
		endpointsDisable: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "endpoints_disabled_total",
			Help: "Endpoints disabled automatically, by reason.",
		}, []string{"reason"}),
		breakers:  newBreakerTracker(ns),
		retention: newRetentionMetrics(ns, c.Buckets),
	}
	cs := []prometheus.Collector{
		m.ingestRequests, m.ingestDuration, m.eventsIngested, m.deliveriesCreated, m.deliveriesEnded, m.attempts, m.attemptDuration,
		m.deliveryLatency, m.breakerTransits, m.endpointsDisable, m.breakers,
	}
	cs = append(cs, m.retention.collectors()...)
	if c.Store != nil {
		cs = append(cs, newQueueCollector(&c))
	}
	for _, col := range cs {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Hooks returns the hooks that feed these metrics. Each is cheap and never
// blocks: a counter increment or a histogram observation.
func (m *Metrics) Hooks() kapsel.Hooks {
	return kapsel.Hooks{
		OnIngest:           m.onIngest,
		OnAttempt:          m.onAttempt,
		OnBreaker:          m.onBreaker,
		OnEndpointDisabled: m.onEndpointDisabled,
		OnRetention:        m.retention.onRetention,
		OnRetentionOldest:  m.retention.onOldest,
	}
}
