package service

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// Signing secret rotation defaults.
const (
	// DefaultGracePeriod is how long a rotated-out signing secret keeps
	// signing when a rotation names no grace period.
	DefaultGracePeriod = 24 * time.Hour
	// MaxGracePeriod caps a rotation's grace period.
	MaxGracePeriod = 30 * 24 * time.Hour
)

// RedactedValue replaces, in reads of the management API, the value of a
// custom header whose name suggests a credential (see [SensitiveHeader]).
// An update that sends it back unchanged keeps the stored value.
const RedactedValue = "[redacted]"

var sensitiveHeader = regexp.MustCompile(`(?i)(auth|token|secret|key|passw|signature|cookie|credential|session)`)

// SensitiveHeader reports whether a custom header's name suggests a
// credential (Authorization, Cookie, or a name containing token, secret,
// key, password, signature, credential or session), whose value reads hide.
func SensitiveHeader(name string) bool { return sensitiveHeader.MatchString(name) }

// EndpointCreate is the input of [Service.CreateEndpoint].
type EndpointCreate struct {
	// Name is optional, at most MaxNameLength bytes once trimmed.
	Name string
	// URL is the destination: http or https, no credentials, and allowed by
	// the SSRF policy in force (E1007).
	URL string
	// SigningSecret signs deliveries, "whsec_<base64>". Defaults ("") to a
	// new random one, which CreateEndpoint returns.
	SigningSecret string
	// RetryPolicy changes fields of kapsel.DefaultRetryPolicy(). Defaults
	// (nil) to it unchanged.
	RetryPolicy *RetryPolicyUpdate
	// Timeout is the per-attempt timeout, kapsel.MinAttemptTimeout to
	// kapsel.MaxAttemptTimeout. Defaults (0) to kapsel.DefaultAttemptTimeout.
	Timeout time.Duration
	// Headers are custom outbound headers (E1008 for the ones Kapsel sets or
	// that could not be sent). Defaults to none.
	Headers map[string]string
	// EventTypes, SourceIDs and Channels are the endpoint's subscription
	// filter (kapsel.Subscription): which of the tenant's events it
	// receives — exact types, "prefix.*" or "*"; the sources the events
	// came in by; the channels they were sent on. Each defaults (empty) to
	// any; an event must match all three. Checked by
	// kapsel.Subscription.Validate (E1009), and each source id must be one
	// of the tenant's sources (E1011). Events stored before the endpoint
	// existed are not delivered to it, unless by [Service.BackfillEndpoint].
	EventTypes []string
	SourceIDs  []kapsel.SourceID
	Channels   []string
}

// EndpointUpdate is the input of [Service.UpdateEndpoint]: a nil field keeps
// the stored value, a set one replaces it whole. Signing secrets change only
// by [Service.RotateSigningSecret].
type EndpointUpdate struct {
	Name *string
	URL  *string
	// RetryPolicy changes the fields it sets and keeps the others.
	RetryPolicy *RetryPolicyUpdate
	Timeout     *time.Duration
	// Headers replaces the custom headers when not nil (an empty map
	// removes them all). A value equal to RedactedValue keeps the stored
	// value of that header, so a read can be sent back as it is.
	Headers map[string]string
	// EventTypes, SourceIDs and Channels each replace that list of the
	// subscription filter when not nil (an empty slice means any again),
	// and keep it when nil. The new filter applies to events stored from
	// then on; past events keep the deliveries they have.
	EventTypes []string
	SourceIDs  []kapsel.SourceID
	Channels   []string
}

// RetryPolicyUpdate changes the fields of a retry policy that it sets.
type RetryPolicyUpdate struct {
	MaxAttempts     *int
	InitialInterval *time.Duration
	MaxInterval     *time.Duration
	MaxAge          *time.Duration
	Retry4xx        *bool
}

// apply returns p with u's fields, validated (E1009).
func (u *RetryPolicyUpdate) apply(p kapsel.RetryPolicy) (kapsel.RetryPolicy, error) {
	if u == nil {
		return p, nil
	}
	if u.MaxAttempts != nil {
		p.MaxAttempts = *u.MaxAttempts
	}
	if u.InitialInterval != nil {
		p.InitialInterval = *u.InitialInterval
	}
	if u.MaxInterval != nil {
		p.MaxInterval = *u.MaxInterval
	}
	if u.MaxAge != nil {
		p.MaxAge = *u.MaxAge
	}
	if u.Retry4xx != nil {
		p.Retry4xx = *u.Retry4xx
	}
	if err := p.Validate(); err != nil {
		return p, invalid("%s", detail(err))
	}
	return p, nil
}

// CreateEndpoint creates an endpoint and returns it with its signing
// secret, shown this once. From then on, every event of the tenant that
// its subscription filter matches gets a delivery to it. Errors: E1007 for
// a URL that is not http(s), has credentials or is refused by the SSRF
// policy; E1008 for custom headers Kapsel could not send or sets itself;
// E1009 for the other fields, the subscription filter included
// (kapsel.Subscription.Validate, naming the list and index of the first bad
// entry); E1011 for a source id that is not one of the tenant's sources.
func (s *Service) CreateEndpoint(ctx context.Context, tenant kapsel.TenantID, in EndpointCreate) (ep *kapsel.Endpoint, signingSecret string, err error) {
	if err := s.checkSourceIDs(ctx, tenant, in.SourceIDs); err != nil {
		return nil, "", err
	}
	e := &kapsel.Endpoint{
		TenantID: tenant, State: kapsel.EndpointActive, RetryPolicy: kapsel.DefaultRetryPolicy(),
		Timeout: kapsel.DefaultAttemptTimeout, Headers: map[string]string{},
	}
	u := EndpointUpdate{
		Name: &in.Name, URL: &in.URL, RetryPolicy: in.RetryPolicy, Headers: in.Headers,
		EventTypes: in.EventTypes, SourceIDs: in.SourceIDs, Channels: in.Channels,
	}
	if in.Timeout != 0 {
		u.Timeout = &in.Timeout
	}
	if err := s.applyUpdate(&u, e); err != nil {
		return nil, "", err
	}
	signingSecret = in.SigningSecret
	if signingSecret == "" {
		signingSecret = kapsel.NewSigningSecret()
	} else if err := kapsel.CheckSigningSecret(signingSecret); err != nil {
		return nil, "", invalid("signing_secret: %s", detail(err))
	}
	e.SigningSecrets = []kapsel.SigningSecret{{Secret: signingSecret}}
	ep, err = s.store.EndpointInsert(ctx, &kapsel.EndpointInsertParams{Endpoint: e, Now: s.now()})
	if err != nil {
		return nil, "", err
	}
	return ep, signingSecret, nil
}

// UpdateEndpoint changes the fields of an endpoint that u sets, with the
// rules and errors of CreateEndpoint, and E1011 when the endpoint is not
// the tenant's. The change is merged into the endpoint as stored at the
// moment of the write, in one store operation (kapsel.EndpointUpdateParams'
// Update), so no concurrent update or rotation is undone by it; it never
// changes signing secrets.
func (s *Service) UpdateEndpoint(ctx context.Context, tenant kapsel.TenantID, id kapsel.EndpointID, u EndpointUpdate) (*kapsel.Endpoint, error) {
	if err := s.checkSourceIDs(ctx, tenant, u.SourceIDs); err != nil {
		return nil, err
	}
	updated, err := s.store.EndpointUpdate(ctx, &kapsel.EndpointUpdateParams{
		ID: id, TenantID: tenant, Now: s.now(),
		Update: func(e *kapsel.Endpoint) error { return s.applyUpdate(&u, e) },
	})
	if err != nil {
		return nil, notFoundErr(err, "endpoint", string(id))
	}
	s.dispatcher.EndpointChanged(id)
	return updated, nil
}

// applyUpdate merges u into e (a new endpoint or the stored one) and
// validates the result with the one set of rules: the kapsel policies, and
// the SSRF guard delivery dials with. It does no I/O, since the store calls
// it with the endpoint locked.
func (s *Service) applyUpdate(u *EndpointUpdate, e *kapsel.Endpoint) error {
	if u.Name != nil {
		name, err := checkName(*u.Name, false)
		if err != nil {
			return err
		}
		e.Name = name
	}
	if u.URL != nil {
		e.URL = strings.TrimSpace(*u.URL)
	}
	if err := s.dispatcher.Guard().ValidateURL(e.URL); err != nil {
		return withCode(kapsel.CodeInvalidURL, err)
	}
	p, err := u.RetryPolicy.apply(e.RetryPolicy)
	if err != nil {
		return err
	}
	e.RetryPolicy = p
	if u.Timeout != nil {
		if err := checkTimeout(*u.Timeout); err != nil {
			return err
		}
		e.Timeout = *u.Timeout
	}
	if u.Headers != nil {
		h := make(map[string]string, len(u.Headers))
		for k, v := range u.Headers {
			if old, ok := lookupHeader(e.Headers, k); ok && v == RedactedValue {
				v = old
			}
			h[k] = v
		}
		if err := kapsel.CheckHeaders(h); err != nil {
			return withCode(kapsel.CodeInvalidHeader, err)
		}
		e.Headers = h
	}
	sub := &e.Subscription
	if u.EventTypes != nil {
		sub.EventTypes = slices.Clone(u.EventTypes)
	}
	if u.SourceIDs != nil {
		sub.SourceIDs = slices.Clone(u.SourceIDs)
	}
	if u.Channels != nil {
		sub.Channels = slices.Clone(u.Channels)
	}
	return sub.Validate() // a *kapsel.Error with E1009 naming the list
}

// checkSourceIDs answers E1011 unless each id a subscription names is one
// of the tenant's sources (a format kapsel.ParseSourceID refuses is left
// to kapsel.Subscription.Validate, E1009). A source deleted later stays in
// the filters that name it, matching nothing new.
func (s *Service) checkSourceIDs(ctx context.Context, tenant kapsel.TenantID, ids []kapsel.SourceID) error {
	if len(ids) > kapsel.MaxSubscriptionItems {
		return nil // Subscription.Validate refuses the list; no reads for it
	}
	for i, id := range ids {
		if _, err := kapsel.ParseSourceID(string(id)); err != nil {
			continue
		}
		if _, err := s.store.SourceGet(ctx, &kapsel.SourceGetParams{ID: id, TenantID: tenant}); err != nil {
			return notFoundErr(err, fmt.Sprintf("source_ids[%d]: source", i), string(id))
		}
	}
	return nil
}

// checkTimeout refuses a per-attempt timeout outside kapsel.MinAttemptTimeout
// to kapsel.MaxAttemptTimeout (E1009).
func checkTimeout(d time.Duration) error {
	if d < kapsel.MinAttemptTimeout || d > kapsel.MaxAttemptTimeout {
		return invalid("timeout_ms must be from %d to %d", kapsel.MinAttemptTimeout.Milliseconds(), kapsel.MaxAttemptTimeout.Milliseconds())
	}
	return nil
}

// Rotation is the input of [Service.RotateSigningSecret].
type Rotation struct {
	// Grace is how long the previous secret keeps signing beside the new
	// one, 0 to MaxGracePeriod; 0 drops it at once. Defaults (nil) to
	// DefaultGracePeriod.
	Grace *time.Duration
}

// RotateSigningSecret makes a new random secret the endpoint's signing
// secret and returns it, shown this once, with the time the previous one
// stops signing (zero when it stopped at once). During the grace period
// deliveries carry a signature for each secret still valid, at most
// kapsel.MaxSigningSecrets, the oldest dropped first. The rotation is one
// store operation: once it returns, no concurrent update or rotation undoes
// it. Errors: E1009 for a grace period out of range; E1011 as GetEndpoint.
func (s *Service) RotateSigningSecret(ctx context.Context, tenant kapsel.TenantID, id kapsel.EndpointID, r Rotation) (secret string, previousExpiresAt time.Time, err error) {
	grace := DefaultGracePeriod
	if r.Grace != nil {
		grace = *r.Grace
	}
	if grace < 0 || grace > MaxGracePeriod {
		return "", time.Time{}, invalid("grace_period_s must be from 0 to %d", int64(MaxGracePeriod/time.Second))
	}
	now := s.now()
	secret = kapsel.NewSigningSecret()
	_, err = s.store.EndpointRotateSecret(ctx, &kapsel.EndpointRotateSecretParams{
		ID: id, TenantID: tenant, Secret: secret, Grace: grace, Now: now,
	})
	if err != nil {
		return "", time.Time{}, notFoundErr(err, "endpoint", string(id))
	}
	s.dispatcher.EndpointChanged(id)
	if grace > 0 {
		previousExpiresAt = now.Add(grace).UTC().Truncate(time.Microsecond)
	}
	return secret, previousExpiresAt, nil
}

// withCode gives a policy's error the code of the field it checked; the
// detail is the *kapsel.Error's own detail when it is one, else its message.
func withCode(code kapsel.Code, err error) error {
	return &kapsel.Error{Code: code, Detail: detail(err), Err: err}
}

// detail is what a caller may be shown of a validation error: the
// *kapsel.Error's detail, or the message without the ErrInvalid prefix.
func detail(err error) string {
	var ke *kapsel.Error
	if errors.As(err, &ke) {
		return ke.Detail
	}
	return strings.TrimPrefix(err.Error(), kapsel.ErrInvalid.Error()+": ")
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

// clip shortens a caller's value for an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
