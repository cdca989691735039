package kapsel

import (
	"errors"
	"strings"
	"testing"
)

// refusedWith requires err to be a *Error with code wrapping ErrInvalid.
func refusedWith(t *testing.T, err error, code Code, what string) {
	t.Helper()
	var ke *Error
	if !errors.As(err, &ke) || ke.Code != code || !errors.Is(err, ErrInvalid) {
		t.Errorf("%s: error %v, want a *Error %s wrapping ErrInvalid", what, err, code)
	}
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://example.com/hook", true},
		{"http://example.com:8080/a?b=c#f", true},
		{"HTTPS://EXAMPLE.COM/", true},
		{"http://127.0.0.1/", true}, // syntax only: addresses are the SSRF guard's
		{"https://[2606:4700::1111]/", true},
		{"", false},
		{"example.com/hook", false},
		{"/hook", false},
		{"ftp://example.com/", false},
		{"javascript:alert(1)", false},
		{"https:///path", false},
		{"https://user:pass@example.com/", false},
		{"https://user@example.com/", false},
		{"http://example.com:0/", false},
		{"http://example.com:65536/", false},
		{"http://exa mple.com/", false},
		{"https://example.com/" + strings.Repeat("a", MaxURLLength), false},
	} {
		err := CheckURL(tc.url)
		if tc.ok {
			if err != nil {
				t.Errorf("CheckURL(%q) = %v, want nil", tc.url, err)
			}
			continue
		}
		refusedWith(t, err, CodeInvalidURL, "CheckURL("+tc.url+")")
		if err != nil && strings.Contains(err.Error(), "pass") {
			t.Errorf("CheckURL(%q) error %q repeats the credentials", tc.url, err)
		}
	}
}

func TestCheckHeaders(t *testing.T) {
	t.Parallel()
	many := map[string]string{}
	for i := range MaxCustomHeaders + 1 {
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
		{"Content-Type", map[string]string{"Content-Type": "application/json"}, true},
		{"value at the limit", map[string]string{"X-A": strings.Repeat("v", MaxHeaderValueLength)}, true},
		{"X-Kapsel-* other than Kapsel's", map[string]string{"X-Kapsel-Env": "prod"}, true},
		{"CR", map[string]string{"X-A": "a\rb"}, false},
		{"LF", map[string]string{"X-A": "a\nb"}, false},
		{"NUL", map[string]string{"X-A": "a\x00b"}, false},
		{"DEL", map[string]string{"X-A": "a\x7fb"}, false},
		{"CRLF in name", map[string]string{"X-A\r\nX-B": "x"}, false},
		{"space in name", map[string]string{"X A": "x"}, false},
		{"colon in name", map[string]string{"X-A:": "x"}, false},
		{"empty name", map[string]string{"": "x"}, false},
		{"long name", map[string]string{"X-" + strings.Repeat("n", MaxHeaderNameLength): "x"}, false},
		{"Host", map[string]string{"HOST": "x"}, false},
		{"Content-Length", map[string]string{"content-length": "1"}, false},
		{"Transfer-Encoding", map[string]string{"Transfer-Encoding": "chunked"}, false},
		{"Connection", map[string]string{"connection": "close"}, false},
		{"User-Agent", map[string]string{"user-agent": "x"}, false},
		{"Proxy-Authorization", map[string]string{"Proxy-Authorization": "Basic x"}, false},
		{"Proxy-Connection", map[string]string{"proxy-connection": "x"}, false},
		{"webhook-signature", map[string]string{"webhook-signature": "v1,x"}, false},
		{"Webhook-Timestamp", map[string]string{"Webhook-Timestamp": "1"}, false},
		{"svix-signature", map[string]string{"svix-signature": "v1,x"}, false},
		{"X-Kapsel-Attempt", map[string]string{"x-kapsel-attempt": "9"}, false},
		{"X-Kapsel-Event-Type", map[string]string{"X-Kapsel-Event-Type": "x"}, false},
		{"names differing only in case", map[string]string{"x-a": "1", "X-A": "2"}, false},
		{"long value", map[string]string{"X-A": strings.Repeat("v", MaxHeaderValueLength+1)}, false},
		{"too many", many, false},
	} {
		err := CheckHeaders(tc.headers)
		if tc.ok {
			if err != nil {
				t.Errorf("%s: CheckHeaders = %v, want nil", tc.name, err)
			}
			continue
		}
		refusedWith(t, err, CodeInvalidHeader, tc.name)
	}
}

// FuzzCheckURL: no panic, and nothing accepted is anything but an absolute
// http(s) URL without credentials.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"https://example.com/", "http://a:b@c/", "%", "ftp://x/", "http://[fe80::1%25en0]/", "https://x:99999/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if CheckURL(raw) != nil {
			return
		}
		lower := strings.ToLower(raw)
		if !strings.HasPrefix(lower, "http://") && !strings.HasPrefix(lower, "https://") {
			t.Fatalf("accepted a non-http URL %q", raw)
		}
		authority := raw[strings.Index(raw, "//")+2:]
		if i := strings.IndexAny(authority, "/?#"); i >= 0 {
			authority = authority[:i]
		}
		if strings.Contains(authority, "@") {
			t.Fatalf("accepted credentials in %q", raw)
		}
	})
}

// FuzzCheckHeaders: no panic; an accepted header never carries CR, LF or
// NUL, and is never one Kapsel sets.
func FuzzCheckHeaders(f *testing.F) {
	f.Add("X-A", "b")
	f.Add("Host", "x")
	f.Add("X-A", "a\r\nb")
	f.Add("proxy-x", "y")
	f.Fuzz(func(t *testing.T, name, value string) {
		if CheckHeaders(map[string]string{name: value}) != nil {
			return
		}
		if strings.ContainsAny(name+value, "\r\n\x00") || strings.ContainsAny(name, " :") {
			t.Fatalf("accepted %q: %q", name, value)
		}
		lower := strings.ToLower(name)
		for _, p := range []string{"host", "content-length", "user-agent", "proxy-", "webhook-", "svix-"} {
			if strings.HasPrefix(lower, p) && (strings.HasSuffix(p, "-") || lower == p) {
				t.Fatalf("accepted reserved header %q", name)
			}
		}
	})
}
