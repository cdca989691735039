package service

import (
	"encoding/json"
	"math"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// endpointJSON is an endpoint on the wire. SigningSecret is set only in the
// answer to its creation; custom header values that look like credentials
// are redacted (RedactedValue).
type endpointJSON struct {
	ID             kapsel.EndpointID `json:"id"`
	TenantID       kapsel.TenantID   `json:"tenant_id"`
	Name           string            `json:"name"`
	URL            string            `json:"url"`
	State          string            `json:"state"`
	DisabledReason *string           `json:"disabled_reason"`
	SigningSecret  string            `json:"signing_secret,omitempty"`
	RetryPolicy    retryPolicyJSON   `json:"retry_policy"`
	TimeoutMS      int64             `json:"timeout_ms"`
	Headers        map[string]string `json:"headers"`
	EventTypes     []string          `json:"event_types"`
	SourceIDs      []kapsel.SourceID `json:"source_ids"`
	Channels       []string          `json:"channels"`
	CreatedAt      time.Time         `json:"created_at"`
	UpdatedAt      time.Time         `json:"updated_at"`
}

// retryPolicyJSON is a retry policy on the wire.
type retryPolicyJSON struct {
	MaxAttempts       int   `json:"max_attempts"`
	InitialIntervalMS int64 `json:"initial_interval_ms"`
	MaxIntervalMS     int64 `json:"max_interval_ms"`
	MaxAgeS           int64 `json:"max_age_s"`
	Retry4xx          bool  `json:"retry_4xx"`
}

func toEndpointJSON(e *kapsel.Endpoint) endpointJSON {
	p := e.RetryPolicy
	out := endpointJSON{
		ID: e.ID, TenantID: e.TenantID, Name: e.Name, URL: e.URL, State: string(e.State),
		RetryPolicy: retryPolicyJSON{
			MaxAttempts: p.MaxAttempts, InitialIntervalMS: p.InitialInterval.Milliseconds(),
			MaxIntervalMS: p.MaxInterval.Milliseconds(), MaxAgeS: int64(p.MaxAge / time.Second),
			Retry4xx: p.Retry4xx,
		},
		TimeoutMS: e.Timeout.Milliseconds(),
		Headers:   map[string]string{},
		// Lists are [] when empty (= any), never null.
		EventTypes: append([]string{}, e.Subscription.EventTypes...),
		SourceIDs:  append([]kapsel.SourceID{}, e.Subscription.SourceIDs...),
		Channels:   append([]string{}, e.Subscription.Channels...),
		CreatedAt:  e.CreatedAt.UTC(), UpdatedAt: e.UpdatedAt.UTC(),
	}
	if e.DisabledReason != kapsel.DisabledNone {
		reason := string(e.DisabledReason)
		out.DisabledReason = &reason
	}
	for k, v := range e.Headers {
		if SensitiveHeader(k) {
			v = RedactedValue
		}
		out.Headers[k] = v
	}
	return out
}

// endpointRequest is the body of POST /v1/endpoints and PATCH
// /v1/endpoints/{id}. In a PATCH, absent fields are kept and present ones
// replace the stored value whole.
type endpointRequest struct {
	Name          *string             `json:"name"`
	URL           *string             `json:"url"`
	SigningSecret *string             `json:"signing_secret"`
	RetryPolicy   *retryPolicyRequest `json:"retry_policy"`
	TimeoutMS     *int64              `json:"timeout_ms"`
	Headers       *map[string]string  `json:"headers"`
	// The subscription filter: absent or null keeps a list, [] empties it
	// (any).
	EventTypes *[]string          `json:"event_types"`
	SourceIDs  *[]kapsel.SourceID `json:"source_ids"`
	Channels   *[]string          `json:"channels"`
	// IngestVerifier was 0.1's; it is refused with a pointer to sources.
	IngestVerifier json.RawMessage `json:"ingest_verifier"`
}

type retryPolicyRequest struct {
	MaxAttempts       *int   `json:"max_attempts"`
	InitialIntervalMS *int64 `json:"initial_interval_ms"`
	MaxIntervalMS     *int64 `json:"max_interval_ms"`
	MaxAgeS           *int64 `json:"max_age_s"`
	Retry4xx          *bool  `json:"retry_4xx"`
}

// update converts the request into the operation's input.
func (req *endpointRequest) update() (EndpointUpdate, error) {
	u := EndpointUpdate{Name: req.Name, URL: req.URL}
	if req.IngestVerifier != nil {
		return u, invalid("ingest_verifier is no longer an endpoint's: since 0.2 a source (POST /v1/sources) receives webhooks and has the verifier")
	}
	if p := req.RetryPolicy; p != nil {
		u.RetryPolicy = &RetryPolicyUpdate{MaxAttempts: p.MaxAttempts, Retry4xx: p.Retry4xx}
		var err error
		if u.RetryPolicy.InitialInterval, err = duration(p.InitialIntervalMS, time.Millisecond, "retry_policy.initial_interval_ms"); err != nil {
			return u, err
		}
		if u.RetryPolicy.MaxInterval, err = duration(p.MaxIntervalMS, time.Millisecond, "retry_policy.max_interval_ms"); err != nil {
			return u, err
		}
		if u.RetryPolicy.MaxAge, err = duration(p.MaxAgeS, time.Second, "retry_policy.max_age_s"); err != nil {
			return u, err
		}
	}
	var err error
	// In Go a zero EndpointCreate.Timeout means "the default"; on the wire
	// an explicit 0 is a value, and out of range like any other.
	if req.TimeoutMS != nil && *req.TimeoutMS == 0 {
		return u, checkTimeout(0)
	}
	if u.Timeout, err = duration(req.TimeoutMS, time.Millisecond, "timeout_ms"); err != nil {
		return u, err
	}
	if req.Headers != nil {
		u.Headers = *req.Headers
		if u.Headers == nil {
			u.Headers = map[string]string{}
		}
	}
	u.EventTypes, u.SourceIDs, u.Channels = present(req.EventTypes), present(req.SourceIDs), present(req.Channels)
	return u, nil
}

// present returns the list a request sent, non-nil (so it replaces the
// stored one) even when empty; nil when the field was absent or null.
func present[T any](l *[]T) []T {
	if l == nil {
		return nil
	}
	if *l == nil {
		return []T{}
	}
	return *l
}

// duration converts a JSON count of units. It refuses only what no
// time.Duration can hold (E1009 naming the field); the operation applies the
// ranges, one rule for Go and HTTP callers alike.
func duration(v *int64, unit time.Duration, field string) (*time.Duration, error) {
	if v == nil {
		return nil, nil
	}
	if *v < 0 || *v > math.MaxInt64/int64(unit) {
		return nil, invalid("%s is out of range", field)
	}
	d := time.Duration(*v) * unit
	return &d, nil
}
