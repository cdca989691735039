// Package testdb gives tests an isolated Postgres schema.
//
// The server comes from KAPSEL_TEST_DATABASE_URL when it is set; otherwise
// from a throw-away container started through Docker (ory/dockertest) when a
// Docker engine answers; otherwise the test is skipped — unless
// KAPSEL_REQUIRE_DB=1, where a missing database fails the test instead (CI
// sets it, so Postgres tests can never silently not run).
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ory/dockertest/v3"
	"github.com/ory/dockertest/v3/docker"
)

// Environment variables read by this package.
const (
	EnvURL     = "KAPSEL_TEST_DATABASE_URL"
	EnvRequire = "KAPSEL_REQUIRE_DB"
)

var (
	serverOnce sync.Once
	serverURL  string
	serverErr  error
)

// ServerURL returns the connection string of the test server, skipping or
// failing t as the package doc says when there is none.
func ServerURL(t testing.TB) string {
	t.Helper()
	serverOnce.Do(func() { serverURL, serverErr = findServer() })
	if serverErr != nil {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("testdb: %s=1 but no database: %v", EnvRequire, serverErr)
		}
		t.Skipf("testdb: no database (%v); set %s to run", serverErr, EnvURL)
	}
	return serverURL
}

// New creates an empty schema on the test server, dropped when t ends, and
// returns a connection string whose search_path is that schema. Tests that
// each call New can run in parallel without seeing each other's rows.
func New(t testing.TB) string {
	t.Helper()
	base := ServerURL(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "kt_" + hex.EncodeToString(b[:])

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("testdb: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("testdb: create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("testdb: connect for cleanup: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("testdb: drop schema %s: %v", schema, err)
		}
	})
	return WithSearchPath(base, schema)
}

// WithSearchPath returns connURL with its search_path set to schema.
func WithSearchPath(connURL, schema string) string {
	u, err := url.Parse(connURL)
	if err != nil || u.Scheme == "" {
		// Keyword/value form.
		return connURL + " search_path=" + schema
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func findServer() (string, error) {
	if u := os.Getenv(EnvURL); u != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			return "", fmt.Errorf("%s does not answer: %w", EnvURL, err)
		}
		return u, conn.Close(ctx)
	}
	return startContainer()
}

// startContainer runs postgres:16 through Docker. The container removes
// itself after ten minutes, so a crashed test run leaves nothing behind.
func startContainer() (string, error) {
	pool, err := dockertest.NewPool("")
	if err != nil {
		return "", fmt.Errorf("%s unset and no Docker: %w", EnvURL, err)
	}
	if err := pool.Client.Ping(); err != nil {
		return "", fmt.Errorf("%s unset and Docker does not answer: %w", EnvURL, err)
	}
	res, err := pool.RunWithOptions(&dockertest.RunOptions{
		Repository: "postgres",
		Tag:        "16",
		Env:        []string{"POSTGRES_PASSWORD=kapsel", "POSTGRES_DB=kapsel"},
	}, func(hc *docker.HostConfig) {
		hc.AutoRemove = true
		hc.RestartPolicy = docker.RestartPolicy{Name: "no"}
	})
	if err != nil {
		return "", fmt.Errorf("starting a Postgres container: %w", err)
	}
	_ = res.Expire(600)
	u := fmt.Sprintf("postgres://postgres:kapsel@%s/kapsel?sslmode=disable", res.GetHostPort("5432/tcp"))
	pool.MaxWait = 60 * time.Second
	if err := pool.Retry(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			return err
		}
		return conn.Close(ctx)
	}); err != nil {
		_ = pool.Purge(res)
		return "", fmt.Errorf("the Postgres container never answered: %w", err)
	}
	return u, nil
}
