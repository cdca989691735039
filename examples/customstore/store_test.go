package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/store/memstore"
	"github.com/kapsel-dev/kapsel/store/storetest"
)

// TestConformance proves the wrapper keeps the store contract.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) kapsel.Store { return Wrap(memstore.New()) })
}

// TestCounts checks that writes are counted per row, failures apart, and
// reads not at all.
func TestCounts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := Wrap(memstore.New())

	ten, err := s.TenantInsert(ctx, &kapsel.TenantInsertParams{Name: "acme", APIKeyHash: []byte("hash"), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.TenantInsert(ctx, &kapsel.TenantInsertParams{Name: "dup", APIKeyHash: []byte("hash"), Now: now})
	if !errors.Is(err, kapsel.ErrDuplicate) {
		t.Fatalf("a second tenant with the same key hash: %v, want ErrDuplicate", err)
	}
	if _, err := s.TenantGet(ctx, &kapsel.TenantGetParams{ID: ten.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EventClaim(ctx, &kapsel.EventClaimParams{Limit: 10, LeaseDuration: time.Minute, Now: now}); err != nil {
		t.Fatal(err)
	}

	if w := s.Writes(); len(w) != 1 || w["TenantInsert"] != 1 {
		t.Fatalf("Writes() = %v, want only TenantInsert: 1 (an empty claim writes nothing)", w)
	}
	if f := s.Failures(); len(f) != 1 || f["TenantInsert"] != 1 {
		t.Fatalf("Failures() = %v, want TenantInsert: 1", f)
	}
}
