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
		"event fanned out to 2 endpoints",
		`destination received /hooks/billing {"order":42}`,
		`destination received /hooks/warehouse {"order":42}`,
		"TenantInsert                1",
		"EndpointInsert              2",
		"EventInsertMany             1",
		"EventInsertMany deliveries  2",
		"DeliveryComplete            2",
		"failed writes: 0",
	} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
}
