package main

import (
	"context"
	"strings"
	"testing"

	"github.com/kapsel-dev/kapsel/internal/testdb"
)

// TestRun runs the example on its own schema of the test database (see
// internal/testdb: skipped when there is none, unless KAPSEL_REQUIRE_DB=1).
func TestRun(t *testing.T) {
	url := testdb.New(t)
	var out strings.Builder
	if err := run(context.Background(), &out, url); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"order of 4200 cents: committed",
		"order of 999 cents: payment declined: rolled back",
		`destination received {"type":"order.placed","total_cents":4200}`,
		"events stored: 1",
	} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
}
