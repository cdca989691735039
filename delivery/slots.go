package delivery

import (
	"time"

	"github.com/kapsel-dev/kapsel"
)

// job is one claimed delivery (with its event) and the view of its endpoint
// it is to be attempted with (endpoints.go).
type job struct {
	dl   *kapsel.Delivery
	view endpointView
}

// Slots. At most Config.Workers attempts run at once, and at most
// PerEndpointConcurrency ("per") to one endpoint. Besides its running
// attempts an endpoint may hold up to per more claimed deliveries queued, which
// start as its attempts finish: that keeps its slots busy while the next
// claim is on its way, instead of letting them run dry during every claim's
// round trip.
//
// An endpoint is claimed for while it holds at most per deliveries (running
// and queued), and every claim is limited to the room (2·per minus what it
// holds) of the fullest endpoint still claimed for: a claim can never return
// more deliveries to one endpoint than it has room for, so nothing claimed
// has to be given back for lack of room, and claims carry at least per deliveries
// when the backlog has them — each claim is a commit, so a backlog drains at
// claim size × claims per second.
//
// Isolation. A sick endpoint (every attempt hanging until its timeout)
// delays a healthy one's deliveries by at most one claim, never by its timeout,
// as long as per is less than Workers (the default is half the pool):
//   - it holds at most per workers; queued deliveries hold none, so the
//     others keep Workers − per;
//   - its queued deliveries wait behind its own attempts only;
//   - claims return the earliest due deliveries first, so whenever it has room
//     its older backlog may fill a claim; that claim is then full and the
//     next one follows at once, with the endpoint excluded (it then holds
//     2·per). Room opens once per timeout of its attempts, so this costs a
//     healthy endpoint one claim's round trip that often.
//
// With per equal to Workers there is no isolation: one endpoint may take
// every worker, and its queue refills them as its attempts time out.
// TestSickNeighbourDoesNotHurt (package breaker) measures all this.

// heldLocked is what endpoint id holds: running and queued deliveries.
func (d *Dispatcher) heldLocked(id kapsel.EndpointID) int {
	return d.inflight[id] + len(d.queued[id])
}

// saturatedLocked reports whether endpoint id is too busy to be claimed for.
func (d *Dispatcher) saturatedLocked(id kapsel.EndpointID) bool {
	return d.heldLocked(id) > d.cfg.PerEndpointConcurrency
}

// capacity returns the size of the next claim and the endpoints to exclude
// from it.
func (d *Dispatcher) capacity() (limit int, exclude []kapsel.EndpointID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	per := d.cfg.PerEndpointConcurrency
	// Every claimed delivery may need a worker (its endpoint may have free
	// slots), and queued deliveries are bounded by Workers too (memory).
	limit = min(d.cfg.ClaimBatch, d.cfg.Workers-d.running, d.cfg.Workers-d.queuedTotal, 2*per)
	for id := range d.inflight { // an endpoint with queued deliveries has running ones
		if d.saturatedLocked(id) {
			exclude = append(exclude, id)
			continue
		}
		limit = min(limit, 2*per-d.heldLocked(id))
	}
	return max(limit, 0), exclude
}

// admit runs a claimed delivery at once when its endpoint has a free slot, and
// queues it otherwise. One of an endpoint reported deleted is dropped: the
// store already ended it.
func (d *Dispatcher) admit(j *job) {
	id := j.dl.EndpointID
	d.mu.Lock()
	if d.deletedLocked(id) {
		d.mu.Unlock()
		return
	}
	if d.inflight[id] >= d.cfg.PerEndpointConcurrency {
		d.queued[id] = append(d.queued[id], j)
		d.queuedTotal++
		d.mu.Unlock()
		return
	}
	d.inflight[id]++
	d.running++
	d.mu.Unlock()
	// A worker that is idle takes it; else a new one starts. Reusing them
	// saves growing a new goroutine's stack for every attempt (an HTTP
	// request needs ~16 KiB of stack: three copies from the initial 2 KiB,
	// ~4 % of kapseld's CPU in a sustained run's profile).
	select {
	case d.handoff <- j:
		return
	default:
	}
	d.workers.Add(1)
	d.workersStarted.Add(1)
	go d.work(j)
}

// workerIdle is how long a worker waits for another delivery, once its
// endpoint's queue is empty, before it ends.
const workerIdle = time.Second

// work delivers claimed deliveries of one endpoint: the one it was started with,
// then whatever is queued for that endpoint. Each outcome goes to the
// completer; the slot is given up only once the completer took the outcome,
// so a slow store slows claiming down instead of piling up outcomes.
//
// Then it waits, up to workerIdle, for admit to hand it another delivery
// (whose slot admit has taken), and ends when none comes or the dispatcher
// stops claiming.
func (d *Dispatcher) work(j *job) {
	defer d.workers.Done()
	var idle *time.Timer
	for {
		d.workChain(j)
		if idle == nil {
			idle = time.NewTimer(workerIdle)
			defer idle.Stop()
		} else {
			idle.Reset(workerIdle)
		}
		select {
		case j = <-d.handoff:
		case <-idle.C:
			return
		case <-d.quit:
			return
		}
	}
}

// workChain runs j, then the deliveries queued for its endpoint, until none
// is left; then it gives up the slot.
func (d *Dispatcher) workChain(j *job) {
	id := j.dl.EndpointID
	for j != nil {
		if o := d.attempt(j); o != nil {
			d.completeCh <- o
		}
		d.mu.Lock()
		j = nil
		if q := d.queued[id]; len(q) > 0 {
			j, q[0] = q[0], nil
			if len(q) == 1 {
				delete(d.queued, id)
			} else {
				d.queued[id] = q[1:]
			}
			d.queuedTotal--
		} else {
			d.running--
			if n := d.inflight[id] - 1; n > 0 {
				d.inflight[id] = n
			} else {
				delete(d.inflight, id)
			}
		}
		d.mu.Unlock()
		select {
		case d.freedCh <- struct{}{}:
		default:
		}
	}
}

// dropQueued empties the queues and returns what they held.
func (d *Dispatcher) dropQueued() []*job {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []*job
	for id, q := range d.queued {
		out = append(out, q...)
		delete(d.queued, id)
	}
	d.queuedTotal = 0
	return out
}
