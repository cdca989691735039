package pgstore_test

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/store/pgstore"
)

// TestEventListByTypeUsesIndex loads two tenants' events of twenty types
// (a fifth of them untyped) from three sources, lets the planner see them
// (ANALYZE), and checks that listing a tenant's events of one type reads
// events_tenant_type_idx (migration 0003) in id order — no sort, no scan
// of the events table — with a custom plan and with the generic plan a
// prepared statement gets after a few executions, which cannot prove the
// partial index's condition from the parameter; and that lists by tenant
// and by source read their indexes in id order too.
func TestEventListByTypeUsesIndex(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var tenants []*kapsel.Tenant
	var eps []*kapsel.Endpoint
	for i := range 2 {
		ten, err := s.TenantInsert(ctx, &kapsel.TenantInsertParams{Name: "t", APIKeyHash: []byte(fmt.Sprint("list-", i)), Now: now})
		if err != nil {
			t.Fatal(err)
		}
		ep, err := s.EndpointInsert(ctx, &kapsel.EndpointInsertParams{Endpoint: &kapsel.Endpoint{
			TenantID: ten.ID, Name: "ep", URL: "https://example.com/", RetryPolicy: kapsel.DefaultRetryPolicy(),
		}, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		tenants, eps = append(tenants, ten), append(eps, ep)
	}
	sources := []kapsel.SourceID{kapsel.NewSourceID(), kapsel.NewSourceID(), kapsel.NewSourceID()}
	const total = 6000
	for batch := range total / 500 {
		in := make([]*kapsel.EventInsertParams, 500)
		for i := range in {
			n := batch*500 + i
			body := []byte(fmt.Sprintf(`{"n":%d}`, n))
			sum := sha256.Sum256(body)
			typ := ""
			if n%5 != 0 {
				typ = fmt.Sprintf("resource%d.changed", n%20)
			}
			in[i] = &kapsel.EventInsertParams{TenantID: eps[n%2].TenantID, SourceID: sources[n%3], Type: typ, Body: body, BodyHash: sum[:]}
		}
		if _, err := s.EventInsertMany(ctx, &kapsel.EventInsertManyParams{Events: in, Now: now}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Pool().Exec(ctx, `ANALYZE`); err != nil {
		t.Fatal(err)
	}

	first, err := s.EventList(ctx, &kapsel.EventListParams{TenantID: tenants[0].ID, Type: "resource4.changed", Limit: 50})
	if err != nil || len(first) != 50 {
		t.Fatalf("first page: %d events, %v", len(first), err)
	}
	for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
		for _, c := range []struct {
			p     kapsel.EventListParams
			index string
		}{
			{kapsel.EventListParams{TenantID: tenants[0].ID, Type: "resource4.changed", Limit: 50}, "events_tenant_type_idx"},
			// The next page.
			{kapsel.EventListParams{TenantID: tenants[0].ID, Type: "resource4.changed", Cursor: first[49].ID, Limit: 50}, "events_tenant_type_idx"},
			{kapsel.EventListParams{TenantID: tenants[0].ID, Cursor: first[0].ID, Limit: 50}, "events_tenant_id_idx"},
			{kapsel.EventListParams{TenantID: tenants[0].ID, SourceID: sources[1], Limit: 50}, "events_source_id_idx"},
		} {
			p := c.p
			query, args := pgstore.EventListSQL(&p)
			root := explainPrepared(t, s, mode, query, args)
			used := false
			root.walk(func(n *planNode) {
				if n.RelationName == "events" && strings.Contains(n.NodeType, "Seq Scan") {
					t.Errorf("%s: listing %+v scans the events table:\n%s", mode, p, root)
				}
				if n.NodeType == "Sort" {
					t.Errorf("%s: listing %+v sorts:\n%s", mode, p, root)
				}
				used = used || n.IndexName == c.index
			})
			if !used {
				t.Errorf("%s: listing %+v does not use %s:\n%s", mode, p, c.index, root)
			}
			t.Logf("%s plan (%+v):\n%s", mode, p, root)
		}
	}

	// And it lists them: 6000/2 per tenant, of which types repeat every 20,
	// each with its one delivery counted.
	list, err := s.EventList(ctx, &kapsel.EventListParams{TenantID: tenants[1].ID, Type: "resource3.changed", Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != total/20 || list[0].Deliveries != (kapsel.DeliverySummary{Total: 1, Pending: 1}) {
		t.Fatalf("listed %d events of the type (the first %+v), want %d with one pending delivery each", len(list), list[0], total/20)
	}
}

// explainPrepared returns the plan of query as pgx runs it — a prepared
// statement — in the plan cache mode (force_custom_plan,
// force_generic_plan): EXPLAIN EXECUTE shows the plan it gets (EXPLAIN of
// the bare query would plan it with the values known).
func explainPrepared(t *testing.T, s *pgstore.Store, mode, query string, args []any) *planNode {
	t.Helper()
	ctx := t.Context()
	tx, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	literals := make([]string, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case int:
			literals[i] = fmt.Sprint(v)
		default:
			literals[i] = "'" + strings.ReplaceAll(fmt.Sprint(v), "'", "''") + "'"
		}
	}
	var raw []byte
	if _, err = tx.Exec(ctx, `SET LOCAL plan_cache_mode = `+mode); err == nil {
		_, err = tx.Exec(ctx, `PREPARE explained AS `+query)
	}
	if err == nil {
		err = tx.QueryRow(ctx, `EXPLAIN (FORMAT JSON) EXECUTE explained(`+strings.Join(literals, ", ")+`)`).Scan(&raw)
	}
	if err == nil {
		// Prepared statements belong to the session, not the transaction.
		_, err = tx.Exec(ctx, `DEALLOCATE explained`)
	}
	_ = tx.Rollback(ctx)
	if err != nil {
		t.Fatalf("EXPLAIN: %v", err)
	}
	return decodePlan(t, raw)
}

// TestDeliveryListUsesIndexes checks, on explainFixture's queue, that
// listing an endpoint's deliveries reads deliveries_endpoint_id_idx in id
// order (no sort, no scan of deliveries), and an event's reads
// deliveries_event_endpoint_key, in both plan cache modes.
func TestDeliveryListUsesIndexes(t *testing.T) {
	t.Parallel()
	s, ten, eps, _ := explainFixture(t)
	ctx := t.Context()
	page, err := s.DeliveryList(ctx, &kapsel.DeliveryListParams{TenantID: ten.ID, EndpointID: eps[2].ID, Limit: 50})
	if err != nil || len(page) != 50 {
		t.Fatalf("an endpoint's first page: %d deliveries, %v", len(page), err)
	}
	for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
		for _, c := range []struct {
			p      kapsel.DeliveryListParams
			index  string
			sorted bool // the plan may sort (an event's few deliveries)
		}{
			{kapsel.DeliveryListParams{TenantID: ten.ID, EndpointID: eps[2].ID, Limit: 50}, "deliveries_endpoint_id_idx", false},
			{kapsel.DeliveryListParams{TenantID: ten.ID, EndpointID: eps[2].ID, Status: kapsel.DeliveryDelivered,
				Cursor: page[49].ID, Limit: 50}, "deliveries_endpoint_id_idx", false},
			{kapsel.DeliveryListParams{TenantID: ten.ID, EventID: page[3].EventID}, "deliveries_event_endpoint_key", true},
		} {
			query, args := pgstore.DeliveryListSQL(&c.p)
			root := explainPrepared(t, s, mode, query, args)
			used := false
			root.walk(func(n *planNode) {
				if n.RelationName == "deliveries" && strings.Contains(n.NodeType, "Seq Scan") {
					t.Errorf("%s: listing %+v scans deliveries:\n%s", mode, c.p, root)
				}
				if n.NodeType == "Sort" && !c.sorted {
					t.Errorf("%s: listing %+v sorts:\n%s", mode, c.p, root)
				}
				used = used || n.IndexName == c.index
			})
			if !used {
				t.Errorf("%s: listing %+v does not use %s:\n%s", mode, c.p, c.index, root)
			}
			t.Logf("%s plan (%+v):\n%s", mode, c.p, root)
		}
	}
}

// TestDeliveryListByTenantUsesIndex checks that listing a tenant's
// deliveries (GET /v1/deliveries without endpoint_id or event_id) costs at
// most the tenant's own deliveries, in both plan cache modes: without a
// status it reads deliveries_tenant_id_idx in id order from the cursor (no
// sort); with one, the planner may also read the tenant's index and sort
// what matches, or, for a live status, the partial index of that status
// (the live queue) — never the whole table: no scan of deliveries, no walk
// of its primary key. Before migration 0005 had the index, this walked the
// primary key through every tenant's deliveries until the page was full —
// all of them for a tenant with fewer than a page. The fixture's tenant has
// 6,000 deliveries among 30,000 of another tenant, and a small tenant has
// 20; the small tenant's page is read with EXPLAIN ANALYZE and logged.
func TestDeliveryListByTenantUsesIndex(t *testing.T) {
	t.Parallel()
	s, ten, _, now := explainFixture(t)
	ctx := t.Context()
	if _, err := s.Pool().Exec(ctx, `
		INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, status, attempts, next_attempt_at, claimable_at,
			next_trigger, last_error, created_at, delivered_at)
		SELECT 'dlv_x' || lpad(i::text, 8, '0'), CASE WHEN i <= 20 THEN 'ten_small' ELSE 'ten_big' END,
			'evt_x' || i, 'ep_x', CASE WHEN i % 50 = 0 THEN 'failed' ELSE 'delivered' END, 1, $1, $1, 'scheduled', '', $1,
			CASE WHEN i % 50 = 0 THEN NULL ELSE $1::timestamptz END
		FROM generate_series(1, 30020) AS i`, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `ANALYZE deliveries`); err != nil {
		t.Fatal(err)
	}
	page, err := s.DeliveryList(ctx, &kapsel.DeliveryListParams{TenantID: ten.ID, Limit: 50})
	if err != nil || len(page) != 50 {
		t.Fatalf("the tenant's first page: %d deliveries, %v", len(page), err)
	}
	for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
		for _, p := range []kapsel.DeliveryListParams{
			{TenantID: ten.ID, Limit: 50},
			{TenantID: ten.ID, Cursor: page[49].ID, Limit: 50},
			{TenantID: ten.ID, Status: kapsel.DeliveryFailed, Limit: 50},
			{TenantID: ten.ID, Status: kapsel.DeliveryDelivered, Cursor: page[49].ID, Limit: 50},
			{TenantID: ten.ID, Status: kapsel.DeliveryPending, Cursor: page[49].ID, Limit: 50},
			{TenantID: "ten_small", Limit: 50},
			{TenantID: "ten_small", Status: kapsel.DeliveryFailed, Limit: 50},
		} {
			query, args := pgstore.DeliveryListSQL(&p)
			root := explainPrepared(t, s, mode, query, args)
			used := false
			root.walk(func(n *planNode) {
				switch {
				case n.RelationName == "deliveries" && strings.Contains(n.NodeType, "Seq Scan"):
					t.Errorf("%s: listing %+v scans deliveries:\n%s", mode, p, root)
				case n.IndexName == "deliveries_pkey":
					t.Errorf("%s: listing %+v walks the primary key:\n%s", mode, p, root)
				case n.NodeType == "Sort" && p.Status == "":
					t.Errorf("%s: listing %+v sorts:\n%s", mode, p, root)
				}
				used = used || n.IndexName == "deliveries_tenant_id_idx" ||
					(p.Status == kapsel.DeliveryPending && n.IndexName == "deliveries_pending_idx")
			})
			if !used {
				t.Errorf("%s: listing %+v does not use deliveries_tenant_id_idx:\n%s", mode, p, root)
			}
		}
	}
	query, args := pgstore.DeliveryListSQL(&kapsel.DeliveryListParams{TenantID: "ten_small", Limit: 50})
	rows, _ := s.Pool().Query(ctx, `EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) `+query, args...)
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the small tenant's page (20 of 36,020 deliveries), EXPLAIN ANALYZE:\n%s", strings.Join(lines, "\n"))
}
