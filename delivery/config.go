package delivery

import (
	"cmp"
	"crypto/tls"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// Defaults of [Config].
const (
	DefaultWorkers                = 128
	DefaultPerEndpointConcurrency = 64
	DefaultClaimBatch             = 128
	DefaultCompleteBatch          = 256
	DefaultLeaseDuration          = 25 * time.Second
	DefaultPollInterval           = time.Second
	DefaultEndpointCacheTTL       = time.Second
	DefaultEndpointRecheckAfter   = time.Second
	DefaultStoreTimeout           = 10 * time.Second
)

// MinLeaseDuration is the shortest lease a Config accepts.
const MinLeaseDuration = 2 * time.Second

// Config configures a [Dispatcher]. The zero value works.
type Config struct {
	// Workers is the number of attempts in flight at once. Defaults to 128.
	Workers int
	// PerEndpointConcurrency caps the attempts in flight to one endpoint, so
	// that one slow or dead endpoint cannot occupy the whole pool. An
	// endpoint may also hold as many claimed deliveries queued behind its
	// running attempts (they hold no worker); see docs/delivery.md. Defaults
	// to DefaultPerEndpointConcurrency (64) or half of Workers, whichever is
	// less (at least 1); an explicit value is capped at Workers, and one equal
	// to Workers turns the isolation between endpoints off.
	PerEndpointConcurrency int
	// ClaimBatch is the most deliveries claimed in one store call. Defaults
	// to 128.
	ClaimBatch int
	// CompleteBatch is the most attempt outcomes recorded in one store call.
	// Defaults to 256.
	CompleteBatch int
	// LeaseDuration is how long a claimed delivery belongs to this
	// dispatcher without a renewal. The dispatcher renews the leases of the
	// deliveries it holds every third of it (DeliveryExtend), so an attempt
	// may take longer than the lease (up to the endpoint's timeout, 120 s at
	// most), and the lease decides only how soon another dispatcher
	// re-claims the deliveries of one that crashed: between 2/3 of it and
	// all of it after the crash, plus up to PollInterval. The default keeps
	// that recovery within 30 s (SPEC §5); a shorter lease recovers sooner
	// at the cost of more renewals (one store call per dispatcher per third
	// of it) and of less slack for a store that is slow to answer. At least
	// MinLeaseDuration. Defaults to 25 s: with the 1 s poll a crashed node's deliveries come back within 26 s (the campaign measured 30.0–30.9 s with 30 s).
	LeaseDuration time.Duration
	// PollInterval is how often the store is asked for due deliveries when
	// nothing woke the dispatcher. docs/delivery.md wants at most 1 s. Defaults to 1 s.
	PollInterval time.Duration
	// EndpointCacheTTL is how long an endpoint read from the store is reused
	// for further claimed deliveries; negative disables the cache. A change to an
	// endpoint (new URL, rotated secret) reaches deliveries within it, or at
	// once when reported with Dispatcher.EndpointChanged (the front door does
	// so in its own process). Defaults to 1 s.
	EndpointCacheTTL time.Duration
	// EndpointRecheckAfter is how old the endpoint a claimed delivery is
	// about to be attempted with may be: a delivery whose endpoint was read
	// longer ago (it waited in its endpoint's queue) reads it again first
	// (shared with the deliveries queued behind it through the cache), and
	// is not attempted when the endpoint was deleted, paused or disabled
	// meanwhile. It bounds how long after another node answered a delete or
	// a pause an attempt may still start (docs/delivery.md); changes made
	// through the same process's front door take effect at once
	// (Dispatcher.EndpointDeleted, EndpointChanged). Negative turns the
	// re-read off. Defaults to 1 s.
	EndpointRecheckAfter time.Duration
	// StoreTimeout bounds each store call the dispatcher makes (claim,
	// complete, release, endpoint reads), including those Stop makes after
	// its context ended to record cut-short attempts and release leases.
	// Defaults to 10 s.
	StoreTimeout time.Duration
	// UserAgent is sent with every delivery. Defaults to "Kapsel/<version>".
	UserAgent string
	// AllowPrivateDestinations turns the SSRF guard off, for local
	// development and tests. Defaults to false: the guard is on.
	AllowPrivateDestinations bool
	// AllowedCIDRs may be dialled even though the SSRF guard blocks them
	// (for example 10.0.0.0/8 for internal destinations). Defaults to none.
	AllowedCIDRs []netip.Prefix
	// TLSConfig is the TLS client configuration (custom roots, for example).
	// Defaults to Go's (system roots).
	TLSConfig *tls.Config
	// Resolver resolves destination names; the SSRF guard judges the
	// addresses it returns. Defaults to net.DefaultResolver.
	Resolver *net.Resolver
	// Breakers, when set, is asked before each attempt and told each
	// outcome. Defaults to nil: no circuit breaking.
	Breakers kapsel.Breakers
	// Hooks receive each attempt and each endpoint disabled. Defaults to none.
	Hooks kapsel.Hooks
	// Clock drives polling, leases, backoff and breakers. Defaults to the
	// system clock.
	Clock kapsel.Clock
	// ClockSync anchors the times the dispatcher passes to the store (lease
	// ends above all) to the store's clock, so that nodes whose clocks
	// disagree still agree on leases (clocksync.go, docs/delivery.md).
	// Defaults to ClockSyncAuto: on with the system clock and a store that
	// tells its time (pgstore), off with an injected clock or a
	// single-process store.
	ClockSync ClockSync
	// Logger receives operational messages (never bodies or secrets).
	// Defaults to slog.Default().
	Logger *slog.Logger
	// Rand returns uniform random numbers in [0, 1) for retry jitter; it is
	// called from many goroutines at once. Defaults to math/rand/v2.Float64.
	Rand func() float64
}

// withDefaults returns a copy of c with defaults applied, or an error naming
// the first invalid field.
func (c *Config) withDefaults() (Config, error) {
	var out Config
	if c != nil {
		out = *c
	}
	if out.Workers < 0 || out.PerEndpointConcurrency < 0 || out.ClaimBatch < 0 || out.CompleteBatch < 0 {
		return out, fmt.Errorf("%w: delivery config: Workers, PerEndpointConcurrency, ClaimBatch and CompleteBatch must not be negative", kapsel.ErrInvalid)
	}
	if out.LeaseDuration < 0 || out.PollInterval < 0 || out.StoreTimeout < 0 {
		return out, fmt.Errorf("%w: delivery config: LeaseDuration, PollInterval and StoreTimeout must not be negative", kapsel.ErrInvalid)
	}
	out.Workers = cmp.Or(out.Workers, DefaultWorkers)
	if out.PerEndpointConcurrency == 0 {
		// Half the pool at most, whatever its size: a default that let one
		// endpoint take every worker would let one dead endpoint stop all
		// delivery.
		out.PerEndpointConcurrency = max(1, min(DefaultPerEndpointConcurrency, out.Workers/2))
	}
	out.PerEndpointConcurrency = min(out.PerEndpointConcurrency, out.Workers)
	out.ClaimBatch = cmp.Or(out.ClaimBatch, DefaultClaimBatch)
	out.CompleteBatch = cmp.Or(out.CompleteBatch, DefaultCompleteBatch)
	out.LeaseDuration = cmp.Or(out.LeaseDuration, DefaultLeaseDuration)
	if out.LeaseDuration < MinLeaseDuration {
		return out, fmt.Errorf("%w: delivery config: LeaseDuration must be at least %s, got %s", kapsel.ErrInvalid, MinLeaseDuration, out.LeaseDuration)
	}
	out.PollInterval = cmp.Or(out.PollInterval, DefaultPollInterval)
	out.EndpointCacheTTL = cmp.Or(out.EndpointCacheTTL, DefaultEndpointCacheTTL)
	out.EndpointRecheckAfter = cmp.Or(out.EndpointRecheckAfter, DefaultEndpointRecheckAfter)
	out.StoreTimeout = cmp.Or(out.StoreTimeout, DefaultStoreTimeout)
	out.UserAgent = cmp.Or(out.UserAgent, DefaultUserAgent)
	for i, p := range out.AllowedCIDRs {
		if !p.IsValid() {
			return out, fmt.Errorf("%w: delivery config: AllowedCIDRs[%d] is not a valid prefix", kapsel.ErrInvalid, i)
		}
	}
	if out.Clock == nil {
		out.Clock = kapsel.SystemClock()
	}
	if out.Logger == nil {
		out.Logger = slog.Default()
	}
	if out.Rand == nil {
		out.Rand = rand.Float64
	}
	return out, nil
}

// attemptTimeout is the timeout of one attempt to ep: its own (30 s when
// unset, clamped to 1–120 s). The lease does not bound it: the keep-alive
// renews the lease while the attempt runs (keepalive.go).
func (c *Config) attemptTimeout(ep *kapsel.Endpoint) time.Duration {
	t := ep.Timeout
	t = cmp.Or(t, kapsel.DefaultAttemptTimeout)
	return min(max(t, kapsel.MinAttemptTimeout), kapsel.MaxAttemptTimeout)
}
