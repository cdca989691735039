package pgstore_test

import (
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// retentionBacklog is the seeded backlog of BenchmarkRetentionBatch: old
// events, each with one delivered delivery and one attempt (bodies of 512
// bytes, response bodies of 200), as bench/retention/seed.sql at a tenth.
const retentionBacklog = 100_000

// BenchmarkRetentionBatch measures one batch of 1,000 events on a
// retentionBacklog backlog: erase (bodies) or delete (events with their
// deliveries and attempts), each from the previous batch's cursor. Run it
// with -benchtime=Nx, N at most retentionBacklog/1000; ms/batch is the time
// a batch holds its locks and its connection.
func BenchmarkRetentionBatch(b *testing.B) {
	for _, op := range []string{"erase", "delete"} {
		b.Run(op, func(b *testing.B) {
			f := benchFixture(b)
			ctx := b.Context()
			for _, q := range []string{`INSERT INTO events (id, tenant_id, source_id, type, channels, idempotency_key, content_type, headers, body_hash, size, created_at, body)
SELECT 'evt_00' || lpad(i::text, 24, '0'), 'ten_seed', '', 'seed', '{}', NULL, 'application/json', '{}',
    '\x00', 512, now() - interval '100 days' + i * interval '1 ms', convert_to(repeat('x', 512), 'UTF8')
FROM generate_series(1, $1::int) AS i`,
				`INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, status, attempts, next_attempt_at, claimable_at,
    next_trigger, last_error, created_at, delivered_at)
SELECT 'dlv_00' || lpad(i::text, 24, '0'), 'ten_seed', 'evt_00' || lpad(i::text, 24, '0'), 'ep_seed', 'delivered', 1,
    now() - interval '100 days', now() - interval '100 days', 'scheduled', '', now() - interval '100 days', now() - interval '100 days'
FROM generate_series(1, $1::int) AS i`,
				`INSERT INTO attempts (id, delivery_id, event_id, endpoint_id, tenant_id, number, trigger, started_at, duration_ns,
    status_code, error_code, error, response_body)
SELECT 'att_00' || lpad(i::text, 24, '0'), 'dlv_00' || lpad(i::text, 24, '0'), 'evt_00' || lpad(i::text, 24, '0'), 'ep_seed', 'ten_seed',
    1, 'scheduled', now() - interval '100 days', 1000000, 200, '', '', convert_to(repeat('y', 200), 'UTF8')
FROM generate_series(1, $1::int) AS i`} {
				if _, err := f.s.Pool().Exec(ctx, q, retentionBacklog); err != nil {
					b.Fatal(err)
				}
			}
			for _, t := range []string{"events", "deliveries", "attempts"} {
				if _, err := f.s.Pool().Exec(ctx, "VACUUM ANALYZE "+t); err != nil {
					b.Fatal(err)
				}
			}
			now := time.Now()
			p := &kapsel.RetentionSweepParams{Before: now.Add(-30 * 24 * time.Hour), Now: now, Limit: 1000}
			b.ResetTimer()
			for b.Loop() {
				var res *kapsel.RetentionSweepResult
				var err error
				if op == "erase" {
					res, err = f.s.RetentionEraseBodies(ctx, p)
				} else {
					res, err = f.s.RetentionDeleteEvents(ctx, p)
				}
				if err != nil {
					b.Fatal(err)
				}
				if res.Events != 1000 {
					b.Fatalf("batch acted on %d events, want 1000 (is -benchtime above %d x?)", res.Events, retentionBacklog/1000)
				}
				p.From = res.Next
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/batch")
		})
	}
}
