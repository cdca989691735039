package pgstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// migrationsFS holds the numbered migrations, migrations/NNNN_name.sql. Each
// runs once, in order; a released migration is never edited, a change is a
// new file.
//
//go:embed migrations/*.sql
var migrationsFS embed.FS

// migration is one embedded schema change.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations are the embedded migrations in version order.
var migrations = mustLoadMigrations(migrationsFS)

// LatestSchemaVersion is the newest schema version this binary knows.
func LatestSchemaVersion() int { return migrations[len(migrations)-1].version }

// mustLoadMigrations reads and checks the embedded files: versions must run
// 1, 2, 3… without gaps or duplicates. A bad file is a build defect, so it
// panics (at init, caught by every test).
func mustLoadMigrations(fsys fs.FS) []migration {
	ms, err := loadMigrations(fsys)
	if err != nil {
		panic("pgstore: " + err.Error())
	}
	return ms
}

func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, name := range names {
		base := strings.TrimSuffix(path.Base(name), ".sql")
		num, label, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 || label == "" {
			return nil, fmt.Errorf("migration %s: name must be NNNN_name.sql", name)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: label, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration versions must be 1…n without gaps; found %d at position %d", m.version, i+1)
		}
	}
	if len(ms) == 0 {
		return nil, errors.New("no migrations embedded")
	}
	return ms, nil
}

// The migrations table records each applied version. It is created by
// Migrate itself, outside the numbered migrations, so that Migrate can read
// the version before anything else.
const createMigrationsTable = `CREATE TABLE IF NOT EXISTS kapsel_schema_migrations (
	version    integer PRIMARY KEY,
	name       text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`

// migrateLock serialises Migrate calls on one schema, across processes: the
// advisory lock is keyed by the schema's name, so installations in other
// schemas (parallel tests) do not wait for each other. It is a transaction
// lock, released at commit or rollback, even if the process dies.
const migrateLock = `SELECT pg_advisory_xact_lock(hashtext('kapsel_migrate'), hashtext(current_schema()))`

// Migrate applies the migrations the schema lacks, all in one transaction
// under an advisory lock: concurrent Migrate calls (several kapseld starting
// at once) apply each migration exactly once, and a failure leaves the
// schema as it was. Migrating a current schema changes nothing.
func (s *Store) Migrate(ctx context.Context) error { return s.migrateTo(ctx, len(migrations)) }

// migrateTo is Migrate stopping after version upTo; the upgrade tests build
// the schema of an older release with it.
func (s *Store) migrateTo(ctx context.Context, upTo int) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, migrateLock); err != nil {
			return fmt.Errorf("taking the migration lock: %w", err)
		}
		if _, err := tx.Exec(ctx, createMigrationsTable); err != nil {
			return fmt.Errorf("creating kapsel_schema_migrations: %w", err)
		}
		current, err := appliedVersion(ctx, tx)
		if err != nil {
			return err
		}
		for _, m := range migrations[min(current, upTo):upTo] {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("applying migration %04d_%s: %w", m.version, m.name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO kapsel_schema_migrations (version, name) VALUES ($1, $2)`,
				m.version, m.name); err != nil {
				return fmt.Errorf("recording migration %04d: %w", m.version, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("migrating: %w", mapError(err))
	}
	return nil
}

// SchemaVersion returns the applied schema version (0 when none is) and the
// newest version this binary knows. kapseld's `migrate status` prints them.
func (s *Store) SchemaVersion(ctx context.Context) (current, latest int, err error) {
	current, err = appliedVersion(ctx, s.pool)
	if err != nil {
		return 0, 0, mapError(err)
	}
	return current, LatestSchemaVersion(), nil
}

// appliedVersion reads the highest applied version; 0 when the migrations
// table does not exist yet.
func appliedVersion(ctx context.Context, q querier) (int, error) {
	var v int
	err := q.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM kapsel_schema_migrations`).Scan(&v)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading the schema version: %w", err)
	}
	return v, nil
}

// querier is what pgxpool.Pool, pgx.Conn and pgx.Tx have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}
