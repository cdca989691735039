package ingest

import (
	"errors"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/kapsel-dev/kapsel"
)

func TestIdempotencyKeyChain(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		kv   []string
		want string
		bad  bool
	}{
		{"none", nil, "", false},
		{"x-idempotency-key wins", []string{"Idempotency-Key", "b", "X-Idempotency-Key", "a", "X-GitHub-Delivery", "c"}, "a", false},
		{"idempotency-key next", []string{"X-GitHub-Delivery", "c", "Idempotency-Key", "b"}, "b", false},
		{"github delivery", []string{"X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958", "webhook-id", "msg_1"}, "72d3162e-cc78-11e3-81ab-4c9367dc0958", false},
		{"standard webhooks id", []string{"webhook-id", "msg_1", "X-Shopify-Webhook-Id", "s"}, "msg_1", false},
		{"shopify", []string{"X-Shopify-Webhook-Id", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"}, "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", false},
		{"svix id", []string{"svix-id", "msg_2", "X-Shopify-Webhook-Id", "s"}, "msg_2", false},
		{"webhook-id before svix-id", []string{"svix-id", "msg_2", "webhook-id", "msg_1"}, "msg_1", false},
		{"shopify unprefixed", []string{"Shopify-Webhook-Id", "b54557e4"}, "b54557e4", false},
		{"shopify prefixed first", []string{"Shopify-Webhook-Id", "b", "X-Shopify-Webhook-Id", "a"}, "a", false},
		{"first value of a repeated header", []string{"Idempotency-Key", "one", "Idempotency-Key", "two"}, "one", false},
		{"inner space allowed", []string{"Idempotency-Key", "order 42"}, "order 42", false},
		{"all printable", []string{"Idempotency-Key", "!~"}, "!~", false},
		{"255 chars", []string{"Idempotency-Key", strings.Repeat("k", 255)}, strings.Repeat("k", 255), false},
		{"256 chars", []string{"Idempotency-Key", strings.Repeat("k", 256)}, "", true},
		{"empty present", []string{"X-Idempotency-Key", "", "Idempotency-Key", "b"}, "", true},
		{"tab", []string{"Idempotency-Key", "a\tb"}, "", true},
		{"DEL", []string{"Idempotency-Key", "a\x7f"}, "", true},
		{"non-ascii", []string{"Idempotency-Key", "clé"}, "", true},
		{"bad first wins over good later", []string{"X-Idempotency-Key", "\x01", "Idempotency-Key", "ok"}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			for i := 0; i+1 < len(tc.kv); i += 2 {
				h.Add(tc.kv[i], tc.kv[i+1])
			}
			got, err := IdempotencyKey(h)
			if tc.bad {
				if !errors.Is(err, kapsel.ErrInvalid) {
					t.Fatalf("got %q, %v; want ErrInvalid", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestForwardedHeaders(t *testing.T) {
	t.Parallel()
	in := http.Header{
		"Host":                {"kapsel.example"},
		"Content-Length":      {"12"},
		"Content-Type":        {"application/json"},
		"Connection":          {"keep-alive, X-Hop-One", "x-hop-two"},
		"Keep-Alive":          {"timeout=5"},
		"Proxy-Authenticate":  {"Basic"},
		"Proxy-Authorization": {"Basic Zm9vOmJhcg=="},
		"Proxy-Connection":    {"keep-alive"},
		"Te":                  {"trailers"},
		"Trailer":             {"X-Checksum"},
		"Transfer-Encoding":   {"chunked"},
		"Upgrade":             {"h2c"},
		"Expect":              {"100-continue"},
		"Cookie":              {"session=secret"},
		"Authorization":       {"Bearer secret"},
		"X-Hop-One":           {"1"},
		"X-Hop-Two":           {"2"},
		"X-Github-Event":      {"push"},
		"X-Hub-Signature-256": {"sha256=abc"},
		"User-Agent":          {"GitHub-Hookshot/1"},
		"X-Multi":             {"a", "b"},
		"x-lower-case":        {"kept"},
		// A provider's own Standard Webhooks / Svix headers: Kapsel signs
		// its deliveries itself, and Svix's verifiers read svix-* first.
		"Svix-Id": {"msg_1"},
		// Headers Kapsel sets on every delivery itself.
		"X-Kapsel-Attempt":    {"7"},
		"X-Kapsel-Event-Type": {"forged.type"},
		"Svix-Timestamp":      {"1767225600"},
		"Svix-Signature":      {"v1,AAAA"},
		"svix-future":         {"x"},
		"Webhook-Id":          {"msg_1"},
		"Webhook-Timestamp":   {"1767225600"},
		"Webhook-Signature":   {"v1,AAAA"},
		"webhook-version":     {"1"},
		"X-Svix-Id":           {"kept: not the prefix"},
	}
	got := ForwardedHeaders(in)
	want := http.Header{
		"X-Github-Event":      {"push"},
		"X-Hub-Signature-256": {"sha256=abc"},
		"User-Agent":          {"GitHub-Hookshot/1"},
		"X-Multi":             {"a", "b"},
		"X-Lower-Case":        {"kept"},
		"X-Svix-Id":           {"kept: not the prefix"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("forwarded %v\nwant %v", got, want)
	}
	got["X-Multi"][0] = "changed"
	if in["X-Multi"][0] != "a" {
		t.Fatal("forwarded headers alias the request's")
	}
}

func TestForwardedHeadersStored(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	src := e.source(nil, kapsel.VerifierConfig{})
	accepted(t, e.post(src.ID, "x", "Authorization", "Bearer s", "Cookie", "c=1", "X-Event", "ping", "Connection", "X-Event-Hop", "X-Event-Hop", "v"), 202)
	ev := e.events(src.ID)[0]
	if len(ev.Headers) != 1 || ev.Headers.Get("X-Event") != "ping" {
		t.Fatalf("stored headers %v", ev.Headers)
	}
}

// TestConcurrentSameKey: 50 identical requests with one key at once give one
// event, one 202 and 49 duplicates of it.
func TestConcurrentSameKey(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	src := e.source(nil, kapsel.VerifierConfig{Scheme: kapsel.SchemeGitHub, Secrets: []string{"s"}})
	srv := e.server()
	const n = 50
	body := `{"n":1}`
	var wg sync.WaitGroup
	statuses := make([]int, n)
	ids := make([]string, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/ingest/"+string(src.ID), strings.NewReader(body))
			req.Header.Set("X-GitHub-Delivery", "delivery-1")
			req.Header.Set("X-Hub-Signature-256", "sha256="+hmacHex("s", body))
			<-start
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			statuses[i] = resp.StatusCode
			b := readAll(t, resp.Body)
			ids[i] = string(b)
			if resp.StatusCode == 200 && resp.Header.Get("Idempotent-Replayed") != "true" {
				t.Error("duplicate without Idempotent-Replayed")
			}
		}()
	}
	close(start)
	wg.Wait()
	count := map[int]int{}
	for _, s := range statuses {
		count[s]++
	}
	if count[202] != 1 || count[200] != n-1 {
		t.Fatalf("statuses %v, want one 202 and %d 200", count, n-1)
	}
	evs := e.events(src.ID)
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1", len(evs))
	}
	for i, b := range ids {
		if !strings.Contains(b, `"id":"`+string(evs[0].ID)+`"`) {
			t.Fatalf("answer %d names another event: %s", i, b)
		}
	}
}
