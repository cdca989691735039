// Package breaker guards each endpoint with a circuit breaker and disables
// endpoints that have done nothing but fail for days (docs/delivery.md).
//
// A [Set] holds one breaker per endpoint and implements [kapsel.Breakers]:
// the dispatcher calls Allow before each attempt and Record after it. Each
// breaker counts outcomes in memory with github.com/mercari/go-circuitbreaker
// (a run of consecutive failures, or a failure rate over a minimum number of
// attempts) and persists its state through the store only when it changes —
// open, half-open, closed — so the hot path writes nothing, the state
// survives restarts, and every dispatcher on the same store shares it:
//
//	closed ──trip──▶ open ──cool-down over, one probe taken (CAS)──▶ half_open
//	   ▲                ▲                                               │
//	   │                └──────── probe failed: cool-down doubles ──────┤
//	   └─────────────────────────── probe succeeded ────────────────────┘
//
// While a breaker is open, Allow answers false with the time of the next
// probe, and the dispatcher reschedules the delivery there without spending
// an attempt; the store's DeliveryClaim skips the endpoint altogether. After the
// cool-down exactly one dispatcher wins the probe by a compare-and-set on the
// state's version, and its permit carries that version as the probe's token:
// only a Record with that token settles the half-open state, so an attempt
// started before the trip and finishing late cannot decide it. A probe whose
// dispatcher died is taken over when its lease ends. An endpoint whose failures have run uninterrupted for
// [Config.DisableAfter] (5 days) is disabled with reason failing; resuming it
// means setting it active and calling [Set.Reset].
//
// docs/breaker.md describes the defaults and why they were chosen.
package breaker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// Store is what a [Set] needs: breaker state, and disabling endpoints that
// keep failing. [kapsel.Store] and [kapsel.DeliveryStore] implement it.
type Store interface {
	kapsel.BreakerStore
	kapsel.EndpointStateSetter
}

var _ kapsel.Breakers = (*Set)(nil)

// Set is the circuit breakers of every endpoint, one each, created on first
// use and dropped when idle. It is safe for concurrent use. Several Sets (one
// per dispatcher, in one process or many) may share one store; they
// coordinate through it.
type Set struct {
	store Store
	cfg   Config

	mu        sync.Mutex
	entries   map[kapsel.EndpointID]*entry
	lastSweep time.Time
}

// New returns a Set that keeps its state in store. A nil config is the zero
// value. It returns [Config.Validate]'s error, which wraps kapsel.ErrInvalid
// and names the field, for an invalid config, and an error for a nil store.
func New(store Store, config *Config) (*Set, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: breaker.New needs a store", kapsel.ErrInvalid)
	}
	if err := config.Validate(); err != nil {
		return nil, err
	}
	return &Set{store: store, cfg: config.withDefaults(), entries: map[kapsel.EndpointID]*entry{}}, nil
}

// Allow reports whether an attempt to the endpoint may start at now. While
// the breaker is open it answers false and retryAt, the time of the next
// probe; once the cool-down is over it answers true to exactly one caller
// across every Set sharing the store — the probe, whose permit carries the
// probe's token (the version of the half-open state it took) — and false to
// the others. Every allowed attempt must be followed by a [Set.Record] of
// its outcome with its permit.
//
// Allow reads the store only when its cached copy of the endpoint's state is
// older than SyncInterval or a probe is due, and writes it only to take a
// probe. When the store cannot be read and nothing is cached, Allow returns
// a refusal and the error.
func (s *Set) Allow(ctx context.Context, endpoint kapsel.EndpointID, now time.Time) (permit kapsel.BreakerPermit, retryAt time.Time, err error) {
	e := s.entry(endpoint, now)
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.loaded || now.Sub(e.syncedAt) >= s.cfg.SyncInterval {
		if err := s.sync(ctx, e, now); err != nil {
			if !e.loaded {
				return kapsel.BreakerPermit{}, time.Time{}, err
			}
			s.cfg.Logger.WarnContext(ctx, "breaker: using cached state", "endpoint_id", endpoint, "error", err)
		}
	}
	// Three rounds: a lost compare-and-set re-reads the state and decides
	// again, and the state can change under us only so often.
	for range 3 {
		st := e.state
		switch {
		case isClosed(st):
			return kapsel.BreakerPermit{Allowed: true}, time.Time{}, nil
		case st.OpenUntil.After(now):
			return kapsel.BreakerPermit{}, s.retryAt(st, now), nil
		}
		won, err := s.takeProbe(ctx, e, now)
		if err != nil {
			return kapsel.BreakerPermit{}, time.Time{}, err
		}
		if won {
			return kapsel.BreakerPermit{Allowed: true, Probe: e.probeVersion}, time.Time{}, nil
		}
	}
	return kapsel.BreakerPermit{}, now.Add(s.cfg.SyncInterval), nil
}

// retryAt is when an attempt refused at now should be tried again: the end
// of the cool-down; while a probe is out, SyncInterval from now (at the
// latest the probe lease's end). The probe may settle any moment, and the
// deliveries held back should follow it at once when it succeeds; until it does,
// the store's claim skips the endpoint (OpenUntil is the lease's end), so an
// early retryAt costs nothing.
func (s *Set) retryAt(st *kapsel.BreakerState, now time.Time) time.Time {
	if st.Status == kapsel.BreakerHalfOpen {
		if t := now.Add(s.cfg.SyncInterval); t.Before(st.OpenUntil) {
			return t
		}
	}
	return st.OpenUntil
}

// Record reports the outcome of an attempt that Allow let through, with the
// permit Allow gave it. Outcomes are counted in memory; the store is written
// only when the breaker changes state (a trip, or the probe's verdict), and
// the endpoint is disabled when its failures have run for DisableAfter.
//
// Only the probe settles a half-open breaker: an outcome settles it only
// when its permit carries the token of the probe this Set owns. An attempt
// allowed before the breaker opened can finish after the cool-down, while
// the probe is out (an endpoint timeout longer than the cool-down); its
// outcome, like that of a probe whose lease another dispatcher took over,
// changes nothing.
func (s *Set) Record(ctx context.Context, endpoint kapsel.EndpointID, permit kapsel.BreakerPermit, success bool, now time.Time) error {
	e := s.entry(endpoint, now)
	e.mu.Lock()
	defer e.mu.Unlock()
	if permit.Probe != 0 {
		if e.probing && permit.Probe == e.probeVersion {
			return s.settleProbe(ctx, e, success, now)
		}
		return nil // a probe that is no longer ours to settle
	}
	if e.probing || (e.loaded && !isClosed(e.state)) {
		// An attempt allowed before the breaker opened, finishing late: the
		// probe decides, not stragglers.
		return nil
	}
	if !e.count(success, now, s.cfg.Window) {
		return nil
	}
	return s.trip(ctx, e, now)
}

// Reset closes the endpoint's breaker and forgets its failures, in the store
// and in this Set; resuming an endpoint (state active) calls it, after which
// its deliveries flow again. Other Sets notice within SyncInterval. OnBreaker
// reports the change when the breaker was not closed.
func (s *Set) Reset(ctx context.Context, endpoint kapsel.EndpointID) error {
	now := s.cfg.Clock.Now()
	e := s.entry(endpoint, now)
	e.mu.Lock()
	defer e.mu.Unlock()
	prev, err := s.store.BreakerGet(ctx, &kapsel.BreakerGetParams{EndpointID: endpoint})
	if err != nil && !errors.Is(err, kapsel.ErrNotFound) {
		return fmt.Errorf("resetting breaker of endpoint %s: %w", endpoint, err)
	}
	if err := s.store.BreakerDelete(ctx, &kapsel.BreakerDeleteParams{EndpointID: endpoint}); err != nil {
		return fmt.Errorf("resetting breaker of endpoint %s: %w", endpoint, err)
	}
	e.probing = false
	e.adopt(nil, now)
	e.startWindow(now)
	if from := status(prev); from != kapsel.BreakerClosed {
		s.emit(ctx, endpoint, from, kapsel.BreakerClosed, "reset")
	}
	return nil
}

// entry returns the endpoint's in-memory breaker, creating it (and making
// room for it) when needed.
func (s *Set) entry(id kapsel.EndpointID, now time.Time) *entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[id]
	if !ok {
		s.makeRoom(now)
		e = newEntry(id, &s.cfg, now)
		s.entries[id] = e
	}
	if now.After(e.lastUsed) {
		e.lastUsed = now
	}
	return e
}

// makeRoom drops idle entries, at most once per IdleTimeout/4 unless the Set
// is full; when it is still full, it drops the least recently used eighth.
// Dropping forgets only counts between transitions: the state is in the
// store. An entry that owns a probe is kept while its lease runs, so that its
// verdict is not lost. Called with s.mu held.
func (s *Set) makeRoom(now time.Time) {
	full := len(s.entries) >= s.cfg.MaxEndpoints
	if !full && now.Sub(s.lastSweep) < s.cfg.IdleTimeout/4 {
		return
	}
	s.lastSweep = now
	keep := func(e *entry) bool {
		if !e.mu.TryLock() {
			return true // in use right now
		}
		defer e.mu.Unlock()
		return e.probing && e.state != nil && e.state.ProbeUntil.After(now)
	}
	for id, e := range s.entries {
		if now.Sub(e.lastUsed) >= s.cfg.IdleTimeout && !keep(e) {
			delete(s.entries, id)
		}
	}
	if len(s.entries) < s.cfg.MaxEndpoints {
		return
	}
	lru := make([]*entry, 0, len(s.entries))
	for _, e := range s.entries {
		lru = append(lru, e)
	}
	sort.Slice(lru, func(i, j int) bool { return lru[i].lastUsed.Before(lru[j].lastUsed) })
	for _, e := range lru[:len(lru)/8+1] {
		if !keep(e) {
			delete(s.entries, e.id)
		}
	}
}

// Len returns the number of in-memory breakers.
func (s *Set) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}
