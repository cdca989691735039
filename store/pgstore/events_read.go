package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/kapsel-dev/kapsel"
)

// EventGet returns the event with its deliveries' summary, and its body
// only when IncludeBody is set; ErrNotFound when it does not exist or
// (TenantID set) belongs to another tenant.
func (s *Store) EventGet(ctx context.Context, params *kapsel.EventGetParams) (*kapsel.Event, error) {
	cols := eventColumnsE + `, ` + summaryColumns
	if params.IncludeBody {
		cols += ", e.body"
	}
	var r eventRow
	err := s.pool.QueryRow(ctx, `SELECT `+cols+` FROM events e `+summaryJoin+`
		WHERE e.id = $1 AND ($2::text = '' OR e.tenant_id = $2)`,
		kapsel.SafeText(string(params.ID)), params.TenantID).Scan(r.dest(true, params.IncludeBody)...)
	if err != nil {
		return nil, fmt.Errorf("getting event %s: %w", params.ID, mapError(err))
	}
	e, err := r.event()
	if err != nil {
		return nil, fmt.Errorf("getting event %s: %w", params.ID, err)
	}
	return e, nil
}

// EventList lists events in id order after Cursor, without bodies, each
// with its deliveries' summary. The query names only the filters that are
// set, so that each shape gets its own plan: by source on
// events_source_id_idx, by tenant on events_tenant_id_idx, by tenant and
// type on events_tenant_type_idx (migration 0003), whose condition — a
// non-empty type — the query then states, since a generic plan cannot
// prove it from the parameter. The source or tenant is pinned to its index
// as pinnedTo says. The summaries are counted for the page's events only,
// after the LIMIT.
func (s *Store) EventList(ctx context.Context, params *kapsel.EventListParams) ([]*kapsel.Event, error) {
	if kapsel.SafeText(params.Type) != params.Type {
		// No stored type holds such bytes, and Postgres would refuse them
		// in a text parameter (22021).
		return []*kapsel.Event{}, nil
	}
	query, args := eventListSQL(params)
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("listing events: %w", mapError(err))
	}
	evs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*kapsel.Event, error) {
		var r eventRow
		if err := row.Scan(r.dest(true, false)...); err != nil {
			return nil, err
		}
		return r.event()
	})
	if err != nil {
		return nil, fmt.Errorf("listing events: %w", mapError(err))
	}
	return evs, nil
}

// pinnedTo returns the condition that column equals the parameter $n,
// written as a range (column >= $n AND column <= $n), and the ORDER BY of
// a list by it in id order: column, then id.
//
// An equality would be the plain way, but the planner then drops column
// from the ORDER BY (it is constant) and may walk the primary key in id
// order, filtering on column, instead of the (column, id) index: it does
// when the average value holds a large share of the table (a generic plan
// knows no better), assuming the rows of every value spread evenly over
// the ids. They do not in a queue — an endpoint or source that started
// last has all its rows at the end — and for such a value the walk reads
// the table's whole history to fill one page. Written as a range, column
// stays in the ORDER BY, and only the (column, id) index yields that order
// without a sort: it is read from the cursor and stops at the page's limit
// (checked with EXPLAIN EXECUTE in both plan cache modes,
// explain_list_test.go).
func pinnedTo(column string, n int) (where, order string) {
	return fmt.Sprintf("%[1]s >= $%[2]d AND %[1]s <= $%[2]d", column, n), column + ", "
}

// eventListSQL returns EventList's statement and arguments.
func eventListSQL(params *kapsel.EventListParams) (string, []any) {
	where, args := "e.id > $1", []any{kapsel.SafeText(string(params.Cursor))}
	order := ""
	add := func(column, value string, pin bool) {
		if value == "" {
			return
		}
		args = append(args, value)
		if pin && order == "" {
			w, o := pinnedTo(column, len(args))
			where, order = where+" AND "+w, o
			return
		}
		where += fmt.Sprintf(" AND %s = $%d", column, len(args))
	}
	// By source, or else by tenant, unless a type picks
	// events_tenant_type_idx, whose partial condition narrows it enough.
	add("e.source_id", kapsel.SafeText(string(params.SourceID)), true)
	add("e.tenant_id", string(params.TenantID), params.Type == "")
	add("e.type", params.Type, false)
	if params.Type != "" {
		where += " AND e.type <> ''"
	}
	args = append(args, kapsel.PageLimit(params.Limit))
	return fmt.Sprintf(`SELECT %s, %s FROM (SELECT %s FROM events e WHERE %s ORDER BY %se.id LIMIT $%d) e %s ORDER BY %se.id`,
		eventColumnsE, summaryColumns, eventColumnsE, where, order, len(args), summaryJoin, order), args
}
