package ingest_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/ingest"
	"github.com/kapsel-dev/kapsel/internal/testdb"
	"github.com/kapsel-dev/kapsel/store/pgstore"
)

// pgFixture is an ingester on a fresh Postgres schema with one GitHub-signed
// source whose tenant has one endpoint: each event gets one delivery, as
// every 0.1 event had.
type pgFixture struct {
	store *pgstore.Store
	in    *ingest.Ingester
	h     http.Handler
	src   *kapsel.Source
	ep    *kapsel.Endpoint
}

const pgSecret = "bench-secret"

func newPGFixture(tb testing.TB, conns int, cfg *ingest.Config) *pgFixture {
	tb.Helper()
	ctx := context.Background()
	s, err := pgstore.Open(ctx, testdb.New(tb)+fmt.Sprintf("&pool_max_conns=%d", conns), nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	if err := s.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	ten, err := s.TenantInsert(ctx, &kapsel.TenantInsertParams{Name: "t", APIKeyHash: []byte(tb.Name()), Now: time.Now()})
	if err != nil {
		tb.Fatal(err)
	}
	src, err := s.SourceInsert(ctx, &kapsel.SourceInsertParams{Source: &kapsel.Source{
		TenantID: ten.ID, Name: "github",
		Verifier: kapsel.VerifierConfig{Scheme: kapsel.SchemeGitHub, Secrets: []string{pgSecret}},
	}, Now: time.Now()})
	if err != nil {
		tb.Fatal(err)
	}
	ep, err := s.EndpointInsert(ctx, &kapsel.EndpointInsertParams{Endpoint: &kapsel.Endpoint{
		TenantID: ten.ID, Name: "e", URL: "https://example.com/", RetryPolicy: kapsel.DefaultRetryPolicy(),
	}, Now: time.Now()})
	if err != nil {
		tb.Fatal(err)
	}
	in, err := ingest.New(s, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := in.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = in.Stop(context.Background()) })
	return &pgFixture{store: s, in: in, h: in.Handler(), src: src, ep: ep}
}

// request builds a signed GitHub-style delivery.
func (f *pgFixture) request(body []byte, delivery string) *http.Request {
	m := hmac.New(sha256.New, []byte(pgSecret))
	m.Write(body)
	r := httptest.NewRequest(http.MethodPost, "/ingest/"+string(f.src.ID), bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-GitHub-Event", "push")
	r.Header.Set("X-GitHub-Delivery", delivery)
	r.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(m.Sum(nil)))
	return r
}

func (f *pgFixture) count(tb testing.TB) int {
	tb.Helper()
	return f.countRows(tb, "events")
}

// countRows counts the rows of a table (events, deliveries).
func (f *pgFixture) countRows(tb testing.TB, table string) int {
	tb.Helper()
	var n int
	if err := f.store.Pool().QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// TestPostgres runs the ingest guarantees against the real store: every
// 2xx is a committed event with its delivery, one key gives one event (and
// one delivery) under concurrency, and a store that goes away answers 503
// with Retry-After.
func TestPostgres(t *testing.T) {
	t.Parallel()
	f := newPGFixture(t, 4, nil)
	const n = 40
	var wg sync.WaitGroup
	var created, dups atomic.Int32
	ids := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			delivery := fmt.Sprint("d-", i)
			if i%2 == 0 {
				delivery = "shared"
			}
			w := httptest.NewRecorder()
			f.h.ServeHTTP(w, f.request([]byte(`{"n":1}`), delivery))
			var r ingest.Response
			_ = json.Unmarshal(w.Body.Bytes(), &r)
			ids[i] = string(r.ID)
			switch {
			case w.Code == 202 && r.Deliveries == 1:
				created.Add(1)
			case w.Code == 200 && r.Deliveries == 0 && r.Duplicate:
				dups.Add(1)
			default:
				t.Errorf("status %d: %s", w.Code, w.Body)
			}
		}()
	}
	wg.Wait()
	if created.Load() != n/2+1 || dups.Load() != n/2-1 {
		t.Fatalf("%d created, %d duplicates; want %d and %d", created.Load(), dups.Load(), n/2+1, n/2-1)
	}
	for i := 2; i < n; i += 2 {
		if ids[i] != ids[0] {
			t.Fatalf("shared key answered %s and %s", ids[0], ids[i])
		}
	}
	if got, dls := f.count(t), f.countRows(t, "deliveries"); got != n/2+1 || dls != n/2+1 {
		t.Fatalf("%d events and %d deliveries, want %d each", got, dls, n/2+1)
	}
	got, err := f.store.EventGet(context.Background(), &kapsel.EventGetParams{ID: kapsel.EventID(ids[1]), IncludeBody: true})
	if err != nil || string(got.Body) != `{"n":1}` || got.ContentType != "application/json" || got.Headers.Get("X-Github-Event") != "push" ||
		got.SourceID != f.src.ID || got.Type != "push" || got.Deliveries != (kapsel.DeliverySummary{Total: 1, Pending: 1}) {
		t.Fatalf("stored %+v, %v", got, err)
	}

	// The database goes away: 503 with Retry-After, never a 2xx.
	f.store.Close()
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, f.request([]byte(`{"n":2}`), "after-close"))
	if w.Code != 503 || w.Header().Get("Retry-After") == "" {
		t.Fatalf("closed store: %d %s", w.Code, w.Body)
	}
}

// TestPostgresFanOutAndLegacyID: on Postgres, an ingest fans out by the
// subscriptions in its own transaction (the answer counts what committed),
// and a source made by the 0.1 upgrade answers at its old /ingest/ep_… URL.
func TestPostgresFanOutAndLegacyID(t *testing.T) {
	t.Parallel()
	f := newPGFixture(t, 2, nil)
	ctx := context.Background()
	// The fixture's endpoint takes everything; add one for pushes from this
	// source, one for another source and one for issues.
	other := kapsel.NewSourceID()
	for _, sub := range []kapsel.Subscription{
		{EventTypes: []string{"push"}, SourceIDs: []kapsel.SourceID{f.src.ID}},
		{SourceIDs: []kapsel.SourceID{other}},
		{EventTypes: []string{"issues"}},
	} {
		if _, err := f.store.EndpointInsert(ctx, &kapsel.EndpointInsertParams{Endpoint: &kapsel.Endpoint{
			TenantID: f.src.TenantID, Name: "e", URL: "https://example.com/", Subscription: sub,
		}, Now: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, f.request([]byte(`{"n":1}`), "fan-out"))
	var r ingest.Response
	if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil || w.Code != 202 || r.Deliveries != 2 {
		t.Fatalf("fan-out: %d %s, want 202 with 2 deliveries", w.Code, w.Body)
	}
	if n := f.countRows(t, "deliveries"); n != 2 {
		t.Fatalf("%d deliveries stored, want 2", n)
	}

	// A 0.1 endpoint's source: "src_" and the endpoint's ULID.
	old := kapsel.NewEndpointID()
	if _, err := f.store.SourceInsert(ctx, &kapsel.SourceInsertParams{Source: &kapsel.Source{
		ID: kapsel.LegacySourceID(old), TenantID: f.src.TenantID, Name: "0.1",
		Verifier: kapsel.VerifierConfig{Scheme: kapsel.SchemeGitHub, Secrets: []string{pgSecret}},
	}, Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	req := f.request([]byte(`{"n":2}`), "legacy")
	req.URL.Path = "/ingest/" + string(old)
	w = httptest.NewRecorder()
	f.h.ServeHTTP(w, req)
	if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil || w.Code != 202 {
		t.Fatalf("ingest at the 0.1 URL: %d %s", w.Code, w.Body)
	}
	got, err := f.store.EventGet(ctx, &kapsel.EventGetParams{ID: r.ID})
	if err != nil || got.SourceID != kapsel.LegacySourceID(old) {
		t.Fatalf("event of the 0.1 URL: %+v, %v; want source %s", got, err, kapsel.LegacySourceID(old))
	}
}
