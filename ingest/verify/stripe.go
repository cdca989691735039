package verify

import (
	"fmt"
	"strings"
	"time"
)

// StripeHeader is the header Stripe signs with.
const StripeHeader = "Stripe-Signature"

// Stripe is the "stripe" scheme: Stripe-Signature: t=<unix>,v1=<hex>[,v1=…],
// where each v1 is the hex HMAC-SHA256 of "<t>.<body>" keyed by the whole
// secret string (whsec_ prefix included, as Stripe's libraries do). Other
// schemes in the header (v0, …) are ignored. The timestamp must be within
// Tolerance of now in both directions: Stripe's own libraries accept any
// future timestamp, Kapsel does not, because a future-dated signature would
// stay replayable for longer than the tolerance promises.
type Stripe struct {
	// Tolerance is how far t may be from now. Defaults to DefaultTolerance.
	Tolerance time.Duration
}

// Verify implements [Verifier].
func (s Stripe) Verify(p *Params) error {
	value := p.Header.Get(StripeHeader)
	if value == "" {
		return fmt.Errorf("%s: %w", StripeHeader, ErrMissing)
	}
	h, err := ParseStripeHeader(value)
	if err != nil {
		return fmt.Errorf("%s: %w", StripeHeader, err)
	}
	if err := checkTimestamp(h.Timestamp, p.Now, s.Tolerance); err != nil {
		return fmt.Errorf("%s: %w", StripeHeader, err)
	}
	return matchAny(p.Secrets, h.Signatures, func(secret string) []byte {
		return mac([]byte(secret), []byte(h.RawTimestamp), []byte{'.'}, p.Body)
	}, StripeHeader)
}

// StripeHeaderValue is a parsed Stripe-Signature header.
type StripeHeaderValue struct {
	// RawTimestamp is t as sent; it is what the signature covers.
	RawTimestamp string
	Timestamp    int64
	// Signatures are the decoded v1 values.
	Signatures [][]byte
}

// maxSignatures bounds how many signatures one header may carry, so that a
// hostile header cannot make verification cost secrets × thousands of MACs'
// comparisons.
const maxSignatures = 16

// ParseStripeHeader parses "t=<unix>,v1=<hex>[,v1=<hex>…]". Items are
// separated by commas (spaces around them are ignored). Exactly one valid t
// is required, and at least one v1 that is hex; like Stripe's libraries, it
// skips items without '=', items with other keys and v1 values that are not
// hex, so one odd item does not hide a valid signature.
func ParseStripeHeader(value string) (*StripeHeaderValue, error) {
	out := &StripeHeaderValue{}
	seenT := false
	for item := range strings.SplitSeq(value, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			if seenT {
				return nil, fmt.Errorf("%w: more than one t", ErrMalformed)
			}
			ts, err := ParseTimestamp(v)
			if err != nil {
				return nil, err
			}
			seenT, out.RawTimestamp, out.Timestamp = true, v, ts
		case "v1":
			if len(out.Signatures) == maxSignatures {
				return nil, fmt.Errorf("%w: more than %d signatures", ErrMalformed, maxSignatures)
			}
			sig, err := decodeHex(v)
			if err != nil {
				continue
			}
			out.Signatures = append(out.Signatures, sig)
		}
	}
	if !seenT {
		return nil, fmt.Errorf("%w: no t", ErrMalformed)
	}
	if len(out.Signatures) == 0 {
		return nil, fmt.Errorf("%w: no usable v1 signature", ErrMalformed)
	}
	return out, nil
}
