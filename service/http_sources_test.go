package service_test

import (
	"encoding/json"
	"testing"
)

// TestSourceVerifierHeaderAlwaysPresent (SPEC §6): a source's verifier has
// its header field in every answer, "" when none was set.
func TestSourceVerifierHeaderAlwaysPresent(t *testing.T) {
	t.Parallel()
	f := setup(t)
	_, key := f.tenant("acme")
	gh := f.source(key, map[string]any{"verifier": map[string]any{"scheme": "github", "secrets": []string{"s"}}})
	custom := f.source(key, map[string]any{"verifier": map[string]any{"scheme": "hmac-sha256", "secrets": []string{"s"}, "header": "X-Sig"}})
	none := f.source(key, nil)
	id := func(src map[string]any) string { return src["id"].(string) }

	// The raw answers, not maps decoded from them: an absent field and an
	// empty one must not look alike here.
	header := func(what, raw string) (string, bool) {
		t.Helper()
		var v struct {
			Verifier map[string]json.RawMessage `json:"verifier"`
		}
		if err := json.Unmarshal([]byte(raw), &v); err != nil {
			t.Fatalf("%s: %v: %s", what, err, raw)
		}
		var h *string
		if err := json.Unmarshal(v.Verifier["header"], &h); err != nil || h == nil {
			return "", false
		}
		return *h, true
	}
	for _, tc := range []struct {
		src  map[string]any
		want string
	}{{gh, ""}, {custom, "X-Sig"}, {none, ""}} {
		rec := f.do("GET", "/v1/sources/"+id(tc.src), key, nil)
		if h, ok := header("get", rec.Body.String()); !ok || h != tc.want {
			t.Fatalf("get: verifier.header %q (present %v), want %q: %s", h, ok, tc.want, rec.Body)
		}
		rec = f.do("POST", "/v1/sources/"+id(tc.src)+"/pause", key, nil)
		if h, ok := header("pause", rec.Body.String()); !ok || h != tc.want {
			t.Fatalf("pause: verifier.header %q (present %v), want %q: %s", h, ok, tc.want, rec.Body)
		}
	}
	var list struct {
		Data []json.RawMessage `json:"data"`
	}
	rec := f.do("GET", "/v1/sources", key, nil)
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || len(list.Data) != 3 {
		t.Fatalf("GET /v1/sources: %v: %s", err, rec.Body)
	}
	for _, raw := range list.Data {
		if _, ok := header("list", string(raw)); !ok {
			t.Fatalf("listed source without verifier.header: %s", raw)
		}
	}
}
