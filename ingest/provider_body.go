package ingest

import (
	"fmt"
	"net/http"

	"github.com/kapsel-dev/kapsel"
)

// bodyDeliveryIDs names, per verifier scheme, the top-level body member in
// which the provider puts its delivery id — the providers that send it in
// no header (docs/ingest.md): Stripe's event "id" (evt_…, the same on every retry
// of the event) and Slack's Events API "event_id". Only a request verified
// with that scheme is read this way: another source's "id" is its own
// business.
var bodyDeliveryIDs = map[string]string{
	kapsel.SchemeStripe: "id",
	kapsel.SchemeSlack:  "event_id",
}

// RequestIdempotencyKey returns the idempotency key of a request verified
// with scheme, following docs/ingest.md's chain: the headers of
// [IdempotencyHeaders] as [IdempotencyKey] reads them (a present but
// invalid header is an error wrapping kapsel.ErrInvalid), then, for the
// stripe and slack schemes, the provider's delivery id in the JSON body.
// The body is parsed only when no header gave a key and the scheme has a
// body id. A body id that is missing, not a string or not a valid key
// (1–255 printable ASCII) gives no key rather than an error: the request is
// the provider's, already verified, and refusing it would only make the
// provider retry it forever.
//
// A source's own IdempotencyKeyFrom comes last; [SourceIdempotencyKey]
// follows the whole chain.
func RequestIdempotencyKey(scheme string, h http.Header, body []byte) (string, error) {
	return requestIdempotencyKey(scheme, "", h, newJSONBody(body))
}

// SourceIdempotencyKey returns the idempotency key of a request that
// arrived by src: [RequestIdempotencyKey] for its verifier's scheme, else
// the value src.IdempotencyKeyFrom names ([FieldValue]). That value follows
// the rule of where it is read: a header that is present must hold a valid
// key (else an error wrapping kapsel.ErrInvalid, as for the headers of
// [IdempotencyHeaders]); a JSON value that is not a valid key gives no key,
// as a provider's body id does.
func SourceIdempotencyKey(src *kapsel.Source, h http.Header, body []byte) (string, error) {
	return requestIdempotencyKey(src.Verifier.Scheme, src.IdempotencyKeyFrom, h, newJSONBody(body))
}

func requestIdempotencyKey(scheme string, from kapsel.FieldRef, h http.Header, body *jsonBody) (string, error) {
	key, err := IdempotencyKey(h)
	if err != nil || key != "" {
		return key, err
	}
	if field, ok := bodyDeliveryIDs[scheme]; ok {
		if id, ok := body.String(field); ok && ValidIdempotencyKey(id) == nil {
			return id, nil
		}
	}
	v, ok := fieldValue(from, h, body)
	if !ok {
		return "", nil
	}
	err = ValidIdempotencyKey(v)
	switch {
	case err == nil:
		return v, nil
	case isHeaderRef(from):
		return "", fmt.Errorf("%s: %w", from, err)
	}
	return "", nil
}

// isHeaderRef reports whether ref names a header.
func isHeaderRef(ref kapsel.FieldRef) bool {
	_, ok := ref.Header()
	return ok
}

// slackChallenge returns the challenge of a Slack url_verification request
// — {"type":"url_verification","challenge":"…"}, sent when an app's Events
// API request URL is set up — for a source of the slack scheme, whose
// request is already verified. Slack expects it back; it is not an event.
// A url_verification without a non-empty string challenge is not answered
// this way (there is nothing to answer) and is stored like any request.
func slackChallenge(scheme string, body *jsonBody) (string, bool) {
	if scheme != kapsel.SchemeSlack {
		return "", false
	}
	if t, _ := body.String("type"); t != "url_verification" {
		return "", false
	}
	c, ok := body.String("challenge")
	return c, ok && c != ""
}
