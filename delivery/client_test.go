package delivery

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// loopbackClient is the dispatcher's client with loopback allowed.
func loopbackClient(tlsConfig *tls.Config) *http.Client {
	g := &Guard{Allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	return newHTTPClient(newTransport(g, 4, tlsConfig, nil))
}

func post(t *testing.T, c *http.Client, url string, timeout time.Duration) *attemptResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return send(c, req, func() bool { return false })
}

func TestSendRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	var targetHits atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { targetHits.Add(1) }))
	t.Cleanup(target.Close)
	for _, code := range []int{301, 302, 303, 307, 308} {
		redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL, code)
		}))
		res := post(t, loopbackClient(nil), redirector.URL, 5*time.Second)
		redirector.Close()
		if res.errorCode != kapsel.CodeAttemptRedirect || res.statusCode != code {
			t.Errorf("%d: code %q status %d, want E2007 and %d", code, res.errorCode, res.statusCode, code)
		}
	}
	if n := targetHits.Load(); n != 0 {
		t.Fatalf("the redirect target was contacted %d times", n)
	}
}

func TestSendTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	res := post(t, loopbackClient(nil), srv.URL, 100*time.Millisecond)
	if res.errorCode != kapsel.CodeAttemptTimeout || !res.sent {
		t.Fatalf("code %q sent %v (%s), want E2001 after sending", res.errorCode, res.sent, res.errMsg)
	}
}

func TestSendConnectionRefused(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there any more
	res := post(t, loopbackClient(nil), "http://"+addr+"/", 5*time.Second)
	if res.errorCode != kapsel.CodeAttemptConnection || res.sent {
		t.Fatalf("code %q sent %v (%s), want E2002 unsent", res.errorCode, res.sent, res.errMsg)
	}
}

func TestSendConnectionReset(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 1024)
			_, _ = c.Read(buf)
			c.(*net.TCPConn).SetLinger(0) // RST instead of FIN
			c.Close()
		}
	}()
	res := post(t, loopbackClient(nil), "http://"+ln.Addr().String()+"/", 5*time.Second)
	if res.errorCode != kapsel.CodeAttemptConnection {
		t.Fatalf("code %q (%s), want E2002", res.errorCode, res.errMsg)
	}
}

func TestSendDNSFailure(t *testing.T) {
	t.Parallel()
	// A resolver whose server cannot be reached: no traffic leaves the
	// machine.
	r := &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("no DNS server in this test")
	}}
	c := newHTTPClient(newTransport(&Guard{}, 4, nil, r))
	res := post(t, c, "http://kapsel-test.example/", 5*time.Second)
	if res.errorCode != kapsel.CodeAttemptDNS {
		t.Fatalf("code %q (%s), want E2003", res.errorCode, res.errMsg)
	}
	// Tenants read the message: it names their host, never Kapsel's resolver.
	if !strings.HasPrefix(res.errMsg, "DNS lookup of kapsel-test.example failed") || strings.Contains(res.errMsg, ":53") {
		t.Fatalf("message %q names more than the destination host", res.errMsg)
	}
}

func TestSendTLS(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	// The test server's certificate is not trusted by default.
	res := post(t, loopbackClient(nil), srv.URL, 5*time.Second)
	if res.errorCode != kapsel.CodeAttemptTLS {
		t.Fatalf("untrusted certificate: code %q (%s), want E2004", res.errorCode, res.errMsg)
	}
	// Plain HTTP spoken to... an HTTPS URL on a plain server.
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(plain.Close)
	res = post(t, loopbackClient(nil), "https://"+plain.Listener.Addr().String()+"/", 5*time.Second)
	if res.errorCode != kapsel.CodeAttemptTLS {
		t.Fatalf("https to a plain server: code %q (%s), want E2004", res.errorCode, res.errMsg)
	}
	// Trusted through Config.TLSConfig: delivered.
	res = post(t, loopbackClient(srv.Client().Transport.(*http.Transport).TLSClientConfig), srv.URL, 5*time.Second)
	if res.errorCode != "" || res.statusCode != 200 {
		t.Fatalf("trusted certificate: code %q status %d (%s)", res.errorCode, res.statusCode, res.errMsg)
	}
}

// TestSendHugeBody streams up to 1 GiB: the attempt keeps exactly
// MaxResponseBody bytes, and the client stops reading there — the handler
// sees its writes fail long before the gigabyte, and the client's heap does
// not grow with what was sent.
func TestSendHugeBody(t *testing.T) {
	t.Parallel()
	const total = 1 << 30
	var written atomic.Int64
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		w.Header().Set("Content-Length", "1073741824")
		chunk := make([]byte, 32<<10)
		for i := range chunk {
			chunk[i] = 'x'
		}
		for written.Load() < total {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	res := post(t, loopbackClient(nil), srv.URL, 30*time.Second)
	if res.errorCode != "" || res.statusCode != 200 {
		t.Fatalf("code %q status %d (%s)", res.errorCode, res.statusCode, res.errMsg)
	}
	if len(res.body) != kapsel.MaxResponseBody {
		t.Fatalf("recorded body %d bytes, want exactly %d", len(res.body), kapsel.MaxResponseBody)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the handler is still writing: the client did not close the connection")
	}
	// Socket buffers hold a few MiB at most; reading on would reach 1 GiB.
	if n := written.Load(); n >= 64<<20 {
		t.Fatalf("the destination wrote %d bytes before noticing the client left", n)
	}
}
