package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// DefaultHMACHeader is the header the hmac-sha256 scheme reads unless the
// source names another.
const DefaultHMACHeader = "X-Kapsel-Signature"

// HMACSHA256 is the generic "hmac-sha256" scheme: the header (
// [DefaultHMACHeader] unless [Params].SignatureHeader names another) carries
// the hex HMAC-SHA256 of the raw body, keyed by the secret string, optionally
// prefixed with "sha256=". Hex digits may be upper or lower case.
type HMACSHA256 struct{}

// Verify implements [Verifier].
func (HMACSHA256) Verify(p *Params) error {
	name := p.SignatureHeader
	if name == "" {
		name = DefaultHMACHeader
	}
	value := p.Header.Get(name)
	if value == "" {
		return fmt.Errorf("%s: %w", name, ErrMissing)
	}
	sig, err := ParseHMACSHA256Header(value)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return matchAny(p.Secrets, [][]byte{sig}, func(secret string) []byte {
		return mac([]byte(secret), p.Body)
	}, name)
}

// ParseHMACSHA256Header decodes "<hex>" or "sha256=<hex>". The result is
// whatever the hex decodes to; its length is checked by the comparison.
func ParseHMACSHA256Header(value string) ([]byte, error) {
	value = strings.TrimPrefix(value, "sha256=")
	return decodeHex(value)
}

// GitHub is the "github" scheme: X-Hub-Signature-256: sha256=<hex HMAC-SHA256
// of the body>, keyed by the secret string. The prefix is required.
type GitHub struct{}

// GitHubHeader is the header GitHub signs with.
const GitHubHeader = "X-Hub-Signature-256"

// Verify implements [Verifier].
func (GitHub) Verify(p *Params) error {
	value := p.Header.Get(GitHubHeader)
	if value == "" {
		return fmt.Errorf("%s: %w", GitHubHeader, ErrMissing)
	}
	sig, err := ParseGitHubHeader(value)
	if err != nil {
		return fmt.Errorf("%s: %w", GitHubHeader, err)
	}
	return matchAny(p.Secrets, [][]byte{sig}, func(secret string) []byte {
		return mac([]byte(secret), p.Body)
	}, GitHubHeader)
}

// ParseGitHubHeader decodes "sha256=<hex>".
func ParseGitHubHeader(value string) ([]byte, error) {
	hexSig, ok := strings.CutPrefix(value, "sha256=")
	if !ok {
		return nil, fmt.Errorf("%w: want sha256=<hex>", ErrMalformed)
	}
	return decodeHex(hexSig)
}

// Shopify is the "shopify" scheme: X-Shopify-Hmac-Sha256: <base64 (standard
// alphabet, padded) HMAC-SHA256 of the body>, keyed by the secret string.
// The unprefixed Shopify-Hmac-Sha256 of Shopify's newer deliveries is
// accepted the same way; when both are present, either may match, and one
// that is not base64 is skipped while the other decodes.
type Shopify struct{}

// Shopify signs with ShopifyHeader; its newer deliveries carry the same
// signature under ShopifyUnprefixedHeader.
const (
	ShopifyHeader           = "X-Shopify-Hmac-Sha256"
	ShopifyUnprefixedHeader = "Shopify-Hmac-Sha256"
)

// Verify implements [Verifier].
func (Shopify) Verify(p *Params) error {
	var sigs [][]byte
	named, malformed := "", ""
	for _, name := range [...]string{ShopifyHeader, ShopifyUnprefixedHeader} {
		value := p.Header.Get(name)
		if value == "" {
			continue
		}
		if named == "" {
			named = name
		}
		sig, err := base64.StdEncoding.DecodeString(value)
		if err != nil {
			if malformed == "" {
				malformed = name
			}
			continue
		}
		sigs = append(sigs, sig)
	}
	switch {
	case named == "":
		return fmt.Errorf("%s: %w", ShopifyHeader, ErrMissing)
	case len(sigs) == 0:
		return fmt.Errorf("%s: %w: signature is not base64", malformed, ErrMalformed)
	}
	return matchAny(p.Secrets, sigs, func(secret string) []byte {
		return mac([]byte(secret), p.Body)
	}, named)
}

// mac returns HMAC-SHA256(key, parts...), writing the parts in turn so that a
// large body is never copied to build the signed content.
func mac(key []byte, parts ...[]byte) []byte {
	h := hmac.New(sha256.New, key)
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// matchAny computes the expected MAC for every secret and compares it with
// every candidate signature in constant time (lengths included). It returns
// nil on the first match, ErrMismatch naming header otherwise; with no secret
// at all it fails closed. An empty secret is skipped: anyone can compute a
// MAC keyed by nothing, so it never verifies anything (docs/ingest.md), whatever
// reached the verifier — the stores refuse to keep one, and this is the last
// line.
func matchAny(secrets []string, candidates [][]byte, expected func(secret string) []byte, header string) error {
	for _, secret := range secrets {
		if secret == "" {
			continue
		}
		want := expected(secret)
		if want == nil {
			continue
		}
		for _, c := range candidates {
			if hmac.Equal(want, c) {
				return nil
			}
		}
	}
	return fmt.Errorf("%s: %w", header, ErrMismatch)
}

// decodeHex decodes a hex signature, refusing anything but hex digits.
func decodeHex(s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: signature is not hex", ErrMalformed)
	}
	return b, nil
}
