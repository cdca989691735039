// Package load is kapsel-bench's traffic: a load generator that sends
// GitHub-signed webhooks over many keep-alive HTTP/1.1 connections, in a
// closed loop (N clients) or an open loop (a fixed rate, latency from the
// scheduled send time), and a destination that counts what it receives.
//
// The generator speaks HTTP/1.1 on raw connections rather than through
// net/http's client, whose per-request allocations and goroutines cost as
// much CPU as a small server: each connection writes a request built in a
// reused buffer and reads the status line, the headers it needs and the body
// into the same buffered reader, allocating nothing per request.
package load

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// conn is one keep-alive HTTP/1.1 connection.
type conn struct {
	addr string
	c    net.Conn
	br   *bufio.Reader
}

func (c *conn) close() {
	if c.c != nil {
		c.c.Close()
		c.c = nil
	}
}

// roundTrip writes req (a complete HTTP/1.1 request) and reads the answer,
// discarding its body; it returns the status. On error the connection is
// closed, to be redialled by the next call.
func (c *conn) roundTrip(req []byte, timeout time.Duration) (int, error) {
	if c.c == nil {
		nc, err := net.DialTimeout("tcp", c.addr, timeout)
		if err != nil {
			return 0, err
		}
		c.c = nc
		if c.br == nil {
			c.br = bufio.NewReaderSize(nc, 4096)
		} else {
			c.br.Reset(nc)
		}
	}
	_ = c.c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.c.Write(req); err != nil {
		c.close()
		return 0, err
	}
	status, keep, err := readResponse(c.br)
	if err != nil || !keep {
		c.close()
	}
	return status, err
}

// maxHeaderLines bounds the header (and trailer) lines of one response.
const maxHeaderLines = 1000

var (
	hContentLength    = []byte("content-length")
	hTransferEncoding = []byte("transfer-encoding")
	hConnection       = []byte("connection")
)

// readResponse reads one response and discards its body. keep is false when
// the server closes the connection after it.
func readResponse(br *bufio.Reader) (status int, keep bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, fmt.Errorf("malformed status line %q", line)
	}
	status = int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0')
	length, chunked, keep := -1, false, true
	for i := 0; ; i++ {
		if i == maxHeaderLines {
			return status, false, errors.New("too many header lines")
		}
		line, err = br.ReadSlice('\n')
		if err != nil {
			return status, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, hContentLength):
			n, err := strconv.Atoi(string(value)) // string() of a short slice does not escape
			if err != nil {
				return status, false, fmt.Errorf("bad Content-Length %q", value)
			}
			length = n
		case bytes.EqualFold(name, hTransferEncoding):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, hConnection):
			keep = !bytes.EqualFold(value, []byte("close"))
		}
	}
	switch {
	case chunked:
		err = discardChunked(br)
	case length >= 0:
		_, err = br.Discard(length)
	default:
		// No length: the body runs to the end of the connection.
		_, err = io.Copy(io.Discard, br)
		keep = false
	}
	return status, keep, err
}

func discardChunked(br *bufio.Reader) error {
	for range 1 << 20 { // bounded: a body of at most a million chunks
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		size, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
		n, err := strconv.ParseInt(string(size), 16, 64)
		if err != nil {
			return fmt.Errorf("bad chunk size %q", size)
		}
		if n == 0 {
			for range maxHeaderLines { // trailers, then the empty line
				line, err := br.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return nil
				}
			}
			return errors.New("too many trailer lines")
		}
		if _, err := br.Discard(int(n) + 2); err != nil {
			return err
		}
	}
	return errors.New("too many chunks")
}
