package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// Limits on endpoint fields.
const (
	maxURLLength    = 2048
	maxNameLength   = 255
	maxHeaders      = 50
	maxHeaderValue  = 4096
	maxSecrets      = 10
	maxSecretLength = 1024
)

// CheckURL is the default [Config.ValidateURL]: an absolute http or https
// URL with a host, no credentials, at most 2048 bytes; unless allowPrivate,
// the host must not be "localhost" or a literal address in a blocked range
// (loopback, private, link-local, CGNAT, unique-local, multicast,
// unspecified, also when embedded in IPv4-mapped, NAT64 or 6to4 IPv6), nor
// an ambiguous numeric form such as "2130706433" or "0x7f.1". Names that
// resolve to blocked addresses are caught at dial time by the dispatcher.
func CheckURL(raw string, allowPrivate bool) error {
	if raw == "" {
		return errors.New("url is required")
	}
	if len(raw) > maxURLLength {
		return fmt.Errorf("url is longer than %d bytes", maxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("url does not parse")
	}
	if s := strings.ToLower(u.Scheme); s != "http" && s != "https" {
		return errors.New("url scheme must be http or https")
	}
	if u.User != nil {
		return errors.New("url must not contain credentials; use custom headers instead")
	}
	host := u.Hostname()
	if host == "" {
		return errors.New("url has no host")
	}
	if allowPrivate {
		return nil
	}
	lower := strings.ToLower(strings.TrimSuffix(host, "."))
	if lower == "localhost" || strings.HasSuffix(lower, ".localhost") {
		return errors.New("url host is localhost, which the SSRF guard blocks")
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		if blockedAddr(addr) {
			return errors.New("url host is an internal address, which the SSRF guard blocks")
		}
		return nil
	}
	if numericHost(lower) {
		return errors.New("url host is an ambiguous numeric address")
	}
	return nil
}

// blockedPrefixes are the ranges netip's predicates do not cover.
var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),      // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),  // CGNAT
	netip.MustParsePrefix("192.0.0.0/24"),   // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),  // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),    // reserved, broadcast
	netip.MustParsePrefix("fec0::/10"),      // site-local (deprecated)
	netip.MustParsePrefix("100::/64"),       // discard-only
	netip.MustParsePrefix("2001:db8::/32"),  // documentation
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64
	netip.MustParsePrefix("::/96"),          // IPv4-compatible (deprecated)
}

var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour   = netip.MustParsePrefix("2002::/16")
)

// blockedAddr reports whether addr, or the IPv4 address embedded in it, is
// one the SSRF guard refuses.
func blockedAddr(addr netip.Addr) bool {
	addr = addr.WithZone("")
	if addr.Is4In6() {
		addr = addr.Unmap()
	}
	if addr.Is6() {
		b := addr.As16()
		switch {
		case nat64Prefix.Contains(addr): // NAT64
			return blockedAddr(netip.AddrFrom4([4]byte(b[12:16])))
		case sixToFour.Contains(addr): // 6to4
			return blockedAddr(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	if addr.IsLoopback() || addr.IsPrivate() || addr.IsLinkLocalUnicast() ||
		addr.IsLinkLocalMulticast() || addr.IsInterfaceLocalMulticast() ||
		addr.IsMulticast() || addr.IsUnspecified() {
		return true
	}
	for _, p := range blockedPrefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// numericHost reports whether host looks like a number-based address that
// some resolvers accept ("2130706433", "0x7f.1", "127.1") but netip does not.
func numericHost(host string) bool {
	last := host[strings.LastIndexByte(host, '.')+1:]
	if last == "" {
		return false
	}
	// A DNS name's last label (the TLD) is never all digits or hex-prefixed.
	if strings.HasPrefix(last, "0x") {
		return true
	}
	return strings.Trim(last, "0123456789") == ""
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
