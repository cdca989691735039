// Package kapseltest helps test code that uses Kapsel: a fake [Clock] that
// tests move by hand, a fake [Destination] that fails, stalls or verifies
// signatures on cue, and RequireDelivered-style assertions that wait for a
// delivery's status (the delivery of one event to one endpoint) or for every
// delivery of an event.
package kapseltest

import (
	"sort"
	"sync"
	"time"

	"github.com/kapsel-dev/kapsel"
)

var _ kapsel.Clock = (*Clock)(nil)

// Clock is a fake [kapsel.Clock]. Time stands still until Advance or Set moves
// it; timers fire when the time passes their deadline. It is safe for
// concurrent use.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	timers  map[*fakeTimer]struct{}
	changed chan struct{} // closed and replaced whenever a timer is added
}

// NewClock returns a fake clock set to start. A zero start means
// 2026-01-01T00:00:00Z.
func NewClock(start time.Time) *Clock {
	if start.IsZero() {
		start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return &Clock{now: start, timers: map[*fakeTimer]struct{}{}, changed: make(chan struct{})}
}

// Now returns the fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer returns a timer that fires when the fake time reaches Now()+d.
func (c *Clock) NewTimer(d time.Duration) kapsel.Timer {
	t := &fakeTimer{c: c, ch: make(chan time.Time, 1)}
	t.Reset(d)
	return t
}

// Advance moves the time forward by d and fires the timers that are due, in
// deadline order.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.setLocked(c.now.Add(d))
	c.mu.Unlock()
}

// Set moves the time to t (never backwards) and fires the timers that are due.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	if t.After(c.now) {
		c.setLocked(t)
	}
	c.mu.Unlock()
}

func (c *Clock) setLocked(t time.Time) {
	c.now = t
	var due []*fakeTimer
	for tm := range c.timers {
		if !tm.deadline.After(t) {
			due = append(due, tm)
		}
	}
	sort.Slice(due, func(i, j int) bool { return due[i].deadline.Before(due[j].deadline) })
	for _, tm := range due {
		delete(c.timers, tm)
		select {
		case tm.ch <- t:
		default:
		}
	}
}

// Timers returns the number of timers waiting to fire.
func (c *Clock) Timers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// NextDeadline returns the earliest deadline of a waiting timer, and false
// when none waits.
func (c *Clock) NextDeadline() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var next time.Time
	for tm := range c.timers {
		if next.IsZero() || tm.deadline.Before(next) {
			next = tm.deadline
		}
	}
	return next, !next.IsZero()
}

// WaitForTimers blocks until at least n timers are waiting, or the real-time
// timeout passes; it reports whether they are. Tests use it to know that a
// goroutine has gone to sleep on the clock before they advance it.
func (c *Clock) WaitForTimers(n int, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		if len(c.timers) >= n {
			c.mu.Unlock()
			return true
		}
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			return false
		}
	}
}

type fakeTimer struct {
	c        *Clock
	ch       chan time.Time
	deadline time.Time
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	_, active := t.c.timers[t]
	delete(t.c.timers, t)
	return active
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	_, active := c.timers[t]
	t.deadline = c.now.Add(d)
	if d <= 0 {
		delete(c.timers, t)
		select {
		case t.ch <- c.now:
		default:
		}
		return active
	}
	c.timers[t] = struct{}{}
	close(c.changed)
	c.changed = make(chan struct{})
	return active
}
