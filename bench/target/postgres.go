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
	"strings"
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
	adminURL = withoutPoolSettings(u)
	if err := adminExec(ctx, adminURL, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return nil, fmt.Errorf("creating database %s: %w", name, err)
	}
	u.Path = "/" + name
	return &Database{URL: u.String(), adminURL: adminURL, name: name}, nil
}

// ExistingDatabase is the database name on the server adminURL points at,
// which this run did not create: Drop must not be called on it.
func ExistingDatabase(adminURL, name string) (*Database, error) {
	u, err := url.Parse(adminURL)
	if err != nil {
		return nil, fmt.Errorf("parsing --database-url: %w", err)
	}
	admin := withoutPoolSettings(u)
	u.Path = "/" + name
	return &Database{URL: u.String(), adminURL: admin, name: name}, nil
}

// Drop removes the database, closing what is still connected to it.
func (d *Database) Drop(ctx context.Context) error {
	return adminExec(ctx, d.adminURL, "DROP DATABASE IF EXISTS "+pgx.Identifier{d.name}.Sanitize()+" WITH (FORCE)")
}

// withoutPoolSettings is u without pgxpool's pool_* settings (such as
// pool_max_conns), which are for the pools of the services measured and
// which a plain connection refuses.
func withoutPoolSettings(u *url.URL) string {
	a := *u
	q := a.Query()
	for k := range q {
		if strings.HasPrefix(k, "pool_") {
			q.Del(k)
		}
	}
	a.RawQuery = q.Encode()
	return a.String()
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

// BackendCPU is the CPU time used so far by the Postgres backends connected
// to the database, by process id, read from /proc (the server runs on this
// machine, as every target does). Backends that ended are not in it, nor is
// the server's shared work (WAL writer, checkpointer).
func (d *Database) BackendCPU(ctx context.Context) (map[int]time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, d.adminURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = $1`, d.name)
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, err
	}
	out := make(map[int]time.Duration, len(pids))
	for _, pid := range pids {
		out[int(pid)] = ProcCPU(int(pid))
	}
	return out, nil
}

// CPUSince is the CPU time the backends of now used after before: a backend
// absent from before started since, and counts whole.
func CPUSince(before, now map[int]time.Duration) time.Duration {
	var sum time.Duration
	for pid, t := range now {
		sum += t - before[pid]
	}
	return sum
}
