package kapsel

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseSigningSecret(t *testing.T) {
	t.Parallel()
	const good = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	key, err := ParseSigningSecret(good)
	if err != nil || len(key) != 24 {
		t.Fatalf("ParseSigningSecret(good) = %d bytes, %v", len(key), err)
	}
	for _, bad := range []string{"", "whsec_", good[len("whsec_"):], "WHSEC_" + good[6:], "whsec_!!!!", "whsec_" + strings.TrimRight(base64.RawStdEncoding.EncodeToString([]byte("abcd")), "=")} {
		_, err := ParseSigningSecret(bad)
		refusedWith(t, err, CodeMalformedRequest, fmt.Sprintf("ParseSigningSecret(%q)", bad))
		if err != nil && bad != "" && bad != "whsec_" && strings.Contains(err.Error(), bad) {
			t.Errorf("ParseSigningSecret error %q repeats the secret", err)
		}
	}
}

func TestCheckSigningSecret(t *testing.T) {
	t.Parallel()
	sized := func(n int) string { return SigningSecretPrefix + base64.StdEncoding.EncodeToString(make([]byte, n)) }
	for n, ok := range map[int]bool{1: false, MinSigningKeyBytes - 1: false, MinSigningKeyBytes: true, SigningKeyBytes: true, MaxSigningKeyBytes: true, MaxSigningKeyBytes + 1: false} {
		if err := CheckSigningSecret(sized(n)); (err == nil) != ok {
			t.Errorf("CheckSigningSecret(%d-byte key) = %v, want ok=%v", n, err, ok)
		}
	}
	a, b := NewSigningSecret(), NewSigningSecret()
	if a == b || CheckSigningSecret(a) != nil || len(a) != len(SigningSecretPrefix)+44 {
		t.Fatalf("NewSigningSecret: %q, %q", a[:10], b[:10])
	}
}

// FuzzParseSigningSecret: no panic; an accepted secret has the prefix and a
// non-empty key, the standard base64 decoding of the rest — what the
// Standard Webhooks libraries decode (leniently: trailing bits need not be
// zero).
func FuzzParseSigningSecret(f *testing.F) {
	for _, s := range []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "", "whsec_====", "MfKQ9r8G"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		key, err := ParseSigningSecret(s)
		if err != nil {
			return
		}
		want, werr := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, SigningSecretPrefix))
		if len(key) == 0 || !strings.HasPrefix(s, SigningSecretPrefix) || werr != nil || !slices.Equal(key, want) {
			t.Fatalf("accepted %q as key %x", s, key)
		}
	})
}

func TestRotateSigningSecrets(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	secrets := func(ss []SigningSecret) []string {
		var out []string
		for _, s := range ss {
			out = append(out, s.Secret)
		}
		return out
	}
	if got := RotateSigningSecrets(nil, "n", now, time.Hour); len(got) != 1 || got[0].Secret != "n" || !got[0].ExpiresAt.IsZero() {
		t.Fatalf("rotation of nothing = %+v", got)
	}
	old := []SigningSecret{{Secret: "cur"}, {Secret: "live", ExpiresAt: now.Add(time.Minute)}, {Secret: "dead", ExpiresAt: now}}
	got := RotateSigningSecrets(old, "n", now, time.Hour)
	if !slices.Equal(secrets(got), []string{"n", "cur", "live"}) {
		t.Fatalf("rotation = %q, want the new, the previous current and the live one; the expired one dropped", secrets(got))
	}
	if !got[1].ExpiresAt.Equal(now.Add(time.Hour)) || !got[2].ExpiresAt.Equal(now.Add(time.Minute)) {
		t.Fatalf("expiries %v, %v", got[1].ExpiresAt, got[2].ExpiresAt)
	}
	if got := RotateSigningSecrets(old, "n", now, 0); !slices.Equal(secrets(got), []string{"n", "live"}) {
		t.Fatalf("rotation with no grace = %q, want the previous current dropped", secrets(got))
	}
	// Item 9 of issue 9: at most MaxSigningSecrets, the oldest dropped, even
	// when an older one would outlive a newer one.
	var ss []SigningSecret
	for i := range 9 {
		grace := 30 * 24 * time.Hour
		if i == 7 {
			grace = time.Minute // the newest rotated-out one expires first
		}
		ss = RotateSigningSecrets(ss, fmt.Sprint("s", i), now.Add(time.Duration(i)*time.Second), grace)
	}
	if !slices.Equal(secrets(ss), []string{"s8", "s7", "s6", "s5", "s4"}) {
		t.Fatalf("after 9 rotations = %q, want the newest %d", secrets(ss), MaxSigningSecrets)
	}
}

func TestVerifierConfigValidate(t *testing.T) {
	t.Parallel()
	const swh = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	for _, tc := range []struct {
		name string
		v    VerifierConfig
		ok   bool
	}{
		{"zero", VerifierConfig{}, true},
		{"none", VerifierConfig{Scheme: SchemeNone}, true},
		{"github", VerifierConfig{Scheme: SchemeGitHub, Secrets: []string{"a", "b"}}, true},
		{"standard-webhooks", VerifierConfig{Scheme: SchemeStandardWebhooks, Secrets: []string{swh}}, true},
		{"hmac header", VerifierConfig{Scheme: SchemeHMACSHA256, Secrets: []string{"a"}, Header: "X-Sig"}, true},
		{"registered, no secret", VerifierConfig{Scheme: "mine"}, true},
		{"registered with header", VerifierConfig{Scheme: "mine", Secrets: []string{"a"}, Header: "X-Mine"}, true},
		{"none with secret", VerifierConfig{Secrets: []string{"a"}}, false},
		{"github without secret", VerifierConfig{Scheme: SchemeGitHub}, false},
		{"empty hmac secret", VerifierConfig{Scheme: SchemeHMACSHA256, Secrets: []string{""}}, false},
		{"empty registered secret", VerifierConfig{Scheme: "mine", Secrets: []string{""}}, false},
		{"whsec_ alone", VerifierConfig{Scheme: SchemeStandardWebhooks, Secrets: []string{"whsec_"}}, false},
		{"unprefixed standard-webhooks", VerifierConfig{Scheme: SchemeStandardWebhooks, Secrets: []string{swh[6:]}}, false},
		{"long secret", VerifierConfig{Scheme: SchemeGitHub, Secrets: []string{strings.Repeat("a", MaxVerifierSecretLength+1)}}, false},
		{"too many", VerifierConfig{Scheme: SchemeGitHub, Secrets: slices.Repeat([]string{"a"}, MaxVerifierSecrets+1)}, false},
		{"header on github", VerifierConfig{Scheme: SchemeGitHub, Secrets: []string{"a"}, Header: "X-Sig"}, false},
		{"bad header name", VerifierConfig{Scheme: SchemeHMACSHA256, Secrets: []string{"a"}, Header: "X Sig"}, false},
	} {
		err := tc.v.Validate()
		if tc.ok {
			if err != nil {
				t.Errorf("%s: Validate = %v", tc.name, err)
			}
			continue
		}
		refusedWith(t, err, CodeMalformedRequest, tc.name)
		for _, s := range tc.v.Secrets {
			if len(s) > len(SigningSecretPrefix) && strings.Contains(err.Error(), s) {
				t.Errorf("%s: error %q contains a secret", tc.name, err)
			}
		}
	}
}

func TestBuiltinSchemes(t *testing.T) {
	t.Parallel()
	got := BuiltinSchemes()
	want := []string{SchemeNone, SchemeHMACSHA256, SchemeGitHub, SchemeStripe, SchemeStandardWebhooks, SchemeShopify, SchemeSlack}
	if !slices.Equal(got, want) {
		t.Fatalf("BuiltinSchemes() = %q", got)
	}
	got[0] = "changed"
	if BuiltinSchemes()[0] != SchemeNone || !IsBuiltinScheme(SchemeSlack) || IsBuiltinScheme("") || IsBuiltinScheme("mine") {
		t.Fatal("the list is shared with callers, or IsBuiltinScheme is wrong")
	}
}
