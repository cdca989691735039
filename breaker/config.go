package breaker

import (
	"cmp"
	"fmt"
	"log/slog"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// Default values of [Config]. docs/breaker.md explains each choice against
// Convoy's breaker and Svix's auto-disable.
const (
	// DefaultConsecutiveFailures trips the breaker on a run of this many
	// failures in a row, whatever came before: a destination that was healthy
	// for an hour and then dies trips within ten attempts instead of waiting
	// for its failure rate to catch up.
	DefaultConsecutiveFailures = 10
	// DefaultFailureRate trips the breaker when at least this share of the
	// attempts in the current window failed (Convoy's 70 %)…
	DefaultFailureRate = 0.7
	// DefaultMinRequests …once the window holds at least this many attempts
	// (Convoy's 10).
	DefaultMinRequests = 10
	// DefaultWindow is how long the failure-rate counters accumulate before
	// they start afresh (Convoy's 5-minute observability window).
	DefaultWindow = 5 * time.Minute
	// DefaultCoolDown is how long the breaker stays open after its first trip
	// before one probe is let through (Convoy's 30 s error timeout).
	DefaultCoolDown = 30 * time.Second
	// DefaultMaxCoolDown caps the cool-down, which doubles with every failed
	// probe: 30 s, 1 min, 2 min, 4 min, 8 min, then 10 min for as long as the
	// destination stays down. A recovered destination is noticed within ten
	// minutes, at a cost of six probes an hour.
	DefaultMaxCoolDown = 10 * time.Minute
	// DefaultProbeLease is how long a probe belongs to the dispatcher that
	// took it. It is longer than the longest attempt timeout
	// ([kapsel.MaxAttemptTimeout], 120 s), so a live probe is never taken
	// over; a probe whose dispatcher died is taken over once it has passed.
	DefaultProbeLease = 3 * time.Minute
	// DefaultDisableAfter disables an endpoint whose failures have run
	// uninterrupted this long (Svix's 5 days).
	DefaultDisableAfter = 5 * 24 * time.Hour
	// DefaultSyncInterval is how long a Set trusts its cached copy of an
	// endpoint's persisted state before reading it again. It bounds how long
	// a dispatcher keeps sending after another dispatcher tripped the
	// breaker, and it must stay below the cool-down (see [Config.SyncInterval]).
	DefaultSyncInterval = time.Second
	// DefaultIdleTimeout is how long an endpoint's in-memory breaker is kept
	// without being used. It is longer than the retry policy's largest
	// interval (1 h), so a slow run of failures on a quiet endpoint is still
	// counted.
	DefaultIdleTimeout = 2 * time.Hour
	// DefaultMaxEndpoints caps the number of in-memory breakers; beyond it
	// the least recently used are dropped first.
	DefaultMaxEndpoints = 100_000
)

// Config configures a [Set]. The zero value works; a nil *Config is the zero
// value.
type Config struct {
	// ConsecutiveFailures trips the breaker on this many failures in a row. A
	// negative value turns this trigger off. Defaults to
	// DefaultConsecutiveFailures (10).
	ConsecutiveFailures int
	// FailureRate, between 0 and 1, trips the breaker when this share of the
	// attempts in the window failed, once there are MinRequests of them. A
	// negative value turns this trigger off. Defaults to DefaultFailureRate
	// (0.7).
	FailureRate float64
	// MinRequests is the number of attempts in the window below which the
	// failure rate is not judged. Defaults to DefaultMinRequests (10).
	MinRequests int
	// Window is how long the failure-rate counters accumulate before they
	// start afresh. They never start afresh in the middle of a run of
	// failures. Defaults to DefaultWindow (5 min).
	Window time.Duration
	// CoolDown is how long the breaker stays open after a trip before it lets
	// one probe through; it doubles with each failed probe, up to
	// MaxCoolDown. Defaults to DefaultCoolDown (30 s).
	CoolDown time.Duration
	// MaxCoolDown caps the cool-down. Defaults to DefaultMaxCoolDown (10 min),
	// or to CoolDown when that is longer.
	MaxCoolDown time.Duration
	// ProbeLease is how long a probe belongs to the dispatcher that took it
	// before another may take it over. It must exceed the longest attempt
	// timeout. Defaults to DefaultProbeLease (3 min).
	ProbeLease time.Duration
	// DisableAfter disables an endpoint (reason failing) once its failures
	// have run uninterrupted this long. A negative value never disables.
	// Defaults to DefaultDisableAfter (5 days).
	DisableAfter time.Duration
	// SyncInterval is how long a cached copy of the persisted state is
	// trusted. It must be shorter than CoolDown: that is what guarantees a
	// single probe across dispatchers. Defaults to DefaultSyncInterval (1 s),
	// or to half of CoolDown when that is shorter.
	SyncInterval time.Duration
	// IdleTimeout drops an endpoint's in-memory breaker after this long
	// unused. Defaults to DefaultIdleTimeout (2 h).
	IdleTimeout time.Duration
	// MaxEndpoints caps the number of in-memory breakers. Defaults to
	// DefaultMaxEndpoints (100,000).
	MaxEndpoints int
	// Clock is the source of time for Reset's bookkeeping; Allow and Record
	// take the time as an argument. Defaults to kapsel.SystemClock().
	Clock kapsel.Clock
	// Logger receives transitions (info) and storage errors (warn). Defaults
	// to slog.Default().
	Logger *slog.Logger
	// Hooks receive transitions (OnBreaker) and automatic disables
	// (OnEndpointDisabled). Only the dispatcher that persisted a transition
	// reports it, so each transition is reported once however many
	// dispatchers share the store. Defaults to no hooks.
	Hooks kapsel.Hooks
}

// withDefaults returns a copy of c with every zero field set to its default.
func (c *Config) withDefaults() Config {
	var out Config
	if c != nil {
		out = *c
	}
	out.ConsecutiveFailures = cmp.Or(out.ConsecutiveFailures, DefaultConsecutiveFailures)
	out.FailureRate = cmp.Or(out.FailureRate, DefaultFailureRate)
	out.MinRequests = cmp.Or(out.MinRequests, DefaultMinRequests)
	out.Window = cmp.Or(out.Window, DefaultWindow)
	out.CoolDown = cmp.Or(out.CoolDown, DefaultCoolDown)
	out.MaxCoolDown = cmp.Or(out.MaxCoolDown, max(DefaultMaxCoolDown, out.CoolDown))
	out.ProbeLease = cmp.Or(out.ProbeLease, DefaultProbeLease)
	out.DisableAfter = cmp.Or(out.DisableAfter, DefaultDisableAfter)
	out.SyncInterval = cmp.Or(out.SyncInterval, min(DefaultSyncInterval, out.CoolDown/2))
	out.IdleTimeout = cmp.Or(out.IdleTimeout, DefaultIdleTimeout)
	out.MaxEndpoints = cmp.Or(out.MaxEndpoints, DefaultMaxEndpoints)
	if out.Clock == nil {
		out.Clock = kapsel.SystemClock()
	}
	if out.Logger == nil {
		out.Logger = slog.Default()
	}
	return out
}

// Validate returns an error wrapping [kapsel.ErrInvalid] that names the first
// field out of range, after defaults are applied. [New] panics with it.
func (c *Config) Validate() error {
	d := c.withDefaults()
	bad := func(field, rule string, got any) error {
		return fmt.Errorf("%w: breaker.Config.%s %s, got %v", kapsel.ErrInvalid, field, rule, got)
	}
	switch {
	case d.ConsecutiveFailures < 0 && d.FailureRate < 0:
		return bad("ConsecutiveFailures", "and FailureRate cannot both be off", d.ConsecutiveFailures)
	case d.FailureRate > 1:
		return bad("FailureRate", "must be at most 1", d.FailureRate)
	case d.MinRequests < 1:
		return bad("MinRequests", "must be positive", d.MinRequests)
	case d.Window < 0:
		return bad("Window", "must be positive", d.Window)
	case d.CoolDown < 0:
		return bad("CoolDown", "must be positive", d.CoolDown)
	case d.MaxCoolDown < d.CoolDown:
		return bad("MaxCoolDown", "must be at least CoolDown", d.MaxCoolDown)
	case d.ProbeLease < 0:
		return bad("ProbeLease", "must be positive", d.ProbeLease)
	case d.SyncInterval < 0 || d.SyncInterval >= d.CoolDown:
		return bad("SyncInterval", "must be positive and shorter than CoolDown", d.SyncInterval)
	case d.IdleTimeout < 0:
		return bad("IdleTimeout", "must be positive", d.IdleTimeout)
	case d.MaxEndpoints < 1:
		return bad("MaxEndpoints", "must be positive", d.MaxEndpoints)
	}
	return nil
}

// coolDown is the cool-down after the trips-th consecutive opening: CoolDown
// doubled trips-1 times, capped at MaxCoolDown.
func (c *Config) coolDown(trips int) time.Duration {
	d := c.CoolDown
	for i := 1; i < trips && d < c.MaxCoolDown; i++ {
		d *= 2
	}
	return min(d, c.MaxCoolDown)
}
