package delivery

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// Endpoint views. Each claimed delivery is attempted with a view of its
// endpoint: the endpoint as the store had it when it was read (at the claim,
// or later from the cache), with when it was read and the change count
// (Dispatcher.gen) at that moment. A view goes stale when it gets older than
// Config.EndpointRecheckAfter or when a change of the endpoint is reported
// in-process (EndpointChanged, EndpointDeleted); a stale view is read again
// just before the attempt. Together they bound which attempts may still
// start after a change:
//
//   - In-process, strictly: once EndpointDeleted(id) returned, no attempt to
//     id starts. Its queued deliveries are dropped, and the last check before
//     each request (begin) runs under the same lock as EndpointDeleted.
//   - Across nodes: an attempt starts with a view at most
//     EndpointRecheckAfter old (plus the breaker check's time), so at most
//     that long after another node's delete or pause was answered.

// endpointView is an endpoint as read from the store.
type endpointView struct {
	ep  *kapsel.Endpoint
	at  time.Time // when the read started, on Config.Clock
	gen uint64    // Dispatcher.gen when the read started
}

// endpointRead is a worker's read of an endpoint under way, which the
// workers needing the same endpoint wait for.
type endpointRead struct {
	done chan struct{} // closed when err is set and the cache updated
	err  error
}

// endpointMark is the last change of one endpoint reported in-process.
type endpointMark struct {
	gen     uint64    // Dispatcher.gen it set: views read before it are stale
	at      time.Time // when, on Config.Clock, for forgetting it
	deleted bool
}

// EndpointDeleted tells the dispatcher that the store's EndpointDelete of
// endpoint id has returned (and so ended its unfinished deliveries as
// failed). When EndpointDeleted returns, no new attempt to the endpoint
// starts in this dispatcher: the deliveries claimed and queued behind its
// running attempts are dropped unattempted (the store already failed them;
// their leases end with them), and deliveries of it that a claim returns or
// that were about to start are dropped too. Attempts already under way
// (past the last check before the request) are recorded as usual. The front door (package service) calls it before it
// answers a delete; call it only for an endpoint really deleted. It never
// blocks on I/O.
func (d *Dispatcher) EndpointDeleted(id kapsel.EndpointID) {
	d.forgetEndpoint(id, true)
}

// EndpointChanged tells the dispatcher that endpoint id changed in the
// store (paused, disabled, a new URL or signing secret): its cached copy is
// dropped, and every delivery to it already claimed reads the endpoint again
// before its attempt — one of a paused or disabled endpoint is then released
// unattempted (it waits in the store until the endpoint is resumed), the
// others are made with the endpoint as it is now. The front door calls it
// after pausing, resuming, updating or rotating an endpoint. It never
// blocks on I/O.
func (d *Dispatcher) EndpointChanged(id kapsel.EndpointID) {
	d.forgetEndpoint(id, false)
}

// forgetEndpoint records a change of endpoint id; deleted drops its queue.
func (d *Dispatcher) forgetEndpoint(id kapsel.EndpointID, deleted bool) {
	now := d.cfg.Clock.Now()
	d.mu.Lock()
	d.markLocked(id, deleted, now)
	freed := false
	if q := d.queued[id]; deleted && len(q) > 0 {
		// The running attempts of id find its queue empty when they end and
		// give their slots up: the per-endpoint accounting stays exact.
		d.queuedTotal -= len(q)
		delete(d.queued, id)
		freed = true
	}
	d.mu.Unlock()
	if freed {
		select {
		case d.freedCh <- struct{}{}:
		default:
		}
	}
}

// markLocked records a change of endpoint id at now and drops its cached
// view. Marks older than any view still in use are forgotten. d.mu is held.
func (d *Dispatcher) markLocked(id kapsel.EndpointID, deleted bool, now time.Time) {
	// A view lives at most a lease (its delivery is released when too little
	// of the lease is left for an attempt) plus the cache TTL it may have
	// been taken from.
	keep := d.cfg.LeaseDuration + max(d.cfg.EndpointCacheTTL, 0)
	for k, m := range d.marks {
		if now.Sub(m.at) > keep {
			delete(d.marks, k)
		}
	}
	d.gen++
	m := d.marks[id]
	d.marks[id] = endpointMark{gen: d.gen, at: now, deleted: m.deleted || deleted}
	delete(d.cache.m, id)
}

// deletedLocked reports whether endpoint id was reported deleted. d.mu is
// held.
func (d *Dispatcher) deletedLocked(id kapsel.EndpointID) bool {
	return d.marks[id].deleted
}

// staleLocked reports whether view v of endpoint id must be read again:
// a change was reported since it was read, or (maxAge > 0) it is maxAge
// old. d.mu is held.
func (d *Dispatcher) staleLocked(id kapsel.EndpointID, v endpointView, now time.Time, maxAge time.Duration) bool {
	if d.marks[id].gen > v.gen {
		return true
	}
	return maxAge > 0 && (now.Sub(v.at) >= maxAge || now.Before(v.at))
}

// cachedLocked returns the cached view of endpoint id unless it is stale by
// staleLocked. d.mu is held.
func (d *Dispatcher) cachedLocked(id kapsel.EndpointID, now time.Time, maxAge time.Duration) (endpointView, bool) {
	if d.cache.ttl <= 0 {
		return endpointView{}, false
	}
	v, ok := d.cache.m[id]
	if !ok || d.staleLocked(id, v, now, maxAge) {
		return endpointView{}, false
	}
	return v, true
}

// cacheLocked keeps view v of its endpoint, unless a change was reported
// since it was read. d.mu is held.
func (d *Dispatcher) cacheLocked(v endpointView) {
	if d.cache.ttl <= 0 || d.marks[v.ep.ID].gen > v.gen {
		return
	}
	if len(d.cache.m) >= maxCachedEndpoints {
		clear(d.cache.m)
	}
	d.cache.m[v.ep.ID] = v
}

// current returns the endpoint to attempt job j with: the view it was
// claimed with, or — when that view is stale (a change was reported, or it
// is Config.EndpointRecheckAfter old: the delivery waited in its endpoint's
// queue) — the endpoint as the store has it now, which the cache then keeps
// for the deliveries queued behind. When the delivery must not be attempted
// it returns nil and the outcome to record instead: nil when the endpoint
// was deleted (the store ended the delivery), a release when it is not
// active (the store keeps it pending until the endpoint is resumed) or could
// not be read (retried after a poll interval).
func (d *Dispatcher) current(j *job) (*kapsel.Endpoint, *outcome) {
	id := j.dl.EndpointID
	release := func(at time.Time) *outcome {
		return &outcome{release: &kapsel.DeliveryRelease{DeliveryID: j.dl.ID, LeaseToken: j.dl.LeaseToken, NextAttemptAt: at}}
	}
	recheck := max(d.cfg.EndpointRecheckAfter, 0)
	for {
		now := d.cfg.Clock.Now()
		d.mu.Lock()
		if d.deletedLocked(id) {
			d.mu.Unlock()
			return nil, nil
		}
		if !d.staleLocked(id, j.view, now, recheck) {
			d.mu.Unlock()
			break
		}
		if v, ok := d.cachedLocked(id, now, cacheAge(recheck, d.cache.ttl)); ok {
			j.view = v
			d.mu.Unlock()
			break
		}
		if r, ok := d.reading[id]; ok {
			// Another worker is reading this endpoint: share its answer
			// (through the cache, or a deletion) rather than add a read.
			d.mu.Unlock()
			select {
			case <-r.done:
			case <-d.attemptCtx.Done():
				return nil, release(d.cfg.Clock.Now()) // cut short by Stop
			}
			if r.err != nil && !errors.Is(r.err, kapsel.ErrNotFound) {
				return nil, release(d.cfg.Clock.Now().Add(d.cfg.PollInterval)) // logged by the reader
			}
			continue
		}
		r := &endpointRead{done: make(chan struct{})}
		d.reading[id] = r
		gen := d.gen
		d.mu.Unlock()
		v, err := d.reread(id, now, gen)
		d.mu.Lock()
		delete(d.reading, id)
		d.mu.Unlock()
		r.err = err
		close(r.done)
		switch {
		case errors.Is(err, kapsel.ErrNotFound):
			return nil, nil // deleted on another node: reread dropped it
		case err != nil && d.attemptCtx.Err() != nil:
			return nil, release(d.cfg.Clock.Now()) // cut short by Stop
		case err != nil:
			d.log.Error("reading endpoint again failed", slog.String("endpoint_id", string(id)), slog.Any("error", err))
			return nil, release(d.cfg.Clock.Now().Add(d.cfg.PollInterval))
		}
		j.view = v
		break
	}
	if j.view.ep.State != kapsel.EndpointActive {
		return nil, release(d.cfg.Clock.Now())
	}
	return j.view.ep, nil
}

// reread reads endpoint id from the store for a worker (the read started
// at now, with d.gen at gen) and keeps the view in the cache. An endpoint
// the store no longer has was deleted, maybe on another node: the store
// failed its deliveries, so it is handled as EndpointDeleted, which drops
// those queued here too.
func (d *Dispatcher) reread(id kapsel.EndpointID, now time.Time, gen uint64) (endpointView, error) {
	ctx, cancel := context.WithTimeout(d.attemptCtx, d.cfg.StoreTimeout)
	ep, err := d.store.EndpointGet(ctx, &kapsel.EndpointGetParams{ID: id})
	cancel()
	if errors.Is(err, kapsel.ErrNotFound) {
		d.EndpointDeleted(id)
	}
	if err != nil {
		return endpointView{}, err
	}
	v := endpointView{ep: ep, at: now, gen: gen}
	d.mu.Lock()
	d.cacheLocked(v)
	d.mu.Unlock()
	return v, nil
}

// begin is the last check before an attempt's request is sent: ok false
// when endpoint id was reported deleted meanwhile, expunged when ev's body
// was reported expunged (expunge.go). It runs under the lock
// EndpointDeleted and the expunges take, so an attempt either began before
// the delete or expunge was reported or never begins (sends nothing).
func (d *Dispatcher) begin(id kapsel.EndpointID, ev *kapsel.Event) (ok, expunged bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.deletedLocked(id) {
		return false, false
	}
	return true, ev.BodyErasure == kapsel.BodyKept && d.expungedLocked(ev)
}

// cacheAge is the oldest cached view a worker takes instead of reading its
// endpoint again: one the claim loop would take (ttl), and not older than
// the recheck age when there is one.
func cacheAge(recheck, ttl time.Duration) time.Duration {
	if recheck > 0 {
		return min(recheck, ttl)
	}
	return ttl
}
