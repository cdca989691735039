package delivery

import (
	"errors"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/kapsel-dev/kapsel"
)

func TestValidateURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw          string
		allowPrivate bool
		ok           bool
	}{
		{"https://example.com/hook", false, true},
		{"http://example.com:8080/hook?x=1", false, true},
		{"HTTPS://Example.COM/hook", false, true},
		{"https://8.8.8.8/hook", false, true},
		{"https://[2606:4700:4700::1111]/hook", false, true},
		{"https://xn--bcher-kva.example/", false, true},
		{"https://a1.example.com1x/", false, true},

		{"", false, false},
		{"example.com/hook", false, false},
		{"ftp://example.com/", false, false},
		{"file:///etc/passwd", false, false},
		{"javascript:alert(1)", false, false},
		{"mailto:a@example.com", false, false},
		{"https:example.com", false, false},
		{"https://", false, false},
		{"https://user:pass@example.com/", false, false},
		{"https://user@example.com/", false, false},
		{"https://example.com:0/", false, false},
		{"https://example.com:70000/", false, false},
		{"https://example.com:abc/", false, false},
		{"http://127.0.0.1/", false, false},
		{"http://127.0.0.1:8080/", false, false},
		{"http://10.1.2.3/", false, false},
		{"http://169.254.169.254/latest/meta-data", false, false},
		{"http://[::1]/", false, false},
		{"http://[::ffff:127.0.0.1]/", false, false},
		{"http://[fe80::1%25eth0]/", false, false},
		{"http://0.0.0.0/", false, false},
		{"http://localhost/", false, false},
		{"http://LOCALHOST./", false, false},
		{"http://api.localhost/", false, false},
		{"http://2130706433/", false, false},
		{"http://127.1/", false, false},
		{"http://0x7f.0.0.1/", false, false},
		{"http://0x7f000001/", false, false},
		{"http://" + strings.Repeat("a", MaxURLLength) + ".com/", false, false},

		// With the guard off, private destinations are fine; the rest is not.
		{"http://127.0.0.1:8080/", true, true},
		{"http://localhost:8080/", true, true},
		{"http://[::1]/", true, true},
		{"http://user:pass@127.0.0.1/", true, false},
		{"ftp://127.0.0.1/", true, false},
	}
	for _, tt := range tests {
		err := ValidateURL(tt.raw, tt.allowPrivate)
		if tt.ok {
			if err != nil {
				t.Errorf("ValidateURL(%q, %v) = %v, want nil", tt.raw, tt.allowPrivate, err)
			}
			continue
		}
		var ke *kapsel.Error
		if !errors.As(err, &ke) || ke.Code != kapsel.CodeInvalidURL {
			t.Errorf("ValidateURL(%q, %v) = %v, want *kapsel.Error E1007", tt.raw, tt.allowPrivate, err)
		}
	}
}

func TestValidateURLNeverEchoesCredentials(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{"https://user:s3cr3t@example.com/", "https://user:s3cr3t@exa mple.com/", "ftp://user:s3cr3t@example.com/"} {
		err := ValidateURL(raw, false)
		if err == nil {
			t.Fatalf("ValidateURL(%q) = nil", raw)
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("error %q repeats the password", err)
		}
	}
}

func TestGuardValidateURLAllowlist(t *testing.T) {
	t.Parallel()
	g := Guard{Allowed: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	if err := g.ValidateURL("http://10.1.2.3/hook"); err != nil {
		t.Fatalf("allowlisted literal refused: %v", err)
	}
	if err := g.ValidateURL("http://192.168.1.1/hook"); err == nil {
		t.Fatal("literal outside the allowlist accepted")
	}
}

// FuzzValidateURL checks, for any input, that the validator does not panic,
// that whatever it accepts is an absolute http(s) URL with a host and no
// credentials, and that an accepted literal address is never blocked.
func FuzzValidateURL(f *testing.F) {
	for _, s := range []string{
		"https://example.com/hook", "http://127.0.0.1/", "http://[::ffff:127.0.0.1]/",
		"http://u:p@example.com/", "http://2130706433/", "https://[fe80::1%25en0]:443/",
		"http://example.com:99999/", "HTTP://EXAMPLE.COM", "http://a.b.c.d.e.f/", "//example.com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		err := ValidateURL(raw, false)
		if err != nil {
			var ke *kapsel.Error
			if !errors.As(err, &ke) || ke.Code != kapsel.CodeInvalidURL {
				t.Fatalf("error %v is not E1007", err)
			}
			return
		}
		u, perr := url.Parse(raw)
		if perr != nil {
			t.Fatalf("accepted unparsable %q", raw)
		}
		if s := strings.ToLower(u.Scheme); s != "http" && s != "https" {
			t.Fatalf("accepted scheme %q", u.Scheme)
		}
		if u.User != nil || u.Hostname() == "" {
			t.Fatalf("accepted %q with credentials or without host", raw)
		}
		if addr, err := netip.ParseAddr(u.Hostname()); err == nil {
			if _, blocked := Blocked(addr); blocked {
				t.Fatalf("accepted blocked literal %s", addr)
			}
		}
		if ValidateURL(raw, true) != nil {
			t.Fatalf("accepted with the guard on but refused with it off: %q", raw)
		}
	})
}

func TestValidateHeaders(t *testing.T) {
	t.Parallel()
	many := map[string]string{}
	for i := range MaxCustomHeaders + 1 {
		many["X-H"+strings.Repeat("a", i)] = "v"
	}
	tests := []struct {
		name    string
		headers map[string]string
		ok      bool
	}{
		{"none", nil, true},
		{"plain", map[string]string{"X-Api-Key": "abc", "Authorization": "Bearer t"}, true},
		{"tab in value", map[string]string{"X-A": "a\tb"}, true},
		{"empty value", map[string]string{"X-A": ""}, true},
		{"content type", map[string]string{"Content-Type": "application/json"}, true},
		{"CR in value", map[string]string{"X-A": "a\rb"}, false},
		{"LF in value", map[string]string{"X-A": "a\nX-Injected: 1"}, false},
		{"NUL in value", map[string]string{"X-A": "a\x00"}, false},
		{"DEL in value", map[string]string{"X-A": "a\x7f"}, false},
		{"LF in name", map[string]string{"X-A\nB": "v"}, false},
		{"space in name", map[string]string{"X A": "v"}, false},
		{"colon in name", map[string]string{"X-A:": "v"}, false},
		{"empty name", map[string]string{"": "v"}, false},
		{"host", map[string]string{"Host": "evil.example"}, false},
		{"host lower", map[string]string{"host": "evil.example"}, false},
		{"content length", map[string]string{"content-length": "0"}, false},
		{"transfer encoding", map[string]string{"Transfer-Encoding": "chunked"}, false},
		{"connection", map[string]string{"Connection": "close"}, false},
		{"webhook-id", map[string]string{"webhook-id": "evt_x"}, false},
		{"webhook-signature", map[string]string{"Webhook-Signature": "v1,x"}, false},
		{"webhook-anything", map[string]string{"WEBHOOK-FOO": "x"}, false},
		{"user agent", map[string]string{"User-Agent": "x"}, false},
		{"attempt", map[string]string{"x-kapsel-attempt": "9"}, false},
		{"too long value", map[string]string{"X-A": strings.Repeat("a", MaxHeaderValueLength+1)}, false},
		{"too many", many, false},
	}
	for _, tt := range tests {
		err := ValidateHeaders(tt.headers)
		if tt.ok {
			if err != nil {
				t.Errorf("%s: %v, want nil", tt.name, err)
			}
			continue
		}
		var ke *kapsel.Error
		if !errors.As(err, &ke) || ke.Code != kapsel.CodeInvalidHeader {
			t.Errorf("%s: %v, want *kapsel.Error E1008", tt.name, err)
		}
	}
}

func FuzzValidateHeaders(f *testing.F) {
	f.Add("X-Api-Key", "value")
	f.Add("Host", "x")
	f.Add("X-A", "a\r\nb")
	f.Fuzz(func(t *testing.T, name, value string) {
		err := ValidateHeaders(map[string]string{name: value})
		if err != nil {
			return
		}
		if strings.ContainsAny(value, "\r\n\x00") || strings.ContainsAny(name, "\r\n: ") || name == "" {
			t.Fatalf("accepted %q: %q", name, value)
		}
	})
}
