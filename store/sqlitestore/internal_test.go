package sqlitestore

import (
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/kapsel-dev/kapsel"
)

func openInternal(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestClaimQueryPlan checks that the claim's statements walk their partial
// index in claim order and stop at the limit, rather than sorting every due
// delivery: the difference between a constant-cost claim and one that
// grows with the backlog. The same for the other statements that must not
// walk the history: EndpointDelete's, and the backfill's walk of a
// tenant's events from its cursor.
func TestClaimQueryPlan(t *testing.T) {
	t.Parallel()
	s := openInternal(t)
	for _, q := range []struct {
		name, sql, index string
		args             []any
	}{
		{"claim", claimPending, "deliveries_claim_idx", []any{int64(0), "[]", 10}},
		{"hold", holdSQL, "deliveries_claim_idx", []any{int64(0), "[]", 64}},
		{"sweep", sweepSQL, "deliveries_delivering_idx", []any{int64(0), 256, "x"}},
		{"delete: pending", endDeliveriesSQL[0], "deliveries_endpoint_pending_idx", []any{"ep_1", "x"}},
		{"delete: delivering", endDeliveriesSQL[1], "deliveries_delivering_idx", []any{"ep_1", "x"}},
		{"backfill", backfillEventsSQL, "events_tenant_idx", []any{"ten_1", int64(0), int64(1), "evt_1", 10}},
		{"summary", summariseSQL, "sqlite_autoindex_deliveries_2", []any{`["evt_1"]`}},
	} {
		plan := queryPlan(t, s.w, q.sql, q.args...)
		text := strings.Join(plan, "\n")
		t.Logf("%s plan:\n%s", q.name, text)
		if !strings.Contains(text, "USING INDEX "+q.index) && !strings.Contains(text, "USING COVERING INDEX "+q.index) {
			t.Errorf("%s does not use %s:\n%s", q.name, q.index, text)
		}
		if strings.Contains(text, "TEMP B-TREE FOR ORDER BY") {
			t.Errorf("%s sorts instead of reading in index order:\n%s", q.name, text)
		}
	}
}

// TestReleaseTriggerPlans checks that the releases of held deliveries
// (the triggers of migration 0005, run by every breaker save and every
// endpoint made active) read the endpoint's pending deliveries on
// deliveries_endpoint_pending_idx, never its whole history on
// deliveries_endpoint_idx. EXPLAIN does not show trigger programs, so each
// trigger's statement is explained on its own, NEW and OLD made parameters.
func TestReleaseTriggerPlans(t *testing.T) {
	t.Parallel()
	s := openInternal(t)
	rows, err := s.r.QueryContext(t.Context(), `SELECT name, sql FROM sqlite_schema WHERE type = 'trigger' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	params := strings.NewReplacer("NEW.id", "?1", "NEW.endpoint_id", "?1", "OLD.endpoint_id", "?1", "NEW.open_until", "?2")
	n := 0
	for rows.Next() {
		var name, body string
		if err := rows.Scan(&name, &body); err != nil {
			t.Fatal(err)
		}
		begin, end := strings.Index(body, "BEGIN"), strings.LastIndex(body, "END")
		if begin < 0 || end < begin {
			t.Fatalf("trigger %s: no BEGIN … END in %q", name, body)
		}
		stmt := body[begin+len("BEGIN") : end]
		plan := strings.Join(queryPlan(t, s.w, params.Replace(stmt), "ep_1", int64(1)), "\n")
		t.Logf("%s plan:\n%s", name, plan)
		if !strings.Contains(plan, "USING INDEX deliveries_endpoint_pending_idx") {
			t.Errorf("trigger %s does not read deliveries_endpoint_pending_idx:\n%s", name, plan)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Fatalf("%d triggers, want the 4 releases", n)
	}
}

// TestListQueryPlans checks that the lists of deliveries and attempts read
// their index in order and stop at the limit: an endpoint's deliveries on
// deliveries_endpoint_idx, an event's few on the unique (event_id,
// endpoint_id) index, a tenant's (a status or not) on
// deliveries_tenant_idx, a delivery's attempts on UNIQUE (delivery_id,
// number), an event's on attempts_event_idx.
func TestListQueryPlans(t *testing.T) {
	t.Parallel()
	s := openInternal(t)
	for _, c := range []struct {
		name, index string
		query       func() (string, []any)
	}{
		{"deliveries of an endpoint", "deliveries_endpoint_idx", func() (string, []any) {
			return deliveryListQuery(&kapsel.DeliveryListParams{TenantID: "ten_1", EndpointID: "ep_1", Status: kapsel.DeliveryFailed})
		}},
		{"deliveries of an event", "sqlite_autoindex_deliveries_2", func() (string, []any) {
			return deliveryListQuery(&kapsel.DeliveryListParams{TenantID: "ten_1", EventID: "evt_1"})
		}},
		{"deliveries of a tenant", "deliveries_tenant_idx", func() (string, []any) {
			return deliveryListQuery(&kapsel.DeliveryListParams{TenantID: "ten_1", Cursor: "dlv_1"})
		}},
		{"deliveries of a tenant by status", "deliveries_tenant_idx", func() (string, []any) {
			return deliveryListQuery(&kapsel.DeliveryListParams{TenantID: "ten_1", Status: kapsel.DeliveryFailed})
		}},
		{"attempts of a delivery", "sqlite_autoindex_attempts_2", func() (string, []any) {
			return attemptListQuery(&kapsel.AttemptListParams{DeliveryID: "dlv_1", Cursor: "att_1"})
		}},
		{"attempts of an event", "attempts_event_idx", func() (string, []any) {
			return attemptListQuery(&kapsel.AttemptListParams{EventID: "evt_1", Cursor: "att_1"})
		}},
	} {
		query, args := c.query()
		plan := queryPlan(t, s.r, query, args...)
		text := strings.Join(plan, "\n")
		t.Logf("%s plan:\n%s", c.name, text)
		if !strings.Contains(text, "INDEX "+c.index) {
			t.Errorf("listing %s does not read %s:\n%s", c.name, c.index, text)
		}
		// The event's deliveries are few (one per endpoint) and may be
		// sorted; the other lists are unbounded and must not be.
		if c.index != "sqlite_autoindex_deliveries_2" && strings.Contains(text, "TEMP B-TREE") {
			t.Errorf("listing %s sorts:\n%s", c.name, text)
		}
	}
}

// TestEventListQueryPlan checks that listing a tenant's events of one type
// reads events_tenant_type_idx (migration 0003) in id order and stops at
// the limit, and listing by source events_source_idx: no sort, no walk
// through the tenant's other events.
func TestEventListQueryPlan(t *testing.T) {
	t.Parallel()
	s := openInternal(t)
	for _, c := range []struct {
		params kapsel.EventListParams
		index  string
	}{
		{kapsel.EventListParams{TenantID: "ten_1", Type: "invoice.paid"}, "events_tenant_type_idx"},
		{kapsel.EventListParams{TenantID: "ten_1", Type: "invoice.paid", Cursor: "evt_1"}, "events_tenant_type_idx"},
		{kapsel.EventListParams{TenantID: "ten_1", SourceID: "src_1"}, "events_source_idx"},
		{kapsel.EventListParams{TenantID: "ten_1"}, "events_tenant_idx"},
	} {
		query, args := eventListQuery(&c.params)
		plan := queryPlan(t, s.r, query, args...)
		text := strings.Join(plan, "\n")
		t.Logf("%+v plan:\n%s", c.params, text)
		if !strings.Contains(text, "USING INDEX "+c.index) || strings.Contains(text, "TEMP B-TREE") {
			t.Errorf("listing %+v does not read %s in order:\n%s", c.params, c.index, text)
		}
	}
}

func TestPragmas(t *testing.T) {
	t.Parallel()
	s := openInternal(t)
	cases := []struct{ pragma, want string }{
		{"journal_mode", "wal"},
		{"synchronous", "2"}, // FULL: the WAL is fsynced at every commit
		{"foreign_keys", "1"},
		{"busy_timeout", "10000"},
	}
	for _, c := range cases {
		var got string
		if err := s.w.QueryRowContext(t.Context(), "PRAGMA "+c.pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", c.pragma, err)
		}
		if got != c.want {
			t.Errorf("PRAGMA %s = %q, want %q", c.pragma, got, c.want)
		}
	}
	var readOnly string
	if err := s.r.QueryRowContext(t.Context(), "PRAGMA query_only").Scan(&readOnly); err != nil || readOnly != "1" {
		t.Errorf("reader PRAGMA query_only = %q (%v), want 1", readOnly, err)
	}
}

func TestPingSchemaBehind(t *testing.T) {
	t.Parallel()
	s := openInternal(t)
	if _, err := s.w.ExecContext(t.Context(), "DELETE FROM kapsel_migrations WHERE version = ?", LatestVersion()); err != nil {
		t.Fatalf("forgetting a migration: %v", err)
	}
	err := s.Ping(t.Context())
	if !errors.Is(err, kapsel.ErrUnavailable) || kapsel.CodeOf(err) != kapsel.CodeSchemaMismatch {
		t.Fatalf("Ping with the schema behind = %v (code %s), want ErrUnavailable with %s", err, kapsel.CodeOf(err), kapsel.CodeSchemaMismatch)
	}
}

func TestMigrationsNumbered(t *testing.T) {
	t.Parallel()
	ms, err := migrations()
	if err != nil {
		t.Fatalf("migrations: %v", err)
	}
	if len(ms) == 0 || LatestVersion() != len(ms) {
		t.Fatalf("%d migrations, LatestVersion %d", len(ms), LatestVersion())
	}
}

// queryPlan returns the detail lines of EXPLAIN QUERY PLAN for query.
func queryPlan(t *testing.T, db *sql.DB, query string, args ...any) []string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatalf("EXPLAIN %s: %v", query, err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatalf("scanning plan: %v", err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("reading plan: %v", err)
	}
	return plan
}
