package prommetrics

import (
	"context"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kapsel-dev/kapsel"
)

// StatsSource is the part of a [kapsel.Store] the queue collector reads.
type StatsSource interface {
	EventStats(ctx context.Context, params *kapsel.EventStatsParams) (*kapsel.EventStats, error)
}

// breakerTracker counts endpoints per breaker state from the transitions it
// is told about. It holds one entry per endpoint whose breaker is not
// closed, so its memory is bounded by the number of failing endpoints.
type breakerTracker struct {
	desc *prometheus.Desc
	mu   sync.Mutex
	open map[kapsel.EndpointID]kapsel.BreakerStatus
}

func newBreakerTracker(ns string) *breakerTracker {
	return &breakerTracker{
		desc: prometheus.NewDesc(prometheus.BuildFQName(ns, "", "breakers"),
			"Endpoints whose circuit breaker is in each state, as observed by this process; closed counts only endpoints that transitioned.",
			[]string{"state"}, nil),
		open: map[kapsel.EndpointID]kapsel.BreakerStatus{},
	}
}

func (b *breakerTracker) set(id kapsel.EndpointID, s kapsel.BreakerStatus) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s != kapsel.BreakerOpen && s != kapsel.BreakerHalfOpen {
		delete(b.open, id) // closed, or a state no series counts
		return
	}
	b.open[id] = s
}

// Describe implements prometheus.Collector.
func (b *breakerTracker) Describe(ch chan<- *prometheus.Desc) { ch <- b.desc }

// Collect implements prometheus.Collector.
func (b *breakerTracker) Collect(ch chan<- prometheus.Metric) {
	b.mu.Lock()
	counts := map[kapsel.BreakerStatus]int{}
	for _, s := range b.open {
		counts[s]++
	}
	b.mu.Unlock()
	for _, s := range []kapsel.BreakerStatus{kapsel.BreakerOpen, kapsel.BreakerHalfOpen} {
		ch <- prometheus.MustNewConstMetric(b.desc, prometheus.GaugeValue, float64(counts[s]), string(s))
	}
}

// queueCollector reads queue depths from the store at scrape time, so the
// numbers are the database's, shared by every node, not this process's.
type queueCollector struct {
	cfg    *Config
	depth  *prometheus.Desc
	oldest *prometheus.Desc
	errors prometheus.Counter
}

func newQueueCollector(cfg *Config) *queueCollector {
	ns := cfg.Namespace
	return &queueCollector{
		cfg: cfg,
		depth: prometheus.NewDesc(prometheus.BuildFQName(ns, "queue", "depth"),
			"Events per status, read from the store at scrape time.", []string{"status"}, nil),
		oldest: prometheus.NewDesc(prometheus.BuildFQName(ns, "queue", "oldest_due_age_seconds"),
			"How long the earliest due pending event has been due; 0 when none is.", nil, nil),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: "queue", Name: "stats_errors_total",
			Help: "Store reads for queue metrics that failed at scrape time.",
		}),
	}
}

// Describe implements prometheus.Collector.
func (q *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- q.depth
	ch <- q.oldest
	q.errors.Describe(ch)
}

// Collect implements prometheus.Collector. A failed store read omits the
// queue series from this scrape (rather than failing the whole scrape) and
// increments kapsel_queue_stats_errors_total.
func (q *queueCollector) Collect(ch chan<- prometheus.Metric) {
	defer q.errors.Collect(ch)
	ctx, cancel := context.WithTimeout(context.Background(), q.cfg.StatsTimeout)
	defer cancel()
	now := q.cfg.Clock.Now()
	st, err := q.cfg.Store.EventStats(ctx, &kapsel.EventStatsParams{Now: now})
	if err != nil {
		q.errors.Inc()
		q.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "reading queue stats for metrics", slog.String("error", err.Error()))
		return
	}
	for _, s := range []kapsel.EventStatus{kapsel.EventPending, kapsel.EventDelivering, kapsel.EventDelivered, kapsel.EventFailed} {
		ch <- prometheus.MustNewConstMetric(q.depth, prometheus.GaugeValue, float64(st.Count[s]), string(s))
	}
	age := 0.0
	if !st.OldestDue.IsZero() && now.After(st.OldestDue) {
		age = now.Sub(st.OldestDue).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(q.oldest, prometheus.GaugeValue, age)
}
