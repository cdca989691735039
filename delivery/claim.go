package delivery

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// claimLoop claims due deliveries whenever it is woken (Wake, a store
// notification), when its poll timer fires (brought forward to a retry this
// dispatcher scheduled sooner, due.go), and when a worker frees capacity
// that the last claim lacked. After a claim that filled its batch it claims
// again at once.
func (d *Dispatcher) claimLoop() {
	defer close(d.claimDone)
	timer := d.cfg.Clock.NewTimer(d.cfg.PollInterval)
	defer timer.Stop()
	poll := pollTimer{d: d, at: d.cfg.Clock.Now().Add(d.cfg.PollInterval)}
	want, followUp := false, false
	for {
		if want {
			claimedAt := d.cfg.Clock.Now()
			again := d.claimOnce(followUp)
			select {
			case <-d.quit:
				return
			default:
			}
			if again {
				followUp = true
				continue
			}
			poll.reset(timer)
			poll.bringForward(timer, d.dueAfter(claimedAt))
		}
		select {
		case <-d.quit:
			return
		case <-d.wakeCh:
			want, followUp = true, false
			d.idleExcluded = nil // new deliveries may be due anywhere
		case <-timer.C():
			want, followUp = true, false
			d.idleExcluded = nil
		case <-d.freedCh:
			want, followUp = d.claimMightFind(), true
		case <-d.dueCh:
			poll.bringForward(timer, d.dueAfter(time.Time{}))
		}
	}
}

// claimMightFind reports, after a worker finished, whether a claim may now
// find work the previous one could not take: it filled its batch, or an
// endpoint it excluded has room again.
func (d *Dispatcher) claimMightFind() bool {
	if d.lastFull {
		return true
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, id := range d.lastExcluded {
		if !d.saturatedLocked(id) {
			return true
		}
	}
	return false
}

// claimOnce makes one claim and runs or queues each claimed delivery. It
// reports whether to claim again at once. followUp is true when the claim
// follows a full batch or a freed worker rather than a wake-up or a poll.
func (d *Dispatcher) claimOnce(followUp bool) bool {
	if !d.clockReady() {
		return false // the store's clock has not answered yet (clocksync.go)
	}
	limit, exclude := d.capacity()
	d.lastExcluded = exclude
	if limit == 0 {
		d.lastFull = true
		return false
	}
	if followUp && d.idleExcluded != nil && containsAll(exclude, d.idleExcluded) {
		// Busy endpoints' backlogs are being drained, and the last claim
		// that looked past them found nothing else. This claim would look
		// at no more endpoints than that one, so until a wake-up or a poll
		// says otherwise it would be an empty round trip — and not a cheap
		// one: the store walks the busy endpoints' due rows to skip them.
		// Claim again once one of them has room.
		d.lastFull = true
		return false
	}
	now := d.cfg.Clock.Now()
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.StoreTimeout)
	defer cancel()
	claimed, err := d.store.DeliveryClaim(ctx, &kapsel.DeliveryClaimParams{
		Limit:            limit,
		LeaseDuration:    d.cfg.LeaseDuration,
		ExcludeEndpoints: exclude,
		Now:              now,
	})
	if err != nil {
		d.lastFull = false
		d.log.Error("claiming deliveries failed", slog.Any("error", err))
		return false
	}
	d.lastFull = len(claimed) == limit
	if len(exclude) > 0 {
		// A claim that looked past busy endpoints: remember whether it found
		// anything. That stays true until a wake-up or a poll (claims that
		// exclude nothing take deliveries; they make none due elsewhere).
		d.idleExcluded = nil
		if len(claimed) == 0 {
			d.idleExcluded = exclude
		}
	}
	if len(claimed) == 0 {
		return false
	}
	d.hold(claimed, now) // kept alive until recorded or released
	endpoints := d.endpointsFor(ctx, claimed, now)
	for _, dl := range claimed {
		r := endpoints[dl.EndpointID]
		err, ep := r.err, r.view.ep
		if dl.Event == nil {
			// A store that broke DeliveryClaim's contract: there is nothing
			// to send. Give it back for a later claim rather than record an
			// attempt that was never made.
			d.log.Error("claimed delivery came without its event", slog.String("delivery_id", string(dl.ID)))
			err = errNoEvent
		}
		if err != nil || ep == nil || ep.State != kapsel.EndpointActive {
			// Unreadable (retried after a poll), or deleted, paused or
			// disabled since the claim (the store does not claim it again
			// while the endpoint is inactive): give it back unattempted.
			next := now
			if err != nil {
				next = now.Add(d.cfg.PollInterval)
			}
			d.completeCh <- &outcome{release: &kapsel.DeliveryRelease{DeliveryID: dl.ID, LeaseToken: dl.LeaseToken, NextAttemptAt: next}}
			continue
		}
		d.admit(&job{dl: dl, view: r.view})
	}
	return d.lastFull
}

// errNoEvent marks a claimed delivery that came without its event.
var errNoEvent = errors.New("delivery: claimed delivery has no event")

// endpointCache keeps the views of endpoints read for claimed deliveries
// for a short TTL (Config.EndpointCacheTTL, on the dispatcher's clock), so
// that a batch of deliveries to one endpoint costs one read; the workers
// that read an endpoint again before an attempt refresh it (endpoints.go).
// It is guarded by Dispatcher.mu.
type endpointCache struct {
	ttl time.Duration
	m   map[kapsel.EndpointID]endpointView
}

// endpointLookup is the endpoint of claimed deliveries: a view whose ep is
// nil for a deleted endpoint, or an error for one that could not be read.
type endpointLookup struct {
	view endpointView
	err  error
}

// endpointsFor reads the endpoints of claimed deliveries, from the cache or
// the store.
func (d *Dispatcher) endpointsFor(ctx context.Context, claimed []*kapsel.Delivery, now time.Time) map[kapsel.EndpointID]endpointLookup {
	out := make(map[kapsel.EndpointID]endpointLookup, 4)
	for _, dl := range claimed {
		id := dl.EndpointID
		if _, done := out[id]; done {
			continue
		}
		d.mu.Lock()
		v, ok := d.cachedLocked(id, now, d.cache.ttl)
		gen := d.gen
		d.mu.Unlock()
		if ok {
			out[id] = endpointLookup{view: v}
			continue
		}
		ep, err := d.store.EndpointGet(ctx, &kapsel.EndpointGetParams{ID: id})
		switch {
		case errors.Is(err, kapsel.ErrNotFound):
			out[id] = endpointLookup{}
		case err != nil:
			d.log.Error("reading endpoint failed", slog.String("endpoint_id", string(id)), slog.Any("error", err))
			out[id] = endpointLookup{err: err}
		default:
			v := endpointView{ep: ep, at: now, gen: gen}
			out[id] = endpointLookup{view: v}
			d.mu.Lock()
			d.cacheLocked(v)
			d.mu.Unlock()
		}
	}
	return out
}

// maxCachedEndpoints bounds the endpoint cache; it is emptied when full.
const maxCachedEndpoints = 4096

// containsAll reports whether every id of sub is in set.
func containsAll(set, sub []kapsel.EndpointID) bool {
	for _, id := range sub {
		if !slices.Contains(set, id) {
			return false
		}
	}
	return true
}
