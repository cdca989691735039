package prommetrics

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kapsel-dev/kapsel"
)

// StatsSource is the part of a [kapsel.Store] the queue collector reads.
type StatsSource interface {
	DeliveryStats(ctx context.Context, params *kapsel.DeliveryStatsParams) (*kapsel.DeliveryStats, error)
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

// queueCollector reads the depth of the queue's live part from the store,
// so the numbers are the database's, shared by every node, not this
// process's. One read serves every scrape for StatsCacheTTL: concurrent
// scrapes wait for the read under way rather than each starting one, and a
// failed read is not retried before the period ends either, so scrapers,
// however many and however frequent, cost the database at most one bounded
// read (DeliveryStats with DepthLimit, under StatsTimeout) per period.
type queueCollector struct {
	cfg    *Config
	depth  *prometheus.Desc
	capped *prometheus.Desc
	oldest *prometheus.Desc
	errors prometheus.Counter

	mu     sync.Mutex // held during a read: one read at a time
	readAt time.Time  // when the cached answer was read; zero before the first
	stats  *kapsel.DeliveryStats
	err    error
}

// queueStatuses are the statuses whose depth is exported.
var queueStatuses = []kapsel.DeliveryStatus{kapsel.DeliveryPending, kapsel.DeliveryDelivering}

func newQueueCollector(cfg *Config) *queueCollector {
	ns := cfg.Namespace
	return &queueCollector{
		cfg: cfg,
		depth: prometheus.NewDesc(prometheus.BuildFQName(ns, "queue", "depth"),
			"Pending and delivering deliveries, read from the store; a count stops at the depth limit (see queue_depth_capped).",
			[]string{"status"}, nil),
		capped: prometheus.NewDesc(prometheus.BuildFQName(ns, "queue", "depth_capped"),
			"1 when queue_depth stopped at the depth limit: there are at least that many deliveries, maybe more.",
			[]string{"status"}, nil),
		oldest: prometheus.NewDesc(prometheus.BuildFQName(ns, "queue", "oldest_due_age_seconds"),
			"How long the due delivery a claim would take first has been due; 0 when none is.", nil, nil),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: "queue", Name: "stats_errors_total",
			Help: "Store reads for queue metrics that failed.",
		}),
	}
}

// Describe implements prometheus.Collector.
func (q *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- q.depth
	ch <- q.capped
	ch <- q.oldest
	q.errors.Describe(ch)
}

// read returns the cached stats, reading them again when they are older
// than StatsCacheTTL.
func (q *queueCollector) read(now time.Time) (*kapsel.DeliveryStats, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.readAt.IsZero() && now.Sub(q.readAt) < q.cfg.StatsCacheTTL && !now.Before(q.readAt) {
		return q.stats, q.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), q.cfg.StatsTimeout)
	defer cancel()
	q.stats, q.err = q.cfg.Store.DeliveryStats(ctx, &kapsel.DeliveryStatsParams{Limit: q.cfg.DepthLimit, Now: now})
	q.readAt = now
	if q.err != nil {
		q.errors.Inc()
		q.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "reading queue stats for metrics", slog.String("error", q.err.Error()))
	}
	return q.stats, q.err
}

// Collect implements prometheus.Collector. A failed store read omits the
// queue series (rather than failing the whole scrape) and increments
// kapsel_queue_stats_errors_total once per read.
func (q *queueCollector) Collect(ch chan<- prometheus.Metric) {
	defer q.errors.Collect(ch)
	now := q.cfg.Clock.Now()
	st, err := q.read(now)
	if err != nil {
		return
	}
	for _, s := range queueStatuses {
		ch <- prometheus.MustNewConstMetric(q.depth, prometheus.GaugeValue, float64(st.Count[s]), string(s))
		capped := 0.0
		if st.Capped[s] {
			capped = 1
		}
		ch <- prometheus.MustNewConstMetric(q.capped, prometheus.GaugeValue, capped, string(s))
	}
	age := 0.0
	if !st.OldestDue.IsZero() && now.After(st.OldestDue) {
		age = now.Sub(st.OldestDue).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(q.oldest, prometheus.GaugeValue, age)
}
