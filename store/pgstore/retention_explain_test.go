package pgstore_test

import (
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/store/pgstore"
)

// TestRetentionUsesIndexes checks, on explainFixture's 6,000 events, that
// every retention statement reads events, deliveries and attempts by index
// (a batch must cost what its rows cost, whatever the tables hold): the
// statements that act on a batch's 1,000 ids run pinned (pinned), since on
// a table this small the planner would rather scan it.
func TestRetentionUsesIndexes(t *testing.T) {
	t.Parallel()
	s, ten, _, now := explainFixture(t)
	ctx := t.Context()
	var ids []string
	if err := s.Pool().QueryRow(ctx, `SELECT array_agg(id) FROM (SELECT id FROM events ORDER BY id LIMIT 1000) e`).Scan(&ids); err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct {
		name   string
		sql    string
		args   []any
		want   []string
		pinned bool
	}{
		{"scan", pgstore.ScanAllSQL, []any{"", 1001, []string{}}, []string{"events_pkey"}, false},
		// The fixture's events are all one tenant's: events_pkey or
		// events_tenant_id_idx, as long as no table is scanned.
		{"scan of a tenant", pgstore.ScanTenantSQL, []any{"", 1001, string(ten.ID)}, nil, false},
		{"delete events", pgstore.DeleteEventsSQL, []any{ids, now, now},
			[]string{"events_pkey", "deliveries_event_endpoint_key", "attempts_delivery_id_number_key", "idempotency_keys_pkey"}, true},
		{"erase", pgstore.EraseSQL, []any{ids, string(kapsel.BodyExpired), now, now}, []string{"events_pkey", "deliveries_event_endpoint_key"}, true},
		{"expunge", pgstore.ExpungeSQL, []any{ids, string(ten.ID), now, kapsel.LastErrorBodyExpunged},
			[]string{"events_pkey", "deliveries_event_endpoint_key"}, true},
		{"oldest", pgstore.OldestSQL, nil, []string{"events_pkey", "deliveries_pkey", "attempts_pkey"}, true},
	} {
		ex := explain
		if q.pinned {
			ex = explainPinned
		}
		root, idx := ex(t, s, q.name, q.sql, q.args, "events", "deliveries", "attempts")
		for _, w := range q.want {
			if !idx[w] {
				t.Errorf("the %s statement does not read %s:\n%s", q.name, w, root)
			}
		}
	}
	// The keys' removal deletes by ctid, whichever way the planner finds
	// the expired keys in the subquery.
	root, _ := explain(t, s, "delete keys", pgstore.DeleteKeysSQL, []any{now.Add(48 * time.Hour), 1000})
	tid := false
	root.walk(func(n *planNode) { tid = tid || n.NodeType == "Tid Scan" })
	if !tid {
		t.Errorf("the keys' removal does not delete by ctid:\n%s", root)
	}
}
