package reqbody_test

import (
	"bytes"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/internal/reqbody"
)

const limit = 10 << 20

// request returns a POST of body declaring contentLength (-1: unknown).
// Its body is a plain reader, so nothing but declared says how long it is.
func request(t *testing.T, body []byte, contentLength int64) *http.Request {
	t.Helper()
	r := httptest.NewRequest("POST", "/ingest/src_x", io.MultiReader(bytes.NewReader(body)))
	r.ContentLength = contentLength
	return r
}

// allocated returns the bytes allocated while f ran. The tests that use it
// do not run in parallel, so the count is theirs.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func read(t *testing.T, r *http.Request, budget *reqbody.Budget) ([]byte, uint64, error) {
	t.Helper()
	w := httptest.NewRecorder()
	var got []byte
	var err error
	n := allocated(func() { got, err = reqbody.Read(w, r, limit, budget) })
	return got, n, err
}

// A 10 MiB body with its Content-Length, within the budget, costs one
// allocation of its size: no growth, no garbage (SPEC §9). Before, it grew
// from 1 MiB by append and allocated ~55 MiB.
func TestReadDeclaredBodyAllocatesOnce(t *testing.T) {
	body := bytes.Repeat([]byte("x"), limit)
	budget := reqbody.ForLimit(limit)
	r := request(t, body, int64(len(body)))
	got, n, err := read(t, r, budget)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, body) {
		t.Fatalf("read %d bytes, not the %d sent", len(got), len(body))
	}
	if max := uint64(len(body)) + 64<<10; n > max {
		t.Fatalf("reading a %d-byte body allocated %d bytes; want at most %d (one buffer)", len(body), n, max)
	}
	if got := budget.Reserved(); got != 0 {
		t.Fatalf("budget still holds %d bytes after the read", got)
	}
}

// Without Content-Length, or without room in the budget, the buffer
// doubles as bytes arrive: the body and the steps before it, under three
// times the body (10 MiB: 64 KiB … 8 MiB, then 10 MiB), not the ~5× of
// growing by append.
func TestReadUndeclaredBodyAllocatesUnderThreeTimes(t *testing.T) {
	body := bytes.Repeat([]byte("x"), limit)
	for _, tc := range []struct {
		name     string
		declared int64
		budget   *reqbody.Budget
	}{
		{"no Content-Length", -1, reqbody.ForLimit(limit)},
		{"budget spent", limit, reqbody.NewBudget(limit - 1)},
		{"no budget", limit, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, n, err := read(t, request(t, body, tc.declared), tc.budget)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, body) {
				t.Fatalf("read %d bytes, not the %d sent", len(got), len(body))
			}
			if max := uint64(3 * len(body)); n > max {
				t.Fatalf("reading a %d-byte body allocated %d bytes; want at most %d", len(body), n, max)
			}
		})
	}
}

// A client that declares 10 MiB and sends 100 bytes gets no 10 MiB buffer
// when the budget has no room for it, and a reservation is given back
// however the read ends.
func TestReadLyingContentLength(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 100)
	budget := reqbody.NewBudget(limit - 1) // no room for one declared 10 MiB
	got, n, err := read(t, request(t, body, limit), budget)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, body) {
		t.Fatalf("read %q", got)
	}
	if max := uint64(reqbody.SmallBody) + 16<<10; n > max {
		t.Fatalf("a 100-byte body declaring %d allocated %d bytes; want at most %d", limit, n, max)
	}

	// Trusted, the lie is paid for by the budget until the read ends — here
	// with the connection failing halfway.
	budget = reqbody.ForLimit(limit)
	r := httptest.NewRequest("POST", "/ingest/src_x", io.MultiReader(bytes.NewReader(body), failingReader{}))
	r.ContentLength = limit
	_, _, err = read(t, r, budget)
	var kerr *kapsel.Error
	if !errors.As(err, &kerr) || kerr.Code != kapsel.CodeMalformedRequest {
		t.Fatalf("err = %v, want E1009 (malformed request)", err)
	}
	if got := budget.Reserved(); got != 0 {
		t.Fatalf("budget still holds %d bytes after a failed read", got)
	}
}

// The budget is shared: while one declared body holds it, the next one
// that does not fit grows instead, and both read correctly. Not parallel:
// it counts the second read's allocations.
func TestBudgetIsShared(t *testing.T) {
	budget := reqbody.NewBudget(3 << 20)
	body := bytes.Repeat([]byte("y"), 2<<20)
	pr, pw := io.Pipe()
	first := httptest.NewRequest("POST", "/", pr)
	first.ContentLength = int64(len(body))
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := reqbody.Read(httptest.NewRecorder(), first, limit, budget)
		done <- result{b, err}
	}()
	if _, err := pw.Write(body[:1]); err != nil { // the first read has begun: its reservation is made
		t.Fatal(err)
	}
	if got := budget.Reserved(); got != int64(len(body)) {
		t.Fatalf("reserved %d, want %d", got, len(body))
	}
	r := request(t, body, int64(len(body)))
	var second []byte
	var err error
	n := allocated(func() { second, err = reqbody.Read(httptest.NewRecorder(), r, limit, budget) })
	if err != nil || !bytes.Equal(second, body) {
		t.Fatalf("second read: %d bytes, %v", len(second), err)
	}
	// Grown from 64 KiB (64 KiB … 2 MiB), not one buffer of its size: more
	// than the body and a 64 KiB step.
	if min := uint64(len(body)) + reqbody.SmallBody; n <= min {
		t.Fatalf("the second read allocated %d bytes, want more than %d: it was trusted past the budget", n, min)
	}
	if got := budget.Reserved(); got != int64(len(body)) {
		t.Fatalf("reserved %d after the second read, want the first's %d", got, len(body))
	}
	if _, err := pw.Write(body[1:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	res := <-done
	if res.err != nil || !bytes.Equal(res.b, body) {
		t.Fatalf("first read: %d bytes, %v", len(res.b), res.err)
	}
	if got := budget.Reserved(); got != 0 {
		t.Fatalf("budget still holds %d bytes", got)
	}
}

// Too large is refused on the bytes read, whatever the claim.
func TestReadTooLarge(t *testing.T) {
	t.Parallel()
	body := bytes.Repeat([]byte("z"), limit+1)
	for _, tc := range []struct {
		name     string
		declared int64
		body     io.Reader
	}{
		{"declared", limit + 1, bytes.NewReader(body)},
		{"undeclared", -1, bytes.NewReader(body)},
		{"understated", 1000, bytes.NewReader(body)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", tc.body)
			r.ContentLength = tc.declared
			_, err := reqbody.Read(httptest.NewRecorder(), r, limit, reqbody.ForLimit(limit))
			var kerr *kapsel.Error
			if !errors.As(err, &kerr) || kerr.Code != kapsel.CodeBodyTooLarge {
				t.Fatalf("err = %v, want E1002", err)
			}
		})
	}
}

// Bodies of every size around the growth steps read back whole.
func TestReadSizes(t *testing.T) {
	t.Parallel()
	for _, size := range []int{0, 1, reqbody.SmallBody - 1, reqbody.SmallBody, reqbody.SmallBody + 1, 3<<20 + 7, limit} {
		body := bytes.Repeat([]byte("a"), size)
		for _, declared := range []int64{-1, int64(size)} {
			got, err := reqbody.Read(httptest.NewRecorder(), request(t, body, declared), limit, reqbody.NewBudget(1<<20))
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("size %d declared %d: %d bytes, %v", size, declared, len(got), err)
			}
		}
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

// A limit of math.MaxInt64 ("no limit") reads bodies like any other: the
// read loop's bound and the budget (64 × the limit) wrapped negative
// there, so every body was refused with 400 E1009 and no Content-Length
// was trusted.
// With no limit, a declared Content-Length is trusted only within
// MaxBudget: a request that declares 4 GiB and sends 5 bytes must not have
// 4 GiB allocated (64 × math.MaxInt64 saturated to a budget that trusted any
// claim).
func TestReadNoLimitLyingClaim(t *testing.T) {
	body := []byte("hello")
	r := request(t, body, 4<<30)
	var got []byte
	var err error
	n := allocated(func() {
		got, err = reqbody.Read(httptest.NewRecorder(), r, math.MaxInt64, reqbody.ForLimit(math.MaxInt64))
	})
	if err == nil && !bytes.Equal(got, body) {
		t.Fatalf("read %q; want %q or an error", got, body)
	}
	if n > 1<<20 {
		t.Fatalf("a 5-byte body declared as 4 GiB allocated %d bytes; want under 1 MiB", n)
	}
}

func TestReadNoLimit(t *testing.T) {
	body := []byte("hello")
	for _, tc := range []struct {
		name     string
		declared int64
		budget   *reqbody.Budget
	}{
		{"declared", int64(len(body)), reqbody.ForLimit(math.MaxInt64)},
		{"undeclared", -1, reqbody.ForLimit(math.MaxInt64)},
		{"declared, no budget", int64(len(body)), nil},
	} {
		got, err := reqbody.Read(httptest.NewRecorder(), request(t, body, tc.declared), math.MaxInt64, tc.budget)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("%s: read %q, %v; want %q", tc.name, got, err, body)
		}
	}

	// The budget of no limit trusts a declared body: one allocation.
	big := bytes.Repeat([]byte("x"), 2<<20)
	r := request(t, big, int64(len(big)))
	var got []byte
	var err error
	n := allocated(func() {
		got, err = reqbody.Read(httptest.NewRecorder(), r, math.MaxInt64, reqbody.ForLimit(math.MaxInt64))
	})
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}
	if max := uint64(len(big)) + 64<<10; n > max {
		t.Fatalf("a declared %d-byte body under no limit allocated %d bytes; want at most %d (one buffer)", len(big), n, max)
	}
}

// A reader that returns no bytes and no error for ever is given up on.
func TestReadNoProgress(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("POST", "/", emptyReader{})
	_, err := reqbody.Read(httptest.NewRecorder(), r, math.MaxInt64, nil)
	if !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("err = %v, want io.ErrNoProgress", err)
	}
}

type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, nil }

// Reading counts the reads under way, and a read that ends, however it
// ends, is no longer counted. Not parallel: the count is the process's.
func TestReading(t *testing.T) {
	if got := reqbody.Reading(); got != 0 {
		t.Fatalf("Reading() = %d before any read", got)
	}
	pr, pw := io.Pipe()
	r := httptest.NewRequest("POST", "/", pr)
	done := make(chan error, 1)
	go func() {
		_, err := reqbody.Read(httptest.NewRecorder(), r, limit, nil)
		done <- err
	}()
	if _, err := pw.Write([]byte("x")); err != nil { // the read has begun
		t.Fatal(err)
	}
	if got := reqbody.Reading(); got != 1 {
		t.Fatalf("Reading() = %d during a read, want 1", got)
	}
	pw.CloseWithError(errors.New("connection reset"))
	if err := <-done; err == nil {
		t.Fatal("a failed read succeeded")
	}
	if got := reqbody.Reading(); got != 0 {
		t.Fatalf("Reading() = %d after the read, want 0", got)
	}
}
