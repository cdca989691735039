package delivery

import (
	"container/heap"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// Retries due before the next poll. The claim loop polls every
// Config.PollInterval (1 s by default); a retry the dispatcher itself
// schedules sooner than that — a short retry policy, a Retry-After of a
// second — would otherwise wait for the poll. The completer reports the
// NextAttemptAt of each retry it records (dueAt); the claim loop keeps them
// in a min-heap and, after each claim, brings its poll timer forward to the
// earliest one the claim could not yet have taken (dueAfter), so none is
// forgotten when a claim happens in between or when several fall due
// together. Only retries due within one poll interval are kept (the poll
// finds the others), at most maxDues of them (past that they wait for the
// poll). Retries scheduled by other processes wait for a poll or a
// notification.

// maxDues bounds the retries remembered for an early claim.
const maxDues = 4096

// dueHeap is a min-heap of due times (container/heap).
type dueHeap []time.Time

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].Before(h[j]) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(time.Time)) }
func (h *dueHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}

// dueAt tells the claim loop that a delivery of this dispatcher's is due at
// t.
// It never blocks.
func (d *Dispatcher) dueAt(t time.Time) {
	d.dueMu.Lock()
	if t.Before(d.cfg.Clock.Now().Add(d.cfg.PollInterval)) && d.dues.Len() < maxDues {
		heap.Push(&d.dues, t)
	}
	d.dueMu.Unlock()
	select {
	case d.dueCh <- struct{}{}:
	default:
	}
}

// dueAfter forgets the due times a claim made at claimedAt has covered
// (zero: none) and returns the earliest one left, zero when none is.
func (d *Dispatcher) dueAfter(claimedAt time.Time) time.Time {
	d.dueMu.Lock()
	defer d.dueMu.Unlock()
	for d.dues.Len() > 0 && !d.dues[0].After(claimedAt) {
		heap.Pop(&d.dues)
	}
	if d.dues.Len() == 0 {
		return time.Time{}
	}
	return d.dues[0]
}

// pollTimer is the claim loop's poll timer, which knows when it fires so
// that a due retry can bring it forward but never push it back.
type pollTimer struct {
	d  *Dispatcher
	at time.Time
}

// reset arms the timer for one poll interval from now.
func (p *pollTimer) reset(t kapsel.Timer) {
	t.Stop()
	t.Reset(p.d.cfg.PollInterval)
	p.at = p.d.cfg.Clock.Now().Add(p.d.cfg.PollInterval)
}

// bringForward arms the timer for due when that is before it would fire.
func (p *pollTimer) bringForward(t kapsel.Timer, due time.Time) {
	if due.IsZero() || !due.Before(p.at) {
		return
	}
	t.Stop()
	t.Reset(max(due.Sub(p.d.cfg.Clock.Now()), 0))
	p.at = due
}
