package main

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// A client that sends half a request and then nothing must not hold a
// connection: the server closes it once ReadHeaderTimeout passes. The test
// waits the real 10 s (in parallel with the rest of the package).
func TestSlowClientIsCutOff(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("waits for the real header timeout")
	}
	r := startServer(t, map[string]string{"KAPSEL_DATA_DIR": t.TempDir(), "KAPSEL_ADMIN_TOKEN": "slow-client-test"})
	conn, err := net.Dial("tcp", r.srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, "POST /ingest/src_01HZZZZZZZZZZZZZZZZZZZZZZZ HTTP/1.1\r\nHost: kapsel\r\nX-Partial: "); err != nil {
		t.Fatal(err)
	}
	limit := readHeaderTimeout + 10*time.Second
	if err := conn.SetReadDeadline(time.Now().Add(limit)); err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(conn)
	elapsed := time.Since(start)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the server still held the half-sent request after %s", elapsed)
	}
	if elapsed < readHeaderTimeout-time.Second {
		t.Fatalf("the connection closed after %s, before the %s header timeout: something else cut it", elapsed, readHeaderTimeout)
	}
}
