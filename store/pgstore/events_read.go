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
// prove it from the parameter. The summaries are counted for the page's
// events only, after the LIMIT.
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

// eventListSQL returns EventList's statement and arguments.
func eventListSQL(params *kapsel.EventListParams) (string, []any) {
	where, args := "e.id > $1", []any{kapsel.SafeText(string(params.Cursor))}
	for _, f := range []struct{ column, value string }{
		{"e.tenant_id", string(params.TenantID)},
		{"e.source_id", kapsel.SafeText(string(params.SourceID))},
		{"e.type", params.Type},
	} {
		if f.value != "" {
			args = append(args, f.value)
			where += fmt.Sprintf(" AND %s = $%d", f.column, len(args))
		}
	}
	if params.Type != "" {
		where += " AND e.type <> ''"
	}
	args = append(args, kapsel.PageLimit(params.Limit))
	return fmt.Sprintf(`SELECT %s, %s FROM (SELECT %s FROM events e WHERE %s ORDER BY e.id LIMIT $%d) e %s ORDER BY e.id`,
		eventColumnsE, summaryColumns, eventColumnsE, where, len(args), summaryJoin), args
}
