package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// received is one request a destination received.
type received struct {
	path   string
	header http.Header
	body   []byte
}

// destination is an httptest server that records what it receives and
// answers status.
type destination struct {
	srv    *httptest.Server
	status atomic.Int32
	got    chan received
	// ok counts the requests answered 2xx, per path.
	mu sync.Mutex
	ok map[string]int
}

// okCount returns how many requests to path were answered 2xx; "" = all.
func (d *destination) okCount(path string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if path != "" {
		return d.ok[path]
	}
	n := 0
	for _, c := range d.ok {
		n += c
	}
	return n
}

func newDestination(t *testing.T) *destination {
	d := &destination{got: make(chan received, 100), ok: map[string]int{}}
	d.status.Store(200)
	d.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		status := int(d.status.Load())
		if status < 300 {
			d.mu.Lock()
			d.ok[r.URL.Path]++
			d.mu.Unlock()
		}
		d.got <- received{path: r.URL.Path, header: r.Header.Clone(), body: body}
		w.WriteHeader(status)
	}))
	t.Cleanup(d.srv.Close)
	return d
}

// next returns the next delivery, failing after 15 s.
func (d *destination) next(t *testing.T) received {
	t.Helper()
	select {
	case got := <-d.got:
		return got
	case <-time.After(15 * time.Second):
		t.Fatal("the destination received nothing within 15 s")
		return received{}
	}
}

// expect returns the next delivery, which must be event id signed with every
// one of secrets (Standard Webhooks reference library).
func (d *destination) expect(t *testing.T, id string, secrets ...string) received {
	t.Helper()
	got := d.next(t)
	if got.header.Get("webhook-id") != id {
		t.Fatalf("destination got webhook-id %q, want %q", got.header.Get("webhook-id"), id)
	}
	for _, s := range secrets {
		if err := verify(t, got, s); err != nil {
			t.Fatalf("signature of %s does not verify with a secret: %v (webhook-signature %q)", id, err, got.header.Get("webhook-signature"))
		}
	}
	return got
}

// verify checks a delivery's signature with the Standard Webhooks
// reference library.
func verify(t *testing.T, got received, secret string) error {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	return wh.Verify(got.body, got.header)
}

// eventually polls cond every 10 ms until it holds, failing after 15 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func githubSign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// scrape reads /metrics into "name{labels}" → value.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]float64{}
	for _, line := range strings.Split(string(raw), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

func searchPath(t *testing.T, dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Query().Get("search_path") == "" {
		t.Fatalf("no search_path in the test database URL")
	}
	return u.Query().Get("search_path")
}

func renameSchema(t *testing.T, dsn, from, to string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "ALTER SCHEMA "+pgx.Identifier{from}.Sanitize()+" RENAME TO "+pgx.Identifier{to}.Sanitize()); err != nil {
		t.Fatalf("renaming schema %s: %v", from, err)
	}
}
