package api

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/delivery"
)

// SigningSecretPrefix starts every signing secret (Standard Webhooks form):
// the prefix the dispatcher's signer expects.
const SigningSecretPrefix = delivery.SigningSecretPrefix

// Signing secret key sizes, in bytes once base64-decoded. Generated secrets
// have 32 bytes (256 bits, the HMAC-SHA256 block-size sweet spot); supplied
// ones may have 24–64, which covers Svix's 24-byte secrets.
const (
	signingKeyBytes    = 32
	minSigningKeyBytes = 24
	maxSigningKeyBytes = 64
)

// NewSigningSecret returns a new random "whsec_<base64>" secret.
func NewSigningSecret() string {
	var b [signingKeyBytes]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return SigningSecretPrefix + base64.StdEncoding.EncodeToString(b[:])
}

// checkSigningSecret validates a caller-supplied signing secret. The error
// never quotes the secret.
func checkSigningSecret(s string) error {
	rest, ok := strings.CutPrefix(s, SigningSecretPrefix)
	if !ok {
		return badRequest("signing_secret must start with %q", SigningSecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return badRequest("signing_secret must be %q followed by standard base64", SigningSecretPrefix)
	}
	if len(key) < minSigningKeyBytes || len(key) > maxSigningKeyBytes {
		return badRequest("signing_secret must decode to %d–%d bytes, got %d", minSigningKeyBytes, maxSigningKeyBytes, len(key))
	}
	return nil
}

// rotate returns the signing secrets after a rotation at now: next is the
// current secret; the previous current secret keeps signing until now+grace
// (dropped at once when grace is 0); older secrets keep their own expiry;
// expired ones are dropped.
func rotate(old []kapsel.SigningSecret, next string, now time.Time, grace time.Duration) []kapsel.SigningSecret {
	out := []kapsel.SigningSecret{{Secret: next}}
	for _, s := range old {
		switch {
		case s.ExpiresAt.IsZero() && grace > 0:
			out = append(out, kapsel.SigningSecret{Secret: s.Secret, ExpiresAt: now.Add(grace)})
		case !s.ExpiresAt.IsZero() && now.Before(s.ExpiresAt):
			out = append(out, s)
		}
	}
	return out
}
