package retention

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// Config configures a [Runner]. The zero value works: the default policy
// (bodies 30 days, metadata 90 days), a pass every minute, batches of
// kapsel.DefaultRetentionBatch events with a short pause between them.
type Config struct {
	// Disabled turns retention off: nothing is ever removed (an expunge,
	// which is asked for, still works). Defaults to false.
	Disabled bool
	// Policy applies to every tenant without a policy of its own. Its zero
	// durations take kapsel's defaults. Defaults to the zero policy.
	Policy kapsel.RetentionPolicy
	// Tenants are per-tenant policies, which replace Policy for those
	// tenants (a zero duration in one takes Policy's value). Defaults to
	// none.
	Tenants map[kapsel.TenantID]kapsel.RetentionPolicy
	// IdempotencyWindow is the ingester's window, which metadata retention
	// must cover. Defaults to kapsel.DefaultIdempotencyWindow.
	IdempotencyWindow time.Duration
	// Interval is the time between the end of a pass and the start of the
	// next. Defaults to DefaultInterval.
	Interval time.Duration
	// BatchSize is how many events one batch examines. Defaults to
	// kapsel.DefaultRetentionBatch.
	BatchSize int
	// Share is the most of the time retention may spend in batches: after a
	// batch that took d it pauses d·(1/Share − 1), so that it backs off by
	// itself when the store is slow (a loaded machine, a large backlog).
	// From 0.01 to 1 (no pause but BatchPause). Defaults to DefaultShare.
	Share float64
	// BatchPause is a pause after each batch on top of Share's, which
	// leaves the store to the hot path between two batches; negative for
	// no pause at all (Share ignored: tests). Defaults to DefaultBatchPause.
	BatchPause time.Duration
	// MaxBatchesPerPass bounds the batches of one table and scope in a pass,
	// so that a pass over a huge backlog ends and the next one carries on
	// where it stopped. Defaults to DefaultMaxBatchesPerPass.
	MaxBatchesPerPass int
	// RescanInterval is how often a pass starts again from the first event
	// rather than from where the previous pass left off, to find the events
	// a manual retry or replay kept in use behind the cursor. Defaults to
	// DefaultRescanInterval.
	RescanInterval time.Duration
	// Logger receives what the runner does (never bodies). Defaults to
	// slog.Default().
	Logger *slog.Logger
	// Clock is the source of time (cut-offs, intervals). Defaults to the
	// system clock.
	Clock kapsel.Clock
	// Hooks receive OnRetention and OnRetentionOldest. Defaults to none.
	Hooks kapsel.Hooks
}

// Defaults of [Config].
const (
	DefaultInterval          = time.Minute
	DefaultBatchPause        = 10 * time.Millisecond
	DefaultShare             = 0.05
	DefaultMaxBatchesPerPass = 10_000
	DefaultRescanInterval    = 24 * time.Hour
)

// withDefaults returns the config with its defaults applied, or an error
// naming the field.
func (c Config) withDefaults() (Config, error) {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Clock == nil {
		c.Clock = kapsel.SystemClock()
	}
	for _, f := range []struct {
		name string
		bad  bool
	}{
		{"Interval", c.Interval < 0},
		{"BatchSize", c.BatchSize < 0},
		{"MaxBatchesPerPass", c.MaxBatchesPerPass < 0},
		{"RescanInterval", c.RescanInterval < 0},
		{"IdempotencyWindow", c.IdempotencyWindow < 0},
		{"Share", c.Share < 0 || c.Share > 1 || (c.Share > 0 && c.Share < 0.01)},
	} {
		if f.bad {
			return c, fmt.Errorf("%w: retention %s is out of range", kapsel.ErrInvalid, f.name)
		}
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	c.BatchSize = kapsel.RetentionLimit(c.BatchSize)
	if c.Share == 0 {
		c.Share = DefaultShare
	}
	if c.BatchPause == 0 {
		c.BatchPause = DefaultBatchPause
	}
	if c.MaxBatchesPerPass == 0 {
		c.MaxBatchesPerPass = DefaultMaxBatchesPerPass
	}
	if c.RescanInterval == 0 {
		c.RescanInterval = DefaultRescanInterval
	}
	if c.IdempotencyWindow == 0 {
		c.IdempotencyWindow = kapsel.DefaultIdempotencyWindow
	}
	if err := c.Policy.Validate(c.IdempotencyWindow); err != nil {
		return c, fmt.Errorf("retention Policy: %w", err)
	}
	c.Policy = c.Policy.WithDefaults()
	tenants := make(map[kapsel.TenantID]kapsel.RetentionPolicy, len(c.Tenants))
	for id, p := range c.Tenants {
		if _, err := kapsel.ParseTenantID(string(id)); err != nil {
			return c, fmt.Errorf("retention Tenants: %w", err)
		}
		if p.Body == 0 {
			p.Body = c.Policy.Body
		}
		if p.Metadata == 0 {
			p.Metadata = c.Policy.Metadata
		}
		if err := p.Validate(c.IdempotencyWindow); err != nil {
			return c, fmt.Errorf("retention Tenants[%s]: %w", id, err)
		}
		tenants[id] = p.WithDefaults()
	}
	c.Tenants = tenants
	return c, nil
}
