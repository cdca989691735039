package load

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestBody(t *testing.T) {
	t.Parallel()
	b := NewBody()
	if len(b) != BodySize {
		t.Fatalf("body is %d bytes, want %d", len(b), BodySize)
	}
	tests := []struct {
		seq uint64
		ts  int64
	}{{0, 0}, {42, 1_700_000_000_123_456_789}, {9_999_999_999, 1}}
	for _, tt := range tests {
		SetBody(b, tt.seq, tt.ts)
		if !json.Valid(b) {
			t.Fatalf("body is not valid JSON: %s", b[:60])
		}
		seq, ts, ok := ParseBody(b)
		if !ok || seq != tt.seq || ts != tt.ts {
			t.Fatalf("ParseBody = %d, %d, %v; want %d, %d", seq, ts, ok, tt.seq, tt.ts)
		}
	}
	if _, _, ok := ParseBody([]byte(`{"other":1}`)); ok {
		t.Fatal("a foreign body parsed")
	}
}

func TestReadResponse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, raw string
		status    int
		keep      bool
	}{
		{"length", "HTTP/1.1 202 Accepted\r\nContent-Length: 5\r\n\r\nhello", 202, true},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 200, true},
		{"close", "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 503, false},
		{"to EOF", "HTTP/1.0 200 OK\r\n\r\nbody", 200, false},
	}
	for _, tt := range tests {
		br := bufio.NewReader(strings.NewReader(tt.raw + "HTTP/1.1 204 No Content\r\n\r\n"))
		status, keep, err := readResponse(br)
		if err != nil || status != tt.status || keep != tt.keep {
			t.Fatalf("%s: readResponse = %d, %v, %v; want %d, %v", tt.name, status, keep, err, tt.status, tt.keep)
		}
		if tt.keep { // the next response must start right after the body
			if status, _, err := readResponse(br); err != nil || status != 204 {
				t.Fatalf("%s: the next response read %d, %v", tt.name, status, err)
			}
		}
	}
}

// TestReadResponseBounded: a response that never ends its headers is an
// error, not an endless read.
func TestReadResponseBounded(t *testing.T) {
	t.Parallel()
	endless := "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Pad: y\r\n", maxHeaderLines) + "\r\n"
	if _, _, err := readResponse(bufio.NewReader(strings.NewReader(endless))); err == nil {
		t.Fatalf("%d header lines read without an error", maxHeaderLines)
	}
}

// TestGeneratorToDestination sends a bounded closed-loop run through a
// relay that forwards each signed body to the destination: every request
// acknowledged, every body received once.
func TestGeneratorToDestination(t *testing.T) {
	t.Parallel()
	const n = 500
	dest, err := NewDestination(n, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dest.Close() })
	relay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Header.Get("X-Hub-Signature-256"), "sha256=") || r.ContentLength != BodySize {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		req, _ := http.NewRequest("POST", dest.URL+"/ok", r.Body)
		req.Header.Set("webhook-id", fmt.Sprint(time.Now().UnixNano()))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		resp.Body.Close()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(relay.Close)
	run := Start(context.Background(), Target{Addr: relay.Listener.Addr().String(), Paths: []string{"/a", "/b"}, Secret: "s"},
		Plan{Clients: 8, Duration: 20 * time.Second, Max: n})
	run.Wait()
	if got := run.Acked.Load(); got != n || run.Failed.Load() != 0 {
		t.Fatalf("acked %d, failed %d (%s); want %d, 0", got, run.Failed.Load(), run.FirstError(), n)
	}
	for i := range n {
		if dest.Copies(i, 0) != 1 || run.AckAt[i].Load() == 0 {
			t.Fatalf("request %d: %d copies received, acked at %d", i, dest.Copies(i, 0), run.AckAt[i].Load())
		}
	}
	if f := dest.Foreign.Load(); f != 0 {
		t.Fatalf("%d deliveries of a body the generator did not send", f)
	}
	if dest.SendLatency.Count() != n || run.AckLatency.Count() != n {
		t.Fatalf("latencies recorded: %d at the destination, %d acks; want %d", dest.SendLatency.Count(), run.AckLatency.Count(), n)
	}
}

// TestOpenLoop sends at a fixed rate to a server that answers at once:
// every request due within the run is sent and acknowledged, and none
// before its time, so the run lasts at least until the last one fell due.
func TestOpenLoop(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	const rate, n = 1000, 200 // 200 ms
	p := Plan{Clients: 16, Rate: rate, Duration: n * time.Second / rate, Max: n}
	run := Start(context.Background(), Target{Addr: srv.Listener.Addr().String(), Paths: []string{"/"}, Secret: "s"}, p)
	run.Wait()
	if run.Sent.Load() != n || run.Acked.Load() != n {
		t.Fatalf("sent %d, acked %d (failed %d: %s); want %d of each",
			run.Sent.Load(), run.Acked.Load(), run.Failed.Load(), run.FirstError(), n)
	}
	if last := (n - 1) * time.Second / rate; run.End.Sub(run.Start) < last {
		t.Fatalf("the run took %v, before its last request fell due at %v", run.End.Sub(run.Start), last)
	}
}

// TestOpenLoopSendsLateRequests: a server that stalls past the end of the
// plan's Duration, with every connection waiting on it, does not make the
// open loop drop the requests that fell due meanwhile: each is sent late,
// its latency counted from when it was due. (Before, the clients stopped
// taking requests at the end of Duration and sent 4 of 100, hiding the
// queue the stall built — and a loaded machine dropped a few at random.)
func TestOpenLoopSendsLateRequests(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var seen atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if seen.Add(1) <= 4 {
			<-release
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	const rate, n = 1000, 100 // due within 100 ms
	p := Plan{Clients: 4, Rate: rate, Duration: n * time.Second / rate, Max: n}
	run := Start(context.Background(), Target{Addr: srv.Listener.Addr().String(), Paths: []string{"/"}, Secret: "s"}, p)
	time.AfterFunc(300*time.Millisecond, func() { close(release) })
	run.Wait()
	if run.Sent.Load() != n || run.Acked.Load() != n {
		t.Fatalf("sent %d, acked %d (failed %d: %s); want %d of each",
			run.Sent.Load(), run.Acked.Load(), run.Failed.Load(), run.FirstError(), n)
	}
	if p99 := time.Duration(run.AckLatency.Quantile(0.99)) * time.Microsecond; p99 < 150*time.Millisecond {
		t.Fatalf("p99 %v: the stall's wait is not counted from the due times", p99)
	}
}

// TestDestinationFanout: a fan-out's endpoints are told apart by path, so
// one request delivered to each of them is one copy per endpoint, not a
// duplicate, and the same webhook-id at two endpoints is no duplicate id;
// a second copy at one endpoint is.
func TestDestinationFanout(t *testing.T) {
	t.Parallel()
	dest, err := NewDestination(4, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dest.Close() })
	body := NewBody()
	SetBody(body, 2, time.Now().UnixNano())
	post := func(path, id string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", dest.URL+path, bytes.NewReader(body))
		req.Header.Set("webhook-id", id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, p := range []string{"/ok", "/ok/1", "/ok/2", "/ok/2"} {
		if st := post(p, "evt_1"); st != http.StatusNoContent {
			t.Fatalf("POST %s: %d", p, st)
		}
	}
	if st := post("/ok/3", "evt_1"); st != http.StatusNotFound {
		t.Fatalf("POST /ok/3 of a fan-out of 3: %d, want 404", st)
	}
	for k, want := range []int32{1, 1, 2} {
		if got := dest.Copies(2, k); got != want || dest.FirstAt(2, k) == 0 {
			t.Fatalf("request 2 at endpoint %d: %d copies, want %d", k, got, want)
		}
	}
	if dest.Copies(1, 0) != 0 || dest.DuplicateIDs.Load() != 1 || dest.Foreign.Load() != 1 || dest.Delivered.Load() != 4 {
		t.Fatalf("copies of request 1 %d, duplicate ids %d, foreign %d, delivered %d; want 0, 1, 1, 4",
			dest.Copies(1, 0), dest.DuplicateIDs.Load(), dest.Foreign.Load(), dest.Delivered.Load())
	}
	if _, err := NewDestination(1<<30, 8); err == nil {
		t.Fatal("a destination of 2^33 slots was made")
	}
}
