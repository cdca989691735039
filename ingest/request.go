package ingest

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/kapsel-dev/kapsel"
)

// IdempotencyHeaders are read in order; the first one present holds the
// event's idempotency key. After the two generic headers come the
// providers' own delivery ids: GitHub's, Standard Webhooks' (under its own
// name and Svix's), Shopify's (with and without the X- prefix, as its
// signature header).
var IdempotencyHeaders = []string{
	"X-Idempotency-Key",
	"Idempotency-Key",
	"X-GitHub-Delivery",
	"Webhook-Id",
	"Svix-Id",
	"X-Shopify-Webhook-Id",
	"Shopify-Webhook-Id",
}

// MaxIdempotencyKeyLen is the longest idempotency key accepted.
const MaxIdempotencyKeyLen = 255

// IdempotencyKey returns the idempotency key of a request: the first value of
// the first header of [IdempotencyHeaders] that is present, or "" when none
// is. A present key must be 1–255 characters of printable ASCII (0x20–0x7E,
// space included; HTTP already strips spaces around a header value), else
// the error wraps kapsel.ErrInvalid. A header that is present but empty is
// invalid, not absent.
func IdempotencyKey(h http.Header) (string, error) {
	for _, name := range IdempotencyHeaders {
		vs := h.Values(name)
		if len(vs) == 0 {
			continue
		}
		if err := ValidIdempotencyKey(vs[0]); err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		return vs[0], nil
	}
	return "", nil
}

// ValidIdempotencyKey checks that key is 1–255 characters of printable ASCII
// (0x20–0x7E); the error wraps kapsel.ErrInvalid.
func ValidIdempotencyKey(key string) error {
	if len(key) == 0 || len(key) > MaxIdempotencyKeyLen {
		return fmt.Errorf("%w: idempotency key must be 1–%d characters, got %d", kapsel.ErrInvalid, MaxIdempotencyKeyLen, len(key))
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] > 0x7e {
			return fmt.Errorf("%w: idempotency key must be printable ASCII; byte %d is 0x%02x", kapsel.ErrInvalid, i, key[i])
		}
	}
	return nil
}

// droppedHeaders are never forwarded: Host and Content-Length describe this
// request only; Content-Type is kept separately on the event; the
// hop-by-hop headers of RFC 9110 §7.6.1 (and the legacy Proxy-Connection);
// Expect, a per-connection negotiation Kapsel already answered; the
// credentials Cookie and Authorization; and the X-Kapsel-Attempt and
// X-Kapsel-Event-Type headers Kapsel sets on every delivery itself (an
// inbound one would say what the event's own does not). Headers starting
// with one of droppedPrefixes go too.
var droppedHeaders = map[string]bool{
	"Host":                true,
	"Content-Length":      true,
	"Content-Type":        true,
	"Connection":          true,
	"Keep-Alive":          true,
	"Proxy-Authenticate":  true,
	"Proxy-Authorization": true,
	"Proxy-Connection":    true,
	"Te":                  true,
	"Trailer":             true,
	"Transfer-Encoding":   true,
	"Upgrade":             true,
	"Expect":              true,
	"Cookie":              true,
	"Authorization":       true,
	"X-Kapsel-Attempt":    true,
	"X-Kapsel-Event-Type": true,
}

// droppedPrefixes (canonical form) are the inbound Standard Webhooks and
// Svix headers — a provider's webhook-id/-timestamp/-signature or
// svix-id/-timestamp/-signature. Kapsel signs each delivery with its own
// webhook-* headers; a provider's would only confuse the destination's
// verifier (Svix's libraries read svix-* first and then refuse Kapsel's
// signature).
var droppedPrefixes = [...]string{"Webhook-", "Svix-"}

// dropped reports whether the canonical header name ck is never forwarded.
func dropped(ck string) bool {
	if droppedHeaders[ck] {
		return true
	}
	for _, p := range droppedPrefixes {
		if strings.HasPrefix(ck, p) {
			return true
		}
	}
	return false
}

// ForwardedHeaders returns a copy of the end-to-end headers of h that are
// stored with the event and sent on delivery: every header except Host,
// Content-Length, Content-Type (stored separately), hop-by-hop headers (the
// fixed list and any header named in Connection), Expect, Cookie,
// Authorization, and the provider's webhook-* and svix-* headers. Names are
// canonicalised.
func ForwardedHeaders(h http.Header) http.Header {
	named := map[string]bool{}
	for _, v := range h.Values("Connection") {
		for tok := range strings.SplitSeq(v, ",") {
			if tok = strings.TrimSpace(tok); tok != "" {
				named[http.CanonicalHeaderKey(tok)] = true
			}
		}
	}
	out := make(http.Header, len(h))
	for name, vs := range h {
		ck := http.CanonicalHeaderKey(name)
		if dropped(ck) || named[ck] || len(vs) == 0 {
			continue
		}
		out[ck] = append(out[ck], vs...)
	}
	return out
}

// storableContentType refuses (400 E1009) a Content-Type that
// kapsel.SafeText would change — invalid UTF-8 or NUL — because the content
// type is stored and delivered exactly as received, and a changed one would
// misdescribe the body. Other forwarded headers are stored made safe (see
// kapsel.SafeHeader): they describe the request, not the body.
func storableContentType(h http.Header) error {
	return checkContentType(h.Get("Content-Type"))
}

// checkContentType is the rule for a content type, sent or ingested: it is
// stored and delivered exactly as given, so bytes kapsel.SafeText would
// change (invalid UTF-8, NUL) are refused with 400 E1009.
func checkContentType(ct string) error {
	if kapsel.SafeText(ct) == ct {
		return nil
	}
	return &kapsel.Error{Code: kapsel.CodeMalformedRequest,
		Detail: "Content-Type holds bytes Kapsel cannot store (invalid UTF-8 or NUL)", Err: kapsel.ErrInvalid}
}
