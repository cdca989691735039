package pgstore_test

import (
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/store/pgstore"
)

// TestStatsReadBoundedRows runs DeliveryStats' statements under EXPLAIN
// ANALYZE on a table whose history (delivered deliveries) and backlog (a
// paused endpoint's due deliveries, not yet met by any claim) are both far
// larger than the limit, and checks what they read from deliveries: only
// the partial indexes of the live statuses, and never more than limit+1
// rows. That is
// what makes a scrape cost the same whatever the table holds (docs/operations.md).
func TestStatsReadBoundedRows(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ten, err := s.TenantInsert(ctx, &kapsel.TenantInsertParams{Name: "t", APIKeyHash: []byte("stats-explain"), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	var eps []*kapsel.Endpoint
	for _, name := range []string{"active", "paused"} {
		ep, err := s.EndpointInsert(ctx, &kapsel.EndpointInsertParams{Endpoint: &kapsel.Endpoint{
			TenantID: ten.ID, Name: name, URL: "https://example.com/", RetryPolicy: kapsel.DefaultRetryPolicy(),
		}, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		eps = append(eps, ep)
	}
	if _, err := s.EndpointSetState(ctx, &kapsel.EndpointSetStateParams{
		ID: eps[1].ID, TenantID: ten.ID, State: kapsel.EndpointPaused, Now: now,
	}); err != nil {
		t.Fatal(err)
	}
	// 20,000 delivered and 200 leased deliveries of the active endpoint,
	// 5,000 due pending deliveries of the paused one (earliest), then 5,000
	// of the active one. Stats read deliveries only: their events are not
	// written.
	for _, r := range []struct {
		prefix, ep, status string
		n                  int
		due                time.Duration
	}{
		{"a", string(eps[0].ID), "delivered", 20_000, -2 * time.Hour},
		{"b", string(eps[0].ID), "delivering", 200, -2 * time.Hour},
		{"c", string(eps[1].ID), "pending", 5_000, -time.Hour},
		{"d", string(eps[0].ID), "pending", 5_000, -time.Minute},
	} {
		if _, err := s.Pool().Exec(ctx, `
			INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, status, attempts, next_attempt_at, claimable_at,
				next_trigger, last_error, created_at, lease_token, lease_expires_at)
			SELECT 'dlv_'||$5||lpad(i::text, 25, '0'), $1, 'evt_'||$5||lpad(i::text, 25, '0'), $2, $3, 0,
				$4::timestamptz, $4::timestamptz, 'scheduled', '', $4,
				CASE WHEN $3 = 'delivering' THEN gen_random_uuid() END,
				CASE WHEN $3 = 'delivering' THEN $4::timestamptz + interval '1 day' END
			FROM generate_series(1, $6) AS i`,
			string(ten.ID), r.ep, r.status, now.Add(r.due), r.prefix, r.n); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Pool().Exec(ctx, `ANALYZE deliveries`); err != nil {
		t.Fatal(err)
	}

	const limit = 100
	for _, q := range []struct {
		name  string
		sql   string
		args  []any
		index string
	}{
		{"count pending", pgstore.CountLiveSQL, []any{limit + 1, "pending"}, "deliveries_pending_idx"},
		{"count delivering", pgstore.CountLiveSQL, []any{limit + 1, "delivering"}, "deliveries_delivering_idx"},
		{"oldest due", pgstore.OldestDueSQL, []any{now, limit}, "deliveries_pending_idx"},
	} {
		tx, err := s.Pool().Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, pgstore.StatsPlanSettings, "5000"); err != nil {
			t.Fatal(err)
		}
		var raw []byte
		if err := tx.QueryRow(ctx, `EXPLAIN (ANALYZE, FORMAT JSON) `+q.sql, q.args...).Scan(&raw); err != nil {
			t.Fatalf("EXPLAIN %s: %v", q.name, err)
		}
		_ = tx.Rollback(ctx)
		used := false
		decodePlan(t, raw).walk(func(n *planNode) {
			if n.RelationName != "deliveries" {
				return
			}
			if n.IndexName != q.index {
				t.Errorf("%s reads deliveries through %s %q, want %s", q.name, n.NodeType, n.IndexName, q.index)
			}
			used = true
			if read := n.ActualRows * n.ActualLoops; read > limit+1 {
				t.Errorf("%s read %v rows of deliveries, want at most %d", q.name, read, limit+1)
			}
		})
		if !used {
			t.Errorf("%s does not read deliveries: %s", q.name, raw)
		}
	}

	// And the answers: capped counts, and no oldest due event, since the
	// window holds only the paused endpoint's backlog, which no claim met yet.
	st, err := s.DeliveryStats(ctx, &kapsel.DeliveryStatsParams{Limit: limit, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if st.Count[kapsel.DeliveryPending] != limit || !st.Capped[kapsel.DeliveryPending] ||
		st.Count[kapsel.DeliveryDelivering] != limit || !st.Capped[kapsel.DeliveryDelivering] || !st.OldestDue.IsZero() {
		t.Fatalf("DeliveryStats = %+v", st)
	}
	// With a window larger than the blocked backlog, the oldest claimable
	// delivery shows.
	st, err = s.DeliveryStats(ctx, &kapsel.DeliveryStatsParams{Limit: 6_000, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if !st.OldestDue.Equal(now.Add(-time.Minute)) || st.Count[kapsel.DeliveryDelivering] != 200 || st.Capped[kapsel.DeliveryDelivering] {
		t.Fatalf("DeliveryStats with a large window = %+v", st)
	}
}
