// Package retention removes what Kapsel no longer needs to keep, in the
// background: event bodies once the body retention has passed, then events
// with their deliveries and attempts once the metadata retention has
// passed, and idempotency keys once their window has ended — never
// anything still in use (docs/operations.md, "Retention").
//
// A [Runner] makes a pass every Interval. A pass walks each policy scope
// (each tenant with a policy of its own, then every other tenant) in
// batches of BatchSize events, each batch one short transaction of the
// store ([kapsel.RetentionStore]), with a pause between batches so that
// ingest and delivery keep the store. It remembers where each walk
// stopped, so a pass reads only what arrived or expired since the last.
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/internal/lifecycle"
)

// Runner runs retention passes in the background. Build it with [New],
// run it with Start and Stop; RunPass runs one pass in the caller's
// goroutine (tests, a cron job). Its methods are safe for concurrent use.
type Runner struct {
	store kapsel.RetentionStore
	cfg   Config
	log   *slog.Logger

	mu      sync.Mutex // one pass at a time; guards the fields below
	cursors map[cursorKey]kapsel.EventID
	rescan  time.Time // when the cursors were last reset

	life   lifecycle.Runner
	cancel context.CancelFunc
	done   chan struct{}
}

// cursorKey names one walk: a table and a scope (a tenant, or "" for
// every tenant without a policy of its own).
type cursorKey struct {
	table  kapsel.RetentionTable
	tenant kapsel.TenantID
}

// New returns a Runner over store. cfg may be nil, the zero Config. It
// returns an error naming the field when cfg is invalid.
func New(store kapsel.RetentionStore, cfg *Config) (*Runner, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: retention.New needs a store", kapsel.ErrInvalid)
	}
	var c Config
	if cfg != nil {
		c = *cfg
	}
	c, err := c.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Runner{store: store, cfg: c, log: c.Logger, cursors: map[cursorKey]kapsel.EventID{}}, nil
}

// Start starts the passes in the background: the first at once, then one
// Interval after the end of each. It does nothing when retention is
// Disabled. ctx bounds only the start-up.
func (r *Runner) Start(ctx context.Context) error {
	return r.life.Start(func() error {
		if r.cfg.Disabled {
			return nil
		}
		pctx, cancel := context.WithCancel(context.Background())
		r.cancel, r.done = cancel, make(chan struct{})
		go r.loop(pctx)
		return nil
	})
}

// Stop stops the passes: a batch under way finishes (it is one short
// transaction), the rest of the pass is dropped; the next Start of a new
// Runner carries on. It waits until ctx ends at the most. Stopping twice
// is safe.
func (r *Runner) Stop(ctx context.Context) error {
	return r.life.Stop(ctx, func(ctx context.Context) error {
		if r.cancel == nil {
			return nil
		}
		r.cancel()
		select {
		case <-r.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
}

func (r *Runner) loop(ctx context.Context) {
	defer close(r.done)
	for {
		start := time.Now()
		p, err := r.RunPass(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			r.log.Warn("retention pass failed; retrying at the next one", slog.Any("error", err))
		case err == nil && p.removed() > 0:
			r.log.Info("retention pass", slog.Int("events", p.Removed[kapsel.RetentionEvents]),
				slog.Int("deliveries", p.Removed[kapsel.RetentionDeliveries]), slog.Int("attempts", p.Removed[kapsel.RetentionAttempts]),
				slog.Int("bodies", p.Removed[kapsel.RetentionEventBodies]), slog.Int("idempotency_keys", p.Removed[kapsel.RetentionIdempotencyKeys]),
				slog.Int64("bytes", p.Bytes), slog.Int("batches", p.Batches),
				slog.Duration("longest_batch", p.LongestBatch), slog.Duration("took", time.Since(start)))
		}
		t := r.cfg.Clock.NewTimer(r.cfg.Interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
	}
}

// Pass is what one pass did.
type Pass struct {
	// Removed counts, per table, the rows removed (bodies erased for
	// kapsel.RetentionEventBodies, keys for the idempotency keys).
	Removed map[kapsel.RetentionTable]int
	// Bytes counts the bytes of bodies and response bodies removed.
	Bytes int64
	// Batches is the number of store calls; LongestBatch the longest one.
	Batches      int
	LongestBatch time.Duration
}

// removed is the number of rows the pass removed, all tables together.
func (p *Pass) removed() int {
	n := 0
	for _, v := range p.Removed {
		n += v
	}
	return n
}

// RunPass runs one pass now and returns what it did. It stops at the
// first store error, which it returns; the next pass starts again where
// this one stopped. Concurrent calls run one after the other.
func (r *Runner) RunPass(ctx context.Context) (*Pass, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.cfg.Clock.Now()
	if now.Sub(r.rescan) >= r.cfg.RescanInterval {
		clear(r.cursors)
		r.rescan = now
	}
	p := &Pass{Removed: map[kapsel.RetentionTable]int{}}
	var exclude []kapsel.TenantID
	for id := range r.cfg.Tenants {
		exclude = append(exclude, id)
	}
	scopes := append([]kapsel.TenantID{}, exclude...)
	scopes = append(scopes, "")
	for _, tenant := range scopes {
		pol, ok := r.cfg.Tenants[tenant]
		if !ok {
			pol = r.cfg.Policy
		}
		for _, st := range []struct {
			table kapsel.RetentionTable
			keep  time.Duration
			sweep func(context.Context, *kapsel.RetentionSweepParams) (*kapsel.RetentionSweepResult, error)
		}{
			// Removal first: what has outlived its metadata is not erased
			// and then removed, but removed once.
			{kapsel.RetentionEvents, pol.Metadata, r.store.RetentionDeleteEvents},
			{kapsel.RetentionEventBodies, pol.Body, r.store.RetentionEraseBodies},
		} {
			if st.keep == kapsel.RetentionForever {
				continue
			}
			sp := kapsel.RetentionSweepParams{Before: now.Add(-st.keep), Now: now, Limit: r.cfg.BatchSize}
			if tenant != "" {
				sp.TenantID = tenant
			} else {
				sp.ExcludeTenantIDs = exclude
			}
			if err := r.walk(ctx, cursorKey{st.table, tenant}, &sp, st.sweep, p); err != nil {
				return p, err
			}
		}
	}
	if err := r.keys(ctx, now, p); err != nil {
		return p, err
	}
	r.oldest(ctx)
	return p, nil
}

// walk runs the batches of one sweep from its cursor until the sweep is
// done, and moves the cursor to where the next pass must start: the first
// event kept because it was in use, or where the walk stopped.
func (r *Runner) walk(ctx context.Context, key cursorKey, sp *kapsel.RetentionSweepParams,
	sweep func(context.Context, *kapsel.RetentionSweepParams) (*kapsel.RetentionSweepResult, error), p *Pass) error {
	sp.From = r.cursors[key]
	var blocked kapsel.EventID
	for range r.cfg.MaxBatchesPerPass {
		if err := ctx.Err(); err != nil {
			return err
		}
		start := time.Now()
		res, err := sweep(ctx, sp)
		took := time.Since(start)
		if err != nil {
			return fmt.Errorf("retention of %s: %w", key.table, err)
		}
		r.count(p, key.table, res, took)
		if blocked == "" {
			blocked = res.Blocked
		}
		if res.Done {
			if res.Next != "" {
				sp.From = res.Next
			}
			break
		}
		sp.From = res.Next
		if !r.pause(ctx, took) {
			break
		}
	}
	if blocked != "" && blocked < sp.From {
		sp.From = blocked
	}
	r.cursors[key] = sp.From
	return nil
}

// count counts a batch into the pass and the hooks.
func (r *Runner) count(p *Pass, table kapsel.RetentionTable, res *kapsel.RetentionSweepResult, took time.Duration) {
	p.Batches++
	p.LongestBatch = max(p.LongestBatch, took)
	p.Bytes += res.Bytes
	rows := []kapsel.RetentionInfo{{Table: table, Rows: res.Events, Bytes: res.Bytes}}
	if table == kapsel.RetentionEvents {
		rows = append(rows, kapsel.RetentionInfo{Table: kapsel.RetentionDeliveries, Rows: res.Deliveries},
			kapsel.RetentionInfo{Table: kapsel.RetentionAttempts, Rows: res.Attempts})
	}
	for _, info := range rows {
		p.Removed[info.Table] += info.Rows
		if h := r.cfg.Hooks.OnRetention; h != nil {
			info.Cause, info.Duration = kapsel.BodyExpired, took
			h(info)
		}
	}
}

// pause waits after a batch that took took: took·(1/Share − 1) plus
// BatchPause, so that retention holds the store at most Share of the time
// however slow the batches get (real time: it spaces the store's work, it
// measures nothing). It reports false when ctx ended.
func (r *Runner) pause(ctx context.Context, took time.Duration) bool {
	if r.cfg.BatchPause < 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(r.cfg.BatchPause + time.Duration(float64(took)*(1/r.cfg.Share-1)))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// keys removes the expired idempotency keys, batch by batch.
func (r *Runner) keys(ctx context.Context, now time.Time, p *Pass) error {
	for range r.cfg.MaxBatchesPerPass {
		start := time.Now()
		res, err := r.store.RetentionDeleteIdempotencyKeys(ctx, &kapsel.RetentionKeysParams{Limit: r.cfg.BatchSize, Now: now})
		took := time.Since(start)
		if err != nil {
			return fmt.Errorf("retention of %s: %w", kapsel.RetentionIdempotencyKeys, err)
		}
		r.count(p, kapsel.RetentionIdempotencyKeys, res, took)
		if res.Done || !r.pause(ctx, took) {
			return nil
		}
	}
	return nil
}

// oldest reports the oldest row of each table to the hooks.
func (r *Runner) oldest(ctx context.Context) {
	h := r.cfg.Hooks.OnRetentionOldest
	if h == nil {
		return
	}
	o, err := r.store.RetentionOldest(ctx)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			r.log.Warn("reading the oldest rows failed", slog.Any("error", err))
		}
		return
	}
	h(kapsel.RetentionOldestInfo{Table: kapsel.RetentionEvents, Oldest: o.Events})
	h(kapsel.RetentionOldestInfo{Table: kapsel.RetentionDeliveries, Oldest: o.Deliveries})
	h(kapsel.RetentionOldestInfo{Table: kapsel.RetentionAttempts, Oldest: o.Attempts})
}
