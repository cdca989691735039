package ingest

import (
	"bytes"
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
// delivery ids, Slack's url_verification challenge, — with dotted paths
// such as "event.type" — the event types of docs/ingest.md, and — with
// RFC 6901 pointers ([jsonBody.Pointer]) — the values a source's
// EventTypeFrom and IdempotencyKeyFrom name.
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
	b.parse()
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

// parse parses the top level once.
func (b *jsonBody) parse() {
	if !b.parsed {
		b.parsed = true
		if json.Unmarshal(b.raw, &b.top) != nil {
			b.top = nil
		}
	}
}

// Pointer returns the value at the RFC 6901 JSON pointer p ("/data/type";
// "~1" stands for "/" and "~0" for "~" in a reference token; array elements
// by decimal index, "/items/0"): a string as its text, a number as its JSON
// text. ok is false when the body is not JSON, a token on the way finds
// nothing (a missing member, an index out of range or not a plain decimal,
// a string or number where an object or array should be), or the value is
// an object, an array, a boolean or null. The empty pointer (the whole
// body) and one not starting with "/" find nothing; a "~" followed by
// neither 0 nor 1 reads as itself (kapsel.FieldRef.Validate refuses such
// pointers before they get here).
func (b *jsonBody) Pointer(p string) (string, bool) {
	if !strings.HasPrefix(p, "/") {
		return "", false
	}
	tokens := strings.Split(p[1:], "/")
	var cur json.RawMessage
	if b.parse(); b.top != nil {
		// The common case, an object body: its members are parsed already.
		v, ok := b.top[unescapePointerToken(tokens[0])]
		if !ok {
			return "", false
		}
		cur, tokens = v, tokens[1:]
	} else {
		cur = bytes.TrimLeft(b.raw, " \t\r\n") // JSON's whitespace only
	}
	for _, tok := range tokens {
		next, ok := pointerStep(cur, unescapePointerToken(tok))
		if !ok {
			return "", false
		}
		cur = next
	}
	return scalarText(cur)
}

// unescapePointerToken undoes RFC 6901's escapes: "~1" first, then "~0", so
// that "~01" reads "~1".
func unescapePointerToken(tok string) string {
	if !strings.Contains(tok, "~") {
		return tok
	}
	return strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
}

// pointerStep returns the member tok of the object v, or the element tok
// (a decimal index without leading zeros) of the array v.
func pointerStep(v json.RawMessage, tok string) (json.RawMessage, bool) {
	if len(v) == 0 {
		return nil, false
	}
	switch v[0] {
	case '{':
		var obj map[string]json.RawMessage
		if json.Unmarshal(v, &obj) != nil {
			return nil, false
		}
		m, ok := obj[tok]
		return m, ok
	case '[':
		i, ok := arrayIndex(tok)
		if !ok {
			return nil, false
		}
		var arr []json.RawMessage
		if json.Unmarshal(v, &arr) != nil || i >= len(arr) {
			return nil, false
		}
		return arr[i], true
	}
	return nil, false
}

// arrayIndex reads an RFC 6901 array index: "0", or digits not starting
// with 0, small enough for an int.
func arrayIndex(tok string) (int, bool) {
	if tok == "" || len(tok) > 9 || (len(tok) > 1 && tok[0] == '0') {
		return 0, false
	}
	n := 0
	for i := 0; i < len(tok); i++ {
		if tok[i] < '0' || tok[i] > '9' {
			return 0, false
		}
		n = n*10 + int(tok[i]-'0')
	}
	return n, true
}

// scalarText returns a JSON string's text or a JSON number's text.
func scalarText(v json.RawMessage) (string, bool) {
	if len(v) == 0 {
		return "", false
	}
	switch c := v[0]; {
	case c == '"':
		var s string
		if json.Unmarshal(v, &s) != nil {
			return "", false
		}
		return s, true
	case c == '-' || (c >= '0' && c <= '9'):
		var n json.Number
		if json.Unmarshal(v, &n) != nil {
			return "", false
		}
		return n.String(), true
	}
	return "", false
}
