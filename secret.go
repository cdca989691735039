package kapsel

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
	"time"
)

// The Standard Webhooks secret format, "whsec_<base64>", is written here once:
// the dispatcher signs with [ParseSigningSecret], the standard-webhooks
// ingest verifier verifies with it, and the stores and the management API
// check secrets they are given with [CheckSigningSecret].
//
// Decision: the "whsec_" prefix is required everywhere. The Standard
// Webhooks reference libraries strip it when present, but Kapsel generates,
// shows and accepts only the prefixed form, so a key parser that also took a
// bare base64 string would be a second format that only some paths accept.

// SigningSecretPrefix starts every Standard Webhooks secret.
const SigningSecretPrefix = "whsec_"

// Key sizes of a signing secret, in bytes once base64-decoded. Generated
// secrets have [SigningKeyBytes]; a secret supplied by a caller (or by a
// provider, for the standard-webhooks verifier) may have
// [MinSigningKeyBytes]–[MaxSigningKeyBytes], the range the Standard Webhooks
// specification recommends, which covers Svix's 24-byte secrets.
const (
	SigningKeyBytes    = 32
	MinSigningKeyBytes = 24
	MaxSigningKeyBytes = 64
)

// MaxSigningSecrets is how many signing secrets an endpoint keeps: the
// current one and at most four rotated-out ones still in their grace period
// (docs/delivery.md), so a delivery never carries more than five signatures.
const MaxSigningSecrets = 5

// ParseSigningSecret returns the HMAC key of a "whsec_<base64>" secret: the
// standard, padded base64 decoding of what follows the prefix — what the
// Standard Webhooks and Svix libraries decode, so a receiver holding the same
// secret derives the same key. It refuses a secret without the prefix, one
// that is not base64, and one whose key is empty ("whsec_"), with an error
// wrapping [ErrInvalid] that never contains the secret. It does not check the
// key's length; [CheckSigningSecret] does.
func ParseSigningSecret(secret string) ([]byte, error) {
	enc, ok := strings.CutPrefix(secret, SigningSecretPrefix)
	if !ok {
		return nil, invalid(CodeMalformedRequest, "signing secret must start with %q", SigningSecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, invalid(CodeMalformedRequest, "signing secret must be %q followed by standard base64", SigningSecretPrefix)
	}
	if len(key) == 0 {
		return nil, invalid(CodeMalformedRequest, "signing secret has an empty key")
	}
	return key, nil
}

// CheckSigningSecret validates a secret before it is stored: it parses (see
// [ParseSigningSecret]) to a key of [MinSigningKeyBytes]–[MaxSigningKeyBytes]
// bytes. The error wraps [ErrInvalid] and never contains the secret.
func CheckSigningSecret(secret string) error {
	key, err := ParseSigningSecret(secret)
	if err != nil {
		return err
	}
	if len(key) < MinSigningKeyBytes || len(key) > MaxSigningKeyBytes {
		return invalid(CodeMalformedRequest, "signing secret must decode to %d–%d bytes, got %d",
			MinSigningKeyBytes, MaxSigningKeyBytes, len(key))
	}
	return nil
}

// NewSigningSecret returns a new random "whsec_<base64>" secret of
// [SigningKeyBytes] bytes (256 bits) from crypto/rand.
func NewSigningSecret() string {
	var b [SigningKeyBytes]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return SigningSecretPrefix + base64.StdEncoding.EncodeToString(b[:])
}

// RotateSigningSecrets returns an endpoint's signing secrets after a rotation
// at now: next becomes the current secret; the previous current secret keeps
// signing until now+grace (it is dropped at once when grace is 0); older
// secrets keep their own expiry; expired ones are dropped. The result is
// newest first, in the order of rotation.
//
// At most [MaxSigningSecrets] are kept. When more are still in their grace
// period, the oldest — the ones rotated out first — are dropped, whatever
// their expiry: the newest secrets are the ones receivers most likely hold.
// Stores call it inside the statement or transaction that rotates, so that
// no concurrent write can interleave.
func RotateSigningSecrets(old []SigningSecret, next string, now time.Time, grace time.Duration) []SigningSecret {
	out := []SigningSecret{{Secret: next}}
	for _, s := range old {
		if len(out) == MaxSigningSecrets {
			break
		}
		switch {
		case s.ExpiresAt.IsZero() && grace > 0:
			out = append(out, SigningSecret{Secret: s.Secret, ExpiresAt: now.Add(grace)})
		case !s.ExpiresAt.IsZero() && now.Before(s.ExpiresAt):
			out = append(out, s)
		}
	}
	return out
}
