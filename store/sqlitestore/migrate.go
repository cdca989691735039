package sqlitestore

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"math"
	"sort"
	"strconv"
	"strings"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migration is one numbered schema step.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in version order. File names
// are "<version>_<name>.sql"; versions start at 1 with no gaps.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration file %q is not named <version>_<name>.sql", e.Name())
		}
		body, err := fs.ReadFile(migrationFS, "migrations/"+e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: name, sql: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration versions have a gap before %d", m.version)
		}
	}
	return out, nil
}

// LatestVersion is the schema version this build of the package migrates to.
func LatestVersion() int {
	ms, err := migrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

// migrate applies the migrations newer than the database's version, each in
// its own transaction together with its row in kapsel_migrations. The writer
// connection begins IMMEDIATE transactions, which take SQLite's write lock
// at once, so two processes opening one directory cannot both migrate.
func migrate(ctx context.Context, db *sql.DB, now func() int64) error {
	return migrateTo(ctx, db, now, math.MaxInt)
}

// migrateTo is migrate stopping after version upTo; the upgrade test builds
// the schema of an older release with it.
func migrateTo(ctx context.Context, db *sql.DB, now func() int64, upTo int) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS kapsel_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at INTEGER NOT NULL
	) STRICT`); err != nil {
		return mapError(err)
	}
	for _, m := range ms {
		if m.version > upTo {
			break
		}
		if err := applyMigration(ctx, db, m, now()); err != nil {
			return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
		}
	}
	return nil
}

func applyMigration(ctx context.Context, db *sql.DB, m migration, now int64) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return mapError(err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	var applied int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM kapsel_migrations WHERE version = ?`, m.version).Scan(&applied); err != nil {
		return mapError(err)
	}
	if applied > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return mapError(err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO kapsel_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.version, m.name, now); err != nil {
		return mapError(err)
	}
	return mapError(tx.Commit())
}

// schemaVersion returns the newest applied migration (0: none).
func schemaVersion(ctx context.Context, db *sql.DB) (int, error) {
	var v sql.NullInt64
	err := db.QueryRowContext(ctx, `SELECT max(version) FROM kapsel_migrations`).Scan(&v)
	if err != nil {
		return 0, mapError(err)
	}
	return int(v.Int64), nil
}
