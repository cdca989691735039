package verify

import (
	"fmt"
	"strings"
	"time"
)

// Slack signs with these headers.
const (
	SlackSignatureHeader = "X-Slack-Signature"
	SlackTimestampHeader = "X-Slack-Request-Timestamp"
)

// Slack is the "slack" scheme: X-Slack-Signature: v0=<hex HMAC-SHA256 of
// "v0:<ts>:<body>">, keyed by the signing secret string, with <ts> taken
// from X-Slack-Request-Timestamp. The timestamp must be within Tolerance of
// now in both directions, as Slack's documentation checks it.
type Slack struct {
	// Tolerance is how far the timestamp may be from now. Defaults to
	// DefaultTolerance.
	Tolerance time.Duration
}

// Verify implements [Verifier].
func (s Slack) Verify(p *Params) error {
	rawTS := p.Header.Get(SlackTimestampHeader)
	if rawTS == "" {
		return fmt.Errorf("%s: %w", SlackTimestampHeader, ErrMissing)
	}
	value := p.Header.Get(SlackSignatureHeader)
	if value == "" {
		return fmt.Errorf("%s: %w", SlackSignatureHeader, ErrMissing)
	}
	ts, err := ParseTimestamp(rawTS)
	if err != nil {
		return fmt.Errorf("%s: %w", SlackTimestampHeader, err)
	}
	sig, err := ParseSlackHeader(value)
	if err != nil {
		return fmt.Errorf("%s: %w", SlackSignatureHeader, err)
	}
	if err := checkTimestamp(ts, p.Now, s.Tolerance); err != nil {
		return fmt.Errorf("%s: %w", SlackTimestampHeader, err)
	}
	return matchAny(p.Secrets, [][]byte{sig}, func(secret string) []byte {
		return mac([]byte(secret), []byte("v0:"), []byte(rawTS), []byte{':'}, p.Body)
	}, SlackSignatureHeader)
}

// ParseSlackHeader decodes "v0=<hex>".
func ParseSlackHeader(value string) ([]byte, error) {
	hexSig, ok := strings.CutPrefix(value, "v0=")
	if !ok {
		return nil, fmt.Errorf("%w: want v0=<hex>", ErrMalformed)
	}
	return decodeHex(hexSig)
}
