package api

import (
	"errors"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// endpointJSON is an endpoint on the wire. SigningSecret is set only in the
// answer to its creation; verifier secrets are never sent.
type endpointJSON struct {
	ID             kapsel.EndpointID `json:"id"`
	TenantID       kapsel.TenantID   `json:"tenant_id"`
	Name           string            `json:"name"`
	URL            string            `json:"url"`
	State          string            `json:"state"`
	DisabledReason *string           `json:"disabled_reason"`
	IngestURL      string            `json:"ingest_url"`
	IngestVerifier verifierJSON      `json:"ingest_verifier"`
	SigningSecret  string            `json:"signing_secret,omitempty"`
	RetryPolicy    retryPolicyJSON   `json:"retry_policy"`
	TimeoutMS      int64             `json:"timeout_ms"`
	Headers        map[string]string `json:"headers"`
	CreatedAt      time.Time         `json:"created_at"`
	UpdatedAt      time.Time         `json:"updated_at"`
}

// verifierJSON is an ingest verifier as answered: never its secrets.
type verifierJSON struct {
	Scheme string `json:"scheme"`
	Header string `json:"header,omitempty"`
	// SecretCount says how many secrets are configured, so that a rotation
	// can be checked without revealing them.
	SecretCount int `json:"secret_count"`
}

// retryPolicyJSON is a retry policy on the wire.
type retryPolicyJSON struct {
	MaxAttempts       int   `json:"max_attempts"`
	InitialIntervalMS int64 `json:"initial_interval_ms"`
	MaxIntervalMS     int64 `json:"max_interval_ms"`
	MaxAgeS           int64 `json:"max_age_s"`
	Retry4xx          bool  `json:"retry_4xx"`
}

// RedactedValue replaces, in reads, the value of a custom header whose name
// suggests a credential (Authorization, Cookie, or a name containing token,
// secret, key, password, signature or auth). Sending it back unchanged in a
// PATCH keeps the stored value.
const RedactedValue = "[redacted]"

var sensitiveHeader = regexp.MustCompile(`(?i)(auth|token|secret|key|passw|signature|cookie|credential|session)`)

// IngestURL returns the path providers send an endpoint's webhooks to.
func IngestURL(id kapsel.EndpointID) string { return "/ingest/" + string(id) }

func toEndpointJSON(e *kapsel.Endpoint) endpointJSON {
	p := e.RetryPolicy
	out := endpointJSON{
		ID: e.ID, TenantID: e.TenantID, Name: e.Name, URL: e.URL, State: string(e.State),
		IngestURL: IngestURL(e.ID),
		IngestVerifier: verifierJSON{
			Scheme: e.IngestVerifier.Scheme, Header: e.IngestVerifier.Header,
			SecretCount: len(e.IngestVerifier.Secrets),
		},
		RetryPolicy: retryPolicyJSON{
			MaxAttempts: p.MaxAttempts, InitialIntervalMS: p.InitialInterval.Milliseconds(),
			MaxIntervalMS: p.MaxInterval.Milliseconds(), MaxAgeS: int64(p.MaxAge / time.Second),
			Retry4xx: p.Retry4xx,
		},
		TimeoutMS: e.Timeout.Milliseconds(),
		Headers:   map[string]string{},
		CreatedAt: e.CreatedAt.UTC(), UpdatedAt: e.UpdatedAt.UTC(),
	}
	if out.IngestVerifier.Scheme == "" {
		out.IngestVerifier.Scheme = kapsel.SchemeNone
	}
	if e.DisabledReason != kapsel.DisabledNone {
		reason := string(e.DisabledReason)
		out.DisabledReason = &reason
	}
	for k, v := range e.Headers {
		if sensitiveHeader.MatchString(k) {
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
	Name           *string             `json:"name"`
	URL            *string             `json:"url"`
	IngestVerifier *verifierRequest    `json:"ingest_verifier"`
	SigningSecret  *string             `json:"signing_secret"`
	RetryPolicy    *retryPolicyRequest `json:"retry_policy"`
	TimeoutMS      *int64              `json:"timeout_ms"`
	Headers        *map[string]string  `json:"headers"`
}

type verifierRequest struct {
	Scheme  string   `json:"scheme"`
	Secrets []string `json:"secrets"`
	Header  string   `json:"header"`
}

type retryPolicyRequest struct {
	MaxAttempts       *int   `json:"max_attempts"`
	InitialIntervalMS *int64 `json:"initial_interval_ms"`
	MaxIntervalMS     *int64 `json:"max_interval_ms"`
	MaxAgeS           *int64 `json:"max_age_s"`
	Retry4xx          *bool  `json:"retry_4xx"`
}

// apply merges req into e (a new endpoint or a copy of the stored one) and
// validates the result. Errors carry E1007, E1008 or E1009.
func (a *API) apply(req *endpointRequest, e *kapsel.Endpoint) error {
	if req.Name != nil {
		e.Name = strings.TrimSpace(*req.Name)
	}
	if len(e.Name) > maxNameLength {
		return badRequest("name is longer than %d bytes", maxNameLength)
	}
	if req.URL != nil {
		e.URL = strings.TrimSpace(*req.URL)
	}
	if err := a.cfg.Guard.ValidateURL(e.URL); err != nil {
		return validationError(kapsel.CodeInvalidURL, err)
	}
	if req.IngestVerifier != nil {
		v, err := a.verifier(req.IngestVerifier)
		if err != nil {
			return err
		}
		e.IngestVerifier = v
	}
	if req.RetryPolicy != nil {
		p, err := req.RetryPolicy.merge(e.RetryPolicy)
		if err != nil {
			return err
		}
		if err := p.Validate(); err != nil {
			return badRequest("%s", strings.TrimPrefix(err.Error(), kapsel.ErrInvalid.Error()+": "))
		}
		e.RetryPolicy = p
	}
	if req.TimeoutMS != nil {
		lo, hi := kapsel.MinAttemptTimeout.Milliseconds(), kapsel.MaxAttemptTimeout.Milliseconds()
		if *req.TimeoutMS < lo || *req.TimeoutMS > hi {
			return badRequest("timeout_ms must be from %d to %d", lo, hi)
		}
		e.Timeout = time.Duration(*req.TimeoutMS) * time.Millisecond
	}
	if req.Headers != nil {
		h := map[string]string{}
		for k, v := range *req.Headers {
			if old, ok := lookupHeader(e.Headers, k); ok && v == RedactedValue {
				v = old
			}
			h[k] = v
		}
		if err := kapsel.CheckHeaders(h); err != nil {
			return validationError(kapsel.CodeInvalidHeader, err)
		}
		e.Headers = h
	}
	return nil
}

// validationError turns a validator's error into one with code; the
// detail is the *kapsel.Error's own detail when it is one (as the policies
// return), else its message.
func validationError(code kapsel.Code, err error) error {
	var ke *kapsel.Error
	if errors.As(err, &ke) {
		return kapsel.NewError(code, "%s", ke.Detail)
	}
	return kapsel.NewError(code, "%s", err.Error())
}

// lookupHeader finds name in h, ignoring case.
func lookupHeader(h map[string]string, name string) (string, bool) {
	for k, v := range h {
		if http.CanonicalHeaderKey(k) == http.CanonicalHeaderKey(name) {
			return v, true
		}
	}
	return "", false
}

// verifier validates an ingest verifier request.
func (a *API) verifier(req *verifierRequest) (kapsel.VerifierConfig, error) {
	v := kapsel.VerifierConfig{Scheme: req.Scheme, Secrets: req.Secrets, Header: strings.TrimSpace(req.Header)}
	if v.Scheme == "" {
		v.Scheme = kapsel.SchemeNone
	}
	if !a.schemes[v.Scheme] {
		return v, badRequest("ingest_verifier.scheme %q is not one of %s", clip(v.Scheme), strings.Join(a.schemeNames(), ", "))
	}
	if err := v.Validate(); err != nil {
		return v, badRequest("%s", detail(err))
	}
	return v, nil
}

func (a *API) schemeNames() []string {
	names := kapsel.BuiltinSchemes()
	for _, s := range a.cfg.Schemes {
		if !kapsel.IsBuiltinScheme(s) {
			names = append(names, s)
		}
	}
	return names
}

// Upper bounds of retry policy fields, checked before they become
// durations so that no value overflows.
const (
	maxIntervalMS = int64(7 * 24 * time.Hour / time.Millisecond)
	maxAgeS       = int64(365 * 24 * time.Hour / time.Second)
)

// merge applies the present fields to p.
func (req *retryPolicyRequest) merge(p kapsel.RetryPolicy) (kapsel.RetryPolicy, error) {
	if req.MaxAttempts != nil {
		p.MaxAttempts = *req.MaxAttempts
	}
	if v := req.InitialIntervalMS; v != nil {
		if *v < 1 || *v > maxIntervalMS {
			return p, badRequest("retry_policy.initial_interval_ms must be from 1 to %d", maxIntervalMS)
		}
		p.InitialInterval = time.Duration(*v) * time.Millisecond
	}
	if v := req.MaxIntervalMS; v != nil {
		if *v < 1 || *v > maxIntervalMS {
			return p, badRequest("retry_policy.max_interval_ms must be from 1 to %d", maxIntervalMS)
		}
		p.MaxInterval = time.Duration(*v) * time.Millisecond
	}
	if v := req.MaxAgeS; v != nil {
		if *v < 1 || *v > maxAgeS {
			return p, badRequest("retry_policy.max_age_s must be from 1 to %d", maxAgeS)
		}
		p.MaxAge = time.Duration(*v) * time.Second
	}
	if req.Retry4xx != nil {
		p.Retry4xx = *req.Retry4xx
	}
	return p, nil
}
