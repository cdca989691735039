package sqlitestore

import (
	"strings"
	"testing"

	"github.com/kapsel-dev/kapsel"
)

// TestStatsQueryPlan checks that DeliveryStats' statements read deliveries
// only through the live statuses' partial indexes (the delivered and
// failed history is never scanned) and that the oldest-due window walks
// deliveries_claim_idx in order instead of sorting every due delivery.
// With their LIMITs, that bounds what a scrape reads whatever the table
// holds.
func TestStatsQueryPlan(t *testing.T) {
	t.Parallel()
	s := openInternal(t)
	for _, q := range []struct {
		name, sql, index string
		args             []any
	}{
		{"count pending", countLiveSQL[kapsel.DeliveryPending], "deliveries_endpoint_pending_idx", []any{101}},
		{"count delivering", countLiveSQL[kapsel.DeliveryDelivering], "deliveries_delivering_idx", []any{101}},
		{"oldest due", oldestDueSQL, "deliveries_claim_idx", []any{int64(0), 100}},
	} {
		plan := queryPlan(t, s.r, q.sql, q.args...)
		text := strings.Join(plan, "\n")
		t.Logf("%s plan:\n%s", q.name, text)
		for _, line := range plan {
			// "SCAN d …" or "SEARCH d …": a read of deliveries (alias d).
			if f := strings.Fields(line); len(f) > 1 && f[1] == "d" && !strings.Contains(line, q.index) {
				t.Errorf("%s reads deliveries other than through %s: %q", q.name, q.index, line)
			}
		}
		if !strings.Contains(text, q.index) || strings.Contains(text, "TEMP B-TREE FOR ORDER BY") {
			t.Errorf("%s does not walk %s in order:\n%s", q.name, q.index, text)
		}
	}
}
