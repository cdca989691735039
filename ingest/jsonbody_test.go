package ingest

import (
	"strconv"
	"strings"
	"testing"
)

func TestJSONBodyString(t *testing.T) {
	t.Parallel()
	const slack = `{"type":"event_callback","event":{"type":"app_mention","n":1,"deep":{"x":"y"}},"event_id":"Ev1"}`
	for _, tc := range []struct {
		body, path string
		want       string
		ok         bool
	}{
		{slack, "type", "event_callback", true},
		{slack, "event.type", "app_mention", true},
		{slack, "event.deep.x", "y", true},
		{slack, "event_id", "Ev1", true},
		{slack, "event", "", false},         // an object, not a string
		{slack, "event.n", "", false},       // a number
		{slack, "event.missing", "", false}, // absent
		{slack, "type.x", "", false},        // through a string
		{slack, "", "", false},
		{`{"a":"\u00e9\n"}`, "a", "é\n", true},
		{`{"a":null}`, "a", "", false},
		{`{"a":"1","a":"2"}`, "a", "2", true}, // last one counts
		{` { "a" : "x" } `, "a", "x", true},
		{`{"a":"x"`, "a", "", false},     // truncated
		{`{"a":"x"} {}`, "a", "", false}, // trailing data
		{`"a"`, "a", "", false},
		{`[{"a":"x"}]`, "a", "", false},
		{"", "a", "", false},
		{"\xff", "a", "", false},
	} {
		b := newJSONBody([]byte(tc.body))
		// Twice: the second read uses the first parse.
		for range 2 {
			if got, ok := b.String(tc.path); got != tc.want || ok != tc.ok {
				t.Fatalf("%s in %s: %q, %v; want %q, %v", tc.path, tc.body, got, ok, tc.want, tc.ok)
			}
		}
	}
}

// FuzzRequestIdempotencyKey feeds arbitrary bodies to the body part of the
// key chain: it never fails the request and never returns an invalid key.
func FuzzRequestIdempotencyKey(f *testing.F) {
	f.Add(`{"id":"evt_1"}`, "id")
	f.Add(`{"event_id":"Ev1","event":{"type":"x"}}`, "event.type")
	f.Add(`{"id":"\u0000"}`, "id")
	f.Add("{\"id\":\"\xff\"}", "id")
	f.Add(`{"id":{"id":"x"}}`, "id.id")
	f.Fuzz(func(t *testing.T, body, path string) {
		for _, scheme := range []string{"stripe", "slack"} {
			key, err := RequestIdempotencyKey(scheme, nil, []byte(body))
			if err != nil {
				t.Fatalf("%s: error %v for a body", scheme, err)
			}
			if key != "" && ValidIdempotencyKey(key) != nil {
				t.Fatalf("%s: invalid key %q", scheme, key)
			}
		}
		_, _ = newJSONBody([]byte(body)).String(path)
	})
}

// BenchmarkBodyIdempotencyKey measures reading Stripe's event id from a body
// of the given size (the rest a long string member, which the parse copies).
func BenchmarkBodyIdempotencyKey(b *testing.B) {
	for _, size := range []int{4 << 10, 1 << 20, 10 << 20} {
		body := []byte(`{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","data":{"object":{"description":"` +
			strings.Repeat("x", size-80) + `"}}}`)
		b.Run(strconv.Itoa(size>>10)+"KiB", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if k, _ := RequestIdempotencyKey("stripe", nil, body); k == "" {
					b.Fatal("no key")
				}
			}
		})
	}
}
