package pgstore

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// eventColumns are an event's columns without its body, in eventRow.dest
// order; eventColumnsE is the same with the table alias e.
const (
	eventColumns = `id, tenant_id, endpoint_id, type, status, attempts, next_attempt_at, next_trigger,
	lease_token::text, lease_expires_at, last_error, idempotency_key, content_type, headers, body_hash, size,
	created_at, delivered_at, channels`
	eventColumnsE = `e.id, e.tenant_id, e.endpoint_id, e.type, e.status, e.attempts, e.next_attempt_at, e.next_trigger,
	e.lease_token::text, e.lease_expires_at, e.last_error, e.idempotency_key, e.content_type, e.headers, e.body_hash,
	e.size, e.created_at, e.delivered_at, e.channels`
)

// eventRow receives an event's columns; event converts it.
type eventRow struct {
	e                      kapsel.Event
	token, key             *string
	leaseExpires, delivery *time.Time
	headers                []byte
}

// dest returns the scan destinations of eventColumns, then of body when
// withBody is set.
func (r *eventRow) dest(withBody bool) []any {
	d := []any{&r.e.ID, &r.e.TenantID, &r.e.EndpointID, &r.e.Type, &r.e.Status, &r.e.Attempts, &r.e.NextAttemptAt,
		&r.e.NextTrigger, &r.token, &r.leaseExpires, &r.e.LastError, &r.key, &r.e.ContentType, &r.headers,
		&r.e.BodyHash, &r.e.Size, &r.e.CreatedAt, &r.delivery, &r.e.Channels}
	if withBody {
		d = append(d, &r.e.Body)
	}
	return d
}

// event returns the scanned event.
func (r *eventRow) event() (*kapsel.Event, error) {
	e := r.e
	if r.token != nil {
		e.LeaseToken = *r.token
	}
	if r.key != nil {
		e.IdempotencyKey = *r.key
	}
	e.LeaseExpiresAt, e.DeliveredAt = timeVal(r.leaseExpires), timeVal(r.delivery)
	e.Channels = listOrNil(e.Channels)
	if err := json.Unmarshal(r.headers, &e.Headers); err != nil {
		return nil, fmt.Errorf("decoding headers of event %s: %w", e.ID, err)
	}
	return &e, nil
}

// scanner is pgx.Row and pgx.Rows.
type scanner interface{ Scan(dest ...any) error }

// scanEvent scans one row of eventColumns (and body when withBody).
func scanEvent(row scanner, withBody bool) (*kapsel.Event, error) {
	var r eventRow
	if err := row.Scan(r.dest(withBody)...); err != nil {
		return nil, err
	}
	return r.event()
}
