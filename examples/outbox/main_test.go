package main

import (
	"context"
	"strings"
	"testing"

	"github.com/kapsel-dev/kapsel/internal/testdb"
)

// TestRun runs the example on a schema of its own on the test database
// (KAPSEL_TEST_DATABASE_URL; skipped without one unless KAPSEL_REQUIRE_DB=1).
func TestRun(t *testing.T) {
	var out strings.Builder
	if err := run(context.Background(), testdb.New(t), &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{"committed: the order and its webhook", "rolled back (payment declined): 1 webhook stored in all"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
}
