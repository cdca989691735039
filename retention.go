package kapsel

import (
	"fmt"
	"time"
)

// RetentionPolicy says how long Kapsel keeps what it stores (docs/operations.md,
// "Retention"). Retention counts from an event's creation, and never removes
// what is still in use: an event keeps its body, and its metadata, as long
// as one of its deliveries has not ended.
//
// A zero duration takes the default; [RetentionForever] (or any negative
// duration) keeps the data for ever.
type RetentionPolicy struct {
	// Body is how long an event's body and forwarded headers are kept. Once
	// it has passed (and every delivery of the event has ended) they are
	// erased; the event answers with its metadata and BodyErasure
	// "expired". Defaults to DefaultBodyRetention.
	Body time.Duration
	// Metadata is how long an event, its deliveries and their attempts (the
	// audit trail) are kept. Once it has passed, and every delivery of the
	// event has ended before it, all of them are removed. It must be at
	// least Body (the audit trail outlives the payload) and at least the
	// idempotency window (an event is never removed while its key is
	// taken). Defaults to DefaultMetadataRetention.
	Metadata time.Duration
}

// Retention defaults.
const (
	DefaultBodyRetention     = 30 * 24 * time.Hour
	DefaultMetadataRetention = 90 * 24 * time.Hour
	// RetentionForever keeps the data for ever.
	RetentionForever time.Duration = -1
)

// WithDefaults returns p with its zero durations replaced by the defaults
// and its negative ones by RetentionForever.
func (p RetentionPolicy) WithDefaults() RetentionPolicy {
	fill := func(d, def time.Duration) time.Duration {
		switch {
		case d == 0:
			return def
		case d < 0:
			return RetentionForever
		}
		return d
	}
	return RetentionPolicy{Body: fill(p.Body, DefaultBodyRetention), Metadata: fill(p.Metadata, DefaultMetadataRetention)}
}

// Validate checks p (after WithDefaults) against the idempotency window:
// metadata is kept at least as long as bodies and as the window. The error
// wraps ErrInvalid and names the field.
func (p RetentionPolicy) Validate(idempotencyWindow time.Duration) error {
	p = p.WithDefaults()
	if idempotencyWindow <= 0 {
		idempotencyWindow = DefaultIdempotencyWindow
	}
	if p.Metadata == RetentionForever {
		return nil
	}
	if p.Body == RetentionForever || p.Metadata < p.Body {
		return fmt.Errorf("%w: retention Metadata (%s) must be at least Body (%s): the audit trail outlives the payload",
			ErrInvalid, p.Metadata, durationText(p.Body))
	}
	if p.Metadata < idempotencyWindow {
		return fmt.Errorf("%w: retention Metadata (%s) must be at least the idempotency window (%s)",
			ErrInvalid, p.Metadata, idempotencyWindow)
	}
	return nil
}

func durationText(d time.Duration) string {
	if d == RetentionForever {
		return "forever"
	}
	return d.String()
}

// BodyErasure says why an event's body is no longer stored.
type BodyErasure string

// Body erasures.
const (
	// BodyKept: the body is stored.
	BodyKept BodyErasure = ""
	// BodyExpired: the body retention passed and the body was erased.
	BodyExpired BodyErasure = "expired"
	// BodyExpunged: the body was erased on request (Service.ExpungeEvent,
	// DELETE /v1/events/{id}/body, or the tenant-wide expunge).
	BodyExpunged BodyErasure = "expunged"
)

// LastErrorBodyExpunged is the LastError of the deliveries that an expunge
// ended as failed: they had not ended, and there is no body left to send.
const LastErrorBodyExpunged = "event body expunged"

// RetentionTable names what a retention batch removed rows from, for
// metrics.
type RetentionTable string

// Retention tables.
const (
	// RetentionEventBodies: event bodies and headers erased (the rows stay).
	RetentionEventBodies     RetentionTable = "event_bodies"
	RetentionEvents          RetentionTable = "events"
	RetentionDeliveries      RetentionTable = "deliveries"
	RetentionAttempts        RetentionTable = "attempts"
	RetentionIdempotencyKeys RetentionTable = "idempotency_keys"
)

// RetentionInfo describes what one retention batch (or expunge) removed
// from one table ([Hooks.OnRetention]).
type RetentionInfo struct {
	Table RetentionTable
	// Rows removed (or, for RetentionEventBodies, bodies erased).
	Rows int
	// Bytes of bodies, headers and response bodies removed, as stored
	// (approximate for headers).
	Bytes int64
	// Cause is BodyExpired for retention, BodyExpunged for an expunge.
	Cause BodyErasure
	// Duration is how long the batch held the store, all tables of the
	// batch together.
	Duration time.Duration
}

// RetentionOldestInfo reports the oldest row a table keeps after a
// retention pass ([Hooks.OnRetentionOldest]).
type RetentionOldestInfo struct {
	Table RetentionTable
	// Oldest is the creation time of its oldest row; zero when empty.
	Oldest time.Time
}
