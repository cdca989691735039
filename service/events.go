package service

import (
	"context"
	"errors"
	"unicode/utf8"

	"github.com/kapsel-dev/kapsel"
)

// EventFilter selects the events of [Service.ListEvents].
type EventFilter struct {
	// EndpointID keeps the events of one endpoint; "" for all.
	EndpointID kapsel.EndpointID
	// Status keeps the events in one status; "" for all.
	Status kapsel.EventStatus
	// Type keeps the events of exactly this type (no wildcard; case
	// matters); "" for all. At most 255 bytes of UTF-8 text.
	Type string
	ListOptions
}

// ListEvents lists the tenant's events, newest last, without bodies.
// Errors: E1009 for an unknown status, a type no event can have (over 255
// bytes, invalid UTF-8 or NUL), a bad limit or a malformed cursor; E1011
// when the endpoint is not the tenant's.
func (s *Service) ListEvents(ctx context.Context, tenant kapsel.TenantID, f EventFilter) (*Page[*kapsel.Event], error) {
	limit, err := f.check(func(c string) error { _, err := kapsel.ParseEventID(c); return err })
	if err != nil {
		return nil, err
	}
	if f.Status != "" && !f.Status.Valid() {
		return nil, invalid("status must be one of pending, delivering, delivered, failed")
	}
	if len(f.Type) > kapsel.MaxEventTypeLen || kapsel.SafeText(f.Type) != f.Type {
		return nil, invalid("type must be at most %d bytes of UTF-8 text", kapsel.MaxEventTypeLen)
	}
	params := kapsel.EventListParams{TenantID: tenant, Status: f.Status, Type: f.Type}
	if f.EndpointID != "" {
		if _, err := s.GetEndpoint(ctx, tenant, f.EndpointID); err != nil {
			return nil, err
		}
		params.EndpointID = f.EndpointID
	}
	return list(limit, f.Cursor, func(limit int, cursor string) ([]*kapsel.Event, error) {
		params.Limit, params.Cursor = limit, kapsel.EventID(cursor)
		return s.store.EventList(ctx, &params)
	}, func(e *kapsel.Event) string { return string(e.ID) })
}

// GetEvent returns one of the tenant's events, with its body when
// includeBody is set. Errors: E1011 when it is not the tenant's.
func (s *Service) GetEvent(ctx context.Context, tenant kapsel.TenantID, id kapsel.EventID, includeBody bool) (*kapsel.Event, error) {
	e, err := s.store.EventGet(ctx, &kapsel.EventGetParams{ID: id, TenantID: tenant, IncludeBody: includeBody})
	if err != nil {
		return nil, notFoundErr(err, "event", string(id))
	}
	return e, nil
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

// ListAttempts lists an event's attempts, oldest first. Errors: E1009 for a
// bad limit or cursor; E1011 when the event is not the tenant's.
func (s *Service) ListAttempts(ctx context.Context, tenant kapsel.TenantID, id kapsel.EventID, o AttemptListOptions) (*Page[ListedAttempt], error) {
	limit, err := o.check(func(c string) error { _, err := kapsel.ParseAttemptID(c); return err })
	if err != nil {
		return nil, err
	}
	params := kapsel.AttemptListParams{EventID: id, TenantID: tenant}
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
		return nil, notFoundErr(err, "event", string(id))
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

// RetryEvent queues a delivered or failed event for one more, manual
// attempt with the same webhook-id, due at once. Errors: E1011 when the
// event is not the tenant's; E1009 when it is pending or delivering.
func (s *Service) RetryEvent(ctx context.Context, tenant kapsel.TenantID, id kapsel.EventID) (*kapsel.Event, error) {
	e, err := s.store.EventRetry(ctx, &kapsel.EventRetryParams{ID: id, TenantID: tenant, Now: s.now()})
	switch {
	case errors.Is(err, kapsel.ErrIllegalTransition):
		return nil, invalid("event %s is neither delivered nor failed; only finished events can be retried", id)
	case err != nil:
		return nil, notFoundErr(err, "event", string(id))
	}
	s.Wake()
	return e, nil
}
