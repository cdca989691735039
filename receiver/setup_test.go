package receiver_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel/delivery"
	"github.com/kapsel-dev/kapsel/internal/problem"
	"github.com/kapsel-dev/kapsel/kapseltest"
	"github.com/kapsel-dev/kapsel/receiver"
)

// Two signing secrets, as Kapsel generates them: the old one and the one a
// rotation replaces it with.
var (
	oldSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("the old 24-byte secret!!"))
	newSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("the new 32-byte signing secret!!"))
)

// env is one test's verifier, fake clock and the handler behind it.
type env struct {
	t     testing.TB
	clock *kapseltest.Clock
	v     *receiver.Verifier
	h     http.Handler

	mu     sync.Mutex
	calls  int
	bodies []string
	answer func(w http.ResponseWriter, call int) // what next does; nil means 204
}

// setup builds a verifier from cfg (Secrets default to newSecret) with a
// fake clock, wrapping a handler that records what it is called with.
func setup(t testing.TB, cfg receiver.Config) *env {
	t.Helper()
	e := &env{t: t, clock: kapseltest.NewClock(time.Time{})}
	if cfg.Secrets == nil {
		cfg.Secrets = []string{newSecret}
	}
	cfg.Clock = e.clock
	v, err := receiver.New(&cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.v = v
	e.h = v.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("next: reading the restored body: %v", err)
		}
		e.mu.Lock()
		e.calls++
		call := e.calls
		e.bodies = append(e.bodies, string(body))
		answer := e.answer
		e.mu.Unlock()
		if answer != nil {
			answer(w, call)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	return e
}

// Calls returns how many times the next handler was called.
func (e *env) Calls() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls
}

// request builds a delivery signed by Kapsel's signer with secrets at ts.
func (e *env) request(secrets []string, id string, ts time.Time, body string) *http.Request {
	e.t.Helper()
	sig, err := delivery.SignatureHeader(secrets, id, ts, []byte(body))
	if err != nil {
		e.t.Fatalf("signing: %v", err)
	}
	r := httptest.NewRequest(http.MethodPost, "/webhooks", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set(receiver.IDHeader, id)
	r.Header.Set(receiver.TimestampHeader, strconv.FormatInt(ts.Unix(), 10))
	r.Header.Set(receiver.SignatureHeader, sig)
	return r
}

// signed is request signed with newSecret at the clock's time.
func (e *env) signed(id, body string) *http.Request {
	e.t.Helper()
	return e.request([]string{newSecret}, id, e.clock.Now(), body)
}

// serve runs r through the wrapped handler.
func (e *env) serve(r *http.Request) *httptest.ResponseRecorder {
	e.t.Helper()
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

// requireStatus fails t unless w answered status.
func requireStatus(t testing.TB, w *httptest.ResponseRecorder, status int) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status = %d, want %d (body %q)", w.Code, status, w.Body.String())
	}
}

// requireProblem fails t unless w is a problem+json answer with status and
// code, and returns its detail.
func requireProblem(t testing.TB, w *httptest.ResponseRecorder, status int, code string) string {
	t.Helper()
	requireStatus(t, w, status)
	if ct := w.Header().Get("Content-Type"); ct != problem.ContentType {
		t.Fatalf("Content-Type = %q, want %q", ct, problem.ContentType)
	}
	var p problem.Details
	if err := json.NewDecoder(bytes.NewReader(w.Body.Bytes())).Decode(&p); err != nil {
		t.Fatalf("decoding the problem: %v", err)
	}
	if p.Code != code || p.Status != status {
		t.Fatalf("problem = %+v, want code %s status %d", p, code, status)
	}
	return p.Detail
}
