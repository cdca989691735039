package sqlitestore_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/store/sqlitestore"
)

var base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// open opens a store in dir and closes it at the end of t.
func open(t *testing.T, dir string) *sqlitestore.Store {
	t.Helper()
	s, err := sqlitestore.Open(t.Context(), dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// seeded is what seed made.
type seeded struct {
	tenant    *kapsel.Tenant
	source    *kapsel.Source
	endpoints []*kapsel.Endpoint
	events    []*kapsel.Event
}

// seed inserts a tenant, a source, endpoints subscribed to everything and
// n events of the source, each fanned out to every endpoint.
func seed(t testing.TB, s *sqlitestore.Store, endpoints, n int) *seeded {
	t.Helper()
	ctx := t.Context()
	out := &seeded{}
	var err error
	out.tenant, err = s.TenantInsert(ctx, &kapsel.TenantInsertParams{Name: "t", APIKeyHash: []byte(t.Name()), Now: base})
	if err != nil {
		t.Fatalf("TenantInsert: %v", err)
	}
	out.source, err = s.SourceInsert(ctx, &kapsel.SourceInsertParams{Source: &kapsel.Source{TenantID: out.tenant.ID, Name: "s"}, Now: base})
	if err != nil {
		t.Fatalf("SourceInsert: %v", err)
	}
	for range endpoints {
		ep, err := s.EndpointInsert(ctx, &kapsel.EndpointInsertParams{
			Endpoint: &kapsel.Endpoint{TenantID: out.tenant.ID, Name: "e", URL: "https://example.com"}, Now: base,
		})
		if err != nil {
			t.Fatalf("EndpointInsert: %v", err)
		}
		out.endpoints = append(out.endpoints, ep)
	}
	out.events = insert(t, s, out.source, n, 7, base)
	return out
}

// insert inserts n events of src, bodies of size bytes, in batches of up
// to 1,000, and returns them.
func insert(t testing.TB, s *sqlitestore.Store, src *kapsel.Source, n, size int, at time.Time) []*kapsel.Event {
	t.Helper()
	var out []*kapsel.Event
	for n > 0 {
		in := make([]*kapsel.EventInsertParams, min(n, 1000))
		for i := range in {
			in[i] = &kapsel.EventInsertParams{TenantID: src.TenantID, SourceID: src.ID, Body: make([]byte, size), ContentType: "application/json"}
		}
		res, err := s.EventInsertMany(t.Context(), &kapsel.EventInsertManyParams{Events: in, Now: at})
		if err != nil {
			t.Fatalf("EventInsertMany: %v", err)
		}
		for _, r := range res {
			out = append(out, r.Event)
		}
		n -= len(in)
	}
	return out
}

func TestReopenKeepsEverything(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "kapsel-data") // created by Open
	s := open(t, dir)
	evs := seed(t, s, 2, 3).events
	claimed, err := s.DeliveryClaim(t.Context(), &kapsel.DeliveryClaimParams{Limit: 1, LeaseDuration: time.Minute, Now: base})
	if err != nil || len(claimed) != 1 {
		t.Fatalf("DeliveryClaim: %v, %d deliveries", err, len(claimed))
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data directory: %v, mode %v; want 0700", err, fi.Mode().Perm())
	}

	s = open(t, dir)
	for _, e := range evs {
		got, err := s.EventGet(t.Context(), &kapsel.EventGetParams{ID: e.ID, IncludeBody: true})
		if err != nil {
			t.Fatalf("EventGet after reopening: %v", err)
		}
		if len(got.Body) != 7 || got.Deliveries.Total != 2 {
			t.Fatalf("event after reopening = %+v, want its 7-byte body and 2 deliveries", got)
		}
	}
	got, err := s.DeliveryGet(t.Context(), &kapsel.DeliveryGetParams{ID: claimed[0].ID})
	if err != nil || got.Status != kapsel.DeliveryDelivering || got.LeaseToken != claimed[0].LeaseToken {
		t.Fatalf("claimed delivery after reopening: %+v, %v", got, err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping after reopening: %v", err)
	}
}

func TestClosedStoreIsUnavailable(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir())
	seed(t, s, 1, 1)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Ping(t.Context()); !errors.Is(err, kapsel.ErrUnavailable) {
		t.Fatalf("Ping after Close = %v, want ErrUnavailable", err)
	}
	_, err := s.EventInsertMany(t.Context(), &kapsel.EventInsertManyParams{
		Events: []*kapsel.EventInsertParams{{TenantID: kapsel.NewTenantID()}}, Now: base,
	})
	if !errors.Is(err, kapsel.ErrUnavailable) {
		t.Fatalf("EventInsertMany after Close = %v, want ErrUnavailable", err)
	}
}

func TestOpenRefusesEmptyPath(t *testing.T) {
	t.Parallel()
	if _, err := sqlitestore.Open(t.Context(), ""); !errors.Is(err, kapsel.ErrInvalid) {
		t.Fatalf("Open(\"\") = %v, want ErrInvalid", err)
	}
}
