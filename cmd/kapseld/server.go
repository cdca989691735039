package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/delivery"
	"github.com/kapsel-dev/kapsel/internal/problem"
	"github.com/kapsel-dev/kapsel/metrics/prommetrics"
	"github.com/kapsel-dev/kapsel/service"
)

// HTTP server limits: slow or malicious clients cannot pin connections.
// ReadTimeout covers a 10 MiB body at ~200 KiB/s; WriteTimeout covers an
// ingest waiting for its commit (the ingester gives up after 10 s).
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 60 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10
	// readyTimeout bounds the store ping of /readyz.
	readyTimeout = 2 * time.Second
)

// server is kapseld: configuration, the front door (service.Service) and an
// http.Server. It holds no business logic.
type server struct {
	cfg      *config
	log      *slog.Logger
	store    *store
	kapsel   *service.Service
	registry *prometheus.Registry
	http     *http.Server
	ln       net.Listener
	tracing  *tracing // nil when tracing is off
	stopping atomic.Bool
}

// newServer opens the store (migrating it when configured), builds the
// front door with the metrics' hooks, and binds the listener — so Addr is
// known before Run (tests listen on :0). On error everything opened is
// closed again.
func newServer(ctx context.Context, cfg *config, log *slog.Logger) (_ *server, err error) {
	s := &server{cfg: cfg, log: log, registry: prometheus.NewRegistry()}
	s.store, err = openStore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.store.close()
		}
	}()
	if cfg.Migrate {
		if err := s.store.migrate(ctx); err != nil {
			return nil, fmt.Errorf("migrating the schema: %w", err)
		}
	}
	if current, latest, err := s.store.version(ctx); err != nil || current < latest {
		// Not fatal: /readyz answers 503 until the schema is current.
		log.LogAttrs(ctx, slog.LevelWarn, "schema not current; run kapseld migrate up",
			slog.Int("current", current), slog.Int("latest", latest), slog.Any("error", redactErr(err, cfg.DatabaseURL)))
	}

	metrics, err := prommetrics.New(s.registry, &prommetrics.Config{Store: s.store, Logger: log})
	if err != nil {
		return nil, err
	}
	s.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	hooks := metrics.Hooks()
	if cfg.Tracing.Enabled {
		if s.tracing, err = newTracing(ctx, cfg.Tracing); err != nil {
			return nil, err
		}
		hooks = s.tracing.hooks(hooks)
		log.LogAttrs(ctx, slog.LevelInfo, "tracing on: OTLP over HTTP",
			slog.String("endpoint", cmp.Or(redactEndpoint(cfg.Tracing.EndpointURL), "the SDK's default")))
	}

	rc := cfg.Retention // a copy: cfg stays as it was read
	s.kapsel, err = service.New(s.store, &service.Config{
		AdminToken:               cfg.AdminToken,
		Logger:                   log,
		Hooks:                    hooks,
		AllowPrivateDestinations: cfg.AllowPrivateDestinations,
		Workers:                  cfg.Workers,
		MaxBodyBytes:             cfg.MaxBodyBytes,
		Delivery:                 delivery.Config{LeaseDuration: cfg.LeaseDuration},
		Retention:                &rc,
	})
	if err != nil {
		return nil, fmt.Errorf("configuring kapsel: %w", err)
	}

	// The front door serves ingest, the management API and the 404 of any
	// other path; kapseld adds its operational routes beside it.
	mux := http.NewServeMux()
	mux.Handle("/", s.kapsel.Handler())
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", requireMetricsToken(cfg.MetricsToken, promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	})))

	s.ln, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	s.http = &http.Server{
		Handler:           logRequests(log, mux),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	return s, nil
}

// Addr is the address the server listens on.
func (s *server) Addr() net.Addr { return s.ln.Addr() }

// Run starts delivering and serving, and blocks until ctx ends (SIGTERM,
// SIGINT) or serving fails; then it shuts down gracefully (see shutdown)
// and returns nil after a clean stop.
func (s *server) Run(ctx context.Context) error {
	defer s.store.close()
	if err := s.kapsel.Start(ctx); err != nil {
		s.ln.Close()
		return err
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "kapseld serving",
		slog.String("addr", s.Addr().String()), slog.String("store", s.store.kind),
		slog.String("version", kapsel.Version), slog.Bool("ssrf_guard", !s.cfg.AllowPrivateDestinations))

	served := make(chan error, 1)
	go func() { served <- s.http.Serve(s.ln) }()
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served:
	}
	err := s.shutdown()
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return errors.Join(fmt.Errorf("serving: %w", serveErr), err)
	}
	return err
}

// shutdown stops in the order that loses nothing, within ShutdownTimeout:
// /readyz turns 503 and the listener closes; HTTP requests under way finish
// (each ingest still waits for its own commit); then the front door stops
// (service.Service.Stop: ingest flushes, delivery lets in-flight attempts
// finish and releases the remaining leases). The store closes last (in Run).
func (s *server) shutdown() error {
	s.stopping.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	s.log.LogAttrs(ctx, slog.LevelInfo, "shutting down", slog.String("timeout", s.cfg.ShutdownTimeout.String()))
	var errs []error
	if err := s.http.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("draining HTTP: %w", err))
		_ = s.http.Close()
	}
	if err := s.kapsel.Stop(ctx); err != nil {
		errs = append(errs, err)
	}
	if s.tracing != nil {
		// Last: the spans of the attempts Stop let finish.
		if err := s.tracing.shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	err := errors.Join(errs...)
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "shutdown incomplete", slog.String("error", redact(err.Error(), s.cfg.DatabaseURL)))
	} else {
		s.log.LogAttrs(ctx, slog.LevelInfo, "shut down cleanly")
	}
	return err
}

// healthz answers 200 while the process is alive.
func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	writeStatus(w, http.StatusOK, "ok")
}

// readyz answers 200 when the store is reachable and its schema current,
// 503 otherwise (E3001, E3004) and while shutting down (E3003).
func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.stopping.Load() {
		problem.Write(w, kapsel.CodeShuttingDown, "kapseld is shutting down", 1)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		code := kapsel.CodeOf(err)
		if code != kapsel.CodeSchemaMismatch {
			code = kapsel.CodeStorageUnavailable
		}
		s.log.LogAttrs(ctx, slog.LevelWarn, "not ready", slog.String("request_id", requestID(r.Context())),
			slog.String("code", string(code)), slog.String("error", redact(err.Error(), s.cfg.DatabaseURL)))
		problem.Write(w, code, code.Info().Title, 1)
		return
	}
	writeStatus(w, http.StatusOK, "ok")
}

func writeStatus(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintf(w, "{\"status\":%q}\n", text)
}
