package service

import (
	"context"
	"unicode/utf8"

	"github.com/kapsel-dev/kapsel"
)

// EventFilter selects the events of [Service.ListEvents].
type EventFilter struct {
	// SourceID keeps the events ingested by one source (deleted or not);
	// "" for all. Another tenant's source keeps none.
	SourceID kapsel.SourceID
	// Type keeps the events of exactly this type (no wildcard; case
	// matters); "" for all. At most 255 bytes of UTF-8 text.
	Type string
	ListOptions
}

// ListEvents lists the tenant's events, oldest first, without bodies, each
// with the summary of its deliveries by status. Errors: E1009 for a
// malformed source id, a type no event can have (over 255 bytes, invalid
// UTF-8 or NUL), a bad limit or a malformed cursor.
func (s *Service) ListEvents(ctx context.Context, tenant kapsel.TenantID, f EventFilter) (*Page[*kapsel.Event], error) {
	limit, err := f.check(func(c string) error { _, err := kapsel.ParseEventID(c); return err })
	if err != nil {
		return nil, err
	}
	if f.SourceID != "" {
		if _, err := kapsel.ParseSourceID(string(f.SourceID)); err != nil {
			return nil, invalid("source_id is not a source id")
		}
	}
	if len(f.Type) > kapsel.MaxEventTypeLen || kapsel.SafeText(f.Type) != f.Type {
		return nil, invalid("type must be at most %d bytes of UTF-8 text", kapsel.MaxEventTypeLen)
	}
	params := kapsel.EventListParams{TenantID: tenant, SourceID: f.SourceID, Type: f.Type}
	return list(limit, f.Cursor, func(limit int, cursor string) ([]*kapsel.Event, error) {
		params.Limit, params.Cursor = limit, kapsel.EventID(cursor)
		return s.store.EventList(ctx, &params)
	}, func(e *kapsel.Event) string { return string(e.ID) })
}

// GetEvent returns one of the tenant's events with the summary of its
// deliveries by status, and its body when includeBody is set. Errors: E1011
// when it is not the tenant's.
func (s *Service) GetEvent(ctx context.Context, tenant kapsel.TenantID, id kapsel.EventID, includeBody bool) (*kapsel.Event, error) {
	e, err := s.store.EventGet(ctx, &kapsel.EventGetParams{ID: id, TenantID: tenant, IncludeBody: includeBody})
	if err != nil {
		return nil, notFoundErr(err, "event", string(id))
	}
	return e, nil
}

// RetryEvent queues each delivered or failed delivery of the event (to an
// endpoint not deleted) for one more, manual attempt with the same
// webhook-id, due at once, and returns how many; pending and delivering
// ones are left as they are. Errors: E1011 when the event is not the
// tenant's.
func (s *Service) RetryEvent(ctx context.Context, tenant kapsel.TenantID, id kapsel.EventID) (int, error) {
	n, err := s.store.DeliveryRetryEvent(ctx, &kapsel.DeliveryRetryEventParams{EventID: id, TenantID: tenant, Now: s.now()})
	if err != nil {
		return 0, notFoundErr(err, "event", string(id))
	}
	if n > 0 {
		s.Wake()
	}
	return n, nil
}

// Bounds of an attempts page (a list answer stays bounded in memory
// whatever the stored rows hold). A page of 500 attempts with whole 64 KiB
// bodies would be ~32 MiB of bodies (~43 MiB as base64 JSON) per request;
// with these bounds it is at most ~4.5 MiB, and the store never reads more
// than that either, since it cuts in its query.
const (
	// AttemptBodyPreview is how many bytes of its response body a listed
	// attempt carries (less when cutting at a character boundary keeps the
	// preview valid text).
	AttemptBodyPreview = 4 << 10
	// AttemptErrorPreview is how many characters of its error a listed
	// attempt carries. Kapsel's own messages are far shorter; only a
	// destination's status line can be longer.
	AttemptErrorPreview = 1 << 10
	// MaxFullBodyAttempts is the largest page of attempts with whole
	// bodies; a larger limit gives pages of this size.
	MaxFullBodyAttempts = 16
)

// AttemptListOptions select one page of [Service.ListAttempts].
type AttemptListOptions struct {
	ListOptions
	// WholeBodies returns whole response bodies (up to 64 KiB each) and
	// errors, at most MaxFullBodyAttempts per page. Defaults to previews of
	// AttemptBodyPreview bytes and AttemptErrorPreview characters.
	WholeBodies bool
}

// ListedAttempt is an attempt in a list.
type ListedAttempt struct {
	*kapsel.Attempt
	// ResponseBodyTruncated says ResponseBody is a preview of a longer
	// stored body.
	ResponseBodyTruncated bool
}

// ListAttempts lists the attempts of all the event's deliveries, oldest
// first. Errors: E1009 for a bad limit or cursor; E1011 when the event is
// not the tenant's.
func (s *Service) ListAttempts(ctx context.Context, tenant kapsel.TenantID, id kapsel.EventID, o AttemptListOptions) (*Page[ListedAttempt], error) {
	p, err := s.listAttempts(ctx, kapsel.AttemptListParams{EventID: id, TenantID: tenant}, o)
	if err != nil {
		return nil, notFoundErr(err, "event", string(id))
	}
	return p, nil
}

// ListDeliveryAttempts lists the attempts of one delivery, oldest first.
// Errors: E1009 for a bad limit or cursor; E1011 when the delivery is not
// the tenant's.
func (s *Service) ListDeliveryAttempts(ctx context.Context, tenant kapsel.TenantID, id kapsel.DeliveryID, o AttemptListOptions) (*Page[ListedAttempt], error) {
	p, err := s.listAttempts(ctx, kapsel.AttemptListParams{DeliveryID: id, TenantID: tenant}, o)
	if err != nil {
		return nil, notFoundErr(err, "delivery", string(id))
	}
	return p, nil
}

// listAttempts reads one page of attempts selected by params.
func (s *Service) listAttempts(ctx context.Context, params kapsel.AttemptListParams, o AttemptListOptions) (*Page[ListedAttempt], error) {
	limit, err := o.check(func(c string) error { _, err := kapsel.ParseAttemptID(c); return err })
	if err != nil {
		return nil, err
	}
	if o.WholeBodies {
		limit = min(limit, MaxFullBodyAttempts)
	} else {
		// One byte more than shown, to learn whether the body was cut.
		params.ResponseBodyLimit, params.ErrorLimit = AttemptBodyPreview+1, AttemptErrorPreview
	}
	p, err := list(limit, o.Cursor, func(limit int, cursor string) ([]*kapsel.Attempt, error) {
		params.Limit, params.Cursor = limit, kapsel.AttemptID(cursor)
		return s.store.AttemptList(ctx, &params)
	}, func(a *kapsel.Attempt) string { return string(a.ID) })
	if err != nil {
		return nil, err
	}
	out := &Page[ListedAttempt]{Data: make([]ListedAttempt, 0, len(p.Data)), NextCursor: p.NextCursor, HasMore: p.HasMore}
	for _, a := range p.Data {
		la := ListedAttempt{Attempt: a}
		if !o.WholeBodies {
			a.ResponseBody, la.ResponseBodyTruncated = previewBody(a.ResponseBody, AttemptBodyPreview)
		}
		out.Data = append(out.Data, la)
	}
	return out, nil
}

// previewBody returns at most n bytes of b and whether it cut b. A cut
// that splits a character backs off by up to three bytes when that makes
// the preview valid UTF-8, so a text body stays text in its preview.
func previewBody(b []byte, n int) ([]byte, bool) {
	if len(b) <= n {
		return b, false
	}
	b = b[:n]
	for k := range utf8.UTFMax {
		if k < len(b) && utf8.Valid(b[:len(b)-k]) {
			return b[:len(b)-k], true
		}
	}
	return b, true
}
