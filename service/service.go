// Package service is Kapsel's front door: the one value an application
// builds to embed Kapsel. It is made from a [kapsel.Store] and a [Config]
// whose zero value works; it starts and stops ingest, delivery and the
// circuit breakers together; it hands out the HTTP handlers to mount on the
// application's own mux; and it offers, as Go methods, the same validated
// operations as the management API — which is itself a thin JSON layer over
// them.
//
//	store := memstore.New() // or pgstore.Open, sqlitestore.Open
//	k, err := service.New(store, &service.Config{})
//	// …
//	if err := k.Start(ctx); err != nil { … }
//	defer k.Stop(ctx)
//	mux.Handle("/", k.Handler()) // POST /ingest/{source_id} and /v1/…
//
// Every operation validates its input with the same rules the management
// API and delivery apply, and returns errors that carry a documented
// [kapsel.Code] ([kapsel.CodeOf] finds it; [kapsel.Code.Info] its HTTP
// status).
//
// The root package kapsel holds the domain (types, the Store interfaces,
// errors, hooks, the clock) and imports only the standard library; this
// package sits on top of every other one, so that none of them depends on
// it. See docs/embedding.md for why the front door is its own package.
package service

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/breaker"
	"github.com/kapsel-dev/kapsel/delivery"
	"github.com/kapsel-dev/kapsel/ingest"
	"github.com/kapsel-dev/kapsel/ingest/verify"
	"github.com/kapsel-dev/kapsel/internal/bearer"
	"github.com/kapsel-dev/kapsel/internal/lifecycle"
	"github.com/kapsel-dev/kapsel/internal/problem"
	"github.com/kapsel-dev/kapsel/retention"
)

// Config configures a [Service]. The zero value works: the system clock,
// slog.Default(), no hooks, the SSRF guard on, the built-in verifiers and
// the components' default sizes.
//
// The fields that several components share — Logger, Clock, Hooks, the SSRF
// policy, the verifiers — are set here once and handed to each of them.
// The component configs (Ingest, Delivery, Breaker) carry the tuning knobs
// of one part; their shared fields are overwritten by the ones here.
type Config struct {
	// AdminToken authorises the tenant routes of the management API
	// (POST /v1/tenants, GET /v1/tenants/{id}, rotate-api-key). Defaults to
	// none: every tenant route answers 401 E1010 (the Go operations need no
	// token).
	AdminToken string
	// Logger receives every component's logs (never bodies or secrets).
	// Defaults to slog.Default().
	Logger *slog.Logger
	// Clock is the source of time for every component. Defaults to the
	// system clock.
	Clock kapsel.Clock
	// Hooks receive ingest, attempt, breaker and disable events (metrics,
	// traces). Defaults to none.
	Hooks kapsel.Hooks
	// AllowPrivateDestinations lets endpoints name loopback, private and
	// other internal addresses; it turns the SSRF guard off for delivery and
	// for the URL checks of endpoint operations alike. Defaults to false.
	AllowPrivateDestinations bool
	// AllowedCIDRs are address ranges allowed although the SSRF guard would
	// refuse them (a destination on 127.0.0.1 in a test, an internal
	// network). Defaults to none.
	AllowedCIDRs []netip.Prefix
	// Verifiers are the ingest signature schemes. Defaults to the built-in
	// ones ([verify.NewRegistry]); register custom schemes on a registry and
	// set it here, and sources may use them.
	Verifiers *verify.Registry
	// Workers is the number of concurrent delivery attempts. Defaults to
	// delivery.DefaultWorkers.
	Workers int
	// MaxBodyBytes limits an ingested body. Defaults to
	// ingest.DefaultMaxBodyBytes (10 MiB).
	MaxBodyBytes int64

	// Ingest tunes the ingester (group commit, caches, rate limiters).
	// Defaults to the zero value.
	Ingest ingest.Config
	// Delivery tunes the dispatcher (leases, batches, timeouts, TLS).
	// Defaults to the zero value.
	Delivery delivery.Config
	// Breaker tunes the circuit breakers. Defaults to the zero value.
	Breaker breaker.Config
	// Retention says how long bodies, events, deliveries and attempts are
	// kept, globally and per tenant, and how the background removal runs
	// (package retention). Its idempotency window is the ingester's.
	// Defaults to nil: retention off, nothing is ever removed (as in 0.1,
	// so that an application upgrading loses no data without asking).
	// &retention.Config{} turns it on with kapsel's default policy (bodies
	// 30 days, metadata 90 days); kapseld does so unless
	// KAPSEL_RETENTION=false. The store must implement
	// kapsel.RetentionStore (New fails otherwise). Expunges work either
	// way, on a store that implements it.
	Retention *retention.Config
	// HealthWindow is the period of [Service.EndpointHealth]'s success rate.
	// Defaults to DefaultHealthWindow (1 h).
	HealthWindow time.Duration
	// DefaultRateLimit and DefaultRateBurst apply to tenants created without
	// a rate of their own. Defaults to 0: unlimited.
	DefaultRateLimit float64
	DefaultRateBurst int
	// MaxRequestBytes limits a management API request body; larger ones
	// answer 413 E1002. Defaults to DefaultMaxRequestBytes (1 MiB).
	MaxRequestBytes int64
}

// Default values of [Config].
const (
	DefaultHealthWindow    = time.Hour
	DefaultMaxRequestBytes = 1 << 20
)

// Service is Kapsel embedded in an application: ingest, delivery, circuit
// breakers and the management API over one store. Build it with [New], run
// it with [Service.Start] and [Service.Stop], mount [Service.Handler] (or
// [Service.IngestHandler] and [Service.ManagementHandler]), and call its
// operations from Go. Its methods are safe for concurrent use.
type Service struct {
	store      kapsel.Store
	cfg        Config
	log        *slog.Logger
	breakers   *breaker.Set
	dispatcher *delivery.Dispatcher
	ingester   *ingest.Ingester
	retention  *retention.Runner     // nil when retention is off
	expunger   kapsel.RetentionStore // the store, nil when it has no retention
	management http.Handler
	handler    http.Handler
	adminToken bearer.Secret // Config.AdminToken, hashed once
	maxBody    int64         // the ingester's MaxBodyBytes, which sends follow too
	backfill   backfillBounds

	// life is new, running or stopped: Start and Stop run once, a second
	// Stop waits for the first one's result.
	life lifecycle.Runner
}

// New builds a Service over store. cfg may be nil, the zero Config. It
// returns an error naming the field when cfg is invalid; nothing is started
// until [Service.Start].
func New(store kapsel.Store, config *Config) (*Service, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: service.New needs a store", kapsel.ErrInvalid)
	}
	var cfg Config
	if config != nil {
		cfg = *config
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = kapsel.SystemClock()
	}
	// One time for every component: anchored to the store's clock when the
	// dispatcher's clock sync is on (docs/delivery.md, "Time"), so that due
	// times, idempotency windows and breaker windows written by ingest and
	// the management API agree with the dispatcher's leases.
	clock, err := delivery.AnchoredClock(store, cfg.Clock, cfg.Delivery.ClockSync)
	if err != nil {
		return nil, fmt.Errorf("service: Delivery: %w", err)
	}
	cfg.Clock = clock
	if cfg.Verifiers == nil {
		cfg.Verifiers = verify.NewRegistry()
	}
	s := &Service{store: store, cfg: cfg, log: cfg.Logger, backfill: backfillBounds{backfillRound, MaxBackfillEvents}}

	bc := cfg.Breaker
	bc.Logger, bc.Clock, bc.Hooks = cfg.Logger, cfg.Clock, cfg.Hooks
	if s.breakers, err = breaker.New(store, &bc); err != nil {
		return nil, fmt.Errorf("service: Breaker: %w", err)
	}

	dc := cfg.Delivery
	dc.Logger, dc.Clock, dc.Hooks, dc.Breakers = cfg.Logger, cfg.Clock, cfg.Hooks, s.breakers
	dc.AllowPrivateDestinations, dc.AllowedCIDRs = cfg.AllowPrivateDestinations, cfg.AllowedCIDRs
	if cfg.Workers != 0 {
		dc.Workers = cfg.Workers
	}
	if s.dispatcher, err = delivery.New(store, &dc); err != nil {
		return nil, fmt.Errorf("service: Delivery: %w", err)
	}

	ic := cfg.Ingest
	ic.Logger, ic.Clock, ic.Hooks, ic.Verifiers = cfg.Logger, cfg.Clock, cfg.Hooks, cfg.Verifiers
	ic.Waker = s.dispatcher // in-process hand-off: a commit wakes the dispatcher at once
	if cfg.MaxBodyBytes != 0 {
		ic.MaxBodyBytes = cfg.MaxBodyBytes
	}
	s.maxBody = cmp.Or(ic.MaxBodyBytes, ingest.DefaultMaxBodyBytes)
	if s.ingester, err = ingest.New(store, &ic); err != nil {
		return nil, fmt.Errorf("service: Ingest: %w", err)
	}

	s.expunger, _ = kapsel.StoreAs[kapsel.RetentionStore](store)
	if cfg.Retention != nil {
		if s.expunger == nil {
			return nil, fmt.Errorf("service: Retention: %w: the store does not implement kapsel.RetentionStore", kapsel.ErrInvalid)
		}
		rc := *cfg.Retention
		rc.Logger, rc.Clock, rc.Hooks = cfg.Logger, cfg.Clock, cfg.Hooks
		rc.IdempotencyWindow = cfg.Ingest.IdempotencyWindow
		if s.retention, err = retention.New(s.expunger, &rc); err != nil {
			return nil, fmt.Errorf("service: Retention: %w", err)
		}
	}

	if cfg.HealthWindow <= 0 {
		cfg.HealthWindow = DefaultHealthWindow
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	s.cfg = cfg
	s.adminToken = bearer.NewSecret(cfg.AdminToken)
	s.management = s.managementRoutes()

	mux := http.NewServeMux()
	mux.Handle("/ingest/", s.ingester.Handler())
	mux.Handle("/v1/", s.management)
	mux.Handle("/", notFound)
	s.handler = mux
	return s, nil
}

// Start starts delivery, then ingest: from its return on, ingested and
// sent events are committed with their deliveries, which are delivered.
// ctx bounds only the start-up. Start after
// Start or Stop returns an error.
func (s *Service) Start(ctx context.Context) error {
	err := s.life.Start(func() error {
		if err := s.dispatcher.Start(ctx); err != nil {
			return fmt.Errorf("starting delivery: %w", err)
		}
		if err := s.ingester.Start(ctx); err != nil {
			_ = s.dispatcher.Stop(context.Background())
			return fmt.Errorf("starting ingest: %w", err)
		}
		if s.retention == nil {
			return nil
		}
		if err := s.retention.Start(ctx); err != nil {
			_ = s.ingester.Stop(context.Background())
			_ = s.dispatcher.Stop(context.Background())
			return fmt.Errorf("starting retention: %w", err)
		}
		return nil
	})
	if errors.Is(err, lifecycle.ErrStarted) || errors.Is(err, lifecycle.ErrStopped) {
		return fmt.Errorf("service: Start called twice or after Stop: %w", err)
	}
	return err
}

// Stop shuts down in the order that loses nothing, within ctx: new ingests
// answer 503 E3003 while those under way still get their own commit's
// answer; the ingest queue is flushed; then delivery stops claiming, lets
// in-flight attempts finish until ctx ends, records what was cut short and
// releases the remaining leases so another node can take them at once.
// Stopping twice, or before Start, is safe; the second call returns the
// first one's result (waiting for it, or returning ctx.Err() when its own
// ctx ends first).
func (s *Service) Stop(ctx context.Context) error {
	return s.life.Stop(ctx, func(ctx context.Context) error {
		var errs []error
		if s.retention != nil {
			if err := s.retention.Stop(ctx); err != nil {
				errs = append(errs, fmt.Errorf("stopping retention: %w", err))
			}
		}
		if err := s.ingester.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stopping ingest: %w", err))
		}
		if err := s.dispatcher.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stopping delivery: %w", err))
		}
		return errors.Join(errs...)
	})
}

// Handler serves everything an application exposes of Kapsel: ingest
// (POST /ingest/{source_id}) and the management API (/v1/…), and answers any other
// path with a problem+json 404 E1011. Mount it at the root of a mux that
// Kapsel owns; on a mux with routes of the application's own, mount
// [Service.IngestHandler] at "/ingest/" and [Service.ManagementHandler] at
// "/v1/" instead, so that the application keeps its own 404s.
func (s *Service) Handler() http.Handler { return s.handler }

// IngestHandler serves POST /ingest/{source_id}; mount it at "/ingest/".
func (s *Service) IngestHandler() http.Handler { return s.ingester.Handler() }

// ManagementHandler serves the management API under /v1/; mount it at
// "/v1/".
func (s *Service) ManagementHandler() http.Handler { return s.management }

// Wake makes the dispatcher claim due deliveries now instead of at its next
// poll. The operations that make deliveries due call it themselves.
func (s *Service) Wake() { s.dispatcher.Wake() }

// Store returns the store the service runs on.
func (s *Service) Store() kapsel.Store { return s.store }

// now is the configured clock's time.
func (s *Service) now() time.Time { return s.cfg.Clock.Now() }

// notFound is the 404 answer for routes the service's handler does not know.
var notFound = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	problem.Write(w, kapsel.CodeNotFound, "no such route", 0)
})
