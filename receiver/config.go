package receiver

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/ingest/verify"
)

// Defaults of [Config].
const (
	// DefaultTolerance is how far webhook-timestamp may be from now, in
	// either direction: 5 minutes, as the Standard Webhooks specification
	// recommends.
	DefaultTolerance = verify.DefaultTolerance
	// DefaultMaxBodyBytes is the largest body accepted: 10 MiB.
	DefaultMaxBodyBytes = 10 << 20
	// DefaultSeenTTL is how long a handled webhook-id is remembered: 24 h,
	// Kapsel's idempotency window, long enough to cover the retries that
	// follow a lost answer.
	DefaultSeenTTL = kapsel.DefaultIdempotencyWindow
	// DefaultRetryAfter is the Retry-After sent when a delivery cannot be
	// handled yet (its webhook-id is being handled, or the SeenStore failed).
	DefaultRetryAfter = time.Second
)

// Config configures a [Verifier]. Secrets is required; every other field
// has a default.
type Config struct {
	// Secrets are the endpoint's signing secrets as Kapsel shows them,
	// "whsec_<base64>". A delivery is accepted when it carries a valid
	// signature made with any one of them: during a rotation grace period
	// list the new secret and the old one, and drop the old one once the
	// grace period is over. Required: at least one, none empty.
	Secrets []string
	// Tolerance is how far webhook-timestamp may be from now, in either
	// direction. Defaults to DefaultTolerance (5 min).
	Tolerance time.Duration
	// MaxBodyBytes is the largest body accepted; a larger one is refused
	// with 413 E1002 as soon as the limit is crossed. Defaults to
	// DefaultMaxBodyBytes (10 MiB).
	MaxBodyBytes int64
	// Seen remembers handled webhook-ids. Defaults to a new [MemorySeen]
	// with its default size.
	Seen SeenStore
	// SeenTTL is how long a handled webhook-id is remembered. It must be at
	// least twice Tolerance, the time a signed request stays valid. Defaults
	// to DefaultSeenTTL (24 h), or twice Tolerance when that is longer.
	SeenTTL time.Duration
	// RetryAfter is sent with the 429 and 503 answers that ask the sender to
	// come back later. Defaults to DefaultRetryAfter (1 s).
	RetryAfter time.Duration
	// Clock gives the time for the timestamp tolerance and the expiry of
	// remembered ids. Defaults to kapsel.SystemClock().
	Clock kapsel.Clock
	// Logger receives rejected deliveries (at debug level) and SeenStore
	// failures; never bodies or secrets. Defaults to slog.Default(), like
	// every other Kapsel component.
	Logger *slog.Logger
}

// errNoSecret is what validation reports for a missing secret.
var errNoSecret = errors.New("at least one secret is required")

// withDefaults returns a validated copy of c with every default filled in.
// Errors name the field.
func (c Config) withDefaults() (Config, error) {
	if len(c.Secrets) == 0 {
		return c, fmt.Errorf("receiver: Config.Secrets: %w", errNoSecret)
	}
	c.Secrets = append([]string(nil), c.Secrets...)
	for i, s := range c.Secrets {
		if err := checkSecret(s); err != nil {
			return c, fmt.Errorf("receiver: Config.Secrets[%d]: %w", i, err)
		}
	}
	if c.Tolerance < 0 {
		return c, fmt.Errorf("receiver: Config.Tolerance: %s is negative", c.Tolerance)
	}
	if c.Tolerance == 0 {
		c.Tolerance = DefaultTolerance
	}
	if c.MaxBodyBytes < 0 {
		return c, fmt.Errorf("receiver: Config.MaxBodyBytes: %d is negative", c.MaxBodyBytes)
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	window := 2 * c.Tolerance
	switch {
	case c.SeenTTL < 0:
		return c, fmt.Errorf("receiver: Config.SeenTTL: %s is negative", c.SeenTTL)
	case c.SeenTTL == 0:
		c.SeenTTL = max(DefaultSeenTTL, window)
	case c.SeenTTL < window:
		return c, fmt.Errorf("receiver: Config.SeenTTL: %s is shorter than twice Tolerance (%s), for which a signed request stays valid", c.SeenTTL, window)
	}
	if c.RetryAfter < 0 {
		return c, fmt.Errorf("receiver: Config.RetryAfter: %s is negative", c.RetryAfter)
	}
	if c.RetryAfter == 0 {
		c.RetryAfter = DefaultRetryAfter
	}
	if c.Seen == nil {
		c.Seen = NewMemorySeen(0)
	}
	if c.Clock == nil {
		c.Clock = kapsel.SystemClock()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// checkSecret refuses a secret that can never verify anything: empty, not
// "whsec_" followed by base64, or with nothing after the prefix. The format
// is kapsel.ParseSigningSecret's, the one parser Kapsel signs with; the
// signature check itself is ingest/verify's.
func checkSecret(s string) error {
	if s == "" {
		return errors.New("secret is empty")
	}
	if _, err := kapsel.ParseSigningSecret(s); err != nil {
		return errors.New("secret is not whsec_<base64> with a non-empty key")
	}
	return nil
}
