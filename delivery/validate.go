package delivery

import (
	"net/netip"
	"net/url"
	"strings"

	"github.com/kapsel-dev/kapsel"
)

// ValidateURL checks a destination URL before it is stored with a guard of
// the given setting and no allowed ranges; see [Guard.ValidateURL]. The
// management API uses the dispatcher's own guard instead
// ([Dispatcher.Guard]), so that its allowed ranges count too.
func ValidateURL(raw string, allowPrivate bool) error {
	g := Guard{AllowPrivate: allowPrivate}
	return g.ValidateURL(raw)
}

// ValidateURL checks a destination URL before it is stored: first the
// syntax every store applies, kapsel.CheckURL (http or https, a host, no
// credentials, at most [kapsel.MaxURLLength] bytes), then what this guard already
// knows it would refuse at dial time: a literal address it blocks (its
// Allowed ranges admit the addresses they contain), "localhost" (unless
// the guard admits loopback), or a numeric host that is not a dotted-quad
// IPv4 address, such as "2130706433" or "127.1", which resolvers read as
// IPv4. It returns a *kapsel.Error with code E1007. Names are still
// checked at dial time, after DNS; this check only refuses what is already
// known to be blocked.
func (g *Guard) ValidateURL(raw string) error {
	if err := kapsel.CheckURL(raw); err != nil {
		return err
	}
	u, _ := url.Parse(raw) // CheckURL parsed it
	host := u.Hostname()
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
		if g.Check(netip.MustParseAddr("127.0.0.1")) != nil && g.Check(netip.IPv6Loopback()) != nil {
			return invalidURL("url host %s is loopback", name)
		}
		return nil
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
