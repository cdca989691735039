package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/kapsel-dev/kapsel"
)

// ErrSchemaBehind is wrapped by [*SchemaVersionError]: the database schema is
// older than this binary's migrations, so the store must not be used until
// Migrate has run.
var ErrSchemaBehind = errors.New("pgstore: schema version behind")

// SchemaVersionError is returned by Ping when the schema is behind. It wraps
// [ErrSchemaBehind], [kapsel.ErrUnavailable], and a *kapsel.Error with
// [kapsel.CodeSchemaMismatch], so kapsel.CodeOf reports E3004.
type SchemaVersionError struct {
	// Current is the applied schema version (0: none); Latest is the newest
	// version this binary knows.
	Current, Latest int
}

// Error implements error.
func (e *SchemaVersionError) Error() string {
	return fmt.Sprintf("pgstore: schema version %d is behind %d: run migrations", e.Current, e.Latest)
}

// Unwrap returns ErrSchemaBehind and a *kapsel.Error (code E3004) wrapping
// kapsel.ErrUnavailable.
func (e *SchemaVersionError) Unwrap() []error {
	return []error{ErrSchemaBehind, &kapsel.Error{
		Code:   kapsel.CodeSchemaMismatch,
		Detail: fmt.Sprintf("schema version %d, want %d", e.Current, e.Latest),
		Err:    kapsel.ErrUnavailable,
	}}
}

// PostgreSQL error codes that mapError translates.
const (
	pgUniqueViolation      = "23505"
	pgForeignKeyViolation  = "23503"
	pgNotNullViolation     = "23502"
	pgCheckViolation       = "23514"
	pgSerializationFailure = "40001"
	pgDeadlockDetected     = "40P01"
	pgQueryCanceled        = "57014" // statement_timeout, cancel request
	pgAdminShutdown        = "57P01"
	pgCrashShutdown        = "57P02"
	pgCannotConnectNow     = "57P03"
	pgLockNotAvailable     = "55P03" // lock_timeout
	pgReadOnlyTransaction  = "25006" // a primary demoted to a standby by a failover
)

// mapError is the one place where driver errors become Kapsel's sentinels:
//
//   - pgx.ErrNoRows, foreign key violation → kapsel.ErrNotFound
//   - unique violation → kapsel.ErrDuplicate
//   - data exceptions (SQLSTATE class 22), not-null and check violations
//     → kapsel.ErrInvalid, never ErrUnavailable: the same statement would
//     fail again, so callers isolate the row instead of retrying the batch
//     (the ingester answers 400 E1009, the completer bisects). Outside text
//     is made safe by kapsel.SafeText before it is written, so invalid
//     UTF-8 and NUL (22021, 22P05) no longer reach Postgres.
//   - connection failures and timeouts, server shutdown or start-up,
//     resource exhaustion (class 53), system errors such as I/O failures
//     (class 58), a read-only server (25006: a primary demoted by a
//     failover, until the pool reconnects to the new one), cancelled
//     statements, serialization failures and deadlocks, a cancelled context
//     → kapsel.ErrUnavailable (the operation may be retried)
//
// What is none of these is returned unclassified, and callers treat it as a
// refusal: the completer isolates the row it comes with rather than retry
// a statement the server refuses for a reason nobody listed.
//
// The driver error stays in the chain for logs. Other errors are returned
// unchanged.
func mapError(err error) error {
	if err == nil {
		return nil
	}
	if sentinel := classify(err); sentinel != nil {
		return fmt.Errorf("%w: %w", sentinel, err)
	}
	return err
}

func classify(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return kapsel.ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch code := pgErr.Code; {
		case code == pgUniqueViolation:
			return kapsel.ErrDuplicate
		case code == pgForeignKeyViolation:
			return kapsel.ErrNotFound
		case code[:2] == "22", code == pgNotNullViolation, code == pgCheckViolation:
			return kapsel.ErrInvalid
		case code[:2] == "08", code[:2] == "53", code[:2] == "58", code == pgReadOnlyTransaction,
			code == pgSerializationFailure, code == pgDeadlockDetected,
			code == pgQueryCanceled, code == pgAdminShutdown, code == pgCrashShutdown,
			code == pgCannotConnectNow, code == pgLockNotAvailable:
			return kapsel.ErrUnavailable
		}
		return nil
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		pgconn.Timeout(err),
		errors.As(err, &connectErr),
		errors.As(err, &netErr),
		errors.Is(err, pgconn.ErrConnClosed),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed):
		return kapsel.ErrUnavailable
	}
	return nil
}
