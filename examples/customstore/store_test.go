package main

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/service"
	"github.com/kapsel-dev/kapsel/store/memstore"
	"github.com/kapsel-dev/kapsel/store/storetest"
)

// TestConformance proves the wrapper keeps the store contract.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) kapsel.Store { return Wrap(memstore.New()) })
}

// TestCounts checks that writes are counted per row, failures apart, and
// reads not at all. It writes through the service, as an application does.
func TestCounts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := Wrap(memstore.New())
	svc, err := service.New(s, &service.Config{Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}

	ten, _, err := svc.CreateTenant(ctx, service.TenantCreate{Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.GetTenant(ctx, ten.ID); err != nil {
		t.Fatal(err)
	}
	// Refused by the service before the store is asked: not a store failure.
	if _, _, err := svc.CreateEndpoint(ctx, ten.ID, service.EndpointCreate{URL: "ftp://example.com"}); kapsel.CodeOf(err) != kapsel.CodeInvalidURL {
		t.Fatalf("CreateEndpoint with an ftp URL: %v, want E1007", err)
	}
	// Refused by the store: a failure.
	if _, _, err := svc.RotateTenantAPIKey(ctx, "ten_unknown"); !errors.Is(err, kapsel.ErrNotFound) {
		t.Fatalf("RotateTenantAPIKey of an unknown tenant: %v, want ErrNotFound", err)
	}

	if w := s.Writes(); len(w) != 1 || w["TenantInsert"] != 1 {
		t.Fatalf("Writes() = %v, want only TenantInsert: 1", w)
	}
	if f := s.Failures(); len(f) != 1 || f["TenantRotateAPIKey"] != 1 {
		t.Fatalf("Failures() = %v, want TenantRotateAPIKey: 1", f)
	}

	// A source, two endpoints and an event fanned out to both: the event
	// and its two deliveries are counted apart; a duplicate adds nothing.
	src, err := svc.CreateSource(ctx, ten.ID, service.SourceCreate{Name: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.PauseSource(ctx, ten.ID, src.ID); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b"} {
		ep, _, err := svc.CreateEndpoint(ctx, ten.ID, service.EndpointCreate{Name: name, URL: "https://example.com/" + name})
		if err != nil {
			t.Fatal(err)
		}
		// Paused: their deliveries wait, and nothing leaves the machine.
		if _, err := svc.PauseEndpoint(ctx, ten.ID, ep.ID); err != nil {
			t.Fatal(err)
		}
	}
	if err := svc.Start(ctx); err != nil { // the ingester commits sends; the dispatcher claims nothing paused
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(context.Background()) })
	for range 2 {
		if _, err := svc.Send(ctx, ten.ID, service.Send{Body: []byte(`{}`), IdempotencyKey: "k"}); err != nil {
			t.Fatal(err)
		}
	}
	w := s.Writes()
	for method, want := range map[string]int{"SourceInsert": 1, "SourceSetState": 1, "EndpointInsert": 2,
		"EndpointSetState": 2, "EventInsertMany": 1, "EventInsertMany deliveries": 2} {
		if w[method] != want {
			t.Errorf("Writes()[%s] = %d, want %d (all: %v)", method, w[method], want, w)
		}
	}

	// Changing and deleting the tenant: one row each (the delete's sources,
	// endpoints and deliveries are the store's business); deleting it
	// again is a failure.
	name := "acme corp"
	if _, err := svc.UpdateTenant(ctx, ten.ID, service.TenantUpdate{Name: &name}); err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteTenant(ctx, ten.ID); err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteTenant(ctx, ten.ID); kapsel.CodeOf(err) != kapsel.CodeNotFound {
		t.Fatalf("a second DeleteTenant: %v, want E1011", err)
	}
	if w := s.Writes(); w["TenantUpdate"] != 1 || w["TenantDelete"] != 1 {
		t.Errorf("Writes() = %v, want TenantUpdate: 1 and TenantDelete: 1", w)
	}
	if f := s.Failures(); f["TenantDelete"] != 1 {
		t.Errorf("Failures() = %v, want TenantDelete: 1", f)
	}
}

// TestCapabilitiesStayDiscoverable: the wrapper hides the inner store's
// methods behind the embedded interface, but kapsel.StoreAs finds them
// through Unwrap.
func TestCapabilitiesStayDiscoverable(t *testing.T) {
	inner := memstore.New()
	var s kapsel.Store = Wrap(inner)
	if _, ok := s.(*memstore.Store); ok {
		t.Fatal("the wrapper is itself a *memstore.Store")
	}
	got, ok := kapsel.StoreAs[*memstore.Store](s)
	if !ok || got != inner {
		t.Fatalf("StoreAs through the wrapper = %v, %t; want the inner store", got, ok)
	}
}
