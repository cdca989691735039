// Package verify checks the signatures that webhook providers put on the
// requests they send, one [Verifier] per scheme of docs/ingest.md: none,
// hmac-sha256, github, stripe, standard-webhooks, shopify and slack.
//
// Every verifier follows the same rules:
//
//   - Signatures are decoded (hex or base64) and compared with [hmac.Equal],
//     which takes constant time and also compares lengths: an empty or
//     truncated signature never matches.
//   - Every configured secret is tried against every signature the request
//     carries, so a source can accept its old and new secret while a
//     provider rotates.
//   - A verifier that has no secret to try rejects the request (fail closed).
//   - Timestamps (stripe, slack, standard-webhooks) are accepted when they
//     are at most Tolerance away from now in either direction, boundary
//     included: with the default 300 s, a timestamp exactly 300 s old passes
//     and one 300 s plus one nanosecond old does not.
//   - Errors wrap [ErrMissing], [ErrMalformed], [ErrMismatch] or
//     [ErrTimestamp] and name only headers, never a secret or a signature
//     value, so they are safe to show to the sender.
//
// A [Registry] maps scheme names to verifiers; applications register their
// own schemes next to the built-in ones.
package verify

import (
	"errors"
	"net/http"
	"time"
)

// Verifier checks one scheme's signature on an inbound webhook.
type Verifier interface {
	// Verify returns nil when the request carries a valid signature made with
	// one of p.Secrets, and otherwise an error wrapping ErrMissing,
	// ErrMalformed, ErrMismatch or ErrTimestamp. It must not modify p.
	Verify(p *Params) error
}

// Params is what a [Verifier] looks at.
type Params struct {
	// Header holds the request headers, as received.
	Header http.Header
	// Body is the raw request body, byte for byte.
	Body []byte
	// Secrets are the source's verifier secrets; any one may match.
	Secrets []string
	// SignatureHeader is the source's configured header name
	// (kapsel.VerifierConfig.Header), for schemes that let it be changed;
	// empty means the scheme's default.
	SignatureHeader string
	// Now is the current time, for timestamp tolerance.
	Now time.Time
}

// Func adapts an ordinary function to the [Verifier] interface.
type Func func(p *Params) error

// Verify calls f(p).
func (f Func) Verify(p *Params) error { return f(p) }

// Errors returned by verifiers, wrapped with the name of the header concerned.
var (
	// ErrMissing: a header the scheme needs is absent or empty.
	ErrMissing = errors.New("missing signature header")
	// ErrMalformed: a header is present but cannot be parsed.
	ErrMalformed = errors.New("malformed signature header")
	// ErrMismatch: no signature matches any secret.
	ErrMismatch = errors.New("signature does not match")
	// ErrTimestamp: the signed timestamp is outside the tolerance.
	ErrTimestamp = errors.New("timestamp outside tolerance")
)

// DefaultTolerance is how far a signed timestamp may be from now, in either
// direction, for the timestamped schemes.
const DefaultTolerance = 300 * time.Second

// None accepts every request: the "none" scheme.
type None struct{}

// Verify always returns nil.
func (None) Verify(*Params) error { return nil }
