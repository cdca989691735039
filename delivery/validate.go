package delivery

import (
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/kapsel-dev/kapsel"
)

// Limits checked by [ValidateURL] and [ValidateHeaders].
const (
	MaxURLLength         = 2048
	MaxCustomHeaders     = 50
	MaxHeaderNameLength  = 256
	MaxHeaderValueLength = 8 << 10
)

// ValidateURL checks a destination URL before it is stored (management API):
// http or https, a host, no credentials, at most [MaxURLLength] bytes and,
// unless allowPrivate, no literal address the SSRF guard blocks (nor
// "localhost", nor a numeric host that is not a dotted-quad IPv4 address,
// such as "2130706433" or "127.1", which resolvers read as IPv4). It returns
// a *kapsel.Error with code E1007. Names are still checked at dial time,
// after DNS; this check only refuses what is already known to be blocked.
func ValidateURL(raw string, allowPrivate bool) error {
	g := Guard{AllowPrivate: allowPrivate}
	return g.ValidateURL(raw)
}

// ValidateURL is [ValidateURL] with the guard's settings: its Allowed ranges
// admit literal addresses they contain.
func (g *Guard) ValidateURL(raw string) error {
	if len(raw) > MaxURLLength {
		return invalidURL("url is longer than %d bytes", MaxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the input, which may hold credentials.
		return invalidURL("url cannot be parsed")
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return invalidURL("url scheme must be http or https")
	}
	if u.User != nil {
		return invalidURL("url must not contain credentials")
	}
	if u.Opaque != "" {
		return invalidURL("url must be absolute, like https://example.com/hook")
	}
	host := u.Hostname()
	if host == "" {
		return invalidURL("url has no host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return invalidURL("url port must be 1–65535")
		}
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		if err := g.Check(addr); err != nil {
			return invalidURL("url host %s is a blocked address (%s)", addr.WithZone(""), err.(*BlockedError).Reason)
		}
		return nil
	}
	if strings.Contains(host, "%") {
		return invalidURL("url host is not a valid name or address")
	}
	if g.AllowPrivate {
		return nil
	}
	name := strings.TrimSuffix(strings.ToLower(host), ".")
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return invalidURL("url host %s is loopback", name)
	}
	if labels := strings.Split(name, "."); numericLabel(labels[len(labels)-1]) {
		return invalidURL("url host %s is a numeric address in a non-standard form", name)
	}
	return nil
}

// numericLabel reports whether a DNS label looks like a number (decimal,
// octal or 0x hexadecimal): no top-level domain does, but resolvers read such
// hosts as IPv4 addresses.
func numericLabel(l string) bool {
	if l == "" {
		return false
	}
	if strings.HasPrefix(l, "0x") || strings.HasPrefix(l, "0X") {
		l = l[2:]
		for _, c := range l {
			if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
				return false
			}
		}
		return true
	}
	for _, c := range l {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func invalidURL(format string, args ...any) error {
	return kapsel.NewError(kapsel.CodeInvalidURL, format, args...)
}

// reservedHeaders are set by the dispatcher or by HTTP itself; a custom
// header may not override them.
var reservedHeaders = map[string]bool{
	"Host":              true,
	"Content-Length":    true,
	"Transfer-Encoding": true,
	"Connection":        true,
	"Keep-Alive":        true,
	"Proxy-Connection":  true,
	"Te":                true,
	"Trailer":           true,
	"Upgrade":           true,
	"User-Agent":        true,
	"X-Kapsel-Attempt":  true,
}

// ValidateHeaders checks an endpoint's custom outbound headers before they
// are stored: valid HTTP field names, values without CR, LF or other control
// characters (tab allowed), at most [MaxCustomHeaders] of them, and none that
// overrides what the dispatcher or HTTP sets — Host, Content-Length,
// Transfer-Encoding, hop-by-hop headers, User-Agent, X-Kapsel-Attempt and any
// webhook-* header. It returns a *kapsel.Error with code E1008.
func ValidateHeaders(headers map[string]string) error {
	if len(headers) > MaxCustomHeaders {
		return invalidHeader("at most %d custom headers are allowed", MaxCustomHeaders)
	}
	for name, value := range headers {
		if name == "" || len(name) > MaxHeaderNameLength || !validHeaderName(name) {
			return invalidHeader("header name %q is not a valid HTTP field name", truncate(name, 64))
		}
		canon := http.CanonicalHeaderKey(name)
		if reservedHeaders[canon] || strings.HasPrefix(canon, "Webhook-") || strings.HasPrefix(canon, "Proxy-") {
			return invalidHeader("header %s is set by Kapsel and cannot be overridden", canon)
		}
		if len(value) > MaxHeaderValueLength {
			return invalidHeader("header %s: value is longer than %d bytes", canon, MaxHeaderValueLength)
		}
		for i := 0; i < len(value); i++ {
			if c := value[i]; (c < ' ' && c != '\t') || c == 0x7f {
				return invalidHeader("header %s: value contains a control character (CR, LF, …)", canon)
			}
		}
	}
	return nil
}

func invalidHeader(format string, args ...any) error {
	return kapsel.NewError(kapsel.CodeInvalidHeader, format, args...)
}

// validHeaderName reports whether name is an RFC 9110 token.
func validHeaderName(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
