package ingest

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

func FuzzIdempotencyKey(f *testing.F) {
	for _, s := range []string{"", "k", "order 42", "\x00", "é", strings.Repeat("a", 255), strings.Repeat("a", 256), "\x7f", " "} {
		f.Add(s, "")
		f.Add("", s)
	}
	f.Fuzz(func(t *testing.T, x, std string) {
		h := http.Header{}
		if x != "" {
			h.Set("X-Idempotency-Key", x)
		}
		if std != "" {
			h.Set("webhook-id", std)
		}
		key, err := IdempotencyKey(h)
		if err != nil {
			if !errors.Is(err, kapsel.ErrInvalid) || key != "" {
				t.Fatalf("%q, %v", key, err)
			}
			return
		}
		want := x
		if want == "" {
			want = std
		}
		if key != want {
			t.Fatalf("key %q, want %q", key, want)
		}
		if key != "" && ValidIdempotencyKey(key) != nil {
			t.Fatalf("returned an invalid key %q", key)
		}
	})
}

func FuzzForwardedHeaders(f *testing.F) {
	f.Add("Connection", "X-A, x-b,,", "X-A", "1")
	f.Add("Authorization", "Bearer x", "cookie", "a=b")
	f.Add("", "", "X-Ok", "v")
	f.Add("svix-id", "msg_1", "webhook-signature", "v1,AAAA")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		h := http.Header{}
		h.Add(k1, v1)
		h.Add(k2, v2)
		got := ForwardedHeaders(h)
		for name := range got {
			ck := http.CanonicalHeaderKey(name)
			if ck != name || dropped(ck) {
				t.Fatalf("forwarded %q from %v", name, h)
			}
			for _, tok := range strings.Split(h.Get("Connection"), ",") {
				if strings.TrimSpace(tok) != "" && http.CanonicalHeaderKey(strings.TrimSpace(tok)) == ck {
					t.Fatalf("forwarded %q named in Connection", name)
				}
			}
		}
	})
}

// FuzzHandler sends arbitrary paths, headers and bodies: the handler must
// never panic and never answer 5xx to garbage.
func FuzzHandler(f *testing.F) {
	f.Add(0, "", "X-Idempotency-Key", "k", "Stripe-Signature", "t=1,v1=00", []byte("{}"))
	f.Add(1, "ep_01", "X-Hub-Signature-256", "sha256=zz", "Connection", "close", []byte{})
	f.Add(2, "../../etc", "webhook-signature", "v1,", "webhook-timestamp", "99999999999999999999", []byte{0xff, 0})
	f.Add(3, "", "X-Slack-Signature", "v0=", "X-Slack-Request-Timestamp", "-1", bytes.Repeat([]byte("a"), 300))
	f.Add(4, "", "X-Shopify-Hmac-Sha256", "====", "Idempotency-Key", strings.Repeat("x", 300), []byte("x"))
	e := setup(f, &Config{MaxBodyBytes: 256})
	var ids []kapsel.SourceID
	for _, v := range []kapsel.VerifierConfig{
		{}, {Scheme: kapsel.SchemeGitHub, Secrets: []string{"s"}}, {Scheme: kapsel.SchemeStripe, Secrets: []string{"s"}},
		{Scheme: kapsel.SchemeStandardWebhooks, Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}, {Scheme: kapsel.SchemeSlack, Secrets: []string{"s"}},
		{Scheme: kapsel.SchemeShopify, Secrets: []string{"s"}}, {Scheme: kapsel.SchemeHMACSHA256, Secrets: []string{"s"}, Header: "X-Sig"},
	} {
		ids = append(ids, e.source(nil, v).ID)
	}
	f.Fuzz(func(t *testing.T, which int, rawID, k1, v1, k2, v2 string, body []byte) {
		id := rawID
		if which >= 0 {
			id = string(ids[which%len(ids)])
		}
		r := httptest.NewRequest(http.MethodPost, "/ingest/"+url.PathEscape(id), bytes.NewReader(body))
		r.Header.Add(k1, v1)
		r.Header.Add(k2, v2)
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("status %d for garbage: %s", w.Code, w.Body)
		}
		e.clock.Advance(time.Millisecond)
	})
}
