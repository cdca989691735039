package prommetrics_test

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/kapseltest"
	"github.com/kapsel-dev/kapsel/retention"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

// TestRetentionSeries runs retention passes over a store and reads what
// they removed, per table, and the oldest row kept.
func TestRetentionSeries(t *testing.T) {
	t.Parallel()
	reg, hooks := setup(t, nil)
	ctx := t.Context()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := kapseltest.NewClock(start)
	s := memstore.New()
	key := sha256.Sum256([]byte("k"))
	ten, err := s.TenantInsert(ctx, &kapsel.TenantInsertParams{Name: "t", APIKeyHash: key[:], Now: start})
	if err != nil {
		t.Fatal(err)
	}
	insert := func(body string) {
		h := sha256.Sum256([]byte(body))
		if _, err := s.EventInsertMany(ctx, &kapsel.EventInsertManyParams{Now: clock.Now(), Events: []*kapsel.EventInsertParams{
			{TenantID: ten.ID, Body: []byte(body), BodyHash: h[:]}}}); err != nil {
			t.Fatal(err)
		}
	}
	insert("0123456789") // no endpoint: no delivery, ended at once
	clock.Advance(8 * 24 * time.Hour)
	insert("abcd")
	erasedAt := clock.Now()
	clock.Advance(2 * 24 * time.Hour)
	insert("xyz")
	r, err := retention.New(s, &retention.Config{
		Clock: clock, Hooks: hooks, BatchPause: -1,
		Policy: kapsel.RetentionPolicy{Body: 24 * time.Hour, Metadata: 5 * 24 * time.Hour},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.RunPass(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		// The 10-day-old event is removed with its body (metadata 5 days),
		// the 2-day-old one loses its body (1 day), the new one stays.
		{"kapsel_retention_rows_removed_total", map[string]string{"table": "events", "cause": "expired"}, 1},
		{"kapsel_retention_bytes_removed_total", map[string]string{"table": "events", "cause": "expired"}, 10},
		{"kapsel_retention_rows_removed_total", map[string]string{"table": "event_bodies", "cause": "expired"}, 1},
		{"kapsel_retention_bytes_removed_total", map[string]string{"table": "event_bodies", "cause": "expired"}, 4},
		{"kapsel_retention_oldest_row_timestamp_seconds", map[string]string{"table": "events"}, float64(erasedAt.Unix())},
		{"kapsel_retention_oldest_row_timestamp_seconds", map[string]string{"table": "deliveries"}, 0},
	} {
		if got := value(t, reg, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if got := value(t, reg, "kapsel_retention_batch_duration_seconds", nil); got < 3 {
		t.Errorf("batches observed: %v, want at least 3 (bodies, events, keys)", got)
	}
}
