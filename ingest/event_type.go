package ingest

import (
	"net/http"

	"github.com/kapsel-dev/kapsel"
)

// typeRule says where a scheme's provider puts the event type: a request
// header, or string fields of the JSON body tried in order (dotted paths
// reach into nested objects).
type typeRule struct {
	header string
	fields []string
}

// eventTypeRules are the event types of docs/ingest.md, per verifier
// scheme. A scheme without a rule (none, hmac-sha256, an application's
// own) gives no type. Only a request verified with the scheme is read this
// way: another source's "type" member is its own business.
var eventTypeRules = map[string]typeRule{
	kapsel.SchemeGitHub:           {header: "X-GitHub-Event"},
	kapsel.SchemeStripe:           {fields: []string{"type"}},
	kapsel.SchemeStandardWebhooks: {fields: []string{"type"}},
	kapsel.SchemeShopify:          {header: "X-Shopify-Topic"},
	// Events API callbacks are {"type":"event_callback","event":{"type":
	// "app_mention",…}}: the inner type is the event's. Other Slack
	// requests carry only the outer one.
	kapsel.SchemeSlack: {fields: []string{"event.type", "type"}},
}

// RequestEventType returns the event type of a request verified with
// scheme, by docs/ingest.md's table: GitHub's X-GitHub-Event, Shopify's
// X-Shopify-Topic, the body's "type" for Stripe and Standard Webhooks, and
// for Slack the body's "event.type", else its "type"; "" for other
// schemes, and when the header or field is missing, empty or not a JSON
// string. The body is parsed only for a scheme whose type is in it. The type
// is cut to [kapsel.MaxEventTypeLen] bytes at a character boundary and made
// safe ([kapsel.StorableEventType]): it never refuses a provider's webhook.
func RequestEventType(scheme string, h http.Header, body []byte) string {
	return requestEventType(scheme, h, newJSONBody(body))
}

func requestEventType(scheme string, h http.Header, body *jsonBody) string {
	rule, ok := eventTypeRules[scheme]
	if !ok {
		return ""
	}
	if rule.header != "" {
		return kapsel.StorableEventType(h.Get(rule.header))
	}
	for _, f := range rule.fields {
		if t, ok := body.String(f); ok && t != "" {
			return kapsel.StorableEventType(t)
		}
	}
	return ""
}

// sourceEventType is the event type of a request that arrived by src: read
// where src.EventTypeFrom says when it is set ([FieldValue]; nothing there
// gives no type, never the scheme's), else by the scheme's rule
// ([RequestEventType]). Made storable like the scheme's.
func sourceEventType(src *kapsel.Source, h http.Header, body *jsonBody) string {
	if src.EventTypeFrom != "" {
		v, _ := fieldValue(src.EventTypeFrom, h, body)
		return kapsel.StorableEventType(v)
	}
	return requestEventType(src.Verifier.Scheme, h, body)
}

// FieldValue reads the value ref names in a request: for "header:<name>"
// the header's first value (ok false when it is absent); for
// "json:<pointer>" the value at that RFC 6901 pointer in a JSON body — a
// string as its text, a number as its JSON text (42, 1.5e3) — with ok
// false when the body is not JSON, the pointer finds nothing, or finds an
// object, an array, a boolean or null. The empty FieldRef reads nothing.
// The value is as found: not cut, not checked.
func FieldValue(ref kapsel.FieldRef, h http.Header, body []byte) (v string, ok bool) {
	return fieldValue(ref, h, newJSONBody(body))
}

func fieldValue(ref kapsel.FieldRef, h http.Header, body *jsonBody) (string, bool) {
	if name, ok := ref.Header(); ok {
		vs := h.Values(name)
		if len(vs) == 0 {
			return "", false
		}
		return vs[0], true
	}
	if p, ok := ref.JSONPointer(); ok {
		return body.Pointer(p)
	}
	return "", false
}
