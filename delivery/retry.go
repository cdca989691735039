package delivery

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/kapsel-dev/kapsel"
)

// RetryInterval returns the wait after the n-th failed attempt (n ≥ 1) under
// policy p: InitialInterval·Multiplier^(n-1), capped at MaxInterval, then
// randomised by ±Jitter with r (a uniform random number in [0, 1); 0.5 means
// no jitter) and capped at MaxInterval again.
//
// The exponential growth and its cap come from backoff.ExponentialBackOff
// (with its own randomisation off). Kapsel applies the jitter itself because
// backoff draws from the global math/rand source, which tests cannot inject,
// and because it caps the randomised value, which backoff does not: a wait is
// never longer than MaxInterval (docs/delivery.md). The interval depends only on n, not
// on a stored backoff state, so any dispatcher can compute any retry.
func RetryInterval(p kapsel.RetryPolicy, n int, r float64) time.Duration {
	p = p.WithDefaults()
	b := &backoff.ExponentialBackOff{
		InitialInterval:     p.InitialInterval,
		RandomizationFactor: 0,
		Multiplier:          p.Multiplier,
		MaxInterval:         p.MaxInterval,
		MaxElapsedTime:      0, // never stop: MaxAttempts and MaxAge decide
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	b.Reset()
	d := p.InitialInterval
	for i := 0; i < n; i++ {
		d = b.NextBackOff()
		if d >= p.MaxInterval {
			d = p.MaxInterval
			break
		}
	}
	r = min(max(r, 0), 1)
	d = time.Duration(float64(d) * (1 + p.Jitter*(2*r-1)))
	return min(max(d, 0), p.MaxInterval)
}

// ParseRetryAfter reads a Retry-After header value — delay seconds or an HTTP
// date — as a wait from now. A date in the past is a zero wait. ok is false
// when the value is neither. Very large values saturate instead of
// overflowing; the caller caps them.
func ParseRetryAfter(v string, now time.Time) (wait time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if isDigits(v) {
		secs, err := strconv.ParseInt(v, 10, 64)
		if err != nil || secs > math.MaxInt64/int64(time.Second) {
			return time.Duration(math.MaxInt64), true
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// effectivePolicy is the endpoint's policy with defaults filled in. A policy
// left entirely unset (the zero value) is [kapsel.DefaultRetryPolicy], which
// retries 4xx; a policy with any field set keeps its Retry4xx as given.
func effectivePolicy(p kapsel.RetryPolicy) kapsel.RetryPolicy {
	if p == (kapsel.RetryPolicy{}) {
		return kapsel.DefaultRetryPolicy()
	}
	return p.WithDefaults()
}

// decision is what an attempt leads to.
type decision struct {
	status        kapsel.DeliveryStatus
	nextAttemptAt time.Time
	disable       kapsel.DisabledReason
	outcome       kapsel.AttemptOutcome
}

// decide applies the retry policy to an attempt's result: 2xx delivered;
// 410 disables the endpoint and the delivery waits; a final 4xx (Retry4xx
// off), the last attempt, or a retry later than createdAt+MaxAge (createdAt
// is the delivery's) fails the delivery; anything else is retried after
// Retry-After (429, 503) or the backoff.
func decide(p kapsel.RetryPolicy, createdAt time.Time, number int, res *attemptResult, now time.Time, r float64) decision {
	p = effectivePolicy(p)
	code := res.statusCode
	switch {
	case res.errorCode == "" && code >= 200 && code < 300:
		return decision{status: kapsel.DeliveryDelivered, outcome: kapsel.OutcomeDelivered}
	case res.errorCode == kapsel.CodeShuttingDown:
		// Kapsel cut the attempt short while stopping: not the destination's
		// fault, so it neither spends the policy nor waits.
		return decision{status: kapsel.DeliveryPending, nextAttemptAt: now, outcome: kapsel.OutcomeRetry}
	case code == http.StatusGone:
		return decision{status: kapsel.DeliveryPending, nextAttemptAt: now, disable: kapsel.DisabledGone, outcome: kapsel.OutcomeDisabled}
	case !p.Retry4xx && code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests:
		return decision{status: kapsel.DeliveryFailed, outcome: kapsel.OutcomeFailed}
	case number >= p.MaxAttempts:
		return decision{status: kapsel.DeliveryFailed, outcome: kapsel.OutcomeFailed}
	}
	wait := RetryInterval(p, number, r)
	if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
		if ra, ok := ParseRetryAfter(res.retryAfter, now); ok {
			wait = min(ra, p.MaxInterval)
		}
	}
	next := now.Add(wait)
	if next.After(createdAt.Add(p.MaxAge)) {
		return decision{status: kapsel.DeliveryFailed, outcome: kapsel.OutcomeFailed}
	}
	return decision{status: kapsel.DeliveryPending, nextAttemptAt: next, outcome: kapsel.OutcomeRetry}
}
