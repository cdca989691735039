package main

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/kapsel-dev/kapsel/internal/testdb"
)

// TestMigrateCommandsPostgres: with migrations at start turned off, a
// fresh schema is behind, /readyz says so (503 E3004), "kapseld migrate up"
// brings it current and /readyz turns 200 without a restart.
func TestMigrateCommandsPostgres(t *testing.T) {
	t.Parallel()
	dsn := testdb.New(t)
	vars := map[string]string{"KAPSEL_DATABASE_URL": dsn}
	migrate := func(sub string) string {
		t.Helper()
		var out strings.Builder
		if err := run(context.Background(), []string{"migrate", sub}, env(vars), &out, io.Discard, nil); err != nil {
			t.Fatalf("migrate %s: %v", sub, err)
		}
		return out.String()
	}
	if got := migrate("status"); !strings.Contains(got, "postgres store: schema version 0,") || !strings.Contains(got, "behind") {
		t.Fatalf("status of a fresh schema: %q", got)
	}

	r := startServer(t, map[string]string{"KAPSEL_DATABASE_URL": dsn, "KAPSEL_MIGRATE": "false", "KAPSEL_ADMIN_TOKEN": "adm"})
	if st, p, _ := r.call("GET", "/readyz", "", nil); st != 503 || p["code"] != "E3004" {
		t.Fatalf("readyz with the schema behind: %d %v", st, p)
	}
	if !strings.Contains(r.logs.String(), "schema not current") {
		t.Fatal("no warning about the schema at start")
	}

	if got := migrate("up"); !strings.Contains(got, "(current)") {
		t.Fatalf("migrate up: %q", got)
	}
	r.must(200, "GET", "/readyz", "", nil)
	r.must(201, "POST", "/v1/tenants", "adm", map[string]any{"name": "after-migrate"})
	if got := migrate("up"); !strings.Contains(got, "(current)") {
		t.Fatalf("migrate up twice: %q", got)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}

	// A broken connection string fails without printing its password.
	for _, dsn := range []string{
		"postgres://kapsel:hunter2@127.0.0.1:1/x?connect_timeout=1",
		"postgres://kapsel:hunter2@127.0.0.1:1/x?sslmode=bogus",
		"host=127.0.0.1 port=1 password=hunter2 connect_timeout=1",
	} {
		vars["KAPSEL_DATABASE_URL"] = dsn
		for _, args := range [][]string{{"migrate", "status"}, {"serve", "-listen", "127.0.0.1:0"}} {
			var stderr syncBuffer
			err := run(context.Background(), args, env(vars), io.Discard, &stderr, nil)
			if err == nil || strings.Contains(err.Error()+stderr.String(), "hunter2") {
				t.Fatalf("%v on %q: %v\n%s", args, dsn, err, stderr.String())
			}
		}
	}
}
