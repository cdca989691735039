package delivery

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// SigningSecretPrefix starts every Standard Webhooks signing secret:
// kapsel.SigningSecretPrefix.
const SigningSecretPrefix = kapsel.SigningSecretPrefix

// ErrSigningSecret is returned for a signing secret that is not
// "whsec_<base64>" with a non-empty key.
var ErrSigningSecret = errors.New("delivery: signing secret is not whsec_<base64>")

// Sign returns the Standard Webhooks signature of one delivery:
// "v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>", where key is
// the base64-decoded part of secret after "whsec_" and timestamp is in unix
// seconds. It returns an error wrapping [ErrSigningSecret] when the secret
// cannot be decoded; the error never contains the secret.
func Sign(secret, id string, timestamp time.Time, body []byte) (string, error) {
	key, err := signingKey(secret)
	if err != nil {
		return "", err
	}
	return sign(key, id, timestamp.Unix(), body), nil
}

// SignatureHeader returns the webhook-signature header value for a delivery
// signed with every one of secrets, space-separated (during a rotation grace
// period an endpoint has two). A secret that cannot be decoded makes it fail.
func SignatureHeader(secrets []string, id string, timestamp time.Time, body []byte) (string, error) {
	var b strings.Builder
	for i, s := range secrets {
		sig, err := Sign(s, id, timestamp, body)
		if err != nil {
			return "", fmt.Errorf("signing secret %d: %w", i+1, err)
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(sig)
	}
	return b.String(), nil
}

// signingKey decodes a "whsec_<base64>" secret with kapsel.ParseSigningSecret,
// the one parser of that format — the standard-webhooks ingest verifier uses
// it too — so that a receiver holding the same secret derives the same key.
func signingKey(secret string) ([]byte, error) {
	key, err := kapsel.ParseSigningSecret(secret)
	if err != nil {
		return nil, ErrSigningSecret
	}
	return key, nil
}

func sign(key []byte, id string, unix int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	var ts [20]byte
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(ts[:0], unix, 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
