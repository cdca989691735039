package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/kapsel-dev/kapsel/delivery"
)

// Limits on endpoint fields.
const (
	maxNameLength   = 255
	maxHeaders      = 50
	maxHeaderValue  = 4096
	maxSecrets      = 10
	maxSecretLength = 1024
)

// CheckURL is the default [Config.ValidateURL]: [delivery.ValidateURL], the
// same check as the dispatcher's SSRF guard, so that no URL is stored that
// every delivery would then refuse. Names that resolve to blocked addresses
// are caught at dial time by the dispatcher.
func CheckURL(raw string, allowPrivate bool) error {
	return delivery.ValidateURL(raw, allowPrivate)
}

// reservedHeaders may not be set as custom headers: Kapsel or the HTTP
// transport sets them.
var reservedHeaders = map[string]bool{
	"Host": true, "Content-Length": true, "Transfer-Encoding": true,
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true,
	"Te": true, "Trailer": true, "Upgrade": true, "X-Kapsel-Attempt": true,
}

// CheckHeaders is the default [Config.ValidateHeaders]: at most 50 headers,
// each a valid field name that does not override Host, Content-Length,
// hop-by-hop headers, webhook-* or X-Kapsel-Attempt, with a value of at
// most 4096 bytes free of CR, LF, NUL and other control characters (tab
// excepted). Header names are case-insensitive, so two names differing only
// in case are refused too.
func CheckHeaders(headers map[string]string) error {
	if len(headers) > maxHeaders {
		return fmt.Errorf("at most %d custom headers are allowed", maxHeaders)
	}
	seen := map[string]bool{}
	for name, value := range headers {
		if !validToken(name) {
			return fmt.Errorf("header name %q is not a valid HTTP field name", clip(name))
		}
		canon := http.CanonicalHeaderKey(name)
		if reservedHeaders[canon] || strings.HasPrefix(strings.ToLower(name), "webhook-") {
			return fmt.Errorf("header %q is set by Kapsel and cannot be overridden", canon)
		}
		if seen[canon] {
			return fmt.Errorf("header %q is given twice", canon)
		}
		seen[canon] = true
		if len(value) > maxHeaderValue {
			return fmt.Errorf("header %q value is longer than %d bytes", canon, maxHeaderValue)
		}
		for i := 0; i < len(value); i++ {
			if c := value[i]; (c < 0x20 && c != '\t') || c == 0x7f {
				return fmt.Errorf("header %q value contains a control character (CR, LF or other)", canon)
			}
		}
	}
	return nil
}

// validToken reports whether s is an RFC 9110 token.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// clip shortens caller input quoted in an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
