package kapsel

import (
	"net/http"
	"strings"
)

// Limits on an endpoint's custom headers, checked by [CheckHeaders].
const (
	// MaxCustomHeaders is how many custom headers an endpoint may have.
	MaxCustomHeaders = 50
	// MaxHeaderNameLength is the longest custom header name, in bytes.
	MaxHeaderNameLength = 256
	// MaxHeaderValueLength is the longest custom header value, in bytes:
	// the larger of the two limits Kapsel had before it had one policy, so
	// that no header stored under either is refused on its next update.
	MaxHeaderValueLength = 8 << 10
)

// reservedHeaders are set by the dispatcher or by HTTP itself; a custom
// header may not override them (canonical names). Prefixes are in
// reservedHeaderPrefixes.
var reservedHeaders = map[string]bool{
	"Host":                true,
	"Content-Length":      true,
	"Transfer-Encoding":   true,
	"Connection":          true,
	"Keep-Alive":          true,
	"Te":                  true,
	"Trailer":             true,
	"Upgrade":             true,
	"User-Agent":          true,
	"X-Kapsel-Attempt":    true,
	"X-Kapsel-Event-Type": true,
}

// reservedHeaderPrefixes: Proxy-* (Proxy-Authorization, Proxy-Connection
// …) is for proxies, not destinations; Webhook-* carries Kapsel's own
// signature; Svix-* is what Svix's verifiers read before webhook-*, so a
// custom svix-signature would make every Svix verifier refuse Kapsel's
// deliveries (the same reason inbound svix-* headers are not forwarded).
var reservedHeaderPrefixes = []string{"Proxy-", "Webhook-", "Svix-"}

// CheckHeaders applies the one policy for an endpoint's custom outbound
// headers (docs/api.md), which the management API, the dispatcher and every store
// share: at most [MaxCustomHeaders] headers; each name a valid HTTP field
// name of at most [MaxHeaderNameLength] bytes, not two names that differ
// only in case (delivery could send only one of them), and none that
// overrides what Kapsel or HTTP sets — Host, Content-Length,
// Transfer-Encoding, the hop-by-hop headers, User-Agent, X-Kapsel-Attempt,
// X-Kapsel-Event-Type, or any Proxy-*, Webhook-* or Svix-* header; each
// value at most [MaxHeaderValueLength] bytes, free of CR, LF, NUL and other
// control characters (tab allowed).
//
// It returns a *[Error] with code E1008 wrapping [ErrInvalid].
func CheckHeaders(headers map[string]string) error {
	if len(headers) > MaxCustomHeaders {
		return invalid(CodeInvalidHeader, "at most %d custom headers are allowed", MaxCustomHeaders)
	}
	seen := make(map[string]bool, len(headers))
	for name, value := range headers {
		if len(name) > MaxHeaderNameLength || !ValidHeaderName(name) {
			return invalid(CodeInvalidHeader, "header name %q is not a valid HTTP field name", clip(name, 64))
		}
		canon := http.CanonicalHeaderKey(name)
		if reservedHeaders[canon] || hasReservedPrefix(canon) {
			return invalid(CodeInvalidHeader, "header %s is set by Kapsel and cannot be overridden", canon)
		}
		if seen[canon] {
			return invalid(CodeInvalidHeader, "header %s is given twice (names differing only in case)", canon)
		}
		seen[canon] = true
		if len(value) > MaxHeaderValueLength {
			return invalid(CodeInvalidHeader, "header %s: value is longer than %d bytes", canon, MaxHeaderValueLength)
		}
		for i := 0; i < len(value); i++ {
			if c := value[i]; (c < ' ' && c != '\t') || c == 0x7f {
				return invalid(CodeInvalidHeader, "header %s: value contains a control character (CR, LF, …)", canon)
			}
		}
	}
	return nil
}

func hasReservedPrefix(canon string) bool {
	for _, p := range reservedHeaderPrefixes {
		if strings.HasPrefix(canon, p) {
			return true
		}
	}
	return false
}

// ValidHeaderName reports whether name is an HTTP field name: a non-empty
// RFC 9110 token.
func ValidHeaderName(name string) bool {
	if name == "" {
		return false
	}
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

// clip shortens caller input quoted in an error message.
func clip(s string, n int) string { return truncate(s, n) }
