package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/kapsel-dev/kapsel"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// mapError is the one place where driver errors become Kapsel's sentinels:
//
//   - sql.ErrNoRows, foreign key violation → kapsel.ErrNotFound
//   - unique or primary key violation → kapsel.ErrDuplicate
//   - not-null and check violations → kapsel.ErrInvalid
//   - a locked or busy database (after BusyTimeout), I/O errors, a full
//     disk, a closed store, a cancelled context → kapsel.ErrUnavailable
//
// The driver error stays in the chain for logs. Other errors are returned
// unchanged.
func mapError(err error) error {
	if err == nil {
		return nil
	}
	if sentinel := classify(err); sentinel != nil && !errors.Is(err, sentinel) {
		return fmt.Errorf("%w: %w", sentinel, err)
	}
	return err
}

func classify(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return kapsel.ErrNotFound
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch code := se.Code(); {
		case code == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return kapsel.ErrNotFound
		case code == sqlite3.SQLITE_CONSTRAINT_UNIQUE, code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return kapsel.ErrDuplicate
		case code == sqlite3.SQLITE_CONSTRAINT_NOTNULL, code == sqlite3.SQLITE_CONSTRAINT_CHECK:
			return kapsel.ErrInvalid
		}
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL,
			sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_INTERRUPT, sqlite3.SQLITE_READONLY:
			return kapsel.ErrUnavailable
		}
		return nil
	}
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, sql.ErrConnDone), errors.Is(err, sql.ErrTxDone),
		strings.Contains(err.Error(), "sql: database is closed"):
		return kapsel.ErrUnavailable
	}
	return nil
}
