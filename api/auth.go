package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"

	"github.com/kapsel-dev/kapsel"
)

// APIKeyPrefix starts every tenant API key, so that leaked keys are easy to
// recognise (secret scanners) and never confused with the admin token.
const APIKeyPrefix = "kap_"

// apiKeyBytes is the entropy of an API key: 256 bits.
const apiKeyBytes = 32

// NewAPIKey returns a new random tenant API key and the SHA-256 hash under
// which it is stored. Only the hash is kept; the key is shown once.
func NewAPIKey() (key string, hash []byte) {
	var b [apiKeyBytes]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	key = APIKeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return key, HashAPIKey(key)
}

// HashAPIKey returns the hash a key is stored and looked up by. The key has
// 256 bits of entropy, so a fast unsalted hash is enough: nothing can be
// guessed, and a lookup by hash needs a deterministic one.
func HashAPIKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// bearer returns the token of r's "Authorization: Bearer …" header, or "".
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// errUnauthenticated is the answer to every missing or wrong credential. It
// never says which part was wrong.
var errUnauthenticated = kapsel.NewError(kapsel.CodeUnauthenticated,
	"missing or invalid credentials; send Authorization: Bearer <token>")

// admin wraps a handler that only the admin token may call.
func (a *API) admin(h func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.isAdmin(bearer(r)) {
			writeError(w, r, a.cfg.Logger, errUnauthenticated)
			return
		}
		if err := h(w, r); err != nil {
			writeError(w, r, a.cfg.Logger, err)
		}
	})
}

// isAdmin compares token with the admin token in constant time. Both are
// hashed first, so neither the content nor the length leaks through timing.
func (a *API) isAdmin(token string) bool {
	if a.cfg.AdminToken == "" || token == "" {
		return false
	}
	got, want := sha256.Sum256([]byte(token)), sha256.Sum256([]byte(a.cfg.AdminToken))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

type tenantKey struct{}

// tenantFrom returns the tenant the request was authenticated as.
func tenantFrom(ctx context.Context) *kapsel.Tenant {
	t, _ := ctx.Value(tenantKey{}).(*kapsel.Tenant)
	return t
}

// tenant wraps a handler that a tenant API key must authorise; the handler
// finds the tenant with tenantFrom. The key is looked up by its hash, so the
// comparison happens inside the store's index, never on the key itself.
func (a *API) tenant(h func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := bearer(r)
		if !strings.HasPrefix(key, APIKeyPrefix) {
			writeError(w, r, a.cfg.Logger, errUnauthenticated)
			return
		}
		t, err := a.store.TenantGetByAPIKey(r.Context(), &kapsel.TenantGetByAPIKeyParams{APIKeyHash: HashAPIKey(key)})
		if err != nil {
			if errors.Is(err, kapsel.ErrNotFound) {
				err = errUnauthenticated
			}
			writeError(w, r, a.cfg.Logger, err)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), tenantKey{}, t))
		if err := h(w, r); err != nil {
			writeError(w, r, a.cfg.Logger, err)
		}
	})
}
