package pgstore_test

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/store/pgstore"
)

// planNode is one node of EXPLAIN (FORMAT JSON); ActualRows and
// ActualLoops are set only by EXPLAIN (ANALYZE).
type planNode struct {
	NodeType     string     `json:"Node Type"`
	RelationName string     `json:"Relation Name"`
	IndexName    string     `json:"Index Name"`
	ActualRows   float64    `json:"Actual Rows"`
	ActualLoops  float64    `json:"Actual Loops"`
	Plans        []planNode `json:"Plans"`
}

// decodePlan returns the root node of the output of one EXPLAIN (FORMAT
// JSON) statement.
func decodePlan(t *testing.T, raw []byte) *planNode {
	t.Helper()
	var plans []struct{ Plan planNode }
	if err := json.Unmarshal(raw, &plans); err != nil || len(plans) != 1 {
		t.Fatalf("decoding the plan: %v (%s)", err, raw)
	}
	return &plans[0].Plan
}

func (n *planNode) walk(f func(*planNode)) {
	f(n)
	for i := range n.Plans {
		n.Plans[i].walk(f)
	}
}

func (n *planNode) String() string {
	var b strings.Builder
	var rec func(*planNode, int)
	rec = func(n *planNode, depth int) {
		fmt.Fprintf(&b, "%s%s %s %s\n", strings.Repeat("  ", depth), n.NodeType, n.RelationName, n.IndexName)
		for i := range n.Plans {
			rec(&n.Plans[i], depth+1)
		}
	}
	rec(n, 0)
	return b.String()
}

// TestClaimUsesIndexes loads a realistic table — most events delivered long
// ago, some waiting for a retry in the future, a few due, a few leases —
// lets the planner see it (ANALYZE), and checks that the claim query reads
// the partial indexes and never scans the events table.
func TestClaimUsesIndexes(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ten, err := s.TenantInsert(ctx, &kapsel.TenantInsertParams{Name: "t", APIKeyHash: []byte("explain"), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	var eps []*kapsel.Endpoint
	for i := range 20 {
		ep, err := s.EndpointInsert(ctx, &kapsel.EndpointInsertParams{Endpoint: &kapsel.Endpoint{
			TenantID: ten.ID, Name: fmt.Sprint("ep", i), URL: "https://example.com/", RetryPolicy: kapsel.DefaultRetryPolicy(),
		}, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		eps = append(eps, ep)
	}
	// Breakers: most endpoints have a saved state, one is open.
	for i, ep := range eps[:15] {
		st := &kapsel.BreakerState{EndpointID: ep.ID, Status: kapsel.BreakerClosed}
		if i == 0 {
			st.Status, st.OpenUntil = kapsel.BreakerOpen, now.Add(time.Hour)
		}
		if _, err := s.BreakerSave(ctx, &kapsel.BreakerSaveParams{State: st, Now: now}); err != nil {
			t.Fatal(err)
		}
	}
	const total = 6000
	for batch := range total / 500 {
		in := make([]*kapsel.EventInsertParams, 500)
		for i := range in {
			body := []byte(fmt.Sprintf(`{"order":%d,"items":[1,2,3]}`, batch*500+i))
			sum := sha256.Sum256(body)
			in[i] = &kapsel.EventInsertParams{
				TenantID: ten.ID, EndpointID: eps[i%len(eps)].ID, Body: body, BodyHash: sum[:],
				ContentType: "application/json", IdempotencyKey: fmt.Sprint("d-", batch, "-", i),
			}
		}
		if _, err := s.EventInsertMany(ctx, &kapsel.EventInsertManyParams{
			Events: in, Now: now.Add(-time.Duration(total/500-batch) * time.Hour),
		}); err != nil {
			t.Fatal(err)
		}
	}
	// 90 % delivered, 8 % retrying later, 1 % leased, the rest (about 1 %) due.
	if _, err := s.Pool().Exec(ctx, `
		WITH r AS (SELECT id, row_number() OVER (ORDER BY id) % 100 AS p FROM events)
		UPDATE events e SET
			status = CASE WHEN r.p < 90 THEN 'delivered' WHEN r.p < 98 THEN 'pending' WHEN r.p < 99 THEN 'delivering' ELSE 'pending' END,
			attempts = CASE WHEN r.p < 90 THEN 1 ELSE 2 END,
			delivered_at = CASE WHEN r.p < 90 THEN e.created_at END,
			next_attempt_at = CASE WHEN r.p >= 90 AND r.p < 98 THEN $1::timestamptz + interval '10 minutes' ELSE e.next_attempt_at END,
			lease_token = CASE WHEN r.p = 98 THEN gen_random_uuid() END,
			lease_expires_at = CASE WHEN r.p = 98 THEN $1::timestamptz + interval '30 seconds' END
		FROM r WHERE r.id = e.id`, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `UPDATE events SET claimable_at = next_attempt_at`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `ANALYZE`); err != nil {
		t.Fatal(err)
	}

	for _, exclude := range [][]string{{}, {string(eps[0].ID), string(eps[1].ID)}} {
		for _, q := range []struct {
			name string
			sql  string
			args []any
		}{
			{"hold", pgstore.HoldSQL, []any{now, exclude, 256}},
			{"claim", pgstore.ClaimSQL, []any{now, 10, exclude, now.Add(time.Minute)}},
			{"sweep", pgstore.SweepSQL, []any{now, 256, "endpoint deleted"}},
		} {
			var raw []byte
			if err := s.Pool().QueryRow(ctx, `EXPLAIN (FORMAT JSON) `+q.sql, q.args...).Scan(&raw); err != nil {
				t.Fatalf("EXPLAIN %s: %v", q.name, err)
			}
			root := decodePlan(t, raw)
			indexes := map[string]bool{}
			root.walk(func(n *planNode) {
				if n.RelationName == "events" && strings.Contains(n.NodeType, "Seq Scan") {
					t.Errorf("the %s query scans the events table:\n%s", q.name, root)
				}
				if n.IndexName != "" {
					indexes[n.IndexName] = true
				}
			})
			want := []string{"events_pending_idx"}
			switch q.name {
			case "claim":
				want = append(want, "events_delivering_idx")
			case "sweep":
				want = []string{"events_delivering_idx"}
			}
			for _, idx := range want {
				if !indexes[idx] {
					t.Errorf("the %s query does not use %s:\n%s", q.name, idx, root)
				}
			}
			if t.Failed() {
				return
			}
			t.Logf("%s plan (exclude %d endpoints):\n%s", q.name, len(exclude), root)
		}
	}

	// And it claims the due events: 1 % of the table, but for those of the
	// endpoint whose breaker is open.
	var want int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM events WHERE status = 'pending'
		AND next_attempt_at <= $1 AND endpoint_id <> $2`, now, eps[0].ID).Scan(&want); err != nil {
		t.Fatal(err)
	}
	evs, err := s.EventClaim(ctx, &kapsel.EventClaimParams{Limit: 500, LeaseDuration: time.Minute, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != want || want < total/100-total/100/len(eps)-1 {
		t.Fatalf("claimed %d events, want %d", len(evs), want)
	}
}
