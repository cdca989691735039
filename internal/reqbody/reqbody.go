// Package reqbody reads an inbound request's body under a size limit, for the
// ingest handler and the receiver alike: one rule for what is too large and
// how it is answered, and for how much memory a body may cost.
//
// A body costs about its size, once (SPEC §9: a 10 MiB body costs O(body)).
// When Content-Length is declared and within the limit, the body is read
// into one allocation of exactly that size — no growth, no garbage — as
// long as the [Budget] of bytes allocated ahead of their arrival allows it.
// Otherwise (no Content-Length, or the budget spent by other requests) the
// buffer doubles as bytes arrive, from 64 KiB, never past the declared
// length or the limit: the buffers come to less than three times what was
// received (twice the last doubling, plus the last buffer), whatever a
// client claims.
package reqbody

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"

	"github.com/kapsel-dev/kapsel"
)

// SmallBody is the largest declared Content-Length allocated at once
// without asking the budget: a client lying about it wins no more than
// this per request.
const SmallBody = 64 << 10

// Budget bounds the bytes allocated on the word of Content-Length before
// they have arrived, across every request reading through it: a client
// that declares 10 MiB and sends nothing holds its reservation until its
// read ends (the server's read timeout), and past the budget bodies grow
// as they arrive instead. A nil *Budget trusts nothing beyond [SmallBody].
// It is safe for concurrent use.
type Budget struct {
	max  int64
	used atomic.Int64
}

// TrustedBodies is how many bodies of the largest size a [Budget] made by
// [ForLimit] holds: SPEC §9's burst of 64 concurrent maximum-size bodies
// is read without growing a buffer.
const TrustedBodies = 64

// MaxBudget caps a [ForLimit] budget, however large the limit: with a
// limit of math.MaxInt64 (no limit) a budget of 64 × it would let one
// request that declares a huge Content-Length and sends nothing have that
// much allocated. At the default 10 MiB limit the budget is 640 MiB, under
// the cap.
const MaxBudget = 1 << 30

// ForLimit returns the budget of a reader whose bodies are at most limit
// bytes: [TrustedBodies] of them, at most [MaxBudget] (computed without
// overflow: 64 × math.MaxInt64 wrapped to a negative budget).
func ForLimit(limit int64) *Budget {
	if limit > MaxBudget/TrustedBodies {
		return NewBudget(MaxBudget)
	}
	return NewBudget(TrustedBodies * limit)
}

// NewBudget returns a budget of max bytes.
func NewBudget(max int64) *Budget { return &Budget{max: max} }

// reserve takes n bytes from the budget, or reports that they are not
// there.
func (b *Budget) reserve(n int64) bool {
	if b == nil {
		return false
	}
	for range 1000 { // bounded: contention is a few readers at a time
		used := b.used.Load()
		if n > b.max-used { // not used+n > max: that can wrap when max is near math.MaxInt64
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			return true
		}
	}
	return false
}

func (b *Budget) release(n int64) { b.used.Add(-n) }

// Reserved is how many bytes are reserved now (for tests and metrics).
func (b *Budget) Reserved() int64 { return b.used.Load() }

// reading counts the calls of [Read] under way. Process-wide on purpose:
// it tells kapseld's memory releaser whether bodies are arriving, and that
// memory is the process's, whichever ingester or receiver reads them.
var reading atomic.Int64

// Reading reports how many bodies are being read now, by any caller in
// this process. A declared body is allocated whole when its read begins
// and then filled without allocating, so a burst of slow uploads
// allocates little while its buffers are live: allocation alone does not
// say a burst is over, this does.
func Reading() int64 { return reading.Load() }

// Read reads the whole body of r, refusing it with [TooLarge] (413 E1002) as
// soon as it crosses limit, and with 400 E1009 when it cannot be read. A
// declared Content-Length within limit sizes the buffer exactly when it is
// at most [SmallBody] or budget has room for it (see the package
// documentation); a missing or lying one costs less than three times the
// bytes actually received.
func Read(w http.ResponseWriter, r *http.Request, limit int64, budget *Budget) ([]byte, error) {
	reading.Add(1)
	defer reading.Add(-1)
	declared := r.ContentLength
	if declared > limit {
		// Not refused on the claim: the limit applies to the bytes read
		// (a handler may be called with any ContentLength). Not trusted
		// either.
		declared = -1
	}
	var buf []byte
	switch {
	case declared >= 0 && declared <= SmallBody:
		buf = make([]byte, 0, declared+1) // +1: room to read EOF without growing
	case declared > 0 && budget.reserve(declared):
		defer budget.release(declared)
		buf = make([]byte, 0, declared+1)
	default:
		buf = make([]byte, 0, min(max(declared, 0), limit, SmallBody)+1)
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	// Bounded without arithmetic on limit (limit+2 passes wrapped negative
	// at math.MaxInt64 and refused every body): MaxBytesReader fails past
	// limit bytes, so only reads that return nothing can go on for ever,
	// and at most maxEmptyReads of them in a row are allowed (as bufio).
	for empty := 0; empty < maxEmptyReads; {
		if len(buf) == cap(buf) {
			buf = grow(buf, declared, limit)
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if n > 0 {
			empty = 0
		} else {
			empty++
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return nil, TooLarge(limit)
			}
			return nil, &kapsel.Error{Code: kapsel.CodeMalformedRequest, Detail: "could not read the request body", Err: err}
		}
	}
	return nil, &kapsel.Error{Code: kapsel.CodeMalformedRequest, Detail: "could not read the request body: the reader made no progress", Err: io.ErrNoProgress}
}

// maxEmptyReads is how many reads in a row may return no bytes and no
// error before Read gives up (bufio's limit too).
const maxEmptyReads = 100

// grow returns buf with its capacity doubled, but not past the declared
// length while the body is within it, nor past limit (+1, to read EOF or
// the byte that crosses it).
func grow(buf []byte, declared, limit int64) []byte {
	ceiling := limit
	if declared >= 0 && int64(len(buf)) < declared {
		ceiling = declared
	}
	next := max(2*int64(cap(buf)), SmallBody)
	if next > ceiling {
		next = ceiling + 1 // no wrap: ceiling < next, a buffer's size
	}
	if next <= int64(cap(buf)) {
		next = int64(cap(buf)) + 1
	}
	out := make([]byte, len(buf), next)
	copy(out, buf)
	return out
}

// TooLarge is the error for a body over limit bytes: 413 E1002.
func TooLarge(limit int64) error {
	return &kapsel.Error{Code: kapsel.CodeBodyTooLarge, Detail: fmt.Sprintf("body is larger than %d bytes", limit)}
}
