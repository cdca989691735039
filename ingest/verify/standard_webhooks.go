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

// The same headers as Svix, and the providers that send through Svix, name
// them.
const (
	SvixIDHeader        = "svix-id"
	SvixTimestampHeader = "svix-timestamp"
	SvixSignatureHeader = "svix-signature"
)

// swhNames is one spelling of the three Standard Webhooks headers.
type swhNames struct{ id, timestamp, signature string }

// swhSpellings are tried in turn: the specification's names, then Svix's.
var swhSpellings = [...]swhNames{
	{StandardWebhooksIDHeader, StandardWebhooksTimestampHeader, StandardWebhooksSignatureHeader},
	{SvixIDHeader, SvixTimestampHeader, SvixSignatureHeader},
}

// StandardWebhooks is the "standard-webhooks" scheme
// (https://www.standardwebhooks.com): webhook-signature carries a
// space-separated list of "v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>">",
// keyed by the base64-decoded part of the secret after "whsec_". Entries of
// other versions (v1a, …) are ignored. A secret that is not valid base64
// never matches. The timestamp must be within Tolerance of now in both
// directions, as the specification says.
//
// The svix-id, svix-timestamp and svix-signature headers (Svix's names for
// the same three) are accepted the same way. A spelling is used only when
// all three of its headers are present, never mixed with the other; when a
// request carries both complete spellings, it passes when either does —
// the Standard Webhooks library reads only webhook-*, Svix's reads svix-*
// first, and Kapsel accepts what either accepts.
type StandardWebhooks struct {
	// Tolerance is how far webhook-timestamp may be from now. Defaults to
	// DefaultTolerance.
	Tolerance time.Duration
}

// Verify implements [Verifier].
func (s StandardWebhooks) Verify(p *Params) error {
	var first error
	found := false
	for _, names := range swhSpellings {
		id, rawTS, value := p.Header.Get(names.id), p.Header.Get(names.timestamp), p.Header.Get(names.signature)
		if id == "" || rawTS == "" || value == "" {
			continue
		}
		found = true
		err := s.verify(p, names, id, rawTS, value)
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	if !found {
		// Name the first missing header of the specification's spelling.
		for _, name := range [...]string{StandardWebhooksIDHeader, StandardWebhooksTimestampHeader, StandardWebhooksSignatureHeader} {
			if p.Header.Get(name) == "" {
				return fmt.Errorf("%s: %w", name, ErrMissing)
			}
		}
	}
	return first
}

// verify checks one spelling's id, timestamp and signature header values.
func (s StandardWebhooks) verify(p *Params, names swhNames, id, rawTS, value string) error {
	ts, err := ParseTimestamp(rawTS)
	if err != nil {
		return fmt.Errorf("%s: %w", names.timestamp, err)
	}
	sigs, err := ParseStandardWebhooksHeader(value)
	if err != nil {
		return fmt.Errorf("%s: %w", names.signature, err)
	}
	if err := checkTimestamp(ts, p.Now, s.Tolerance); err != nil {
		return fmt.Errorf("%s: %w", names.timestamp, err)
	}
	return matchAny(p.Secrets, sigs, func(secret string) []byte {
		key, err := StandardWebhooksKey(secret)
		if err != nil {
			return nil
		}
		return mac(key, []byte(id), []byte{'.'}, []byte(rawTS), []byte{'.'}, p.Body)
	}, names.signature)
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
