package delivery

import (
	"time"

	"github.com/kapsel-dev/kapsel"
)

// Expunged bodies. An expunge (service.Service.ExpungeEvent,
// ExpungeTenantBodies) erases bodies in the store and ends their
// unfinished deliveries as failed, but a delivery claimed before holds its
// event's body in memory, queued behind its endpoint's running attempts.
// The front door reports each expunge here before it answers, as it
// reports endpoint deletes (endpoints.go), which bounds what may still be
// sent:
//
//   - In-process, strictly: once EventExpunged or TenantExpunged returned,
//     no request carrying one of those bodies starts in this dispatcher.
//     The queued deliveries of those events lose their body at once, and
//     the last check before each request (begin) runs under the same lock:
//     such a delivery sends nothing and fails, as one whose event was
//     erased before its claim (worker.go): its attempt is recorded with
//     "the event's body was expunged: nothing to send". A request already
//     under way when the expunge is reported completes.
//   - Across nodes: another node's dispatcher learns of it when its
//     keep-alive next fails to extend the delivery's lease (the store
//     extends only delivering ones), at most LeaseDuration/3 (≈8 s by
//     default) after the expunge was answered.

// expungeMarks are the expunges reported in-process, kept as long as a
// claimed delivery may live (a lease): the events expunged one by one, and
// per tenant the event ids below which all of its bodies were expunged.
type expungeMarks struct {
	events  map[kapsel.EventID]time.Time
	tenants map[kapsel.TenantID]tenantExpunge
}

// tenantExpunge says that the tenant's events with an id below below were
// expunged (at, on Config.Clock).
type tenantExpunge struct {
	below kapsel.EventID
	at    time.Time
}

// EventExpunged tells the dispatcher that the store's EventExpunge of event
// id has returned. When it returns, no request carrying the event's body
// starts in this dispatcher (see above). The front door calls it before it
// answers an expunge. It never blocks on I/O.
func (d *Dispatcher) EventExpunged(id kapsel.EventID) {
	d.expunged(func(ev *kapsel.Event) bool { return ev.ID == id }, func(m *expungeMarks, now time.Time) {
		m.events[id] = now
	})
}

// TenantExpunged tells the dispatcher that the bodies of tenant's events
// with an id below below have been expunged in the store (a tenant expunge
// walks them in id order and reports each batch). As EventExpunged
// otherwise.
func (d *Dispatcher) TenantExpunged(tenant kapsel.TenantID, below kapsel.EventID) {
	d.expunged(func(ev *kapsel.Event) bool { return ev.TenantID == tenant && ev.ID < below }, func(m *expungeMarks, now time.Time) {
		if cur, ok := m.tenants[tenant]; !ok || cur.below < below {
			m.tenants[tenant] = tenantExpunge{below: below, at: now}
		}
	})
}

// expunged records an expunge (mark) and drops the body of the queued
// deliveries whose event it erased (match).
func (d *Dispatcher) expunged(match func(*kapsel.Event) bool, mark func(*expungeMarks, time.Time)) {
	now := d.cfg.Clock.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	keep := d.cfg.LeaseDuration + max(d.cfg.EndpointCacheTTL, 0)
	for id, at := range d.expunge.events {
		if now.Sub(at) > keep {
			delete(d.expunge.events, id)
		}
	}
	for t, m := range d.expunge.tenants {
		if now.Sub(m.at) > keep {
			delete(d.expunge.tenants, t)
		}
	}
	mark(&d.expunge, now)
	for _, q := range d.queued {
		for _, j := range q {
			if ev := j.dl.Event; ev != nil && ev.BodyErasure == kapsel.BodyKept && match(ev) {
				// The event may be shared with other deliveries: a copy
				// without the body replaces it for this one.
				c := *ev
				c.Body, c.Headers = nil, nil
				c.BodyErasure = kapsel.BodyExpunged
				j.dl.Event = &c
			}
		}
	}
}

// expungedLocked reports whether ev's body was reported expunged. d.mu is
// held.
func (d *Dispatcher) expungedLocked(ev *kapsel.Event) bool {
	if _, ok := d.expunge.events[ev.ID]; ok {
		return true
	}
	m, ok := d.expunge.tenants[ev.TenantID]
	return ok && ev.ID < m.below
}
