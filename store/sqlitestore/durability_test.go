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

// seed inserts a tenant, an endpoint and n events, and returns the events.
func seed(t testing.TB, s *sqlitestore.Store, n int) []*kapsel.Event {
	t.Helper()
	ctx := t.Context()
	ten, err := s.TenantInsert(ctx, &kapsel.TenantInsertParams{Name: "t", APIKeyHash: []byte(t.Name()), Now: base})
	if err != nil {
		t.Fatalf("TenantInsert: %v", err)
	}
	ep, err := s.EndpointInsert(ctx, &kapsel.EndpointInsertParams{
		Endpoint: &kapsel.Endpoint{TenantID: ten.ID, Name: "e", URL: "https://example.com"}, Now: base,
	})
	if err != nil {
		t.Fatalf("EndpointInsert: %v", err)
	}
	in := make([]*kapsel.EventInsertParams, n)
	for i := range in {
		in[i] = &kapsel.EventInsertParams{EndpointID: ep.ID, Body: []byte(`{"n":1}`), ContentType: "application/json"}
	}
	res, err := s.EventInsertMany(ctx, &kapsel.EventInsertManyParams{Events: in, Now: base})
	if err != nil {
		t.Fatalf("EventInsertMany: %v", err)
	}
	out := make([]*kapsel.Event, n)
	for i, r := range res {
		out[i] = r.Event
	}
	return out
}

func TestReopenKeepsEverything(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "kapsel-data") // created by Open
	s := open(t, dir)
	evs := seed(t, s, 3)
	claimed, err := s.EventClaim(t.Context(), &kapsel.EventClaimParams{Limit: 1, LeaseDuration: time.Minute, Now: base})
	if err != nil || len(claimed) != 1 {
		t.Fatalf("EventClaim: %v, %d events", err, len(claimed))
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
		if string(got.Body) != `{"n":1}` {
			t.Fatalf("body after reopening = %q", got.Body)
		}
	}
	got, err := s.EventGet(t.Context(), &kapsel.EventGetParams{ID: claimed[0].ID})
	if err != nil || got.Status != kapsel.EventDelivering || got.LeaseToken != claimed[0].LeaseToken {
		t.Fatalf("claimed event after reopening: %+v, %v", got, err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping after reopening: %v", err)
	}
}

func TestClosedStoreIsUnavailable(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir())
	seed(t, s, 1)
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
		Events: []*kapsel.EventInsertParams{{EndpointID: kapsel.NewEndpointID()}}, Now: base,
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

// BenchmarkEventInsertMany measures group-committed ingest: b.N batches of
// 100 events, one transaction and one fsync each.
func BenchmarkEventInsertMany(b *testing.B) {
	s, err := sqlitestore.Open(b.Context(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ep := seed(b, s, 1)[0].EndpointID
	in := make([]*kapsel.EventInsertParams, 100)
	for i := range in {
		in[i] = &kapsel.EventInsertParams{EndpointID: ep, Body: make([]byte, 512), ContentType: "application/json"}
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.EventInsertMany(b.Context(), &kapsel.EventInsertManyParams{Events: in, Now: base}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(in))/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkClaimComplete measures the dispatcher's loop over a backlog:
// claim 50, complete 50 as delivered.
func BenchmarkClaimComplete(b *testing.B) {
	s, err := sqlitestore.Open(b.Context(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	seed(b, s, 20000)
	b.ResetTimer()
	done := 0
	for b.Loop() {
		evs, err := s.EventClaim(b.Context(), &kapsel.EventClaimParams{Limit: 50, LeaseDuration: time.Minute, Now: base})
		if err != nil || len(evs) == 0 {
			b.Fatalf("claim: %v, %d events (backlog too small for b.N)", err, len(evs))
		}
		cs := make([]kapsel.EventCompletion, len(evs))
		for i, e := range evs {
			cs[i] = kapsel.EventCompletion{EventID: e.ID, LeaseToken: e.LeaseToken, Status: kapsel.EventDelivered,
				Attempt: kapsel.Attempt{StatusCode: 200, StartedAt: base}}
		}
		if _, err := s.EventComplete(b.Context(), &kapsel.EventCompleteParams{Completions: cs, Now: base}); err != nil {
			b.Fatal(err)
		}
		done += len(evs)
	}
	b.ReportMetric(float64(done)/b.Elapsed().Seconds(), "deliveries/s")
}
