// Package bearer reads "Authorization: Bearer <token>" credentials and
// compares them with a configured token, for the management API's admin
// token and kapseld's metrics token alike.
package bearer

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// Token returns the token of r's "Authorization: Bearer …" header (the
// scheme in any case, surrounding spaces trimmed), or "".
func Token(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// Secret is a configured token, kept as its SHA-256 digest.
type Secret struct {
	sum [sha256.Size]byte
	set bool
}

// NewSecret keeps token; an empty one matches nothing.
func NewSecret(token string) Secret {
	return Secret{sum: sha256.Sum256([]byte(token)), set: token != ""}
}

// Matches reports whether token is the secret. The digests are compared in
// constant time, so neither the content nor the length of the secret leaks
// through timing. An empty token never matches.
func (s Secret) Matches(token string) bool {
	got := sha256.Sum256([]byte(token))
	return s.set && token != "" && subtle.ConstantTimeCompare(got[:], s.sum[:]) == 1
}
