package pgstore

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// eventColumnsE are an event's columns without its body, with the table
// alias e, in eventRow.dest order.
const eventColumnsE = `e.id, e.tenant_id, e.source_id, e.type, e.channels, e.idempotency_key, e.content_type,
	e.headers, e.body_hash, e.size, e.created_at, e.trace_parent, e.trace_state, e.body_erasure, e.body_erased_at`

// summaryColumns count the deliveries of the event e by status, in
// eventRow.dest order: one probe of deliveries_event_endpoint_key (the
// event's few deliveries) per event.
const summaryColumns = `s.pending, s.delivering, s.delivered, s.failed`

// summaryJoin is the lateral join that summaryColumns read.
const summaryJoin = `LEFT JOIN LATERAL (
	SELECT count(*) FILTER (WHERE d.status = 'pending') AS pending,
		count(*) FILTER (WHERE d.status = 'delivering') AS delivering,
		count(*) FILTER (WHERE d.status = 'delivered') AS delivered,
		count(*) FILTER (WHERE d.status = 'failed') AS failed
	FROM deliveries d WHERE d.event_id = e.id) s ON true`

// eventRow receives an event's columns; event converts it.
type eventRow struct {
	e       kapsel.Event
	key     *string
	headers []byte
	trace   [2]*string // trace_parent, trace_state: NULL is none
	counts  [4]int     // pending, delivering, delivered, failed
	erased  *time.Time
}

// dest returns the scan destinations of eventColumnsE, then of the summary
// when withSummary is set, then of the body when withBody is set.
func (r *eventRow) dest(withSummary, withBody bool) []any {
	d := []any{&r.e.ID, &r.e.TenantID, &r.e.SourceID, &r.e.Type, &r.e.Channels, &r.key, &r.e.ContentType,
		&r.headers, &r.e.BodyHash, &r.e.Size, &r.e.CreatedAt, &r.trace[0], &r.trace[1], &r.e.BodyErasure, &r.erased}
	if withSummary {
		d = append(d, &r.counts[0], &r.counts[1], &r.counts[2], &r.counts[3])
	}
	if withBody {
		d = append(d, &r.e.Body)
	}
	return d
}

// event returns the scanned event.
func (r *eventRow) event() (*kapsel.Event, error) {
	e := r.e
	if r.key != nil {
		e.IdempotencyKey = *r.key
	}
	if r.trace[0] != nil {
		e.Trace.Parent = *r.trace[0]
	}
	if r.trace[1] != nil {
		e.Trace.State = *r.trace[1]
	}
	e.Channels = listOrNil(e.Channels)
	if r.erased != nil {
		e.BodyErasedAt = *r.erased
	}
	for i, st := range []kapsel.DeliveryStatus{kapsel.DeliveryPending, kapsel.DeliveryDelivering,
		kapsel.DeliveryDelivered, kapsel.DeliveryFailed} {
		e.Deliveries.Add(st, r.counts[i])
	}
	if err := json.Unmarshal(r.headers, &e.Headers); err != nil {
		return nil, fmt.Errorf("decoding headers of event %s: %w", e.ID, err)
	}
	return &e, nil
}

// scanner is pgx.Row and pgx.Rows.
type scanner interface{ Scan(dest ...any) error }

// deliveryColumnsD are a delivery's columns, with the table alias d, in
// deliveryRow.dest order.
const deliveryColumnsD = `d.id, d.tenant_id, d.event_id, d.endpoint_id, d.status, d.attempts, d.next_attempt_at,
	d.next_trigger, d.lease_token::text, d.lease_expires_at, d.last_error, d.created_at, d.delivered_at`

// deliveryRow receives a delivery's columns; delivery converts it.
type deliveryRow struct {
	d                         kapsel.Delivery
	token                     *string
	leaseExpires, deliveredAt *time.Time
}

func (r *deliveryRow) dest() []any {
	return []any{&r.d.ID, &r.d.TenantID, &r.d.EventID, &r.d.EndpointID, &r.d.Status, &r.d.Attempts,
		&r.d.NextAttemptAt, &r.d.NextTrigger, &r.token, &r.leaseExpires, &r.d.LastError, &r.d.CreatedAt, &r.deliveredAt}
}

// delivery returns the scanned delivery.
func (r *deliveryRow) delivery() *kapsel.Delivery {
	d := r.d
	if r.token != nil {
		d.LeaseToken = *r.token
	}
	d.LeaseExpiresAt, d.DeliveredAt = timeVal(r.leaseExpires), timeVal(r.deliveredAt)
	return &d
}

// scanDelivery scans one row of deliveryColumnsD.
func scanDelivery(row scanner) (*kapsel.Delivery, error) {
	var r deliveryRow
	if err := row.Scan(r.dest()...); err != nil {
		return nil, err
	}
	return r.delivery(), nil
}
