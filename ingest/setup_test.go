package ingest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/internal/problem"
	"github.com/kapsel-dev/kapsel/kapseltest"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

// env is one test's ingester, store and clock.
type env struct {
	t     testing.TB
	store *memstore.Store
	clock *kapseltest.Clock
	in    *Ingester
	h     http.Handler
	ctx   context.Context

	mu    sync.Mutex
	infos []kapsel.IngestInfo
	wakes int
}

func (e *env) Wake() { e.mu.Lock(); e.wakes++; e.mu.Unlock() }

// setup starts an ingester on a memstore (or on store when given) with a
// fake clock; cfg may be nil. It is stopped when the test ends.
func setup(t testing.TB, cfg *Config, store ...kapsel.IngestStore) *env {
	t.Helper()
	e := &env{t: t, store: memstore.New(), clock: kapseltest.NewClock(time.Time{}), ctx: context.Background()}
	var c Config
	if cfg != nil {
		c = *cfg
	}
	c.Clock = e.clock
	c.Waker = e
	c.Hooks.OnIngest = func(i kapsel.IngestInfo) { e.mu.Lock(); e.infos = append(e.infos, i); e.mu.Unlock() }
	var s kapsel.IngestStore = e.store
	if len(store) > 0 {
		s = store[0]
	}
	in, err := New(s, &c)
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Start(e.ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := in.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	e.in, e.h = in, in.Handler()
	return e
}

// tenant creates a tenant with the given rate limit (0: unlimited).
func (e *env) tenant(rate float64, burst int) *kapsel.Tenant {
	e.t.Helper()
	tn, err := e.store.TenantInsert(e.ctx, &kapsel.TenantInsertParams{Name: "t", APIKeyHash: []byte(kapsel.NewTenantID()),
		RateLimit: rate, RateBurst: burst, Now: e.clock.Now()})
	if err != nil {
		e.t.Fatal(err)
	}
	return tn
}

// source creates a source with the verifier, for a new unlimited tenant
// when tn is nil. Its tenant has no endpoint: its events are stored with no
// delivery unless the test adds one (e.endpoint).
func (e *env) source(tn *kapsel.Tenant, v kapsel.VerifierConfig) *kapsel.Source {
	e.t.Helper()
	return e.sourceWith(tn, &kapsel.Source{Verifier: v})
}

// sourceWith creates the source src (its Name and TenantID filled in), for
// a new unlimited tenant when tn is nil.
func (e *env) sourceWith(tn *kapsel.Tenant, src *kapsel.Source) *kapsel.Source {
	e.t.Helper()
	if tn == nil {
		tn = e.tenant(0, 0)
	}
	src.TenantID, src.Name = tn.ID, "src"
	out, err := e.store.SourceInsert(e.ctx, &kapsel.SourceInsertParams{Source: src, Now: e.clock.Now()})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// endpoint creates an endpoint of the tenant subscribed to sub, and
// returns its id.
func (e *env) endpoint(tenant kapsel.TenantID, sub kapsel.Subscription) kapsel.EndpointID {
	e.t.Helper()
	ep, err := e.store.EndpointInsert(e.ctx, &kapsel.EndpointInsertParams{Endpoint: &kapsel.Endpoint{
		TenantID: tenant, Name: "ep", URL: "https://example.com/hook", Subscription: sub,
	}, Now: e.clock.Now()})
	if err != nil {
		e.t.Fatal(err)
	}
	return ep.ID
}

// post sends a request to the handler for the source id (or a legacy 0.1
// endpoint id); kv are header name/value pairs.
func (e *env) post(id kapsel.SourceID, body string, kv ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/ingest/"+string(id), bytes.NewBufferString(body))
	for i := 0; i+1 < len(kv); i += 2 {
		r.Header.Add(kv[i], kv[i+1])
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

// accepted decodes a 2xx answer.
func accepted(t *testing.T, w *httptest.ResponseRecorder, status int) Response {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d; body %s", w.Code, status, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}
	var r Response
	if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if _, err := kapsel.ParseEventID(string(r.ID)); err != nil {
		t.Fatalf("id %q: %v", r.ID, err)
	}
	return r
}

// refused checks a problem answer's status and code and returns its detail.
func refused(t *testing.T, w *httptest.ResponseRecorder, status int, code kapsel.Code) problem.Details {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d; body %s", w.Code, status, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != problem.ContentType {
		t.Fatalf("content type %q", ct)
	}
	var d problem.Details
	if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil {
		t.Fatal(err)
	}
	if d.Code != string(code) || d.Status != status {
		t.Fatalf("problem %+v, want code %s", d, code)
	}
	return d
}

// events returns every stored event of the source, with bodies.
func (e *env) events(src kapsel.SourceID) []*kapsel.Event {
	e.t.Helper()
	list, err := e.store.EventList(e.ctx, &kapsel.EventListParams{SourceID: src, Limit: kapsel.MaxPageLimit})
	if err != nil {
		e.t.Fatal(err)
	}
	out := make([]*kapsel.Event, 0, len(list))
	for _, ev := range list {
		full, err := e.store.EventGet(e.ctx, &kapsel.EventGetParams{ID: ev.ID, IncludeBody: true})
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, full)
	}
	return out
}

func readAll(t *testing.T, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// hmacHex is the hex HMAC-SHA256 of body keyed by secret: the github and
// hmac-sha256 signature of body (stripe and slack sign a longer message).
func hmacHex(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return hex.EncodeToString(m.Sum(nil))
}
