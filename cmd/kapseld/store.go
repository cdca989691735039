package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/store/pgstore"
	"github.com/kapsel-dev/kapsel/store/sqlitestore"
)

// store is the opened store and the operations kapseld needs beyond
// kapsel.Store, for either backend.
type store struct {
	backend
	// kind is "postgres" or "embedded", for logs.
	kind string
	// migrate applies missing schema migrations.
	migrate func(ctx context.Context) error
	// version returns the applied and the latest schema versions.
	version func(ctx context.Context) (current, latest int, err error)
	close   func()
}

// backend is what both of kapseld's stores implement: kapsel.Store and the
// optional retention capability.
type backend interface {
	kapsel.Store
	kapsel.RetentionStore
}

// Unwrap returns the store kapseld opened, so that kapsel.StoreAs finds its
// optional capabilities through the wrapper: LISTEN/NOTIFY wake-ups
// (kapsel.Notifier), clock sync (kapsel.Timekeeper) and transactional send
// (service.TxStore) on Postgres.
func (s *store) Unwrap() kapsel.Store { return s.backend }

var _ kapsel.Unwrapper = (*store)(nil)

// openStore opens Postgres when cfg.DatabaseURL is set, else the embedded
// SQLite store in cfg.DataDir. Neither is migrated here, except the
// embedded store, which always migrates on open: it belongs to this one
// process, so nothing can run an older binary against it concurrently.
func openStore(ctx context.Context, cfg *config, log *slog.Logger) (*store, error) {
	if cfg.DatabaseURL == "" {
		s, err := sqlitestore.Open(ctx, cfg.DataDir)
		if err != nil {
			return nil, fmt.Errorf("opening the embedded store in %s: %w", cfg.DataDir, err)
		}
		return &store{
			backend: s, kind: "embedded",
			migrate: func(context.Context) error { return nil },
			version: func(ctx context.Context) (int, int, error) {
				latest := sqlitestore.LatestVersion()
				if err := s.Ping(ctx); err != nil {
					return 0, latest, err
				}
				return latest, latest, nil
			},
			close: func() { _ = s.Close() },
		}, nil
	}
	s, err := pgstore.Open(ctx, cfg.DatabaseURL, &pgstore.Config{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("opening Postgres (KAPSEL_DATABASE_URL): %w", err)
	}
	return &store{
		backend: s, kind: "postgres",
		migrate: s.Migrate,
		version: s.SchemaVersion,
		close:   s.Close,
	}, nil
}

// migrateCommand runs "kapseld migrate up|status".
func migrateCommand(ctx context.Context, sub string, cfg *config, log *slog.Logger, stdout func(format string, args ...any)) error {
	if sub != "up" && sub != "status" {
		return fmt.Errorf("usage: kapseld migrate up|status [flags]")
	}
	s, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer s.close()
	if sub == "up" {
		if err := s.migrate(ctx); err != nil {
			return err
		}
	}
	current, latest, err := s.version(ctx)
	if err != nil {
		return fmt.Errorf("reading the schema version: %w", err)
	}
	state := "current"
	if current < latest {
		state = "behind: run kapseld migrate up"
	}
	stdout("%s store: schema version %d, latest %d (%s)\n", s.kind, current, latest, state)
	return nil
}

// redact removes from msg the password of the connection string dsn (URL or
// key=value form), which driver errors may quote.
func redact(msg, dsn string) string {
	var secrets []string
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			secrets = append(secrets, p, url.QueryEscape(p), url.PathEscape(p))
		}
	}
	for _, f := range strings.Fields(dsn) {
		if v, ok := strings.CutPrefix(f, "password="); ok {
			secrets = append(secrets, strings.Trim(v, "'"))
		}
	}
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	return msg
}

// redactedError is an error whose message has been scrubbed of the
// database password; errors.Is and errors.As still see the cause.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redactErr scrubs err's message of the password in dsn.
func redactErr(err error, dsn string) error {
	if err == nil || dsn == "" {
		return err
	}
	return &redactedError{msg: redact(err.Error(), dsn), err: err}
}
