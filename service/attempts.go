package service

import (
	"context"
	"unicode/utf8"

	"github.com/kapsel-dev/kapsel"
)

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
