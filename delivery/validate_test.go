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
		{"http://" + strings.Repeat("a", kapsel.MaxURLLength) + ".com/", false, false},

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
