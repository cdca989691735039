// Package api is Kapsel's management API (SPEC §6): an [http.Handler] that
// serves the /v1 routes for tenants, endpoints, events and attempts, which
// an application mounts on its own mux. The ingest endpoint is a separate
// handler (package ingest); kapseld serves both on one listener.
//
//	mux.Handle("/v1/", api.New(store, &api.Config{AdminToken: token}))
//
// # Authentication
//
// Every request carries "Authorization: Bearer <token>". The admin token of
// [Config.AdminToken] manages tenants (POST /v1/tenants, GET
// /v1/tenants/{id}) and nothing else. A tenant API key — "kap_" followed by
// 43 base64url characters, shown once when the tenant is created and stored
// only as its SHA-256 — manages that tenant's endpoints and events. A missing
// or wrong token answers 401 E1010. An id that is unknown, malformed,
// deleted or another tenant's answers 404 E1011 and changes nothing.
//
// # Secrets
//
// Endpoint signing secrets ("whsec_<base64>") are returned only by the
// create and rotate-signing-secret calls; ingest verifier secrets are never
// returned; custom header values whose names look like credentials are
// redacted in reads (see [RedactedValue]).
//
// # Errors
//
// Errors are RFC 9457 application/problem+json bodies with a "code" member
// (SPEC §8). Domain errors map to codes and statuses in one place,
// [ErrorCode]; the statuses come from [kapsel.Code.Info].
package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/delivery"
)

// Default values of [Config].
const (
	// DefaultHealthWindow is how far back GET /v1/endpoints/{id}/health
	// computes the success rate.
	DefaultHealthWindow = time.Hour
	// DefaultMaxRequestBytes limits a management request body.
	DefaultMaxRequestBytes = 1 << 20
	// DefaultGracePeriod is how long a rotated-out signing secret keeps
	// signing when rotate-signing-secret is called without grace_period_s.
	DefaultGracePeriod = 24 * time.Hour
	// MaxGracePeriod caps grace_period_s.
	MaxGracePeriod = 30 * 24 * time.Hour
)

// BreakerResetter resets an endpoint's circuit breaker; breaker.Set
// implements it.
type BreakerResetter interface {
	// Reset closes the endpoint's breaker and forgets its failure history.
	Reset(ctx context.Context, endpoint kapsel.EndpointID) error
}

// Config configures the management API. The zero value works, but without
// an AdminToken no tenant can be created.
type Config struct {
	// AdminToken authorises the tenant routes. Defaults to none: every
	// tenant route answers 401.
	AdminToken string
	// Clock is the source of time. Defaults to the system clock.
	Clock kapsel.Clock
	// Logger receives internal errors (never bodies or secrets). Defaults to
	// slog.Default().
	Logger *slog.Logger
	// AllowPrivateDestinations lets endpoint URLs name loopback, private and
	// other internal addresses (SPEC I7) when Guard is nil. Defaults to
	// false.
	AllowPrivateDestinations bool
	// Guard is the SSRF guard endpoint URLs are checked with
	// ([delivery.Guard.ValidateURL], E1007): pass the dispatcher's own
	// (delivery.Dispatcher.Guard), so that the API refuses exactly what
	// delivery would refuse, its AllowedCIDRs included. Defaults to a guard
	// with AllowPrivate set to AllowPrivateDestinations and no allowed
	// ranges.
	Guard *delivery.Guard
	// Breakers resets an endpoint's breaker when it is resumed. Defaults to
	// deleting the breaker state from the store.
	Breakers BreakerResetter
	// Waker is told when retry, replay or resume make events due, so a
	// dispatcher in the same process claims them at once. Defaults to none
	// (the dispatcher's polling picks them up).
	Waker kapsel.Waker
	// Schemes are the ingest verifier schemes accepted for endpoints.
	// Defaults to the built-in schemes (kapsel.BuiltinSchemes); add the
	// names of verifiers registered with the ingester.
	Schemes []string
	// DefaultRateLimit and DefaultRateBurst apply to tenants created without
	// rate_limit / rate_burst. Defaults to 0: unlimited.
	DefaultRateLimit float64
	DefaultRateBurst int
	// HealthWindow is the period of the health route's success rate.
	// Defaults to DefaultHealthWindow (1 h).
	HealthWindow time.Duration
	// MaxRequestBytes limits request bodies; larger ones answer 413 E1002.
	// Defaults to DefaultMaxRequestBytes (1 MiB).
	MaxRequestBytes int64
}

// API is the management API handler. Create it with [New].
type API struct {
	store   kapsel.Store
	cfg     Config
	schemes map[string]bool
	mux     *http.ServeMux
}

var _ http.Handler = (*API)(nil)

// New returns the management API over store. cfg may be nil.
func New(store kapsel.Store, cfg *Config) *API {
	a := &API{store: store}
	if cfg != nil {
		a.cfg = *cfg
	}
	c := &a.cfg
	if c.Clock == nil {
		c.Clock = kapsel.SystemClock()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Guard == nil {
		c.Guard = &delivery.Guard{AllowPrivate: c.AllowPrivateDestinations}
	}
	if c.Breakers == nil {
		c.Breakers = storeBreakerReset{store}
	}
	if c.HealthWindow <= 0 {
		c.HealthWindow = DefaultHealthWindow
	}
	if c.MaxRequestBytes <= 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	a.schemes = map[string]bool{}
	for _, s := range kapsel.BuiltinSchemes() {
		a.schemes[s] = true
	}
	for _, s := range c.Schemes {
		a.schemes[s] = true
	}
	a.routes()
	return a
}

func (a *API) routes() {
	m := http.NewServeMux()
	m.Handle("POST /v1/tenants", a.admin(a.createTenant))
	m.Handle("GET /v1/tenants/{id}", a.admin(a.getTenant))

	m.Handle("POST /v1/endpoints", a.tenant(a.createEndpoint))
	m.Handle("GET /v1/endpoints", a.tenant(a.listEndpoints))
	m.Handle("GET /v1/endpoints/{id}", a.tenant(a.getEndpoint))
	m.Handle("PATCH /v1/endpoints/{id}", a.tenant(a.updateEndpoint))
	m.Handle("DELETE /v1/endpoints/{id}", a.tenant(a.deleteEndpoint))
	m.Handle("POST /v1/endpoints/{id}/pause", a.tenant(a.pauseEndpoint))
	m.Handle("POST /v1/endpoints/{id}/resume", a.tenant(a.resumeEndpoint))
	m.Handle("POST /v1/endpoints/{id}/rotate-signing-secret", a.tenant(a.rotateSigningSecret))
	m.Handle("GET /v1/endpoints/{id}/health", a.tenant(a.endpointHealth))
	m.Handle("POST /v1/endpoints/{id}/replay", a.tenant(a.replayEndpoint))

	m.Handle("GET /v1/events", a.tenant(a.listEvents))
	m.Handle("GET /v1/events/{id}", a.tenant(a.getEvent))
	m.Handle("GET /v1/events/{id}/attempts", a.tenant(a.listAttempts))
	m.Handle("POST /v1/events/{id}/retry", a.tenant(a.retryEvent))

	// Anything else under /v1 is a problem+json 404, not the mux's text one.
	m.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, a.cfg.Logger, kapsel.NewError(kapsel.CodeNotFound, "no route %s %s", r.Method, r.URL.Path))
	})
	a.mux = m
}

// ServeHTTP serves the /v1 routes.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mux.ServeHTTP(w, r)
}

// now returns the clock's time.
func (a *API) now() time.Time { return a.cfg.Clock.Now() }

// wake tells the Waker, if any, that events are due.
func (a *API) wake() {
	if a.cfg.Waker != nil {
		a.cfg.Waker.Wake()
	}
}

// storeBreakerReset resets a breaker by deleting its persisted state.
type storeBreakerReset struct{ store kapsel.BreakerStore }

func (s storeBreakerReset) Reset(ctx context.Context, endpoint kapsel.EndpointID) error {
	return s.store.BreakerDelete(ctx, &kapsel.BreakerDeleteParams{EndpointID: endpoint})
}
