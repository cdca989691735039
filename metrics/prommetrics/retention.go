package prommetrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kapsel-dev/kapsel"
)

// retentionMetrics are the series of retention and expunges
// (docs/operations.md, "Retention"):
//
//	kapsel_retention_rows_removed_total{table,cause}   counter rows removed (bodies erased for table="event_bodies")
//	kapsel_retention_bytes_removed_total{table,cause}  counter bytes of bodies and response bodies removed
//	kapsel_retention_batch_duration_seconds            histogram one retention batch (one store transaction)
//	kapsel_retention_oldest_row_timestamp_seconds{table} gauge creation time of the oldest row kept (0: empty)
//
// table is event_bodies, events, deliveries, attempts or idempotency_keys;
// cause is expired (retention) or expunged (on request).
type retentionMetrics struct {
	rows, bytes *prometheus.CounterVec
	batch       prometheus.Histogram
	oldest      *prometheus.GaugeVec
}

func newRetentionMetrics(ns string, buckets []float64) *retentionMetrics {
	return &retentionMetrics{
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "retention_rows_removed_total",
			Help: "Rows removed by retention (cause expired) and expunges (cause expunged), per table; for event_bodies, bodies erased.",
		}, []string{"table", "cause"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "retention_bytes_removed_total",
			Help: "Bytes of event bodies and attempt response bodies removed, per table and cause.",
		}, []string{"table", "cause"}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "retention_batch_duration_seconds",
			Help: "Duration of one retention batch (one short store transaction).", Buckets: buckets,
		}),
		oldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "retention_oldest_row_timestamp_seconds",
			Help: "Creation time (Unix seconds) of the oldest row the table keeps, after the last retention pass; 0 when empty.",
		}, []string{"table"}),
	}
}

func (r *retentionMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{r.rows, r.bytes, r.batch, r.oldest}
}

// onRetention counts one table of a batch. A batch that removes events
// reports its deliveries and attempts too, with the same duration: the
// batch is observed once, on its first table.
func (r *retentionMetrics) onRetention(i kapsel.RetentionInfo) {
	cause := string(i.Cause)
	r.rows.WithLabelValues(string(i.Table), cause).Add(float64(i.Rows))
	if i.Bytes > 0 {
		r.bytes.WithLabelValues(string(i.Table), cause).Add(float64(i.Bytes))
	}
	if i.Table != kapsel.RetentionDeliveries && i.Table != kapsel.RetentionAttempts {
		r.batch.Observe(i.Duration.Seconds())
	}
}

func (r *retentionMetrics) onOldest(i kapsel.RetentionOldestInfo) {
	v := 0.0
	if !i.Oldest.IsZero() {
		v = float64(i.Oldest.UnixMicro()) / 1e6
	}
	r.oldest.WithLabelValues(string(i.Table)).Set(v)
}
