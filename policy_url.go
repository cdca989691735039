package kapsel

import (
	"net/url"
	"strconv"
	"strings"
)

// MaxURLLength is the longest destination URL accepted, in bytes.
const MaxURLLength = 2048

// CheckURL applies the syntactic rules for a destination URL (docs/api.md): at
// most [MaxURLLength] bytes, absolute, scheme http or https, a host, no
// credentials (user:password@), and a port, when given, of 1–65535. Every
// store checks it on insert and update, so that no path — the management
// API, the library, an embedder writing to the store — can keep a URL that
// delivery would refuse.
//
// Which addresses may be dialled is not decided here: the SSRF guard
// (delivery.Guard, whose ValidateURL calls CheckURL first) refuses blocked
// literal addresses when a URL is configured and every blocked address at
// dial time, after DNS.
//
// It returns a *[Error] with code E1007 wrapping [ErrInvalid]. The message
// never repeats the URL, which may hold credentials.
func CheckURL(raw string) error {
	if len(raw) > MaxURLLength {
		return invalid(CodeInvalidURL, "url is longer than %d bytes", MaxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the input, which may hold credentials.
		return invalid(CodeInvalidURL, "url cannot be parsed")
	}
	if scheme := strings.ToLower(u.Scheme); scheme != "http" && scheme != "https" {
		return invalid(CodeInvalidURL, "url scheme must be http or https")
	}
	if u.User != nil {
		return invalid(CodeInvalidURL, "url must not contain credentials")
	}
	if u.Opaque != "" {
		return invalid(CodeInvalidURL, "url must be absolute, like https://example.com/hook")
	}
	if u.Hostname() == "" {
		return invalid(CodeInvalidURL, "url has no host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return invalid(CodeInvalidURL, "url port must be 1–65535")
		}
	}
	return nil
}
