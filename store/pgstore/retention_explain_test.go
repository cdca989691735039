package pgstore_test

import (
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/store/pgstore"
)

// TestRetentionUsesIndexes checks, on explainFixture's 6,000 events, that
// every retention statement reads events, deliveries and attempts by index
// (a batch must cost what its rows cost, whatever the tables hold) —
// except the idempotency keys' removal, which reads its BRIN index.
func TestRetentionUsesIndexes(t *testing.T) {
	t.Parallel()
	s, ten, _, now := explainFixture(t)
	ctx := t.Context()
	var ids []string
	if err := s.Pool().QueryRow(ctx, `SELECT array_agg(id) FROM (SELECT id FROM events ORDER BY id LIMIT 1000) e`).Scan(&ids); err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct {
		name string
		sql  string
		args []any
		want []string
	}{
		{"scan", pgstore.ScanAllSQL, []any{"", 1001, []string{}}, []string{"events_pkey"}},
		{"scan of a tenant", pgstore.ScanTenantSQL, []any{"", 1001, string(ten.ID)}, []string{"events_tenant_id_idx"}},
		{"delete events", pgstore.DeleteEventsSQL, []any{ids, now, now},
			[]string{"events_pkey", "deliveries_event_endpoint_key", "attempts_delivery_id_number_key", "idempotency_keys_pkey"}},
		{"erase", pgstore.EraseSQL, []any{ids, string(kapsel.BodyExpired), now, now}, []string{"events_pkey", "deliveries_event_endpoint_key"}},
		{"expunge", pgstore.ExpungeSQL, []any{ids, string(ten.ID), now, kapsel.LastErrorBodyExpunged},
			[]string{"events_pkey", "deliveries_event_endpoint_key"}},
		{"oldest", pgstore.OldestSQL, nil, []string{"events_pkey", "deliveries_pkey", "attempts_pkey"}},
	} {
		root, idx := explain(t, s, q.name, q.sql, q.args, "events", "deliveries", "attempts")
		for _, w := range q.want {
			if !idx[w] {
				t.Errorf("the %s statement does not read %s:\n%s", q.name, w, root)
			}
		}
	}
	root, idx := explain(t, s, "delete keys", pgstore.DeleteKeysSQL, []any{now.Add(48 * time.Hour), 1000})
	if !idx["idempotency_keys_expires_at_idx"] {
		t.Errorf("the keys' removal does not read the BRIN index:\n%s", root)
	}
}
