package pgstore

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// An endpoint's configuration is kept in jsonb columns, with the explicit
// field names below, so that it can grow without a migration per field and
// stays readable with plain SQL. Durations are integer nanoseconds, so they
// survive exactly; times are RFC 3339 at microsecond precision, like every
// other time in the store.

type signingSecretJSON struct {
	Secret    string     `json:"secret"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

type retryPolicyJSON struct {
	MaxAttempts       int     `json:"max_attempts"`
	InitialIntervalNS int64   `json:"initial_interval_ns"`
	Multiplier        float64 `json:"multiplier"`
	Jitter            float64 `json:"jitter"`
	MaxIntervalNS     int64   `json:"max_interval_ns"`
	MaxAgeNS          int64   `json:"max_age_ns"`
	Retry4xx          bool    `json:"retry_4xx"`
}

// endpointConfig is an endpoint's jsonb columns, encoded.
type endpointConfig struct {
	Secrets, Policy, Headers []byte
}

// newEndpointConfig encodes e's configuration. Marshalling these plain
// structs cannot fail.
func newEndpointConfig(e *kapsel.Endpoint) endpointConfig {
	secrets := make([]signingSecretJSON, len(e.SigningSecrets))
	for i, s := range e.SigningSecrets {
		secrets[i] = signingSecretJSON{Secret: s.Secret, ExpiresAt: timePtr(s.ExpiresAt)}
	}
	p := e.RetryPolicy
	return endpointConfig{
		Secrets: mustJSON(secrets),
		Policy: mustJSON(retryPolicyJSON{
			MaxAttempts: p.MaxAttempts, InitialIntervalNS: int64(p.InitialInterval), Multiplier: p.Multiplier,
			Jitter: p.Jitter, MaxIntervalNS: int64(p.MaxInterval), MaxAgeNS: int64(p.MaxAge), Retry4xx: p.Retry4xx,
		}),
		Headers: mustJSON(e.Headers), // a nil map is JSON null and reads back nil
	}
}

// apply decodes the configuration into e.
func (c endpointConfig) apply(e *kapsel.Endpoint) error {
	var (
		ss []signingSecretJSON
		p  retryPolicyJSON
	)
	for _, f := range []struct {
		name string
		data []byte
		dst  any
	}{
		{"signing_secrets", c.Secrets, &ss},
		{"retry_policy", c.Policy, &p},
		{"headers", c.Headers, &e.Headers},
	} {
		if err := json.Unmarshal(f.data, f.dst); err != nil {
			return fmt.Errorf("decoding endpoint %s %s: %w", e.ID, f.name, err)
		}
	}
	e.SigningSecrets = nil
	for _, s := range ss {
		e.SigningSecrets = append(e.SigningSecrets, kapsel.SigningSecret{Secret: s.Secret, ExpiresAt: timeVal(s.ExpiresAt)})
	}
	e.RetryPolicy = kapsel.RetryPolicy{
		MaxAttempts: p.MaxAttempts, InitialInterval: time.Duration(p.InitialIntervalNS), Multiplier: p.Multiplier,
		Jitter: p.Jitter, MaxInterval: time.Duration(p.MaxIntervalNS), MaxAge: time.Duration(p.MaxAgeNS), Retry4xx: p.Retry4xx,
	}
	return nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("pgstore: encoding JSON: " + err.Error())
	}
	return b
}
