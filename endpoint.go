package kapsel

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"
)

// EndpointState is the delivery state of an [Endpoint].
type EndpointState string

// Endpoint states. Only active endpoints are delivered to; paused and disabled
// endpoints still get their deliveries, which wait until the endpoint is
// resumed.
const (
	EndpointActive   EndpointState = "active"
	EndpointPaused   EndpointState = "paused"
	EndpointDisabled EndpointState = "disabled"
)

// Valid reports whether s is one of the documented states.
func (s EndpointState) Valid() bool {
	return s == EndpointActive || s == EndpointPaused || s == EndpointDisabled
}

// DisabledReason says why an endpoint is disabled.
type DisabledReason string

// Disabled reasons.
const (
	DisabledNone    DisabledReason = ""
	DisabledManual  DisabledReason = "manual"  // an operator disabled it
	DisabledGone    DisabledReason = "gone"    // the destination answered 410 Gone
	DisabledFailing DisabledReason = "failing" // it has done nothing but fail for the auto-disable window
)

// SigningSecret is one secret an endpoint signs outbound deliveries with, in
// the Standard Webhooks form "whsec_<base64>".
type SigningSecret struct {
	Secret string
	// ExpiresAt is zero for the current secret; a secret replaced by a
	// rotation keeps signing until ExpiresAt.
	ExpiresAt time.Time
}

// Default retry policy values (docs/delivery.md).
const (
	DefaultMaxAttempts     = 25
	DefaultInitialInterval = 2 * time.Second
	DefaultMultiplier      = 2.0
	DefaultJitter          = 0.2
	DefaultMaxInterval     = time.Hour
	DefaultMaxAge          = 72 * time.Hour
	DefaultAttemptTimeout  = 30 * time.Second
	MinAttemptTimeout      = time.Second
	MaxAttemptTimeout      = 120 * time.Second
	// MaxRetryInterval caps a policy's InitialInterval and MaxInterval, and
	// MaxRetryAge its MaxAge: longer waits are configuration mistakes, and
	// the caps keep every computed time far from overflowing.
	MaxRetryInterval = 7 * 24 * time.Hour
	MaxRetryAge      = 365 * 24 * time.Hour
)

// RetryPolicy says how failed attempts are retried. A zero field takes its
// default in [RetryPolicy.WithDefaults]; Retry4xx has no zero default, so
// start from [DefaultRetryPolicy] when building one by hand.
type RetryPolicy struct {
	// MaxAttempts is the number of attempts after which the delivery fails.
	// Defaults to 25.
	MaxAttempts int
	// InitialInterval is the wait after the first failure. Defaults to 2 s.
	InitialInterval time.Duration
	// Multiplier grows the interval after each failure. Defaults to 2.
	Multiplier float64
	// Jitter randomises each interval by ±Jitter (0.2 = ±20 %). Defaults to 0.2.
	Jitter float64
	// MaxInterval caps one wait, Retry-After included. Defaults to 1 h.
	MaxInterval time.Duration
	// MaxAge: no attempt is scheduled later than the delivery's
	// CreatedAt+MaxAge; the delivery fails instead. Defaults to 72 h.
	MaxAge time.Duration
	// Retry4xx retries 4xx answers other than 408, 410 and 429. When false
	// they fail the delivery at once. [DefaultRetryPolicy] sets it to true.
	Retry4xx bool
}

// DefaultRetryPolicy returns the docs/delivery.md default policy.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{
		MaxAttempts:     DefaultMaxAttempts,
		InitialInterval: DefaultInitialInterval,
		Multiplier:      DefaultMultiplier,
		Jitter:          DefaultJitter,
		MaxInterval:     DefaultMaxInterval,
		MaxAge:          DefaultMaxAge,
		Retry4xx:        true,
	}
}

// WithDefaults returns p with every zero numeric field set to its default.
func (p RetryPolicy) WithDefaults() RetryPolicy {
	d := DefaultRetryPolicy()
	p.MaxAttempts = cmp.Or(p.MaxAttempts, d.MaxAttempts)
	p.InitialInterval = cmp.Or(p.InitialInterval, d.InitialInterval)
	p.Multiplier = cmp.Or(p.Multiplier, d.Multiplier)
	p.Jitter = cmp.Or(p.Jitter, d.Jitter)
	p.MaxInterval = cmp.Or(p.MaxInterval, d.MaxInterval)
	p.MaxAge = cmp.Or(p.MaxAge, d.MaxAge)
	return p
}

// Validate returns an error wrapping [ErrInvalid] naming the first bad field.
func (p RetryPolicy) Validate() error {
	switch {
	case p.MaxAttempts < 1 || p.MaxAttempts > 1000:
		return fmt.Errorf("%w: retry_policy.max_attempts must be 1–1000, got %d", ErrInvalid, p.MaxAttempts)
	case p.InitialInterval < time.Millisecond || p.InitialInterval > MaxRetryInterval:
		return fmt.Errorf("%w: retry_policy.initial_interval_ms must be 1–%d", ErrInvalid, MaxRetryInterval.Milliseconds())
	case p.MaxInterval < p.InitialInterval || p.MaxInterval > MaxRetryInterval:
		return fmt.Errorf("%w: retry_policy.max_interval_ms must be at least initial_interval_ms and at most %d", ErrInvalid, MaxRetryInterval.Milliseconds())
	case p.Multiplier < 1:
		return fmt.Errorf("%w: retry_policy multiplier must be at least 1", ErrInvalid)
	case p.Jitter < 0 || p.Jitter >= 1:
		return fmt.Errorf("%w: retry_policy jitter must be in [0, 1)", ErrInvalid)
	case p.MaxAge < time.Second || p.MaxAge > MaxRetryAge:
		return fmt.Errorf("%w: retry_policy.max_age_s must be 1–%d", ErrInvalid, int64(MaxRetryAge/time.Second))
	}
	return nil
}

// Endpoint is a destination that belongs to a tenant: where, how and which
// of the tenant's events are delivered.
type Endpoint struct {
	ID       EndpointID
	TenantID TenantID
	Name     string
	// URL is the destination, http or https.
	URL            string
	State          EndpointState
	DisabledReason DisabledReason
	// SigningSecrets sign outbound deliveries: the current secret (zero
	// ExpiresAt) first, then rotated-out secrets still in their grace period.
	SigningSecrets []SigningSecret
	RetryPolicy    RetryPolicy
	// Timeout is the per-attempt timeout, 1–120 s. Defaults to 30 s.
	Timeout time.Duration
	// Headers are custom headers added to every delivery.
	Headers map[string]string
	// Subscription is the endpoint's subscription filter: which of its
	// tenant's events it receives ([Endpoint.Receives]). The zero value
	// takes every event (docs/delivery.md#subscriptions).
	Subscription Subscription
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// clone returns a copy of e that shares no slice or map with it.
func (e *Endpoint) clone() *Endpoint {
	c := *e
	c.SigningSecrets = slices.Clone(e.SigningSecrets)
	c.Headers = maps.Clone(e.Headers)
	c.Subscription = e.Subscription.clone()
	return &c
}

// ActiveSigningSecrets returns the secrets that sign a delivery at now: the
// current one and those whose grace period has not ended.
func (e *Endpoint) ActiveSigningSecrets(now time.Time) []string {
	out := make([]string, 0, len(e.SigningSecrets))
	for _, s := range e.SigningSecrets {
		if s.ExpiresAt.IsZero() || now.Before(s.ExpiresAt) {
			out = append(out, s.Secret)
		}
	}
	return out
}
