package verify

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The parsers read untrusted headers: they must never panic, and what they
// accept must be consistent with what they were given.

func FuzzParseTimestamp(f *testing.F) {
	for _, s := range []string{"1767225600", "", "0", "+1", "-1", "1e9", "999999999999999999", "9999999999999999999", " 1", "00012"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ts, err := ParseTimestamp(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if ts < 0 || strings.TrimLeft(s, "0") != strings.TrimLeft(strconv.FormatInt(ts, 10), "0") {
			t.Fatalf("%q parsed as %d", s, ts)
		}
	})
}

func FuzzParseStripeHeader(f *testing.F) {
	for _, s := range []string{"t=1767225600,v1=" + testStripeHex, "t=1,v1=", "t=,v1=00", "v1=00", ",,,", "t=1,t=2,v1=00", "t=1, v1=00 ,v0=zz", "=,="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseStripeHeader(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if len(h.Signatures) == 0 || len(h.Signatures) > maxSignatures || !strings.Contains(s, "t="+h.RawTimestamp) {
			t.Fatalf("accepted %q as %+v", s, h)
		}
		for _, sig := range h.Signatures {
			if !strings.Contains(strings.ToLower(s), "v1="+hex.EncodeToString(sig)) {
				t.Fatalf("signature %x not in %q", sig, s)
			}
		}
	})
}

func FuzzParseStandardWebhooksHeader(f *testing.F) {
	for _, s := range []string{"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", "v1,", "v1,g0hM9SsE", "v1a,AAAA v1,AAAA", "  ", ",", "v1,====", "v2,AAAA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sigs, err := ParseStandardWebhooksHeader(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if len(sigs) == 0 || len(sigs) > maxSignatures || !strings.Contains(s, "v1,") {
			t.Fatalf("accepted %q as %d signatures", s, len(sigs))
		}
	})
}

func FuzzParseSimpleHeaders(f *testing.F) {
	for _, s := range []string{"sha256=" + testHMACHex, testHMACHex, "sha256=", "v0=" + testSlackHex, "v0=", "sha256=zz", "0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for name, parse := range map[string]func(string) ([]byte, error){
			"hmac-sha256": ParseHMACSHA256Header, "github": ParseGitHubHeader, "slack": ParseSlackHeader,
		} {
			sig, err := parse(s)
			if err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("%s: error %v does not wrap ErrMalformed", name, err)
				}
				continue
			}
			if !strings.HasSuffix(strings.ToLower(s), hex.EncodeToString(sig)) {
				t.Fatalf("%s: %q decoded to %x", name, s, sig)
			}
		}
	})
}

// FuzzVerifiers feeds every verifier arbitrary header values and bodies.
// None may panic, and none may accept: the fuzzer cannot forge an HMAC.
func FuzzVerifiers(f *testing.F) {
	f.Add("sha256="+testHMACHex, "t=1767225600,v1="+testStripeHex, "v1,AAAA", "1767225600", []byte(testBody))
	f.Add("", "", "", "", []byte{})
	f.Add("v0=", "t=0,v1=", "v1,", "0", []byte{0xff})
	f.Fuzz(func(t *testing.T, sig, stripe, swh, ts string, body []byte) {
		if bytes.Equal(body, []byte(testBody)) {
			body = append(body, 'x') // the seeded signatures are valid for testBody
		}
		h := hdr("X-Kapsel-Signature", sig, GitHubHeader, sig, ShopifyHeader, sig, SlackSignatureHeader, sig,
			SlackTimestampHeader, ts, StripeHeader, stripe, "webhook-id", ts, "webhook-timestamp", ts, "webhook-signature", swh)
		// The second spellings get other values, so that each one is fuzzed.
		h.Set(ShopifyUnprefixedHeader, stripe)
		h.Set(SvixIDHeader, sig)
		h.Set(SvixTimestampHeader, ts)
		h.Set(SvixSignatureHeader, stripe)
		p := &Params{Header: h, Body: body, Secrets: []string{"s3cret", "whsec_stripe123", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, Now: time.Unix(1767225600, 0)}
		for _, v := range []Verifier{HMACSHA256{}, GitHub{}, Shopify{}, Stripe{}, Slack{}, StandardWebhooks{}} {
			if err := v.Verify(p); err == nil {
				t.Fatalf("%T accepted a forged request", v)
			}
		}
	})
}
