package testdb

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestNewGivesIsolatedSchemas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := New(t), New(t)
	ca, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close(ctx)
	cb, err := pgx.Connect(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close(ctx)
	if _, err := ca.Exec(ctx, "CREATE TABLE probe (x int)"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := cb.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'probe' AND schemaname = current_schema()").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("schema b sees schema a's table")
	}
	var sa string
	if err := ca.QueryRow(ctx, "SELECT current_schema()").Scan(&sa); err != nil || sa[:3] != "kt_" {
		t.Fatalf("current_schema = %q, %v", sa, err)
	}
}
