// Package pgstore is Kapsel's production [kapsel.Store], on PostgreSQL
// through pgx/v5.
//
// # Use
//
//	store, err := pgstore.Open(ctx, "postgres://…", nil)
//	if err != nil { … }
//	defer store.Close()
//	if err := store.Migrate(ctx); err != nil { … }
//
// or, to share an application's pool, [New]. The schema lives in the first
// schema of the connection's search_path; nothing names a schema, so several
// installations can share a database (set search_path in the connection
// string).
//
// # What it adds to the Store contract
//
//   - Embedded, numbered migrations ([Store.Migrate], [Store.SchemaVersion]);
//     [Store.Ping] fails with a [*SchemaVersionError] while the schema is
//     behind this binary.
//   - [kapsel.Notifier]: [Store.DeliveryListen] wakes dispatchers in other
//     processes through LISTEN/NOTIFY on [NotifyChannel], one notification
//     per committed batch.
//   - A transactional outbox: [Store.EventInsertTx] and
//     [Store.EventInsertManyTx] insert events, fanned out to their
//     deliveries, inside the application's own pgx.Tx, so webhooks commit
//     or roll back with the business write they announce (service.SendTx
//     is the front door to it).
//
// docs/storage.md describes the schema, the indexes, the fan-out insert and
// the claim query.
package pgstore

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/kapsel-dev/kapsel"
)

var (
	_ kapsel.Store    = (*Store)(nil)
	_ kapsel.Notifier = (*Store)(nil)
)

// NotifyChannel is the LISTEN/NOTIFY channel on which committed deliveries
// are announced. The payload is the name of the schema they were written
// to, so installations sharing a database do not wake each other. (The
// name dates from 0.1, when events were the queue.)
const NotifyChannel = "kapsel_events"

// Defaults of [Config].
const (
	DefaultListenReconnectMin = 100 * time.Millisecond
	DefaultListenReconnectMax = 5 * time.Second
	DefaultListenPingInterval = 30 * time.Second
)

// Config configures a [Store]. The zero value works.
type Config struct {
	// Logger receives the listener's reconnections. Defaults to
	// slog.Default().
	Logger *slog.Logger
	// ListenReconnectMin is the first wait before the listener reconnects
	// after losing its connection; waits double up to ListenReconnectMax.
	// Defaults to DefaultListenReconnectMin (100 ms).
	ListenReconnectMin time.Duration
	// ListenReconnectMax caps the wait between reconnection attempts.
	// Defaults to DefaultListenReconnectMax (5 s).
	ListenReconnectMax time.Duration
	// ListenPingInterval is how long the listener waits for a notification
	// before it checks its connection with a ping, so a silently dropped
	// connection is noticed. Defaults to DefaultListenPingInterval (30 s).
	ListenPingInterval time.Duration
}

func (c *Config) withDefaults() (Config, error) {
	var out Config
	if c != nil {
		out = *c
	}
	if out.Logger == nil {
		out.Logger = slog.Default()
	}
	out.ListenReconnectMin = cmp.Or(out.ListenReconnectMin, DefaultListenReconnectMin)
	out.ListenReconnectMax = cmp.Or(out.ListenReconnectMax, DefaultListenReconnectMax)
	out.ListenPingInterval = cmp.Or(out.ListenPingInterval, DefaultListenPingInterval)
	switch {
	case out.ListenReconnectMin < 0:
		return out, fmt.Errorf("pgstore: %w: ListenReconnectMin must not be negative", kapsel.ErrInvalid)
	case out.ListenReconnectMax < out.ListenReconnectMin:
		return out, fmt.Errorf("pgstore: %w: ListenReconnectMax must be at least ListenReconnectMin", kapsel.ErrInvalid)
	case out.ListenPingInterval < 0:
		return out, fmt.Errorf("pgstore: %w: ListenPingInterval must not be negative", kapsel.ErrInvalid)
	}
	return out, nil
}

// Store is a [kapsel.Store] on PostgreSQL. It is safe for concurrent use.
type Store struct {
	pool     *pgxpool.Pool
	ownsPool bool
	config   Config
	// holdScan is the claim's window for blocked endpoints' deliveries (see
	// holdSQL), adapted by every claim.
	holdScan atomic.Int64
}

func newStore(pool *pgxpool.Pool, owns bool, config Config) *Store {
	s := &Store{pool: pool, ownsPool: owns, config: config}
	s.holdScan.Store(minHoldScan)
	return s
}

// New returns a Store on an existing pool, which the caller keeps owning:
// Close does not close it. The pool's connections must see Kapsel's schema
// (see the package doc).
func New(pool *pgxpool.Pool, config *Config) (*Store, error) {
	if pool == nil {
		return nil, fmt.Errorf("pgstore: %w: nil pool", kapsel.ErrInvalid)
	}
	c, err := config.withDefaults()
	if err != nil {
		return nil, err
	}
	return newStore(pool, false, c), nil
}

// DefaultMaxConns is the size of the pool Open makes when the connection
// string sets no pool_max_conns. pgx's own default, the number of CPUs but
// at least 4, is fewer connections than one process running Kapsel uses at
// once: the ingester's group commit alone keeps up to
// ingest.DefaultMaxFlushes (4) batches committing, and the dispatcher's
// claim loop, completer and lease keep-alive each need one besides (the
// LISTEN connection is taken out of the pool). With 4, a sustained run on
// the 2-core machine had every connection busy and inserts and completions
// waiting for one (goroutine profiles, docs/benchmarks.md), so claims and
// completions queued behind ingest commits.
const DefaultMaxConns = 16

// Open connects a new pool to connString (a pgx connection string or URL,
// pool settings such as pool_max_conns included; the pool has at most
// DefaultMaxConns connections unless pool_max_conns says otherwise) and
// returns a Store that owns it. It does not migrate; call Migrate.
func Open(ctx context.Context, connString string, config *Config) (*Store, error) {
	c, err := config.withDefaults()
	if err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w: parsing connection string: %w", kapsel.ErrInvalid, err)
	}
	if !strings.Contains(connString, "pool_max_conns") {
		pc.MaxConns = max(pc.MaxConns, DefaultMaxConns)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("pgstore: opening pool: %w", mapError(err))
	}
	return newStore(pool, true, c), nil
}

// Pool returns the store's connection pool, for applications that begin the
// transactions they pass to EventInsertTx from the same pool.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close closes the pool if Open created it. Closing twice is safe.
func (s *Store) Close() {
	if s.ownsPool {
		s.pool.Close()
	}
}

// Ping returns nil when the database answers and the schema is at least at
// this binary's latest version. Otherwise it returns an error wrapping
// kapsel.ErrUnavailable: a *SchemaVersionError (which also wraps
// ErrSchemaBehind) when the schema is behind.
func (s *Store) Ping(ctx context.Context) error {
	current, latest, err := s.SchemaVersion(ctx)
	if err != nil {
		return fmt.Errorf("pinging: %w", err)
	}
	if current < latest {
		return &SchemaVersionError{Current: current, Latest: latest}
	}
	return nil
}
