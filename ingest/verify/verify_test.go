package verify

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Signatures below were computed with Python's hmac module, an
// implementation independent of the code under test.
const (
	testBody = `{"id":"evt_1","amount":42}`
	// HMAC-SHA256("s3cret", testBody), hex.
	testHMACHex = "daecc6daeaa8743df0bb8edadd5e01777e09b394834ac538c280f7d6e8425158"
	// HMAC-SHA256("shpss_secret", testBody), base64.
	testShopifyB64 = "toSK8HjSHq17Jkx4mEBB963IicgskHbojpMjD7KjZ84="
	// HMAC-SHA256("whsec_stripe123", "1767225600."+testBody), hex.
	testStripeHex = "5016fcbb1eaa52ef7f4c9993f2a9219daa0ccf72c2800670cbc9a7009051bda8"
	// HMAC-SHA256("8f742231b10e8888abcd99yyyzzz85a5", "v0:1767225600:"+testBody), hex.
	testSlackHex = "9a71f17c3403e1d43fdc78236e84451d2bc411fb0601b02e55d1523b3131c7dd"
	testTS       = 1767225600
)

var testNow = time.Unix(testTS, 0)

// hdr builds a header from name/value pairs.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

type verifyCase struct {
	name    string
	header  http.Header
	body    string
	secrets []string
	sigHdr  string
	now     time.Time
	want    error // nil, or the sentinel the error must wrap
}

func runCases(t *testing.T, v Verifier, cases []verifyCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := tc.body
			if body == "" {
				body = testBody
			}
			now := tc.now
			if now.IsZero() {
				now = testNow
			}
			err := v.Verify(&Params{Header: tc.header, Body: []byte(body), Secrets: tc.secrets, SignatureHeader: tc.sigHdr, Now: now})
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("rejected: %v", err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestHMACSHA256(t *testing.T) {
	t.Parallel()
	s := []string{"s3cret"}
	runCases(t, HMACSHA256{}, []verifyCase{
		{name: "bare hex", header: hdr("X-Kapsel-Signature", testHMACHex), secrets: s},
		{name: "sha256 prefix", header: hdr("X-Kapsel-Signature", "sha256="+testHMACHex), secrets: s},
		{name: "upper-case hex", header: hdr("X-Kapsel-Signature", upper(testHMACHex)), secrets: s},
		{name: "custom header", header: hdr("X-Acme-Sig", testHMACHex), sigHdr: "X-Acme-Sig", secrets: s},
		{name: "custom header ignores default", header: hdr("X-Kapsel-Signature", testHMACHex), sigHdr: "X-Acme-Sig", secrets: s, want: ErrMissing},
		{name: "second secret matches", header: hdr("X-Kapsel-Signature", testHMACHex), secrets: []string{"old", "s3cret"}},
		{name: "wrong secret", header: hdr("X-Kapsel-Signature", testHMACHex), secrets: []string{"nope"}, want: ErrMismatch},
		{name: "no secrets fails closed", header: hdr("X-Kapsel-Signature", testHMACHex), want: ErrMismatch},
		{name: "body changed", header: hdr("X-Kapsel-Signature", testHMACHex), body: testBody + "\n", secrets: s, want: ErrMismatch},
		{name: "missing", header: hdr(), secrets: s, want: ErrMissing},
		{name: "empty after prefix", header: hdr("X-Kapsel-Signature", "sha256="), secrets: s, want: ErrMismatch},
		{name: "truncated", header: hdr("X-Kapsel-Signature", testHMACHex[:62]), secrets: s, want: ErrMismatch},
		{name: "extended", header: hdr("X-Kapsel-Signature", testHMACHex+"00"), secrets: s, want: ErrMismatch},
		{name: "odd length", header: hdr("X-Kapsel-Signature", testHMACHex[:63]), secrets: s, want: ErrMalformed},
		{name: "not hex", header: hdr("X-Kapsel-Signature", "zz"+testHMACHex[2:]), secrets: s, want: ErrMalformed},
	})
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'f' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func TestGitHub(t *testing.T) {
	t.Parallel()
	s := []string{"s3cret"}
	runCases(t, GitHub{}, []verifyCase{
		{name: "valid", header: hdr(GitHubHeader, "sha256="+testHMACHex), secrets: s},
		{name: "rotation", header: hdr(GitHubHeader, "sha256="+testHMACHex), secrets: []string{"new", "s3cret"}},
		{name: "prefix required", header: hdr(GitHubHeader, testHMACHex), secrets: s, want: ErrMalformed},
		{name: "sha1 header only", header: hdr("X-Hub-Signature", "sha1=abcd"), secrets: s, want: ErrMissing},
		{name: "empty", header: hdr(GitHubHeader, "sha256="), secrets: s, want: ErrMismatch},
		{name: "wrong", header: hdr(GitHubHeader, "sha256="+testHMACHex[:63]+"0"), secrets: s, want: ErrMismatch},
		{name: "custom header not honoured", header: hdr("X-Other", "sha256="+testHMACHex), sigHdr: "X-Other", secrets: s, want: ErrMissing},
	})
}

func TestShopify(t *testing.T) {
	t.Parallel()
	s := []string{"shpss_secret"}
	runCases(t, Shopify{}, []verifyCase{
		{name: "valid", header: hdr(ShopifyHeader, testShopifyB64), secrets: s},
		{name: "wrong secret", header: hdr(ShopifyHeader, testShopifyB64), secrets: []string{"x"}, want: ErrMismatch},
		{name: "hex is not base64 of it", header: hdr(ShopifyHeader, testHMACHex), secrets: s, want: ErrMismatch},
		{name: "unpadded", header: hdr(ShopifyHeader, testShopifyB64[:len(testShopifyB64)-1]), secrets: s, want: ErrMalformed},
		{name: "truncated", header: hdr(ShopifyHeader, testShopifyB64[:40]), secrets: s, want: ErrMismatch},
		{name: "missing", header: hdr(), secrets: s, want: ErrMissing},
	})
}

func TestStripe(t *testing.T) {
	t.Parallel()
	s := []string{"whsec_stripe123"}
	ok := "t=1767225600,v1=" + testStripeHex
	runCases(t, Stripe{}, []verifyCase{
		{name: "valid", header: hdr(StripeHeader, ok), secrets: s},
		{name: "valid among others", header: hdr(StripeHeader, "t=1767225600,v1=00ff,v0=abc,v1="+testStripeHex), secrets: s},
		{name: "spaces around items", header: hdr(StripeHeader, "t=1767225600, v1="+testStripeHex), secrets: s},
		{name: "key is whole string", header: hdr(StripeHeader, ok), secrets: []string{"stripe123"}, want: ErrMismatch},
		{name: "rotation", header: hdr(StripeHeader, ok), secrets: []string{"whsec_new", "whsec_stripe123"}},
		{name: "exactly 300 s old", header: hdr(StripeHeader, ok), secrets: s, now: testNow.Add(300 * time.Second)},
		{name: "300 s and 1 ns old", header: hdr(StripeHeader, ok), secrets: s, now: testNow.Add(300*time.Second + 1), want: ErrTimestamp},
		{name: "exactly 300 s ahead", header: hdr(StripeHeader, ok), secrets: s, now: testNow.Add(-300 * time.Second)},
		{name: "301 s ahead", header: hdr(StripeHeader, ok), secrets: s, now: testNow.Add(-301 * time.Second), want: ErrTimestamp},
		{name: "400 s old", header: hdr(StripeHeader, ok), secrets: s, now: testNow.Add(400 * time.Second), want: ErrTimestamp},
		{name: "timestamp tampered", header: hdr(StripeHeader, "t=1767225601,v1="+testStripeHex), secrets: s, want: ErrMismatch},
		{name: "empty v1", header: hdr(StripeHeader, "t=1767225600,v1="), secrets: s, want: ErrMismatch},
		{name: "no v1", header: hdr(StripeHeader, "t=1767225600,v0="+testStripeHex), secrets: s, want: ErrMalformed},
		{name: "no t", header: hdr(StripeHeader, "v1="+testStripeHex), secrets: s, want: ErrMalformed},
		{name: "two t", header: hdr(StripeHeader, "t=1767225600,t=1767225600,v1="+testStripeHex), secrets: s, want: ErrMalformed},
		{name: "signed t", header: hdr(StripeHeader, "t=+1767225600,v1="+testStripeHex), secrets: s, want: ErrMalformed},
		{name: "missing", header: hdr(), secrets: s, want: ErrMissing},
	})
	runCases(t, Stripe{Tolerance: 10 * time.Minute}, []verifyCase{
		{name: "longer tolerance", header: hdr(StripeHeader, ok), secrets: s, now: testNow.Add(400 * time.Second)},
	})
}

func TestSlack(t *testing.T) {
	t.Parallel()
	s := []string{"8f742231b10e8888abcd99yyyzzz85a5"}
	sig := "v0=" + testSlackHex
	ts := strconv.Itoa(testTS)
	runCases(t, Slack{}, []verifyCase{
		{name: "valid", header: hdr(SlackSignatureHeader, sig, SlackTimestampHeader, ts), secrets: s},
		{name: "exactly 300 s old", header: hdr(SlackSignatureHeader, sig, SlackTimestampHeader, ts), secrets: s, now: testNow.Add(300 * time.Second)},
		{name: "301 s old", header: hdr(SlackSignatureHeader, sig, SlackTimestampHeader, ts), secrets: s, now: testNow.Add(301 * time.Second), want: ErrTimestamp},
		{name: "exactly 300 s ahead", header: hdr(SlackSignatureHeader, sig, SlackTimestampHeader, ts), secrets: s, now: testNow.Add(-300 * time.Second)},
		{name: "300 s and 1 ns ahead", header: hdr(SlackSignatureHeader, sig, SlackTimestampHeader, ts), secrets: s, now: testNow.Add(-300*time.Second - 1), want: ErrTimestamp},
		{name: "timestamp tampered", header: hdr(SlackSignatureHeader, sig, SlackTimestampHeader, "1767225601"), secrets: s, now: testNow, want: ErrMismatch},
		{name: "missing timestamp", header: hdr(SlackSignatureHeader, sig), secrets: s, want: ErrMissing},
		{name: "missing signature", header: hdr(SlackTimestampHeader, ts), secrets: s, want: ErrMissing},
		{name: "wrong version", header: hdr(SlackSignatureHeader, "v1="+testSlackHex, SlackTimestampHeader, ts), secrets: s, want: ErrMalformed},
		{name: "empty", header: hdr(SlackSignatureHeader, "v0=", SlackTimestampHeader, ts), secrets: s, want: ErrMismatch},
		{name: "bad timestamp", header: hdr(SlackSignatureHeader, sig, SlackTimestampHeader, "12a"), secrets: s, want: ErrMalformed},
	})
}

func TestStandardWebhooks(t *testing.T) {
	t.Parallel()
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	// The reference library signs; Kapsel verifies.
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := wh.Sign("msg_1", testNow, []byte(testBody))
	if err != nil {
		t.Fatal(err)
	}
	h := func(sig string) http.Header {
		return hdr("webhook-id", "msg_1", "webhook-timestamp", strconv.Itoa(testTS), "webhook-signature", sig)
	}
	s := []string{secret}
	runCases(t, StandardWebhooks{}, []verifyCase{
		{name: "valid", header: h(sig), secrets: s},
		{name: "prefix required", header: h(sig), secrets: []string{secret[len("whsec_"):]}, want: ErrMismatch},
		{name: "several entries", header: h("v1a,AAAA v1,AAAA " + sig), secrets: s},
		{name: "rotation", header: h(sig), secrets: []string{"whsec_AAAAAAAA", secret}},
		{name: "non-base64 secret skipped", header: h(sig), secrets: []string{"whsec_!!", secret}},
		{name: "exactly 300 s old", header: h(sig), secrets: s, now: testNow.Add(300 * time.Second)},
		{name: "300 s and 1 ns old", header: h(sig), secrets: s, now: testNow.Add(300*time.Second + 1), want: ErrTimestamp},
		{name: "exactly 300 s ahead", header: h(sig), secrets: s, now: testNow.Add(-300 * time.Second)},
		{name: "300 s and 1 ns ahead", header: h(sig), secrets: s, now: testNow.Add(-300*time.Second - 1), want: ErrTimestamp},
		{name: "id tampered", header: hdr("webhook-id", "msg_2", "webhook-timestamp", strconv.Itoa(testTS), "webhook-signature", sig), secrets: s, want: ErrMismatch},
		{name: "empty v1", header: h("v1,"), secrets: s, want: ErrMismatch},
		{name: "only other versions", header: h("v1a,AAAA"), secrets: s, want: ErrMalformed},
		{name: "missing id", header: hdr("webhook-timestamp", strconv.Itoa(testTS), "webhook-signature", sig), secrets: s, want: ErrMissing},
		{name: "missing timestamp", header: hdr("webhook-id", "msg_1", "webhook-signature", sig), secrets: s, want: ErrMissing},
		{name: "no secrets", header: h(sig), want: ErrMismatch},
	})
}

func TestNoneAcceptsAnything(t *testing.T) {
	t.Parallel()
	if err := (None{}).Verify(&Params{Header: http.Header{}}); err != nil {
		t.Fatal(err)
	}
}

func TestRegistry(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	for _, s := range []string{"none", "hmac-sha256", "github", "stripe", "standard-webhooks", "shopify", "slack", ""} {
		if _, ok := r.Lookup(s); !ok {
			t.Errorf("built-in scheme %q missing", s)
		}
	}
	if _, ok := r.Lookup("acme"); ok {
		t.Fatal("unknown scheme found")
	}
	called := false
	if err := r.Register("acme", Func(func(*Params) error { called = true; return nil })); err != nil {
		t.Fatal(err)
	}
	v, ok := r.Lookup("acme")
	if !ok || v.Verify(&Params{}) != nil || !called {
		t.Fatal("registered scheme not used")
	}
	if err := r.Register("", None{}); !errors.Is(err, ErrBadScheme) {
		t.Fatalf("empty name: %v", err)
	}
	if err := r.Register("x", nil); !errors.Is(err, ErrBadScheme) {
		t.Fatalf("nil verifier: %v", err)
	}
	if got := len(r.Schemes()); got != 8 {
		t.Fatalf("%d schemes, want 8", got)
	}
}

func TestErrorsNameNoSecret(t *testing.T) {
	t.Parallel()
	const secret = "super-secret-value"
	for _, v := range []Verifier{HMACSHA256{}, GitHub{}, Shopify{}, Stripe{}, Slack{}, StandardWebhooks{}} {
		err := v.Verify(&Params{Header: hdr(
			"X-Kapsel-Signature", testHMACHex, GitHubHeader, "sha256="+testHMACHex, ShopifyHeader, testShopifyB64,
			StripeHeader, "t=1767225600,v1="+testStripeHex, SlackSignatureHeader, "v0="+testSlackHex,
			SlackTimestampHeader, "1767225600", "webhook-id", "m", "webhook-timestamp", "1767225600",
			"webhook-signature", "v1,AAAA"), Body: []byte(testBody), Secrets: []string{secret}, Now: testNow})
		if err == nil {
			t.Fatalf("%T accepted a wrong secret", v)
		}
		for _, leak := range []string{secret, testHMACHex, testStripeHex, testSlackHex, testShopifyB64} {
			if strings.Contains(err.Error(), leak) {
				t.Fatalf("%T error %q leaks %q", v, err, leak)
			}
		}
	}
}
