package main

import (
	"context"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	var out strings.Builder
	if err := run(context.Background(), &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		`destination received {"type":"order.placed","order":42}`,
		"TenantInsert     1",
		"EndpointInsert   1",
		"EventInsertMany  1",
		"EventClaim       1",
		"EventComplete    1",
		"failed writes: 0",
	} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
}
