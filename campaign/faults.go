package campaign

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"time"
)

// mode is how the destination answers one request.
type mode string

// The destination's modes. Only modeOK, modeSlowBody and modeHugeBody write
// a well-formed 2xx status line (the status line decides an attempt's
// outcome, docs/delivery.md); every other mode is a failure Kapsel must
// record and retry.
const (
	modeOK        mode = "ok"          // 200, after the plan's latency
	mode5xx       mode = "5xx"         // 500, 502 or 503 without Retry-After
	mode429       mode = "429"         // 429 with Retry-After: 1
	modeTimeout   mode = "timeout"     // nothing until past the attempt timeout, then close
	modeReset     mode = "reset"       // TCP RST right after the request
	modeHalfClose mode = "half-close"  // FIN on our side, no answer
	modeSlowBody  mode = "slow-body"   // 200 at once, then the body at 1 byte/s, past the timeout
	modeHugeBody  mode = "huge-body"   // 200 with a 64 MiB body (Kapsel reads 64 KiB)
	modeBadStatus mode = "bad-status"  // invalid bytes in the status line
	modeBadHeader mode = "bad-header"  // 500 with NUL, CR and DEL in header lines
	modeChunkedOK mode = "chunked-big" // 200, chunked, 8 MiB, no length
)

// allFaults are the faults of the destination-fault scenario.
var allFaults = []mode{mode5xx, mode429, modeTimeout, modeReset, modeHalfClose,
	modeSlowBody, modeHugeBody, modeBadStatus, modeBadHeader, modeChunkedOK}

// isFault reports whether m is one of the injected faults (modeOK is not).
func (m mode) isFault() bool { return m != modeOK }

// respond answers r on c as its mode says, and reports whether the
// connection may serve another request.
func (d *destination) respond(c *net.TCPConn, r *request, p faultPlan) bool {
	w := bufio.NewWriterSize(c, 32<<10)
	_ = c.SetWriteDeadline(time.Now().Add(time.Minute))
	if d.closing() { // close may have set its deadline just before ours
		return false
	}
	switch r.Mode {
	case modeOK:
		if p.Latency > 0 && !d.sleep(p.Latency) {
			return false
		}
		fmt.Fprint(w, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
		if w.Flush() != nil {
			return false
		}
		d.answered2xx(r)
		return true
	case mode5xx:
		status := []string{"500 Internal Server Error", "502 Bad Gateway", "503 Service Unavailable"}[r.Seq%3]
		fmt.Fprintf(w, "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nboom", status)
		return w.Flush() == nil
	case mode429:
		fmt.Fprint(w, "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n")
		return w.Flush() == nil
	case modeTimeout:
		d.sleep(p.AttemptTimeout + 500*time.Millisecond)
		return false
	case modeReset:
		_ = c.SetLinger(0) // Close sends RST
		return false
	case modeHalfClose:
		_ = c.CloseWrite()
		// Wait for the client to give up (bounded), reading what it sends.
		_ = c.SetReadDeadline(time.Now().Add(p.AttemptTimeout + 2*time.Second))
		if !d.closing() {
			_, _ = io.Copy(io.Discard, c)
		}
		return false
	case modeSlowBody:
		const n = 8
		fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n", n)
		if w.Flush() != nil {
			return false
		}
		d.answered2xx(r)
		for range n {
			if !d.sleep(time.Second) || w.WriteByte('x') != nil || w.Flush() != nil {
				return false
			}
		}
		return true
	case modeHugeBody:
		const n = 64 << 20
		fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", n)
		if w.Flush() != nil {
			return false
		}
		d.answered2xx(r)
		return writeFill(w, n) == nil
	case modeChunkedOK:
		fmt.Fprint(w, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
		if w.Flush() != nil {
			return false
		}
		d.answered2xx(r)
		for range 256 { // 256 chunks of 32 KiB
			fmt.Fprintf(w, "%x\r\n", 32<<10)
			if writeFill(w, 32<<10) != nil {
				return false
			}
			fmt.Fprint(w, "\r\n")
		}
		fmt.Fprint(w, "0\r\n\r\n")
		return w.Flush() == nil
	case modeBadStatus:
		lines := []string{"HTTP/1.1 2\x000 OK\r\n\r\n", "HTTP/1.1 \xff\xfe\xfd\r\n\r\n", "HTP/1.1 200 OK\r\n\r\n", "\x00\x01\x02\r\n\r\n"}
		fmt.Fprint(w, lines[r.Seq%len(lines)])
		_ = w.Flush()
		return false
	case modeBadHeader:
		fmt.Fprint(w, "HTTP/1.1 500 Internal Server Error\r\nX-Nul: a\x00b\r\nX-Cr: a\rb\r\nX-Del\x7f: c\r\nContent-Length: 0\r\n\r\n")
		_ = w.Flush()
		return false
	}
	return false
}

// writeFill writes n filler bytes and flushes; it stops at the first write
// error (the client closed the connection after what it wanted).
func writeFill(w *bufio.Writer, n int) error {
	var block [32 << 10]byte
	for i := range block {
		block[i] = 'k'
	}
	for n > 0 {
		k := min(n, len(block))
		if _, err := w.Write(block[:k]); err != nil {
			return err
		}
		n -= k
	}
	return w.Flush()
}
