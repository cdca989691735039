// Package target is what kapsel-bench measures: kapseld as a subprocess (or
// one already running), the River baseline service, and a no-op service
// for calibrating the load generator — each behind an HTTP address on
// 127.0.0.1 — plus the throw-away Postgres databases they use.
package target

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultDatabaseURL is the local Postgres the CI uses.
const DefaultDatabaseURL = "postgres://root@127.0.0.1:5432/postgres?sslmode=disable"

// Database is a database created for one run on the server adminURL points
// at; Drop removes it.
type Database struct {
	URL      string
	adminURL string
	name     string
}

// CreateDatabase creates a fresh database named kapsel_bench_<pid>_<time>_<suffix>.
func CreateDatabase(ctx context.Context, adminURL, suffix string) (*Database, error) {
	u, err := url.Parse(adminURL)
	if err != nil {
		return nil, fmt.Errorf("parsing --database-url: %w", err)
	}
	name := fmt.Sprintf("kapsel_bench_%d_%d_%s", os.Getpid(), time.Now().Unix(), suffix)
	if err := adminExec(ctx, adminURL, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return nil, fmt.Errorf("creating database %s: %w", name, err)
	}
	u.Path = "/" + name
	return &Database{URL: u.String(), adminURL: adminURL, name: name}, nil
}

// Drop removes the database, closing what is still connected to it.
func (d *Database) Drop(ctx context.Context) error {
	return adminExec(ctx, d.adminURL, "DROP DATABASE IF EXISTS "+pgx.Identifier{d.name}.Sanitize()+" WITH (FORCE)")
}

func adminExec(ctx context.Context, adminURL, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}
