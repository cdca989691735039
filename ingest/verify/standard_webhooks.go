package verify

import (
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// Standard Webhooks headers.
const (
	StandardWebhooksIDHeader        = "webhook-id"
	StandardWebhooksTimestampHeader = "webhook-timestamp"
	StandardWebhooksSignatureHeader = "webhook-signature"
)

// StandardWebhooks is the "standard-webhooks" scheme
// (https://www.standardwebhooks.com): webhook-signature carries a
// space-separated list of "v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>">",
// keyed by the base64-decoded part of the secret after "whsec_". Entries of
// other versions (v1a, …) are ignored. A secret that is not valid base64
// never matches. The timestamp must be within Tolerance of now in both
// directions, as the specification says.
type StandardWebhooks struct {
	// Tolerance is how far webhook-timestamp may be from now. Defaults to
	// DefaultTolerance.
	Tolerance time.Duration
}

// Verify implements [Verifier].
func (s StandardWebhooks) Verify(p *Params) error {
	id := p.Header.Get(StandardWebhooksIDHeader)
	rawTS := p.Header.Get(StandardWebhooksTimestampHeader)
	value := p.Header.Get(StandardWebhooksSignatureHeader)
	for _, h := range [...]struct{ name, value string }{
		{StandardWebhooksIDHeader, id},
		{StandardWebhooksTimestampHeader, rawTS},
		{StandardWebhooksSignatureHeader, value},
	} {
		if h.value == "" {
			return fmt.Errorf("%s: %w", h.name, ErrMissing)
		}
	}
	ts, err := ParseTimestamp(rawTS)
	if err != nil {
		return fmt.Errorf("%s: %w", StandardWebhooksTimestampHeader, err)
	}
	sigs, err := ParseStandardWebhooksHeader(value)
	if err != nil {
		return fmt.Errorf("%s: %w", StandardWebhooksSignatureHeader, err)
	}
	if err := checkTimestamp(ts, p.Now, s.Tolerance); err != nil {
		return fmt.Errorf("%s: %w", StandardWebhooksTimestampHeader, err)
	}
	return matchAny(p.Secrets, sigs, func(secret string) []byte {
		key, err := StandardWebhooksKey(secret)
		if err != nil {
			return nil
		}
		return mac(key, []byte(id), []byte{'.'}, []byte(rawTS), []byte{'.'}, p.Body)
	}, StandardWebhooksSignatureHeader)
}

// StandardWebhooksKey returns the HMAC key of a "whsec_<base64>" secret:
// kapsel.ParseSigningSecret, the one parser of that format, which the
// dispatcher signs with too. The prefix is required (one format, the one
// Kapsel generates and accepts everywhere), and a secret whose key is
// empty ("whsec_") is refused, so it never verifies anything. The error
// wraps ErrMalformed and never contains the secret.
func StandardWebhooksKey(secret string) ([]byte, error) {
	key, err := kapsel.ParseSigningSecret(secret)
	if err != nil {
		return nil, fmt.Errorf("%w: secret is not whsec_<base64> with a non-empty key", ErrMalformed)
	}
	return key, nil
}

// ParseStandardWebhooksHeader returns the decoded v1 signatures of a
// webhook-signature value: space-separated "<version>,<base64>" entries.
// Entries of other versions, entries without a comma and v1 entries that are
// not base64 are skipped, so one odd entry does not hide a valid signature;
// a value with no usable v1 entry is malformed. An empty "v1," decodes to no
// bytes and is kept: it then fails the comparison.
func ParseStandardWebhooksHeader(value string) ([][]byte, error) {
	var sigs [][]byte
	for entry := range strings.FieldsSeq(value) {
		version, b64, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		if len(sigs) == maxSignatures {
			return nil, fmt.Errorf("%w: more than %d signatures", ErrMalformed, maxSignatures)
		}
		sig, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			continue
		}
		sigs = append(sigs, sig)
	}
	if len(sigs) == 0 {
		return nil, fmt.Errorf("%w: no usable v1 signature", ErrMalformed)
	}
	return sigs, nil
}
