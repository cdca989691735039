package ingest

import (
	"encoding/json"
	"strings"
)

// jsonBody reads string fields of a request body that may be a JSON object.
// The body stays opaque bytes (docs/ingest.md): it is parsed only when a field is
// first asked for, at most once, and a body that is not a JSON object simply
// has no fields — reading never fails a request.
//
// Parsing keeps the top-level members as raw values (a copy bounded by the
// body, which is already in memory and under MaxBodyBytes); nested objects
// are decoded when a dotted path reaches into them. Keys match exactly,
// case included (encoding/json's struct fields would match "ID" for "id").
// With a duplicated key the last one counts, as in encoding/json.
//
// It is what ingest reads of a provider's body: Stripe's and Slack's
// delivery ids, Slack's url_verification challenge, and — with dotted paths
// such as "event.type" — the event types of docs/ingest.md.
type jsonBody struct {
	raw    []byte
	parsed bool
	top    map[string]json.RawMessage // nil when raw is not a JSON object
}

// newJSONBody wraps body without parsing it.
func newJSONBody(body []byte) *jsonBody { return &jsonBody{raw: body} }

// String returns the string at path: a member name, or member names joined
// by dots for nested objects ("event.type"). ok is false when the body is
// not a JSON object, a member on the way is missing or not an object, or
// the value is not a JSON string (a number, null, …).
func (b *jsonBody) String(path string) (s string, ok bool) {
	if !b.parsed {
		b.parsed = true
		if json.Unmarshal(b.raw, &b.top) != nil {
			b.top = nil
		}
	}
	obj := b.top
	for {
		name, rest, nested := strings.Cut(path, ".")
		v, found := obj[name]
		if !found {
			return "", false
		}
		if !nested {
			// A RawMessage member starts at its value's first byte.
			if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &s) != nil {
				return "", false
			}
			return s, true
		}
		obj = nil
		if json.Unmarshal(v, &obj) != nil {
			return "", false
		}
		path = rest
	}
}
