// Package sqlitestore is a durable, embedded [kapsel.Store] on SQLite
// (modernc.org/sqlite: pure Go, no cgo). It is kapseld's zero-config
// default: with no database configured, kapseld keeps everything in
// ./kapsel-data.
//
// # Durability
//
// The database runs in WAL mode with synchronous=FULL: a commit returns only
// after the write-ahead log is fsynced, so an event the ingester answered 2xx
// for survives kill -9 and power loss with all its deliveries (I1 of
// docs/guarantees.md). EventInsertMany writes all its rows — events, their
// deliveries and idempotency keys — in one transaction, so the ingester's
// group commit costs one fsync.
//
// # Concurrency
//
// SQLite allows one writer at a time. The store keeps one writer connection,
// which serialises every write in the process (transactions begin IMMEDIATE,
// taking the write lock up front, so read-modify-write sequences such as a
// claim cannot interleave), and a small pool of read-only connections that
// read concurrently with it thanks to WAL. In particular the fan-out of
// EventInsertMany reads the tenant's endpoints in its own write
// transaction, so an endpoint change (a delete that fails the endpoint's
// deliveries, a new filter) is seen wholly before or wholly after a batch
// (I10).
//
// # Upgrading from 0.1
//
// Migration 0005 turns a 0.1 database into a 0.2 one in one transaction:
// each endpoint becomes the source [kapsel.LegacySourceID] names plus an
// endpoint subscribed to it, each event a 0.2 event plus one delivery
// ("dlv_" and the event's ULID) holding its queue state; the migration file
// says how.
//
// # Limits
//
// One process only: open a directory from a single kapseld (or a single
// application) at a time. Several kapseld nodes sharing the work need
// store/pgstore. There is no cross-process wake-up ([kapsel.Notifier]): the
// dispatcher of the same process is woken in process, and otherwise polls.
// Write throughput is bounded by one fsync per transaction, so batch writes
// (the ingester and the dispatcher do).
package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/kapsel-dev/kapsel"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

var (
	_ kapsel.Store          = (*Store)(nil)
	_ kapsel.RetentionStore = (*Store)(nil)
)

// Database file and connection settings.
const (
	// FileName is the database file inside the directory given to Open.
	FileName = "kapsel.db"
	// ReadConns is the number of read-only connections.
	ReadConns = 4
	// BusyTimeout is how long a connection waits for a lock held by another
	// connection before failing with ErrUnavailable.
	BusyTimeout = 10 * time.Second
)

// Store is a kapsel.Store on a SQLite database. It is safe for concurrent use
// within one process.
type Store struct {
	path      string
	w         *sql.DB // one connection: every write goes through it
	r         *sql.DB // read-only pool
	closeOnce sync.Once
	closeErr  error
	holdScan  holdScan // the claim's hold window (held.go)
}

// Open opens (creating it when needed, with mode 0700) the directory dir,
// opens or creates the database in it, and applies the schema migrations it
// lacks. Close the store when done.
func Open(ctx context.Context, dir string) (*Store, error) {
	if dir == "" {
		return nil, fmt.Errorf("sqlitestore: %w: empty directory", kapsel.ErrInvalid)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sqlitestore: creating %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	common := fmt.Sprintf("_busy_timeout=%d&_foreign_keys=1", BusyTimeout.Milliseconds())
	w, err := sql.Open("sqlite", "file:"+path+"?"+common+"&_journal_mode=WAL&_synchronous=FULL&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: opening %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s := &Store{path: path, w: w}
	// The writer goes first: it creates the file and switches it to WAL (a
	// setting kept in the file) before any reader opens it.
	if err := migrate(ctx, w, func() int64 { return time.Now().UnixMicro() }); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlitestore: migrating %s: %w", path, err)
	}
	s.r, err = sql.Open("sqlite", "file:"+path+"?"+common+"&_query_only=1")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlitestore: opening %s: %w", path, err)
	}
	s.r.SetMaxOpenConns(ReadConns)
	s.r.SetMaxIdleConns(ReadConns)
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// Close closes the database. Closing twice is safe.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = errors.Join(s.r.Close(), s.w.Close())
	})
	return s.closeErr
}

// Ping returns nil when the database answers and its schema is at
// LatestVersion; otherwise an error wrapping kapsel.ErrUnavailable (with
// code E3004 for a schema mismatch).
func (s *Store) Ping(ctx context.Context) error {
	v, err := schemaVersion(ctx, s.r)
	if err != nil {
		return fmt.Errorf("sqlitestore: ping: %w", err)
	}
	if latest := LatestVersion(); v != latest {
		return &kapsel.Error{
			Code:   kapsel.CodeSchemaMismatch,
			Detail: fmt.Sprintf("schema version %d, want %d", v, latest),
			Err:    kapsel.ErrUnavailable,
		}
	}
	return nil
}

// inTx runs fn in a write transaction and commits it; any error rolls back.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return mapError(err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return mapError(tx.Commit())
}
