package pgstore_test

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/store/pgstore"
)

// TestEventListByTypeUsesIndex loads two tenants' events of twenty types
// (a fifth of them untyped), lets the planner see them (ANALYZE), and checks
// that listing a tenant's events of one type reads events_tenant_type_idx
// (migration 0003) in id order — no sort, no scan of the events table —
// with a custom plan and with the generic plan a prepared statement gets
// after a few executions, which cannot prove the partial index's condition
// from the parameter.
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
			in[i] = &kapsel.EventInsertParams{EndpointID: eps[n%2].ID, Type: typ, Body: body, BodyHash: sum[:]}
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
		for _, p := range []kapsel.EventListParams{
			{TenantID: tenants[0].ID, Type: "resource4.changed", Limit: 50},
			// The next page, in a status.
			{TenantID: tenants[0].ID, Type: "resource4.changed", Status: kapsel.EventPending, Cursor: first[49].ID, Limit: 50},
		} {
			query, args := pgstore.EventListSQL(&p)
			tx, err := s.Pool().Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// A prepared statement, as pgx runs it: EXPLAIN EXECUTE shows the
			// plan it gets in this mode (EXPLAIN of the bare query would plan
			// it with the values known).
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
				_, err = tx.Exec(ctx, `PREPARE list_by_type AS `+query)
			}
			if err == nil {
				err = tx.QueryRow(ctx, `EXPLAIN (FORMAT JSON) EXECUTE list_by_type(`+strings.Join(literals, ", ")+`)`).Scan(&raw)
			}
			if err == nil {
				// Prepared statements belong to the session, not the
				// transaction.
				_, err = tx.Exec(ctx, `DEALLOCATE list_by_type`)
			}
			_ = tx.Rollback(ctx)
			if err != nil {
				t.Fatalf("EXPLAIN: %v", err)
			}
			root := decodePlan(t, raw)
			used := false
			root.walk(func(n *planNode) {
				if n.RelationName == "events" && strings.Contains(n.NodeType, "Seq Scan") {
					t.Errorf("%s: listing by type scans the events table:\n%s", mode, root)
				}
				if n.NodeType == "Sort" {
					t.Errorf("%s: listing by type sorts:\n%s", mode, root)
				}
				used = used || n.IndexName == "events_tenant_type_idx"
			})
			if !used {
				t.Errorf("%s: listing by type does not use events_tenant_type_idx:\n%s", mode, root)
			}
			t.Logf("%s plan (%+v):\n%s", mode, p, root)
		}
	}

	// And it lists them: 6000/2 per tenant, of which types repeat every 20.
	list, err := s.EventList(ctx, &kapsel.EventListParams{TenantID: tenants[1].ID, Type: "resource3.changed", Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != total/20 {
		t.Fatalf("listed %d events of the type, want %d", len(list), total/20)
	}
}
