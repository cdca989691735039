package verify

import (
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/kapsel-dev/kapsel"
)

// Registry maps scheme names to verifiers. It is safe for concurrent use.
type Registry struct {
	mu sync.RWMutex
	m  map[string]Verifier
}

// NewRegistry returns a registry holding every built-in scheme
// (kapsel.BuiltinSchemes, the one list of their names) with its default
// settings.
func NewRegistry() *Registry {
	r := &Registry{m: map[string]Verifier{}}
	for _, scheme := range kapsel.BuiltinSchemes() {
		r.m[scheme] = builtin(scheme)
	}
	return r
}

// builtin returns the verifier of a built-in scheme name. A name in
// kapsel.BuiltinSchemes without a verifier here is a programming error,
// caught by every test that builds a registry.
func builtin(scheme string) Verifier {
	switch scheme {
	case kapsel.SchemeNone:
		return None{}
	case kapsel.SchemeHMACSHA256:
		return HMACSHA256{}
	case kapsel.SchemeGitHub:
		return GitHub{}
	case kapsel.SchemeStripe:
		return Stripe{}
	case kapsel.SchemeStandardWebhooks:
		return StandardWebhooks{}
	case kapsel.SchemeShopify:
		return Shopify{}
	case kapsel.SchemeSlack:
		return Slack{}
	}
	panic("verify: built-in scheme " + scheme + " has no verifier")
}

// ErrBadScheme is returned by Register for an empty scheme name or a nil
// verifier.
var ErrBadScheme = errors.New("verify: scheme needs a name and a verifier")

// Register adds a scheme, or replaces one (a built-in scheme may be replaced,
// for example to change Stripe's tolerance).
func (r *Registry) Register(scheme string, v Verifier) error {
	if scheme == "" || v == nil {
		return fmt.Errorf("%w (scheme %q)", ErrBadScheme, scheme)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m[scheme] = v
	return nil
}

// Lookup returns the verifier of scheme. The empty scheme is "none".
func (r *Registry) Lookup(scheme string) (Verifier, bool) {
	if scheme == "" {
		scheme = kapsel.SchemeNone
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	v, ok := r.m[scheme]
	return v, ok
}

// Schemes returns the registered scheme names, sorted.
func (r *Registry) Schemes() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.m))
	for k := range r.m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
