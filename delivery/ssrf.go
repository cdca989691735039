package delivery

import (
	"fmt"
	"net/netip"
	"syscall"
)

// Guard is the SSRF guard (I7 of docs/guarantees.md). The dispatcher installs it as the
// net.Dialer Control hook, so it judges the address actually being dialled,
// after DNS resolution: a name that resolves (or re-resolves, as in DNS
// rebinding) to a blocked address is refused just like a literal one.
//
// The zero value blocks every range [Blocked] reports.
type Guard struct {
	// AllowPrivate turns the guard off: every address may be dialled. For
	// local development and tests only.
	AllowPrivate bool
	// Allowed are ranges that may be dialled even though they are blocked,
	// for example a private network hosting internal destinations.
	Allowed []netip.Prefix
}

// BlockedError is the error of a dial refused by the [Guard]. Attempts that
// fail with it are recorded with code E2006.
type BlockedError struct {
	Addr   netip.Addr
	Reason string
}

// Error implements error.
func (e *BlockedError) Error() string {
	return fmt.Sprintf("destination address %s is blocked by the SSRF guard (%s)", e.Addr, e.Reason)
}

// Check returns a *BlockedError when the guard refuses addr, nil otherwise.
func (g *Guard) Check(addr netip.Addr) error {
	if g == nil || g.AllowPrivate {
		return nil
	}
	for _, p := range g.Allowed {
		if p.Contains(addr) || p.Contains(addr.Unmap()) {
			return nil
		}
	}
	if reason, blocked := Blocked(addr); blocked {
		return &BlockedError{Addr: addr, Reason: reason}
	}
	return nil
}

// Control is a net.Dialer Control hook: it refuses to connect to an address
// the guard blocks. address is the resolved "ip:port" being dialled.
func (g *Guard) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		// The dialer always hands over a numeric address; anything else is
		// refused rather than trusted.
		return &BlockedError{Reason: fmt.Sprintf("unparsable dial address %q", address)}
	}
	return g.Check(ap.Addr().WithZone(""))
}

// blockedRange is one range the guard refuses, with the reason reported.
type blockedRange struct {
	prefix netip.Prefix
	reason string
}

// blocked4 are the IPv4 ranges that are not globally reachable unicast
// (IANA special-purpose registry, RFC 6890 and successors).
var blocked4 = []blockedRange{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified (this network)"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay anycast"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"}, // includes 255.255.255.255, broadcast
}

// blocked6 are the IPv6 ranges that are not globally reachable unicast.
// Ranges that embed an IPv4 address (mapped, NAT64, 6to4) are handled in
// [Blocked] by judging the embedded address.
var blocked6 = []blockedRange{
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("::/96"), "deprecated IPv4-compatible"},
	{netip.MustParsePrefix("::ffff:0:0:0/96"), "IPv4-translated (SIIT)"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64"},
	{netip.MustParsePrefix("100::/64"), "discard-only"},
	{netip.MustParsePrefix("2001::/32"), "Teredo"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("fc00::/7"), "unique-local"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// Prefixes whose addresses carry an IPv4 address that is judged instead:
// both are in real use to reach public IPv4 hosts (NAT64 on IPv6-only
// networks), so they are not blocked wholesale.
var (
	nat64Prefix     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFourPrefix = netip.MustParsePrefix("2002::/16")
)

// Blocked reports whether the guard refuses addr, and why: loopback, private,
// link-local, carrier-grade NAT, unique-local, multicast, unspecified,
// broadcast, reserved and documentation ranges — including such an IPv4
// address embedded in IPv6 (IPv4-mapped ::ffff:a.b.c.d, NAT64 64:ff9b::/96,
// 6to4 2002::/16). The deprecated IPv4-compatible (::/96) and SIIT
// (::ffff:0:0:0/96) ranges and Teredo are blocked whole.
// An invalid addr is blocked.
func Blocked(addr netip.Addr) (reason string, blocked bool) {
	if !addr.IsValid() {
		return "invalid address", true
	}
	addr = addr.WithZone("")
	if addr.Is4In6() {
		reason, blocked = Blocked(addr.Unmap())
		return "IPv4-mapped " + reason, blocked
	}
	if addr.Is4() {
		for _, r := range blocked4 {
			if r.prefix.Contains(addr) {
				return r.reason, true
			}
		}
		return "", false
	}
	for _, r := range blocked6 {
		if r.prefix.Contains(addr) {
			return r.reason, true
		}
	}
	b := addr.As16()
	switch {
	case nat64Prefix.Contains(addr):
		return embedded("NAT64", [4]byte(b[12:16]))
	case sixToFourPrefix.Contains(addr):
		return embedded("6to4", [4]byte(b[2:6]))
	}
	return "", false
}

// embedded judges the IPv4 address carried in an IPv6 one.
func embedded(kind string, v4 [4]byte) (string, bool) {
	reason, blocked := Blocked(netip.AddrFrom4(v4))
	if !blocked {
		return "", false
	}
	return kind + " " + reason, true
}
