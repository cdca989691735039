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
// endpoint.
type pgFixture struct {
	store *pgstore.Store
	in    *ingest.Ingester
	h     http.Handler
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
	ep, err := s.EndpointInsert(ctx, &kapsel.EndpointInsertParams{Endpoint: &kapsel.Endpoint{
		TenantID: ten.ID, Name: "e", URL: "https://example.com/", RetryPolicy: kapsel.DefaultRetryPolicy(),
		IngestVerifier: kapsel.VerifierConfig{Scheme: kapsel.SchemeGitHub, Secrets: []string{pgSecret}},
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
	return &pgFixture{store: s, in: in, h: in.Handler(), ep: ep}
}

// request builds a signed GitHub-style delivery.
func (f *pgFixture) request(body []byte, delivery string) *http.Request {
	m := hmac.New(sha256.New, []byte(pgSecret))
	m.Write(body)
	r := httptest.NewRequest(http.MethodPost, "/ingest/"+string(f.ep.ID), bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-GitHub-Event", "push")
	r.Header.Set("X-GitHub-Delivery", delivery)
	r.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(m.Sum(nil)))
	return r
}

func (f *pgFixture) count(tb testing.TB) int {
	tb.Helper()
	var n int
	if err := f.store.Pool().QueryRow(context.Background(), "SELECT count(*) FROM events").Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// TestPostgres runs the ingest guarantees against the real store: every
// 2xx is a committed row, one key gives one event under concurrency, and a
// store that goes away answers 503 with Retry-After.
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
			switch w.Code {
			case 202:
				created.Add(1)
			case 200:
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
	if got := f.count(t); got != n/2+1 {
		t.Fatalf("%d rows, want %d", got, n/2+1)
	}
	got, err := f.store.EventGet(context.Background(), &kapsel.EventGetParams{ID: kapsel.EventID(ids[1]), IncludeBody: true})
	if err != nil || string(got.Body) != `{"n":1}` || got.ContentType != "application/json" || got.Headers.Get("X-Github-Event") != "push" {
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
