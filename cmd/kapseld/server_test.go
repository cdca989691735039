package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// running is a kapseld started by startServer.
type running struct {
	t      testing.TB
	srv    *server
	base   string // http://127.0.0.1:port
	logs   *syncBuffer
	stderr *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

// startServer runs "kapseld serve" with env (listening on 127.0.0.1:0 unless
// env says otherwise) until the test ends or stop is called.
func startServer(t testing.TB, vars map[string]string) *running {
	t.Helper()
	e := map[string]string{"KAPSEL_LISTEN": "127.0.0.1:0"}
	for k, v := range vars {
		e[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{t: t, logs: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	r.stderr = r.logs
	ready := make(chan *server, 1)
	go func() {
		r.done <- run(ctx, []string{"serve"}, env(e), io.Discard, r.logs, func(s *server) { ready <- s })
	}()
	select {
	case r.srv = <-ready:
	case err := <-r.done:
		cancel()
		t.Fatalf("kapseld did not start: %v\nlogs:\n%s", err, r.logs.String())
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("kapseld did not start within 30 s")
	}
	r.base = "http://" + r.srv.Addr().String()
	t.Cleanup(func() { _ = r.stop() })
	return r
}

// stop cancels the run context (what SIGTERM does) and returns run's error.
func (r *running) stop() error {
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // later calls see the same result
		return err
	case <-time.After(45 * time.Second):
		return context.DeadlineExceeded
	}
}

// call sends a request and returns the status and decoded JSON body.
func (r *running) call(method, path, token string, body any, header ...string) (int, map[string]any, http.Header) {
	r.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, r.base+path, rd)
	if err != nil {
		r.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 && strings.Contains(resp.Header.Get("Content-Type"), "json") {
		if err := json.Unmarshal(raw, &out); err != nil {
			r.t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
	return resp.StatusCode, out, resp.Header
}

// must sends a request that must answer status.
func (r *running) must(status int, method, path, token string, body any, header ...string) map[string]any {
	r.t.Helper()
	got, out, _ := r.call(method, path, token, body, header...)
	if got != status {
		r.t.Fatalf("%s %s: status %d, want %d: %v", method, path, got, status, out)
	}
	return out
}

// TestGeneratedAdminToken: without KAPSEL_ADMIN_TOKEN a token is generated,
// printed once on stderr, and works; it never reaches a log line.
func TestGeneratedAdminToken(t *testing.T) {
	t.Parallel()
	r := startServer(t, map[string]string{"KAPSEL_DATA_DIR": t.TempDir()})
	out := r.stderr.String()
	i := strings.Index(out, "kadm_")
	if i < 0 {
		t.Fatalf("no generated token on stderr:\n%s", out)
	}
	token := strings.Fields(out[i:])[0]
	r.must(201, "POST", "/v1/tenants", token, map[string]any{"name": "acme"})
	r.must(401, "POST", "/v1/tenants", "guess", map[string]any{"name": "acme"})
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(r.stderr.String(), token); n != 1 {
		t.Fatalf("token appears %d times on stderr, want once", n)
	}
}

func TestRunCommands(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	if err := run(context.Background(), []string{"version"}, env(nil), &out, io.Discard, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "kapseld 0.") {
		t.Fatalf("version %q", out.String())
	}
	for _, args := range [][]string{{"frobnicate"}, {"migrate"}, {"migrate", "down"}, {"serve", "-log-format", "xml"}} {
		if err := run(context.Background(), args, env(nil), io.Discard, io.Discard, nil); err == nil {
			t.Fatalf("run %v succeeded", args)
		}
	}
	out.Reset()
	dir := t.TempDir()
	if err := run(context.Background(), []string{"migrate", "status", "-data-dir", dir}, env(nil), &out, io.Discard, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "embedded store: schema version") || !strings.Contains(out.String(), "(current)") {
		t.Fatalf("migrate status: %q", out.String())
	}
}
