package api

import (
	"errors"
	"net/http"
	"unicode/utf8"

	"github.com/kapsel-dev/kapsel"
)

// Bounds of an attempts page (SPEC §6: a list answer stays bounded in
// memory whatever the stored rows hold). A page of 500 attempts with whole
// 64 KiB bodies would be ~32 MiB of bodies (~43 MiB as base64) per request;
// with these bounds it is at most ~4.5 MiB, and the store never reads more
// than that either, since it cuts in its query.
const (
	// AttemptBodyPreview is how many bytes of its response body a listed
	// attempt carries (less when cutting at a character boundary keeps the
	// preview valid text); response_body_truncated says when it was cut.
	AttemptBodyPreview = 4 << 10
	// AttemptErrorPreview is how many characters of its error a listed
	// attempt carries. Kapsel's own messages are far shorter; only a
	// destination's status line can be longer.
	AttemptErrorPreview = 1 << 10
	// MaxFullBodyAttempts is the largest page of attempts with
	// ?include=response_body (whole bodies, up to 64 KiB each); a larger
	// limit gives pages of this size, next_cursor leading on.
	MaxFullBodyAttempts = 16
)

// listAttempts: GET /v1/events/{id}/attempts[?include=response_body], oldest
// first. Without include, each response body is a preview of at most
// AttemptBodyPreview bytes; with it, bodies are whole and a page holds at
// most MaxFullBodyAttempts attempts.
func (a *API) listAttempts(w http.ResponseWriter, r *http.Request) error {
	id, err := eventID(r)
	if err != nil {
		return err
	}
	limit, cursor, err := pageParams(r, func(s string) error { _, err := kapsel.ParseAttemptID(s); return err })
	if err != nil {
		return err
	}
	include := r.URL.Query().Get("include")
	if include != "" && include != "response_body" {
		return badRequest(`include must be "response_body"`)
	}
	full := include == "response_body"
	params := kapsel.AttemptListParams{EventID: id, TenantID: tenantFrom(r.Context()).ID}
	conv := toAttemptJSON
	if full {
		limit = min(limit, MaxFullBodyAttempts)
	} else {
		// One byte more than shown, to learn whether the body was cut.
		params.ResponseBodyLimit, params.ErrorLimit = AttemptBodyPreview+1, AttemptErrorPreview
		conv = toAttemptPreviewJSON
	}
	p, err := list(limit, cursor,
		func(limit int, cursor string) ([]*kapsel.Attempt, error) {
			params.Limit, params.Cursor = limit, kapsel.AttemptID(cursor)
			return a.store.AttemptList(r.Context(), &params)
		},
		func(at *kapsel.Attempt) string { return string(at.ID) }, conv)
	if err != nil {
		if errors.Is(err, kapsel.ErrNotFound) {
			return notFound("event", string(id))
		}
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

// toAttemptPreviewJSON is toAttemptJSON with the response body cut to
// AttemptBodyPreview bytes.
func toAttemptPreviewJSON(at *kapsel.Attempt) attemptJSON {
	body, cut := previewBody(at.ResponseBody, AttemptBodyPreview)
	c := *at
	c.ResponseBody = body
	out := toAttemptJSON(&c)
	out.ResponseBodyTruncated = cut
	return out
}

// previewBody returns at most n bytes of b and whether it cut b. A cut
// that splits a character backs off by up to three bytes when that makes
// the preview valid UTF-8, so a text body stays text (not base64) in its
// preview.
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
