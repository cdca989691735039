package ingest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// TestIngestFansOut: an ingested event gets one delivery per endpoint of
// its tenant whose filter matches — by type, by source — committed with it
// and counted in the answer; a duplicate creates none.
func TestIngestFansOut(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	tn := e.tenant(0, 0)
	src := e.source(tn, kapsel.VerifierConfig{Scheme: kapsel.SchemeGitHub, Secrets: []string{"s"}})
	other := e.source(tn, kapsel.VerifierConfig{})
	all := e.endpoint(tn.ID, kapsel.Subscription{})
	pushes := e.endpoint(tn.ID, kapsel.Subscription{EventTypes: []string{"push"}})
	fromSrc := e.endpoint(tn.ID, kapsel.Subscription{SourceIDs: []kapsel.SourceID{src.ID}})
	e.endpoint(tn.ID, kapsel.Subscription{SourceIDs: []kapsel.SourceID{other.ID}})
	e.endpoint(tn.ID, kapsel.Subscription{EventTypes: []string{"issues"}})
	e.endpoint(e.tenant(0, 0).ID, kapsel.Subscription{}) // another tenant's

	sig := "sha256=" + hmacHex("s", "{}")
	r := accepted(t, e.post(src.ID, "{}", "X-Hub-Signature-256", sig, "X-GitHub-Event", "push", "X-GitHub-Delivery", "d1"), 202)
	if r.Deliveries != 3 {
		t.Fatalf("push from src: %d deliveries, want 3 (everything, pushes, src)", r.Deliveries)
	}
	dls, err := e.store.DeliveryList(e.ctx, &kapsel.DeliveryListParams{EventID: r.ID})
	if err != nil {
		t.Fatal(err)
	}
	got := map[kapsel.EndpointID]bool{}
	for _, d := range dls {
		got[d.EndpointID] = d.Status == kapsel.DeliveryPending
	}
	if len(got) != 3 || !got[all] || !got[pushes] || !got[fromSrc] {
		t.Fatalf("deliveries to %v, want pending ones to everything, pushes and src", got)
	}
	dup := accepted(t, e.post(src.ID, "{}", "X-Hub-Signature-256", sig, "X-GitHub-Event", "push", "X-GitHub-Delivery", "d1"), 200)
	if dup.ID != r.ID || dup.Deliveries != 0 || !dup.Duplicate {
		t.Fatalf("duplicate answer %+v, want the first id and no deliveries", dup)
	}
	if r := accepted(t, e.post(other.ID, "{}"), 202); r.Deliveries != 2 {
		t.Fatalf("untyped event from the other source: %d deliveries, want 2 (everything, other)", r.Deliveries)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if info := e.infos[0]; info.Deliveries != 3 || info.SourceID != src.ID || info.TenantID != tn.ID {
		t.Fatalf("OnIngest %+v", info)
	}
	if info := e.infos[1]; info.Deliveries != 0 || !info.Duplicate {
		t.Fatalf("OnIngest of the duplicate %+v", info)
	}
}

// TestLegacyEndpointURL: an ingest URL handed out by 0.1 names an endpoint
// (/ingest/ep_…); the upgrade made that endpoint a source with the same
// ULID (kapsel.LegacySourceID), and the URL keeps working: verified by the
// source's verifier, stored as its event, deduplicated with its own URL.
func TestLegacyEndpointURL(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	old := kapsel.NewEndpointID()
	src := e.sourceWith(nil, &kapsel.Source{
		ID:       kapsel.LegacySourceID(old),
		Verifier: kapsel.VerifierConfig{Scheme: kapsel.SchemeHMACSHA256, Secrets: []string{"s"}},
	})
	ep := e.endpoint(src.TenantID, kapsel.Subscription{SourceIDs: []kapsel.SourceID{src.ID}})
	if !strings.HasSuffix(string(src.ID), strings.TrimPrefix(string(old), kapsel.EndpointIDPrefix)) {
		t.Fatalf("legacy source %s does not carry the ULID of %s", src.ID, old)
	}

	legacyURL := kapsel.SourceID(old)
	refused(t, e.post(legacyURL, "b"), 401, kapsel.CodeSignature)
	r := accepted(t, e.post(legacyURL, "b", "X-Kapsel-Signature", hmacHex("s", "b"), "Idempotency-Key", "k"), 202)
	if r.Deliveries != 1 {
		t.Fatalf("%d deliveries, want 1 (the endpoint subscribed to the source)", r.Deliveries)
	}
	ev, err := e.store.EventGet(e.ctx, &kapsel.EventGetParams{ID: r.ID})
	if err != nil || ev.SourceID != src.ID || ev.TenantID != src.TenantID {
		t.Fatalf("event %+v, %v; want one of source %s", ev, err, src.ID)
	}
	if dls, err := e.store.DeliveryList(e.ctx, &kapsel.DeliveryListParams{EventID: r.ID}); err != nil || len(dls) != 1 || dls[0].EndpointID != ep {
		t.Fatalf("deliveries %+v, %v", dls, err)
	}
	// Both URLs are the same source: one idempotency scope.
	dup := accepted(t, e.post(src.ID, "b", "X-Kapsel-Signature", hmacHex("s", "b"), "Idempotency-Key", "k"), 200)
	if dup.ID != r.ID {
		t.Fatalf("the same key at the source's own URL made event %s, want the duplicate of %s", dup.ID, r.ID)
	}
	// And the Go API takes the legacy id as well.
	res, err := e.in.Ingest(e.ctx, &kapsel.IngestRequest{SourceID: string(old), Header: http.Header{
		"X-Kapsel-Signature": {hmacHex("s", "c")}}, Body: []byte("c")})
	if err != nil || res.Event.SourceID != src.ID {
		t.Fatalf("Ingest with the legacy id: %+v, %v", res, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if info := e.infos[1]; info.SourceID != src.ID || info.Status != 202 {
		t.Fatalf("OnIngest at the legacy URL %+v, want the source's id", info)
	}
}

// TestPausedSource: a paused source refuses with 503 E3001 and Retry-After
// (the provider keeps the webhook and retries), before reading the body or
// checking the signature, and stores nothing; resumed, it accepts again.
func TestPausedSource(t *testing.T) {
	t.Parallel()
	e := setup(t, &Config{RetryAfter: 30 * time.Second})
	src := e.source(nil, kapsel.VerifierConfig{Scheme: kapsel.SchemeHMACSHA256, Secrets: []string{"s"}})
	e.endpoint(src.TenantID, kapsel.Subscription{})
	setState := func(st kapsel.SourceState) {
		t.Helper()
		if _, err := e.store.SourceSetState(e.ctx, &kapsel.SourceSetStateParams{ID: src.ID, State: st, Now: e.clock.Now()}); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(DefaultSourceCacheTTL) // seen once the cache entry expires
	}
	setState(kapsel.SourcePaused)
	signed := []string{"X-Kapsel-Signature", hmacHex("s", "b")}
	for _, req := range []struct {
		body string
		kv   []string
	}{{"b", signed}, {"b", nil}, {strings.Repeat("x", DefaultMaxBodyBytes+1), nil}} {
		w := e.post(src.ID, req.body, req.kv...)
		d := refused(t, w, 503, kapsel.CodeStorageUnavailable)
		if w.Header().Get("Retry-After") != "30" || !strings.Contains(d.Detail, "paused") {
			t.Fatalf("paused: Retry-After %q, detail %q", w.Header().Get("Retry-After"), d.Detail)
		}
	}
	if _, err := e.in.Ingest(e.ctx, &kapsel.IngestRequest{SourceID: string(src.ID), Body: []byte("b"),
		Header: http.Header{"X-Kapsel-Signature": {hmacHex("s", "b")}}}); kapsel.CodeOf(err) != kapsel.CodeStorageUnavailable {
		t.Fatalf("Ingest on a paused source: %v", err)
	}
	if n := len(e.events(src.ID)); n != 0 || e.wakeCount() != 0 {
		t.Fatalf("%d events stored, %d wakes, while paused", n, e.wakeCount())
	}
	setState(kapsel.SourceActive)
	if r := accepted(t, e.post(src.ID, "b", signed...), 202); r.Deliveries != 1 {
		t.Fatalf("resumed: %+v", r)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if info := e.infos[0]; info.Status != 503 || info.Code != kapsel.CodeStorageUnavailable || info.SourceID != src.ID || info.TenantID != src.TenantID {
		t.Fatalf("OnIngest of a paused refusal %+v", info)
	}
}

// TestEventTypeFrom: a source's EventTypeFrom replaces the scheme's rule —
// a header, or an RFC 6901 JSON pointer (escapes, array indexes, a number
// as its JSON text); where it finds nothing, the event has no type, even
// when the scheme's own rule would have found one.
func TestEventTypeFrom(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	for _, tc := range []struct {
		name   string
		scheme string
		from   kapsel.FieldRef
		kv     []string
		body   string
		want   string
	}{
		{"no override: the scheme's rule", kapsel.SchemeStripe, "", nil, `{"type":"invoice.paid"}`, "invoice.paid"},
		{"header", kapsel.SchemeNone, "header:X-Event-Kind", []string{"X-Event-Kind", "order.created"}, `{}`, "order.created"},
		{"header name in any case", kapsel.SchemeNone, "header:x-event-kind", []string{"X-Event-Kind", "order.created"}, `{}`, "order.created"},
		{"header missing", kapsel.SchemeNone, "header:X-Event-Kind", nil, `{"type":"t"}`, ""},
		{"header replaces GitHub's", kapsel.SchemeGitHub, "header:X-Other", []string{"X-GitHub-Event", "push", "X-Other", "mine"}, `{}`, "mine"},
		{"header missing, GitHub's not used", kapsel.SchemeGitHub, "header:X-Other", []string{"X-GitHub-Event", "push"}, `{}`, ""},
		{"json pointer", kapsel.SchemeNone, "json:/data/kind", nil, `{"data":{"kind":"user.deleted"}}`, "user.deleted"},
		{"json pointer escapes", kapsel.SchemeNone, "json:/a~1b/c~0d", nil, `{"a/b":{"c~d":"escaped"}}`, "escaped"},
		{"json pointer ~01 is ~1", kapsel.SchemeNone, "json:/~01", nil, `{"~1":"tilde-one","/":"slash"}`, "tilde-one"},
		{"json pointer array index", kapsel.SchemeNone, "json:/items/1/kind", nil, `{"items":[{"kind":"a"},{"kind":"b"}]}`, "b"},
		{"json pointer into a top-level array", kapsel.SchemeNone, "json:/0/kind", nil, ` [{"kind":"first"}]`, "first"},
		{"json number", kapsel.SchemeNone, "json:/kind", nil, `{"kind":42.5e1}`, "42.5e1"},
		{"json pointer missing, Stripe's type not used", kapsel.SchemeStripe, "json:/data/kind", nil, `{"type":"invoice.paid"}`, ""},
		{"json object", kapsel.SchemeNone, "json:/data", nil, `{"data":{"kind":"x"}}`, ""},
		{"json bool", kapsel.SchemeNone, "json:/kind", nil, `{"kind":true}`, ""},
		{"json null", kapsel.SchemeNone, "json:/kind", nil, `{"kind":null}`, ""},
		{"index out of range", kapsel.SchemeNone, "json:/items/2", nil, `{"items":["a","b"]}`, ""},
		{"index with a leading zero", kapsel.SchemeNone, "json:/items/01", nil, `{"items":["a","b"]}`, ""},
		{"not JSON", kapsel.SchemeNone, "json:/kind", nil, `kind=x`, ""},
		{"long value cut", kapsel.SchemeNone, "json:/kind", nil, `{"kind":"` + strings.Repeat("k", 300) + `"}`, strings.Repeat("k", kapsel.MaxEventTypeLen)},
		{"bytes made safe", kapsel.SchemeNone, "header:X-Kind", []string{"X-Kind", "a\xffb"}, `{}`, "a\uFFFDb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := kapsel.VerifierConfig{Scheme: tc.scheme}
			kv := tc.kv
			switch tc.scheme {
			case kapsel.SchemeGitHub:
				v.Secrets = []string{"s"}
				kv = append(kv, "X-Hub-Signature-256", "sha256="+hmacHex("s", tc.body))
			case kapsel.SchemeStripe:
				v.Secrets = []string{"s"}
				kv = append(kv, "Stripe-Signature", signStripe("s", tc.body, e.clock.Now().Unix()))
			}
			src := e.sourceWith(nil, &kapsel.Source{Verifier: v, EventTypeFrom: tc.from})
			r := accepted(t, e.post(src.ID, tc.body, kv...), 202)
			ev, err := e.store.EventGet(e.ctx, &kapsel.EventGetParams{ID: r.ID})
			if err != nil {
				t.Fatal(err)
			}
			if ev.Type != tc.want {
				t.Fatalf("type %q, want %q", ev.Type, tc.want)
			}
		})
	}
}

// TestIdempotencyKeyFrom: a source's IdempotencyKeyFrom is the last link
// of the chain — after X-Idempotency-Key, Idempotency-Key and the
// provider's delivery id. A header it names must hold a valid key (else
// 400 E1004, as for the other headers); a JSON value that is not a valid
// key gives no key, as a provider's body id does.
func TestIdempotencyKeyFrom(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	for _, tc := range []struct {
		name   string
		scheme string
		from   kapsel.FieldRef
		kv     []string
		body   string
		want   string // the stored key; "" for none
		bad    bool   // 400 E1004
	}{
		{"header", kapsel.SchemeNone, "header:X-Request-Id", []string{"X-Request-Id", "req-1"}, `{}`, "req-1", false},
		{"json pointer", kapsel.SchemeNone, "json:/meta/id", nil, `{"meta":{"id":"m-1"}}`, "m-1", false},
		{"json number", kapsel.SchemeNone, "json:/seq", nil, `{"seq":1234}`, "1234", false},
		{"X-Idempotency-Key first", kapsel.SchemeNone, "header:X-Request-Id", []string{"X-Request-Id", "req-1", "X-Idempotency-Key", "ik"}, `{}`, "ik", false},
		{"Idempotency-Key first", kapsel.SchemeNone, "json:/meta/id", []string{"Idempotency-Key", "ik2"}, `{"meta":{"id":"m-1"}}`, "ik2", false},
		{"provider header first", kapsel.SchemeGitHub, "header:X-Request-Id", []string{"X-Request-Id", "req-1", "X-GitHub-Delivery", "gh-1"}, `{}`, "gh-1", false},
		{"provider body id first", kapsel.SchemeStripe, "json:/data/object/id", nil, stripeEventBody, "evt_1NG8Du2eZvKYlo2CUI79vXWy", false},
		{"nothing there: no key", kapsel.SchemeNone, "header:X-Request-Id", nil, `{}`, "", false},
		{"json missing: no key", kapsel.SchemeNone, "json:/meta/id", nil, `{"meta":{}}`, "", false},
		{"json value not a key: no key", kapsel.SchemeNone, "json:/meta/id", nil, `{"meta":{"id":"` + strings.Repeat("i", 256) + `"}}`, "", false},
		{"json object: no key", kapsel.SchemeNone, "json:/meta", nil, `{"meta":{"id":"m"}}`, "", false},
		{"header empty", kapsel.SchemeNone, "header:X-Request-Id", []string{"X-Request-Id", ""}, `{}`, "", true},
		{"header not printable", kapsel.SchemeNone, "header:X-Request-Id", []string{"X-Request-Id", "a\x01"}, `{}`, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := kapsel.VerifierConfig{Scheme: tc.scheme}
			kv := tc.kv
			switch tc.scheme {
			case kapsel.SchemeGitHub:
				v.Secrets = []string{"s"}
				kv = append(kv, "X-Hub-Signature-256", "sha256="+hmacHex("s", tc.body))
			case kapsel.SchemeStripe:
				v.Secrets = []string{"s"}
				kv = append(kv, "Stripe-Signature", signStripe("s", tc.body, e.clock.Now().Unix()))
			}
			src := e.sourceWith(nil, &kapsel.Source{Verifier: v, IdempotencyKeyFrom: tc.from})
			if tc.bad {
				d := refused(t, e.post(src.ID, tc.body, kv...), 400, kapsel.CodeBadIdempotencyKey)
				if !strings.Contains(d.Detail, string(tc.from)) {
					t.Fatalf("detail %q does not name %s", d.Detail, tc.from)
				}
				return
			}
			r := accepted(t, e.post(src.ID, tc.body, kv...), 202)
			ev, err := e.store.EventGet(e.ctx, &kapsel.EventGetParams{ID: r.ID})
			if err != nil {
				t.Fatal(err)
			}
			if ev.IdempotencyKey != tc.want {
				t.Fatalf("key %q, want %q", ev.IdempotencyKey, tc.want)
			}
			// With a key, the same request again is its duplicate; without
			// one, another event.
			again := e.post(src.ID, tc.body, kv...)
			if tc.want != "" {
				if dup := accepted(t, again, 200); dup.ID != r.ID {
					t.Fatalf("the same request again made %s, want the duplicate of %s", dup.ID, r.ID)
				}
			} else if next := accepted(t, again, 202); next.ID == r.ID {
				t.Fatal("a request without a key was deduplicated")
			}
		})
	}
}

func TestJSONPointer(t *testing.T) {
	t.Parallel()
	// RFC 6901 §5's document, and its pointers that reach a string or a
	// number.
	const doc = `{"foo":["bar","baz"],"":0,"a/b":1,"c%d":2,"e^f":3,"g|h":4,"i\\j":5,"k\"l":6," ":7,"m~n":8}`
	for _, tc := range []struct {
		ptr  string
		want string
		ok   bool
	}{
		{"", "", false}, // the whole document
		{"/foo", "", false},
		{"/foo/0", "bar", true},
		{"/foo/1", "baz", true},
		{"/foo/2", "", false},
		{"/foo/-", "", false},
		{"/foo/00", "", false},
		{"/foo/+1", "", false},
		{"/", "0", true},
		{"/a~1b", "1", true},
		{"/c%d", "2", true},
		{"/e^f", "3", true},
		{"/g|h", "4", true},
		{"/i\\j", "5", true},
		{"/k\"l", "6", true},
		{"/ ", "7", true},
		{"/m~0n", "8", true},
		{"/m~n", "8", true}, // a lone ~ reads as itself; kapsel.FieldRef.Validate refuses such pointers
		{"/foo/0/x", "", false},
		{"/missing/x", "", false},
		{"foo", "", false}, // no leading slash
	} {
		got, ok := newJSONBody([]byte(doc)).Pointer(tc.ptr)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Pointer(%q) = %q, %v; want %q, %v", tc.ptr, got, ok, tc.want, tc.ok)
		}
		if ref, refOK := referencePointer([]byte(doc), tc.ptr); ref != tc.want || refOK != tc.ok {
			t.Errorf("the reference reads %q as %q, %v", tc.ptr, ref, refOK)
		}
	}
}

// FuzzJSONPointer checks Pointer against a plain reading of the document
// with encoding/json: whatever the body and the pointer, they agree, and
// neither panics.
func FuzzJSONPointer(f *testing.F) {
	f.Add([]byte(`{"a":{"b":["x",2]}}`), "/a/b/1")
	f.Add([]byte(`[{"~":"t"}]`), "/0/~0")
	f.Add([]byte(`{"a":"x","a":"y"}`), "/a")
	f.Add([]byte(`{"a":1e400}`), "/a")
	f.Add([]byte("\xff"), "/")
	f.Fuzz(func(t *testing.T, body []byte, ptr string) {
		got, ok := newJSONBody(body).Pointer(ptr)
		want, wantOK := referencePointer(body, ptr)
		if got != want || ok != wantOK {
			t.Fatalf("Pointer(%q) on %q = %q, %v; reference %q, %v", ptr, body, got, ok, want, wantOK)
		}
	})
}

// referencePointer evaluates ptr by decoding the whole body with
// encoding/json (numbers kept as their text).
func referencePointer(body []byte, ptr string) (string, bool) {
	if !strings.HasPrefix(ptr, "/") {
		return "", false
	}
	if !json.Valid(body) {
		return "", false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return "", false
	}
	for _, tok := range strings.Split(ptr[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := v.(type) {
		case map[string]any:
			next, ok := c[tok]
			if !ok {
				return "", false
			}
			v = next
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) || strconv.Itoa(i) != tok {
				return "", false
			}
			v = c[i]
		default:
			return "", false
		}
	}
	switch s := v.(type) {
	case string:
		return s, true
	case json.Number:
		return s.String(), true
	}
	return "", false
}

// TestSourceOfDeletedTenantInCache: a source still in the ingester's cache
// whose tenant was deleted meanwhile (on another node, say) is refused as
// an unknown source, 404 E1003 — the store refuses the row of a deleted
// tenant — not as a send naming an unknown endpoint (E1011).
func TestSourceOfDeletedTenantInCache(t *testing.T) {
	t.Parallel()
	e := setup(t, &Config{SourceCacheTTL: time.Hour})
	src := e.source(nil, kapsel.VerifierConfig{Scheme: kapsel.SchemeNone})
	e.endpoint(src.TenantID, kapsel.Subscription{})
	if w := e.post(src.ID, "a"); w.Code != 202 {
		t.Fatalf("first ingest: %d %s", w.Code, w.Body)
	}
	if err := e.store.TenantDelete(e.ctx, &kapsel.TenantDeleteParams{ID: src.TenantID, Now: e.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	refused(t, e.post(src.ID, "b"), 404, kapsel.CodeUnknownSource)
}
