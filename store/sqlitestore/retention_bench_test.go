package sqlitestore_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// BenchmarkRetentionBacklog measures how long retention holds SQLite's
// single writer: a backlog of 100,000 delivered events (512-byte bodies,
// one delivery and one attempt each) is removed in batches of 1,000 or 250,
// paced as the runner paces them with Share 0.25 (benchShare: after a batch
// that took d, a pause of 3d + 10 ms), while a writer commits batches of 20
// new events every 2 ms, as ingest would. It reports the longest and the
// mean batch, the removal rate, and the inserts' commit latency (p99, max)
// before and during the removal.
//
//	go test -run '^$' -bench BenchmarkRetentionBacklog -benchtime 1x ./store/sqlitestore/
func BenchmarkRetentionBacklog(b *testing.B) {
	for _, batch := range []int{1000, 250} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchRetentionBacklog(b, batch) })
	}
}

// benchShare is the Share the benchmark paces its batches with: 0.25, the
// former default, not retention.DefaultShare (0.05). It is kept so that
// the results recorded in docs/benchmarks.md stay comparable, and the
// writer's latency it shows is an upper bound for the default's longer
// pauses.
const benchShare = 0.25

// pause is the runner's pause after a batch that took d at benchShare:
// d·(1/Share − 1) plus retention.DefaultBatchPause (10 ms).
func pause(d time.Duration) time.Duration {
	return time.Duration(float64(d)*(1/benchShare-1)) + 10*time.Millisecond
}

func benchRetentionBacklog(b *testing.B, batch int) {
	const backlog = 100_000
	ctx := b.Context()
	s := openBench(b)
	sd := seed(b, s, 1, backlog)
	for done := 0; done < backlog; {
		ds, err := s.DeliveryClaim(ctx, &kapsel.DeliveryClaimParams{Limit: 1000, LeaseDuration: time.Hour, Now: base})
		if err != nil || len(ds) == 0 {
			b.Fatalf("claim: %v, %d", err, len(ds))
		}
		cs := make([]kapsel.DeliveryCompletion, len(ds))
		for i, d := range ds {
			cs[i] = kapsel.DeliveryCompletion{DeliveryID: d.ID, LeaseToken: d.LeaseToken, Status: kapsel.DeliveryDelivered,
				Attempt: kapsel.Attempt{Number: 1, StatusCode: 200, StartedAt: base, ResponseBody: make([]byte, 200)}}
		}
		if _, err := s.DeliveryComplete(ctx, &kapsel.DeliveryCompleteParams{Completions: cs, Now: base}); err != nil {
			b.Fatal(err)
		}
		done += len(ds)
	}
	now := base.Add(100 * 24 * time.Hour)

	// ingest commits batches of 20 new events every 2 ms until stop, and
	// returns each commit's latency.
	ingest := func(stop <-chan struct{}) []time.Duration {
		var lat []time.Duration
		in := make([]*kapsel.EventInsertParams, 20)
		for i := range in {
			in[i] = &kapsel.EventInsertParams{TenantID: sd.tenant.ID, SourceID: sd.source.ID, Body: make([]byte, 512)}
		}
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for range 100_000 { // bounded: 200 s at most
			select {
			case <-stop:
				return lat
			case <-tick.C:
			}
			start := time.Now()
			if _, err := s.EventInsertMany(context.Background(), &kapsel.EventInsertManyParams{Events: in, Now: now}); err != nil {
				b.Error(err)
				return lat
			}
			lat = append(lat, time.Since(start))
		}
		return lat
	}
	pct := func(lat []time.Duration, p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		slices.Sort(lat)
		return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))].Microseconds()) / 1000
	}

	b.ResetTimer()
	// Without retention, for 3 s.
	stop := make(chan struct{})
	var before []time.Duration
	var wg sync.WaitGroup
	wg.Go(func() { before = ingest(stop) })
	time.Sleep(3 * time.Second) // a measuring window, not a wait for something
	close(stop)
	wg.Wait()

	// With retention removing the backlog.
	stop = make(chan struct{})
	var during []time.Duration
	wg.Go(func() { during = ingest(stop) })
	p := &kapsel.RetentionSweepParams{Before: now.Add(-90 * 24 * time.Hour), Now: now, Limit: batch}
	var batches []time.Duration
	removed := 0
	start := time.Now()
	for range backlog/batch + 10 {
		t0 := time.Now()
		res, err := s.RetentionDeleteEvents(ctx, p)
		if err != nil {
			b.Fatal(err)
		}
		batches = append(batches, time.Since(t0))
		removed += res.Events
		if res.Done {
			break
		}
		p.From = res.Next
		time.Sleep(pause(batches[len(batches)-1])) // the runner's pacing at benchShare
	}
	took := time.Since(start)
	close(stop)
	wg.Wait()
	if removed != backlog {
		b.Fatalf("removed %d events, want %d", removed, backlog)
	}
	var sum time.Duration
	for _, d := range batches {
		sum += d
	}
	b.ReportMetric(float64(slices.Max(batches).Microseconds())/1000, "longest-batch-ms")
	b.ReportMetric(float64(sum.Microseconds())/1000/float64(len(batches)), "mean-batch-ms")
	b.ReportMetric(float64(removed)/took.Seconds(), "removed-events/s")
	b.ReportMetric(pct(before, 0.99), "insert-p99-ms-before")
	b.ReportMetric(pct(during, 0.99), "insert-p99-ms-during")
	b.ReportMetric(pct(before, 1), "insert-max-ms-before")
	b.ReportMetric(pct(during, 1), "insert-max-ms-during")
}
