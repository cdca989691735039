package prommetrics_test

import (
	"context"
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/kapseltest"
	"github.com/kapsel-dev/kapsel/metrics/prommetrics"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

// countingStats counts DeliveryStats reads and remembers the last params.
type countingStats struct {
	prommetrics.StatsSource
	reads atomic.Int64
	limit atomic.Int64
}

func (c *countingStats) DeliveryStats(ctx context.Context, p *kapsel.DeliveryStatsParams) (*kapsel.DeliveryStats, error) {
	c.reads.Add(1)
	c.limit.Store(int64(p.Limit))
	return c.StatsSource.DeliveryStats(ctx, p)
}

// fillQueue inserts events into store, each fanned out to the same
// endpoints (a tenant with that many endpoints subscribed to everything):
// events × endpoints pending deliveries, due at now.
func fillQueue(t *testing.T, store *memstore.Store, events, endpoints int, now time.Time) {
	t.Helper()
	ctx := context.Background()
	tn, err := store.TenantInsert(ctx, &kapsel.TenantInsertParams{Name: "t", APIKeyHash: []byte("h"), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	for range endpoints {
		if _, err := store.EndpointInsert(ctx, &kapsel.EndpointInsertParams{
			Endpoint: &kapsel.Endpoint{TenantID: tn.ID, URL: "https://example.com/", RetryPolicy: kapsel.DefaultRetryPolicy()},
			Now:      now,
		}); err != nil {
			t.Fatal(err)
		}
	}
	ins := make([]*kapsel.EventInsertParams, events)
	for i := range ins {
		body := []byte{byte(i)}
		sum := sha256.Sum256(body)
		ins[i] = &kapsel.EventInsertParams{TenantID: tn.ID, Body: body, BodyHash: sum[:]}
	}
	res, err := store.EventInsertMany(ctx, &kapsel.EventInsertManyParams{Events: ins, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil || r.Event.Deliveries.Total != endpoints {
			t.Fatalf("inserted %+v, %v; want %d deliveries", r.Event, r.Err, endpoints)
		}
	}
}

// pendingStore returns a memstore holding n pending deliveries, due at now.
func pendingStore(t *testing.T, n int, now time.Time) *memstore.Store {
	t.Helper()
	store := memstore.New()
	fillQueue(t, store, n, 1, now)
	return store
}

// Frequent and concurrent scrapes share one store read per cache period, so
// scrapers cannot multiply the database's work.
func TestQueueCollectorSharesOneReadPerPeriod(t *testing.T) {
	t.Parallel()
	clock := kapseltest.NewClock(time.Time{})
	src := &countingStats{StatsSource: pendingStore(t, 3, clock.Now())}
	reg, _ := setup(t, &prommetrics.Config{Store: src, Clock: clock, StatsCacheTTL: 10 * time.Second})

	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := reg.Gather(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := src.reads.Load(); got != 1 {
		t.Fatalf("8 concurrent scrapes made %d store reads, want 1", got)
	}
	if got := src.limit.Load(); got != prommetrics.DefaultDepthLimit {
		t.Fatalf("read with Limit %d, want the default %d", got, prommetrics.DefaultDepthLimit)
	}
	clock.Advance(10*time.Second - time.Nanosecond)
	if got := value(t, reg, "kapsel_queue_depth", map[string]string{"status": "pending"}); got != 3 {
		t.Fatalf("pending depth %v, want 3", got)
	}
	// The cached OldestDue still ages with the clock.
	if got := value(t, reg, "kapsel_queue_oldest_due_age_seconds", nil); got < 9.9 || got > 10 {
		t.Fatalf("oldest due age %v, want ~10", got)
	}
	if got := src.reads.Load(); got != 1 {
		t.Fatalf("store reads within the cache period: %d, want 1", got)
	}
	clock.Advance(time.Nanosecond)
	value(t, reg, "kapsel_queue_depth", nil)
	if got := src.reads.Load(); got != 2 {
		t.Fatalf("store reads after the cache period: %d, want 2", got)
	}
}

// Past DepthLimit the depth reads the limit and says it is capped.
func TestQueueCollectorDepthLimit(t *testing.T) {
	t.Parallel()
	clock := kapseltest.NewClock(time.Time{})
	src := &countingStats{StatsSource: pendingStore(t, 5, clock.Now())}
	reg, _ := setup(t, &prommetrics.Config{Store: src, Clock: clock, DepthLimit: 3})
	if got := value(t, reg, "kapsel_queue_depth", map[string]string{"status": "pending"}); got != 3 {
		t.Fatalf("pending depth %v, want 3 (the limit)", got)
	}
	if got := value(t, reg, "kapsel_queue_depth_capped", map[string]string{"status": "pending"}); got != 1 {
		t.Fatalf("pending depth capped %v, want 1", got)
	}
	if got := value(t, reg, "kapsel_queue_depth_capped", map[string]string{"status": "delivering"}); got != 0 {
		t.Fatalf("delivering depth capped %v, want 0", got)
	}
	if got := src.limit.Load(); got != 3 {
		t.Fatalf("read with Limit %d, want 3", got)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", err, problems)
	}
}
