package kapsel

import (
	"maps"
	"net/http"
	"slices"
	"strings"
)

// SafeText returns s made safe to store in every store: each run of bytes
// that is not valid UTF-8 becomes one U+FFFD (the Unicode replacement
// character), and each NUL byte becomes U+FFFD too. Valid text without NUL
// comes back unchanged (and unallocated).
//
// Text that comes from outside Kapsel — a destination's status line and
// error messages, a provider's content type, forwarded header names and
// values, idempotency keys, tenant and endpoint names — can hold any bytes,
// and not every store can hold every byte: Postgres refuses invalid UTF-8 and
// NUL in text columns (SQLSTATE 22021) and would refuse the whole statement,
// with every other row in it. So every store passes such text through
// SafeText before it writes it, and reads back the same thing whichever store
// it is (docs/storage.md: made safe, not refused). Bytes kept as bytes (event
// bodies, response bodies, hashes) are stored as they are.
//
// NUL is replaced rather than removed so that the record still shows that
// something was there, and so that two different inputs are less likely to
// become equal.
func SafeText(s string) string {
	if !needsCleaning(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// needsCleaning reports whether s holds invalid UTF-8 or a NUL byte.
func needsCleaning(s string) bool {
	for i, r := range s {
		if r == 0 || (r == '\uFFFD' && !strings.HasPrefix(s[i:], "\uFFFD")) {
			return true
		}
	}
	return false
}

// SafeHeader returns h with SafeText applied to every name and value, or h
// itself when nothing needed it. Names that become equal once made safe keep
// all their values, in order of the original names.
func SafeHeader(h http.Header) http.Header {
	clean := true
	for name, vs := range h {
		if needsCleaning(name) {
			clean = false
			break
		}
		for _, v := range vs {
			if needsCleaning(v) {
				clean = false
				break
			}
		}
	}
	if clean {
		return h
	}
	out := make(http.Header, len(h))
	for _, name := range slices.Sorted(maps.Keys(h)) {
		k := SafeText(name)
		for _, v := range h[name] {
			out[k] = append(out[k], SafeText(v))
		}
	}
	return out
}
