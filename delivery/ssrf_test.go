package delivery

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/kapsel-dev/kapsel"
)

func TestBlocked(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr    string
		blocked bool
	}{
		// IPv4 blocked ranges.
		{"0.0.0.0", true},
		{"0.1.2.3", true},
		{"10.0.0.1", true},
		{"10.255.255.255", true},
		{"100.64.0.1", true},
		{"100.127.255.254", true},
		{"127.0.0.1", true},
		{"127.255.255.254", true},
		{"169.254.169.254", true},
		{"172.16.0.1", true},
		{"172.31.255.255", true},
		{"192.0.0.8", true},
		{"192.0.2.1", true},
		{"192.168.1.1", true},
		{"198.18.0.1", true},
		{"198.51.100.7", true},
		{"203.0.113.9", true},
		{"224.0.0.1", true},
		{"239.255.255.250", true},
		{"240.0.0.1", true},
		{"255.255.255.255", true},
		// IPv4 public, including neighbours of blocked ranges.
		{"8.8.8.8", false},
		{"1.1.1.1", false},
		{"100.63.255.255", false},
		{"100.128.0.0", false},
		{"172.15.255.255", false},
		{"172.32.0.0", false},
		{"192.169.0.1", false},
		{"11.0.0.1", false},
		{"223.255.255.255", false},
		// IPv6 blocked.
		{"::", true},
		{"::1", true},
		{"fe80::1", true},
		{"fe80::1%eth0", true},
		{"fc00::1", true},
		{"fd12:3456::1", true},
		{"ff02::1", true},
		{"fec0::1", true},
		{"2001:db8::1", true},
		{"2001::1", true},
		{"100::1", true},
		{"64:ff9b:1::1", true},
		// IPv4 embedded in IPv6.
		{"::ffff:127.0.0.1", true},
		{"::ffff:10.1.2.3", true},
		{"::ffff:169.254.169.254", true},
		{"::ffff:8.8.8.8", false},
		{"::127.0.0.1", true},
		{"::8.8.8.8", true}, // deprecated IPv4-compatible: blocked whole
		{"::ffff:0:127.0.0.1", true},
		{"64:ff9b::127.0.0.1", true},
		{"64:ff9b::a9fe:a9fe", true}, // 169.254.169.254
		{"64:ff9b::8.8.8.8", false},
		{"2002:7f00:1::1", true},   // 6to4 of 127.0.0.1
		{"2002:0a00:0001::", true}, // 6to4 of 10.0.0.1
		{"2002:0808:0808::1", false},
		// IPv6 public.
		{"2606:4700:4700::1111", false},
		{"2a00:1450:4001::1", false},
	}
	for _, tt := range tests {
		addr := netip.MustParseAddr(tt.addr)
		reason, blocked := Blocked(addr)
		if blocked != tt.blocked {
			t.Errorf("Blocked(%s) = %v (%q), want %v", tt.addr, blocked, reason, tt.blocked)
		}
		if blocked && reason == "" {
			t.Errorf("Blocked(%s): empty reason", tt.addr)
		}
	}
	if _, blocked := Blocked(netip.Addr{}); !blocked {
		t.Error("the invalid address is not blocked")
	}
}

func TestGuardCheck(t *testing.T) {
	t.Parallel()
	loop := netip.MustParseAddr("127.0.0.1")
	ten := netip.MustParseAddr("10.1.2.3")
	mapped := netip.MustParseAddr("::ffff:10.1.2.3")
	var zero Guard
	if err := zero.Check(loop); err == nil {
		t.Fatal("zero Guard allows loopback")
	}
	var be *BlockedError
	if err := zero.Check(ten); !errors.As(err, &be) || be.Addr != ten {
		t.Fatalf("Check(10.1.2.3) = %v, want *BlockedError for it", err)
	}
	off := Guard{AllowPrivate: true}
	if err := off.Check(loop); err != nil {
		t.Fatalf("AllowPrivate guard blocks loopback: %v", err)
	}
	allow := Guard{Allowed: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	if err := allow.Check(ten); err != nil {
		t.Fatalf("allowlisted 10.1.2.3 blocked: %v", err)
	}
	if err := allow.Check(mapped); err != nil {
		t.Fatalf("allowlisted ::ffff:10.1.2.3 blocked: %v", err)
	}
	if err := allow.Check(loop); err == nil {
		t.Fatal("allowlist of 10/8 lets loopback through")
	}
	if err := allow.Control("tcp", "garbage", nil); err == nil {
		t.Fatal("Control accepts an unparsable address")
	}
}

// TestGuardBlocksRealDials dials through the transport a dispatcher uses,
// guard on: every blocked destination fails with E2006 before any
// connection, and the server listening on loopback never sees a request.
func TestGuardBlocksRealDials(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	port := mustURL(t, srv.URL).Port()

	guarded := newHTTPClient(newTransport(&Guard{}, 4, nil, nil))
	targets := []string{
		"http://127.0.0.1:" + port + "/",
		"http://localhost:" + port + "/", // a name resolving to loopback
		"http://[::1]:" + port + "/",
		"http://[::ffff:127.0.0.1]:" + port + "/",
		"http://10.0.0.1:" + port + "/",
		"http://169.254.169.254/latest/meta-data/",
		"http://0.0.0.0:" + port + "/",
	}
	for _, target := range targets {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, target, nil)
		if err != nil {
			t.Fatal(err)
		}
		res := send(guarded, req, func() bool { return false })
		if res.errorCode != kapsel.CodeAttemptBlocked {
			t.Errorf("%s: code %q (%s), want E2006", target, res.errorCode, res.errMsg)
		}
		if res.sent {
			t.Errorf("%s: request reported as sent", target)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the loopback server received %d requests through the guard", n)
	}

	// The same server is reachable once its range is allowed.
	allowed := newHTTPClient(newTransport(&Guard{Allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, 4, nil, nil))
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL, nil)
	if res := send(allowed, req, func() bool { return false }); res.errorCode != "" || res.statusCode != 200 {
		t.Fatalf("allowlisted loopback: code %q status %d (%s)", res.errorCode, res.statusCode, res.errMsg)
	}
	if hits.Load() != 1 {
		t.Fatalf("server hits = %d, want 1", hits.Load())
	}
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
