package ingest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

const testLimit = 64 << 10

// server serves the ingester over real HTTP on 127.0.0.1.
func (e *env) server() *httptest.Server {
	srv := httptest.NewServer(e.h)
	e.t.Cleanup(srv.Close)
	return srv
}

// nopLen hides the length of a reader from net/http, so the request goes
// chunked, without Content-Length.
type nopLen struct{ io.Reader }

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	e := setup(t, &Config{MaxBodyBytes: testLimit})
	src := e.source(nil, kapsel.VerifierConfig{})
	srv := e.server()
	for _, tc := range []struct {
		name    string
		size    int
		chunked bool
		status  int
	}{
		{"exactly the limit", testLimit, false, 202},
		{"exactly the limit, chunked", testLimit, true, 202},
		{"one over", testLimit + 1, false, 413},
		{"one over, chunked", testLimit + 1, true, 413},
		{"far over, chunked", 4 * testLimit, true, 413},
		{"empty", 0, false, 202},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := bytes.Repeat([]byte{'z'}, tc.size)
			var r io.Reader = bytes.NewReader(body)
			if tc.chunked {
				r = nopLen{r}
			}
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/ingest/"+string(src.ID), r)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Idempotency-Key", tc.name)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status == 413 && !strings.Contains(string(readAll(t, resp.Body)), `"E1002"`) {
				t.Fatal("413 without E1002")
			}
		})
	}
	sizes := map[int]bool{}
	for _, ev := range e.events(src.ID) {
		if ev.Size != len(ev.Body) || strings.Trim(string(ev.Body), "z") != "" {
			t.Fatalf("stored body altered: size %d", ev.Size)
		}
		sizes[ev.Size] = true
	}
	if len(sizes) != 2 || !sizes[testLimit] || !sizes[0] {
		t.Fatalf("stored sizes %v, want the limit and 0", sizes)
	}
}

// TestLyingContentLength sends raw HTTP whose Content-Length claims less or
// more than is sent: the limit applies to the bytes read, never to the claim.
func TestLyingContentLength(t *testing.T) {
	t.Parallel()
	e := setup(t, &Config{MaxBodyBytes: testLimit})
	src := e.source(nil, kapsel.VerifierConfig{})

	// Claims a small body, but the handler sees only those bytes anyway:
	// what was stored is exactly what was framed.
	t.Run("handler ignores ContentLength", func(t *testing.T) {
		for _, claim := range []int64{-1, 0, 10, testLimit, 1 << 40} {
			body := bytes.Repeat([]byte{'q'}, testLimit+1)
			r := httptest.NewRequest(http.MethodPost, "/ingest/"+string(src.ID), bytes.NewReader(body))
			r.ContentLength = claim
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, r)
			refused(t, w, 413, kapsel.CodeBodyTooLarge)

			r = httptest.NewRequest(http.MethodPost, "/ingest/"+string(src.ID), bytes.NewReader(body[:testLimit]))
			r.ContentLength = claim
			w = httptest.NewRecorder()
			e.h.ServeHTTP(w, r)
			accepted(t, w, 202)
		}
	})

	t.Run("over the wire", func(t *testing.T) {
		srv := e.server()
		send := func(claimed, sent int) string {
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(conn, "POST /ingest/%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", src.ID, claimed)
			_, _ = conn.Write(bytes.Repeat([]byte{'w'}, sent))
			if sent < claimed {
				_ = conn.(*net.TCPConn).CloseWrite()
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				return "no response"
			}
			defer resp.Body.Close()
			return resp.Status[:3]
		}
		// Claims the limit, sends more: only the claimed bytes are the body.
		if got := send(testLimit, testLimit+100); got != "202" {
			t.Fatalf("claim = limit: %s", got)
		}
		// Claims more than the limit, sends more than the limit: 413.
		if got := send(2*testLimit, 2*testLimit); got != "413" {
			t.Fatalf("claim over the limit: %s", got)
		}
		// Claims more than it sends: the body is truncated, nothing is stored.
		before := len(e.events(src.ID))
		if got := send(1000, 10); got == "202" {
			t.Fatal("a truncated body was accepted")
		}
		if after := len(e.events(src.ID)); after != before {
			t.Fatalf("truncated body stored: %d → %d events", before, after)
		}
	})
}
