package pgstore_test

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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

// explainFixture is a store holding a realistic queue: 20 endpoints (15
// with a saved breaker, one open) and 6,000 events fanned out to one of
// them each — 90 % of the deliveries delivered long ago, 8 % retrying
// later, 1 % leased, the rest (about 1 %) due — analyzed, so that the
// planner sees it.
func explainFixture(t *testing.T) (*pgstore.Store, *kapsel.Tenant, []*kapsel.Endpoint, time.Time) {
	t.Helper()
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
				TenantID: ten.ID, EndpointIDs: []kapsel.EndpointID{eps[i%len(eps)].ID}, Body: body, BodyHash: sum[:],
				ContentType: "application/json", IdempotencyKey: fmt.Sprint("d-", batch, "-", i),
			}
		}
		if _, err := s.EventInsertMany(ctx, &kapsel.EventInsertManyParams{
			Events: in, Now: now.Add(-time.Duration(total/500-batch) * time.Hour),
		}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Pool().Exec(ctx, `
		WITH r AS (SELECT id, row_number() OVER (ORDER BY id) % 100 AS p FROM deliveries)
		UPDATE deliveries d SET
			status = CASE WHEN r.p < 90 THEN 'delivered' WHEN r.p < 98 THEN 'pending' WHEN r.p < 99 THEN 'delivering' ELSE 'pending' END,
			attempts = CASE WHEN r.p < 90 THEN 1 ELSE 2 END,
			delivered_at = CASE WHEN r.p < 90 THEN d.created_at END,
			next_attempt_at = CASE WHEN r.p >= 90 AND r.p < 98 THEN $1::timestamptz + interval '10 minutes' ELSE d.next_attempt_at END,
			lease_token = CASE WHEN r.p = 98 THEN gen_random_uuid() END,
			lease_expires_at = CASE WHEN r.p = 98 THEN $1::timestamptz + interval '30 seconds' END
		FROM r WHERE r.id = d.id`, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `UPDATE deliveries SET claimable_at = next_attempt_at`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `VACUUM ANALYZE`); err != nil {
		t.Fatal(err)
	}
	return s, ten, eps, now
}

// explain returns the plan of sql run with args, and the indexes it reads.
// It fails t if any node scans one of the tables noSeq sequentially.
// idTokenPairs runs sql, which selects (delivery id, lease token) pairs,
// and returns them as the two arrays the completion and extend statements
// take.
func idTokenPairs(t *testing.T, s *pgstore.Store, sql string) (ids, tokens []string) {
	t.Helper()
	rows, err := s.Pool().Query(t.Context(), sql)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, token string
		if err := rows.Scan(&id, &token); err != nil {
			t.Fatal(err)
		}
		ids, tokens = append(ids, id), append(tokens, token)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids, tokens
}

func explain(t *testing.T, s *pgstore.Store, what, sql string, args []any, noSeq ...string) (*planNode, map[string]bool) {
	t.Helper()
	var raw []byte
	if err := s.Pool().QueryRow(t.Context(), `EXPLAIN (FORMAT JSON) `+sql, args...).Scan(&raw); err != nil {
		t.Fatalf("EXPLAIN %s: %v", what, err)
	}
	root := decodePlan(t, raw)
	indexes := map[string]bool{}
	root.walk(func(n *planNode) {
		if strings.Contains(n.NodeType, "Seq Scan") && slices.Contains(noSeq, n.RelationName) {
			t.Errorf("the %s query scans %s:\n%s", what, n.RelationName, root)
		}
		if n.IndexName != "" {
			indexes[n.IndexName] = true
		}
	})
	return root, indexes
}

// explainPinned is explain under the plan settings of the claim and the
// completion (pgstore.ClaimPlanSettings), in a transaction of its own.
func explainPinned(t *testing.T, s *pgstore.Store, what, sql string, args []any, noSeq ...string) (*planNode, map[string]bool) {
	t.Helper()
	ctx := t.Context()
	tx, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read only
	if _, err := tx.Exec(ctx, pgstore.ClaimPlanSettings); err != nil {
		t.Fatal(err)
	}
	var raw []byte
	if err := tx.QueryRow(ctx, `EXPLAIN (FORMAT JSON) `+sql, args...).Scan(&raw); err != nil {
		t.Fatalf("EXPLAIN %s: %v", what, err)
	}
	root := decodePlan(t, raw)
	indexes := map[string]bool{}
	root.walk(func(n *planNode) {
		if strings.Contains(n.NodeType, "Seq Scan") && slices.Contains(noSeq, n.RelationName) {
			t.Errorf("the %s query scans %s:\n%s", what, n.RelationName, root)
		}
		if n.IndexName != "" {
			indexes[n.IndexName] = true
		}
	})
	return root, indexes
}

// TestClaimUsesIndexes checks, on explainFixture's queue, that the claim's
// statements read the partial indexes of deliveries and the events' primary
// key, and never scan either table.
func TestClaimUsesIndexes(t *testing.T) {
	t.Parallel()
	s, _, eps, now := explainFixture(t)
	ctx := t.Context()
	for _, exclude := range [][]string{{}, {string(eps[0].ID), string(eps[1].ID)}} {
		for _, q := range []struct {
			name string
			sql  string
			args []any
			want []string
		}{
			{"hold", pgstore.HoldSQL, []any{now, exclude, 256}, []string{"deliveries_pending_idx"}},
			{"claim", pgstore.ClaimSQL, []any{now, 10, exclude, now.Add(time.Minute)},
				[]string{"deliveries_pending_idx", "deliveries_delivering_idx", "events_pkey"}},
			{"sweep", pgstore.SweepSQL, []any{now, 256, kapsel.LastErrorEndpointDeleted}, []string{"deliveries_delivering_idx"}},
		} {
			root, indexes := explain(t, s, q.name, q.sql, q.args, "deliveries", "events")
			for _, idx := range q.want {
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

	// The completion of 100 leases, under its plan settings, finds each
	// delivery by primary key.
	ids, tokens := idTokenPairs(t, s, `SELECT id, gen_random_uuid()::text FROM deliveries WHERE status = 'delivered' LIMIT 100`)
	n := len(ids)
	status, text, times, codes, durations, bodies := make([]string, n), make([]string, n), make([]time.Time, n),
		make([]int32, n), make([]int64, n), make([][]byte, n)
	for i := range status {
		status[i] = "delivered"
	}
	root, indexes := explainPinned(t, s, "complete", pgstore.CompleteSQL,
		[]any{ids, tokens, status, times, text, text, ids, text, times, durations, codes, bodies, text, text, now},
		"deliveries")
	if !indexes["deliveries_pkey"] {
		t.Errorf("the complete query does not use deliveries_pkey:\n%s", root)
	}
	t.Logf("complete plan:\n%s", root)

	// And it claims the due deliveries, with their events: 1 % of the
	// table, but for those of the endpoint whose breaker is open.
	var want int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE status = 'pending'
		AND next_attempt_at <= $1 AND endpoint_id <> $2`, now, eps[0].ID).Scan(&want); err != nil {
		t.Fatal(err)
	}
	ds, err := s.DeliveryClaim(ctx, &kapsel.DeliveryClaimParams{Limit: 500, LeaseDuration: time.Minute, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != want || want < 6000/100-6000/100/len(eps)-1 {
		t.Fatalf("claimed %d deliveries, want %d", len(ds), want)
	}
	for _, d := range ds {
		if d.Event == nil || d.Event.ID != d.EventID || !strings.HasPrefix(string(d.Event.Body), `{"order":`) {
			t.Fatalf("claimed %+v with event %+v, want its event with its body", d, d.Event)
		}
	}
}

// TestInsertAndDeleteUseIndexes checks the plans of the fan-out insert —
// the endpoint read and the statement writing events, keys and deliveries,
// for a batch of 100 events fanned out to 10 endpoints each — and of
// EndpointDelete's end of the live deliveries, on explainFixture's tables:
// no table of the hot path is scanned. It logs the insert's EXPLAIN
// ANALYZE, run in a transaction that is rolled back, as evidence of what
// one batch costs.
func TestInsertAndDeleteUseIndexes(t *testing.T) {
	t.Parallel()
	s, ten, eps, now := explainFixture(t)
	ctx := t.Context()

	// Other tenants' endpoints: 5,000 of 500 tenants, so that reading the
	// whole table is not the cheapest way to find one tenant's 20.
	if _, err := s.Pool().Exec(ctx, `
		INSERT INTO tenants (id, name, api_key_hash, rate_limit, rate_burst, created_at, updated_at)
		SELECT 'ten_other'||i, 'other', convert_to('other'||i, 'UTF8'), 0, 0, $1, $1 FROM generate_series(1, 500) AS i;
		`, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `
		INSERT INTO endpoints (id, tenant_id, name, url, state, disabled_reason, signing_secrets, retry_policy, timeout_ns,
			headers, created_at, updated_at)
		SELECT 'ep_other'||i, 'ten_other'||(i % 500 + 1), 'other', 'https://example.com/', 'active', '', '[]', '{}', 1,
			'{}', $1, $1
		FROM generate_series(1, 5000) AS i`, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `ANALYZE endpoints`); err != nil {
		t.Fatal(err)
	}
	root, indexes := explain(t, s, "targets", pgstore.TargetsSQL, []any{[]string{string(ten.ID)}, []string{string(eps[0].ID)}}, "endpoints")
	t.Logf("targets plan:\n%s", root)
	if !indexes["endpoints_tenant_id_idx"] {
		t.Errorf("the targets query does not use endpoints_tenant_id_idx:\n%s", root)
	}

	const events, fan = 100, 10
	var (
		aID, aTenant, aSource, aCType, aHdr, aKey, aType, aChannels []string
		aBody, aHash                                                [][]byte
		dID, dEvent, dEndpoint                                      []string
	)
	for i := range events {
		id := string(kapsel.NewEventID())
		body := []byte(fmt.Sprintf(`{"n":%d}`, i))
		sum := sha256.Sum256(body)
		aID, aTenant, aSource = append(aID, id), append(aTenant, string(ten.ID)), append(aSource, "src_01J00000000000000000000000")
		aBody, aCType, aHdr = append(aBody, body), append(aCType, "application/json"), append(aHdr, "{}")
		aKey, aHash = append(aKey, fmt.Sprint("explain-", i)), append(aHash, sum[:])
		aType, aChannels = append(aType, "invoice.paid"), append(aChannels, "[]")
		for _, ep := range eps[:fan] {
			dID, dEvent, dEndpoint = append(dID, string(kapsel.NewDeliveryID())), append(dEvent, id), append(dEndpoint, string(ep.ID))
		}
	}
	none := make([]string, events) // no trace context ($16, $17), the common case
	args := []any{aID, aTenant, aSource, aBody, aCType, aHdr, aKey, aHash, aType, aChannels, now.Add(time.Hour), now, dID, dEvent, dEndpoint, none, none}
	root, _ = explain(t, s, "insert", pgstore.InsertEventsSQL, args, "deliveries", "events", "idempotency_keys")
	t.Logf("insert plan:\n%s", root)
	tx, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := tx.Query(ctx, `EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) `+pgstore.InsertEventsSQL, args...)
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	_ = tx.Rollback(ctx)
	if err != nil {
		t.Fatalf("EXPLAIN ANALYZE insert: %v", err)
	}
	plan := strings.Join(lines, "\n")
	t.Logf("insert, %d events × %d deliveries, EXPLAIN ANALYZE (rolled back):\n%s", events, fan, plan)
	for _, want := range []string{"Conflict Arbiter Indexes: idempotency_keys_pkey", "Tuples Inserted: 100",
		"Insert on deliveries", fmt.Sprintf("rows=%d loops=1", events*fan)} {
		if !strings.Contains(plan, want) {
			t.Errorf("the insert's EXPLAIN ANALYZE lacks %q", want)
		}
	}

	// The lock CTEs (liveLockedSQL, heldLockedSQL and the breaker's) read
	// an index of deliveries, as their UPDATEs do: EndpointDelete's call
	// (guarded by its tenant, $3), TenantDelete's (no guard), the releases.
	root, _ = explain(t, s, "EndpointDelete's end of the live deliveries", pgstore.EndLiveDeliveriesSQL,
		[]any{[]string{string(eps[3].ID)}, kapsel.LastErrorEndpointDeleted, string(ten.ID)}, "deliveries")
	t.Logf("EndpointDelete's end of the live deliveries plan:\n%s", root)
	root, _ = explain(t, s, "TenantDelete's end of the live deliveries", pgstore.EndLiveDeliveriesSQL,
		[]any{[]string{string(eps[3].ID), string(eps[4].ID)}, kapsel.LastErrorEndpointDeleted, nil}, "deliveries")
	t.Logf("TenantDelete's end of the live deliveries plan:\n%s", root)
	root, _ = explain(t, s, "release held", pgstore.ReleaseHeldSQL, []any{string(eps[3].ID)}, "deliveries")
	t.Logf("release held plan:\n%s", root)
	root, _ = explain(t, s, "release breaker held", pgstore.ReleaseBreakerHeldSQL, []any{string(eps[3].ID), now}, "deliveries")
	t.Logf("release breaker held plan:\n%s", root)
}
