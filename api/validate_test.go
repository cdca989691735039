package api

import (
	"strings"
	"testing"
	"time"
)

func TestCheckURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url          string
		allowPrivate bool
		ok           bool
	}{
		{"https://example.com/hook", false, true},
		{"http://example.com:8080/a?b=c", false, true},
		{"HTTPS://EXAMPLE.COM/", false, true},
		{"https://8.8.8.8/", false, true},
		{"https://[2606:4700::1111]/", false, true},
		{"https://example.com./x", false, true},
		{"", false, false},
		{"example.com/hook", false, false},
		{"ftp://example.com/", false, false},
		{"javascript:alert(1)", false, false},
		{"https:///path", false, false},
		{"https://user:pass@example.com/", false, false},
		{"https://user@example.com/", false, false},
		{"http://127.0.0.1/", false, false},
		{"http://127.0.0.1/", true, true},
		{"http://user:pw@127.0.0.1/", true, false},
		{"http://localhost/", false, false},
		{"http://api.localhost./", false, false},
		{"http://10.1.2.3/", false, false},
		{"http://172.16.0.1/", false, false},
		{"http://192.168.1.1/", false, false},
		{"http://169.254.169.254/", false, false},
		{"http://100.64.0.1/", false, false},
		{"http://0.0.0.0/", false, false},
		{"http://224.0.0.1/", false, false},
		{"http://255.255.255.255/", false, false},
		{"http://[::1]/", false, false},
		{"http://[::]/", false, false},
		{"http://[fe80::1%25eth0]/", false, false},
		{"http://[fd00::1]/", false, false},
		{"http://[::ffff:127.0.0.1]/", false, false},
		{"http://[::ffff:10.0.0.1]/", false, false},
		{"http://[64:ff9b::a9fe:a9fe]/", false, false}, // NAT64 of 169.254.169.254
		{"http://[64:ff9b::808:808]/", false, true},    // NAT64 of 8.8.8.8
		{"http://[2002:7f00:1::]/", false, false},      // 6to4 of 127.0.0.1
		{"http://[ff02::1]/", false, false},
		{"http://2130706433/", false, false},
		{"http://0x7f.1/", false, false},
		{"http://127.1/", false, false},
		{"http://017700000001/", false, false},
		{"https://example.com/" + strings.Repeat("a", 2048), false, false},
	} {
		err := CheckURL(tc.url, tc.allowPrivate)
		if (err == nil) != tc.ok {
			t.Errorf("CheckURL(%q, %v) = %v, want ok=%v", tc.url, tc.allowPrivate, err, tc.ok)
		}
	}
}

func TestCheckHeaders(t *testing.T) {
	t.Parallel()
	many := map[string]string{}
	for i := range maxHeaders + 1 {
		many["X-H"+strings.Repeat("a", i)] = "v"
	}
	for _, tc := range []struct {
		name    string
		headers map[string]string
		ok      bool
	}{
		{"none", nil, true},
		{"plain", map[string]string{"X-Team": "payments", "Authorization": "Bearer t"}, true},
		{"tab allowed", map[string]string{"X-A": "a\tb"}, true},
		{"empty value", map[string]string{"X-A": ""}, true},
		{"CR", map[string]string{"X-A": "a\rb"}, false},
		{"LF", map[string]string{"X-A": "a\nb"}, false},
		{"NUL", map[string]string{"X-A": "a\x00b"}, false},
		{"DEL", map[string]string{"X-A": "a\x7fb"}, false},
		{"CRLF in name", map[string]string{"X-A\r\nX-B": "x"}, false},
		{"space in name", map[string]string{"X A": "x"}, false},
		{"colon in name", map[string]string{"X-A:": "x"}, false},
		{"empty name", map[string]string{"": "x"}, false},
		{"Host", map[string]string{"HOST": "x"}, false},
		{"Content-Length", map[string]string{"content-length": "1"}, false},
		{"Transfer-Encoding", map[string]string{"Transfer-Encoding": "chunked"}, false},
		{"webhook-signature", map[string]string{"webhook-signature": "v1,x"}, false},
		{"Webhook-Timestamp", map[string]string{"Webhook-Timestamp": "1"}, false},
		{"X-Kapsel-Attempt", map[string]string{"x-kapsel-attempt": "9"}, false},
		{"case duplicates", map[string]string{"X-A": "1", "x-a": "2"}, false},
		{"long value", map[string]string{"X-A": strings.Repeat("v", maxHeaderValue+1)}, false},
		{"too many", many, false},
	} {
		err := CheckHeaders(tc.headers)
		if (err == nil) != tc.ok {
			t.Errorf("%s: CheckHeaders = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

// FuzzCheckURL: no panic, and nothing accepted with the guard on is a URL
// the guard should have refused.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"https://example.com/", "http://127.0.0.1/", "http://[::ffff:10.0.0.1]/", "http://0x7f.1/", "http://a:b@c/", "%", "http://[fe80::1%25en0]/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if CheckURL(raw, false) != nil {
			return
		}
		if CheckURL(raw, true) != nil {
			t.Fatalf("%q passes with the guard on but not with it off", raw)
		}
		lower := strings.ToLower(raw)
		if !strings.HasPrefix(lower, "http://") && !strings.HasPrefix(lower, "https://") {
			t.Fatalf("accepted a non-http URL %q", raw)
		}
	})
}

// FuzzCheckHeaders: no panic, and an accepted value never carries CR or LF.
func FuzzCheckHeaders(f *testing.F) {
	f.Add("X-A", "b")
	f.Add("Host", "x")
	f.Add("X-A", "a\r\nb")
	f.Fuzz(func(t *testing.T, name, value string) {
		if CheckHeaders(map[string]string{name: value}) != nil {
			return
		}
		if strings.ContainsAny(name+value, "\r\n\x00") || strings.ContainsAny(name, " :") {
			t.Fatalf("accepted %q: %q", name, value)
		}
	})
}

func TestRotate(t *testing.T) {
	t.Parallel()
	// Pure-function checks live in the HTTP tests (TestRotateSigningSecret);
	// this one pins that an empty history yields just the new secret.
	got := rotate(nil, "whsec_new", time.Time{}, time.Hour)
	if len(got) != 1 || got[0].Secret != "whsec_new" || !got[0].ExpiresAt.IsZero() {
		t.Fatalf("rotate(nil) = %+v", got)
	}
}
