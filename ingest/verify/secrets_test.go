package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"testing"

	"github.com/kapsel-dev/kapsel"
)

// TestEmptySecretNeverVerifies: a request "signed" with an empty key — what
// anyone can compute — is refused by every scheme, whether the empty secret
// is alone or beside a real one (docs/ingest.md; issue 9 item 10).
func TestEmptySecretNeverVerifies(t *testing.T) {
	t.Parallel()
	body := []byte(testBody)
	emptyMAC := func(parts ...string) []byte {
		h := hmac.New(sha256.New, nil)
		for _, p := range parts {
			h.Write([]byte(p))
		}
		return h.Sum(nil)
	}
	ts := strconv.Itoa(testTS)
	for _, tc := range []struct {
		name    string
		v       Verifier
		header  http.Header
		secrets []string
	}{
		{"hmac-sha256", HMACSHA256{}, hdr(DefaultHMACHeader, hex.EncodeToString(emptyMAC(testBody))), []string{""}},
		{"github", GitHub{}, hdr(GitHubHeader, "sha256="+hex.EncodeToString(emptyMAC(testBody))), []string{"real-secret", ""}},
		{"shopify", Shopify{}, hdr(ShopifyHeader, base64.StdEncoding.EncodeToString(emptyMAC(testBody))), []string{""}},
		{"stripe", Stripe{}, hdr(StripeHeader, "t="+ts+",v1="+hex.EncodeToString(emptyMAC(ts, ".", testBody))), []string{""}},
		{"slack", Slack{}, hdr(SlackSignatureHeader, "v0="+hex.EncodeToString(emptyMAC("v0:", ts, ":", testBody)), SlackTimestampHeader, ts), []string{""}},
		{"standard-webhooks whsec_", StandardWebhooks{}, hdr("webhook-id", "msg_1", "webhook-timestamp", ts,
			"webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(emptyMAC("msg_1", ".", ts, ".", testBody))), []string{"whsec_"}},
		{"standard-webhooks empty", StandardWebhooks{}, hdr("webhook-id", "msg_1", "webhook-timestamp", ts,
			"webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(emptyMAC("msg_1", ".", ts, ".", testBody))), []string{""}},
	} {
		err := tc.v.Verify(&Params{Header: tc.header, Body: body, Secrets: tc.secrets, Now: testNow})
		if !errors.Is(err, ErrMismatch) {
			t.Errorf("%s: a request signed with an empty key: got %v, want ErrMismatch", tc.name, err)
		}
	}
}

// TestStandardWebhooksKeyIsTheRootParser: one parser of the whsec_ format,
// the prefix required (issue 9 item 18: verify took it as optional, the
// dispatcher required it).
func TestStandardWebhooksKeyIsTheRootParser(t *testing.T) {
	t.Parallel()
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	for _, s := range []string{secret, secret[len("whsec_"):], "whsec_", "", "whsec_!!", "whsec_c2VjcmV0"} {
		got, err := StandardWebhooksKey(s)
		want, wantErr := kapsel.ParseSigningSecret(s)
		if (err == nil) != (wantErr == nil) || !slices.Equal(got, want) {
			t.Errorf("StandardWebhooksKey(%q) = %x, %v; kapsel.ParseSigningSecret = %x, %v", s, got, err, want, wantErr)
		}
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Errorf("StandardWebhooksKey(%q) error %v does not wrap ErrMalformed", s, err)
		}
	}
}

// TestRegistryHoldsTheBuiltinSchemes: the registry's built-ins are exactly
// kapsel.BuiltinSchemes, the one list.
func TestRegistryHoldsTheBuiltinSchemes(t *testing.T) {
	t.Parallel()
	want := kapsel.BuiltinSchemes()
	slices.Sort(want)
	if got := NewRegistry().Schemes(); !slices.Equal(got, want) {
		t.Fatalf("NewRegistry().Schemes() = %q, want kapsel.BuiltinSchemes() %q", got, want)
	}
}
