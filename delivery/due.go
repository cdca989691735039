package delivery

import (
	"time"

	"github.com/kapsel-dev/kapsel"
)

// Retries due before the next poll. The claim loop polls every
// Config.PollInterval (1 s by default); a retry the dispatcher itself
// schedules sooner than that — a short retry policy, a Retry-After of a
// second — would otherwise wait for the poll. The completer reports the
// NextAttemptAt of each retry it records (dueAt), and the claim loop brings
// its poll timer forward to the earliest of them (nextPoll). Retries
// scheduled by other processes still wait for a poll or a notification.

// dueAt tells the claim loop that an event of this dispatcher's is due at t.
// It never blocks; reports coalesce to the earliest.
func (d *Dispatcher) dueAt(t time.Time) {
	d.dueMu.Lock()
	if d.nextDue.IsZero() || t.Before(d.nextDue) {
		d.nextDue = t
	}
	d.dueMu.Unlock()
	select {
	case d.dueCh <- struct{}{}:
	default:
	}
}

// takeDue returns and forgets the earliest reported due time (zero when
// none).
func (d *Dispatcher) takeDue() time.Time {
	d.dueMu.Lock()
	defer d.dueMu.Unlock()
	t := d.nextDue
	d.nextDue = time.Time{}
	return t
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
