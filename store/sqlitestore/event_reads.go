package sqlitestore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/kapsel-dev/kapsel"
)

// eventByID returns the event visible to tenant (any when empty), without
// its deliveries summary. Events stay readable whatever happens to their
// source and endpoints (the audit trail).
func eventByID(ctx context.Context, q querier, id kapsel.EventID, tenant kapsel.TenantID, withBody bool) (*kapsel.Event, error) {
	cols := eventColumns + ", " + traceColumns
	if withBody {
		cols += ", " + bodyColumn
	}
	e, err := scanEvent(q.QueryRowContext(ctx, `SELECT `+cols+` FROM events WHERE id = ?1 AND (?2 = '' OR tenant_id = ?2)`,
		id, tenant), true, withBody)
	if err != nil {
		return nil, fmt.Errorf("event %s: %w", id, err)
	}
	return e, nil
}

// EventGet returns the event with its deliveries summary, and its body only
// when IncludeBody is set.
func (s *Store) EventGet(ctx context.Context, params *kapsel.EventGetParams) (*kapsel.Event, error) {
	e, err := eventByID(ctx, s.r, params.ID, params.TenantID, params.IncludeBody)
	if err == nil {
		err = summarise(ctx, s.r, []*kapsel.Event{e})
	}
	if err != nil {
		return nil, fmt.Errorf("getting %w", err)
	}
	return e, nil
}

// EventList lists events in id order after Cursor, without bodies, each with
// its deliveries summary. The query names only the filters that are set, so
// that SQLite can pick an index for each shape: by tenant on
// events_tenant_idx, by source on events_source_idx, by tenant and type on
// events_tenant_type_idx (whose condition, a non-empty type, the query then
// states).
func (s *Store) EventList(ctx context.Context, params *kapsel.EventListParams) ([]*kapsel.Event, error) {
	query, args := eventListQuery(params)
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("listing events: %w", mapError(err))
	}
	defer rows.Close()
	var out []*kapsel.Event
	for rows.Next() {
		e, err := scanEvent(rows, false, false)
		if err != nil {
			return nil, fmt.Errorf("listing events: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing events: %w", mapError(err))
	}
	if err := summarise(ctx, s.r, out); err != nil {
		return nil, fmt.Errorf("listing events: %w", err)
	}
	return out, nil
}

// eventListQuery returns EventList's statement and arguments.
func eventListQuery(params *kapsel.EventListParams) (string, []any) {
	where, args := "id > ?", []any{params.Cursor}
	for _, f := range []struct{ column, value string }{
		{"tenant_id", string(params.TenantID)},
		{"source_id", string(params.SourceID)},
		{"type", params.Type},
	} {
		if f.value != "" {
			where += " AND " + f.column + " = ?"
			args = append(args, f.value)
		}
	}
	// The partial indexes' conditions, so that SQLite may use them.
	if params.Type != "" {
		where += " AND type <> ''"
	}
	if params.SourceID != "" {
		where += " AND source_id <> ''"
	}
	args = append(args, kapsel.PageLimit(params.Limit))
	return `SELECT ` + eventColumns + ` FROM events WHERE ` + where + ` ORDER BY id LIMIT ?`, args
}

// summariseSQL counts the deliveries of the events in the JSON array ?1 by
// status, through the unique (event_id, endpoint_id) index.
const summariseSQL = `SELECT d.event_id, d.status, count(*) FROM deliveries d
	WHERE d.event_id IN (SELECT value FROM json_each(?1)) GROUP BY d.event_id, d.status`

// summarise fills in the Deliveries summary of events.
func summarise(ctx context.Context, q querier, events []*kapsel.Event) error {
	if len(events) == 0 {
		return nil
	}
	byID := make(map[kapsel.EventID]*kapsel.Event, len(events))
	ids := make([]kapsel.EventID, len(events))
	for i, e := range events {
		byID[e.ID], ids[i] = e, e.ID
	}
	idsJSON, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	rows, err := q.QueryContext(ctx, summariseSQL, string(idsJSON))
	if err != nil {
		return mapError(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id kapsel.EventID
		var status kapsel.DeliveryStatus
		var n int
		if err := rows.Scan(&id, &status, &n); err != nil {
			return mapError(err)
		}
		if e := byID[id]; e != nil {
			e.Deliveries.Add(status, n)
		}
	}
	return mapError(rows.Err())
}
