package memstore

import (
	"time"

	"github.com/kapsel-dev/kapsel"
)

// Held events. A claim that meets a due event whose endpoint cannot be
// attempted (paused, disabled, deleted, or its breaker open) holds it: the
// event is skipped until the breaker's OpenUntil, or until the endpoint is
// made active again, whichever applies — the semantics of pgstore's
// claimable_at and sqlitestore's held_until, so that code tested on this
// store meets the same holds. Anything that lets the endpoint through again
// (EndpointSetState active, a breaker save that closes it or brings OpenUntil
// forward, a breaker reset) releases its held events at once.
//
// A hold lasts only while the event is pending: claiming an event forgets
// it, and an event leaves pending only by being claimed.

// heldEvent is one hold.
type heldEvent struct {
	endpoint kapsel.EndpointID
	// until is when the claim looks at the event again; forever for an
	// endpoint that is not active.
	until time.Time
}

// forever is the hold of an event whose endpoint is not active.
var forever = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// deletedEndpointError is the LastError of an event whose lease ran out
// after its endpoint was deleted.
const deletedEndpointError = "endpoint deleted: the delivery was ended unattempted"

// blockedUntil reports whether the endpoint's events cannot be attempted at
// now, and until when: forever when it is paused, disabled or deleted, or
// its breaker's OpenUntil.
func (s *Store) blockedUntil(id kapsel.EndpointID, now time.Time) (time.Time, bool) {
	r, ok := s.endpoints[id]
	if !ok || r.deleted() || r.endpoint.State != kapsel.EndpointActive {
		return forever, true
	}
	if b, ok := s.breakers[id]; ok && b.OpenUntil.After(now) {
		return b.OpenUntil, true
	}
	return time.Time{}, false
}

// block deals with a due event of a blocked endpoint. A pending one is held
// until until. A delivering one, whose lease has expired, must not stay
// delivering (I3 of docs/guarantees.md): it goes back to pending, held, with its lease
// cleared — or, when its endpoint was deleted, ends as failed.
func (s *Store) block(e *kapsel.Event, until, now time.Time) {
	if e.Status == kapsel.EventDelivering {
		e.LeaseToken, e.LeaseExpiresAt = "", time.Time{}
		if r, ok := s.endpoints[e.EndpointID]; !ok || r.deleted() {
			e.Status, e.LastError = kapsel.EventFailed, deletedEndpointError
			return
		}
		e.Status = kapsel.EventPending
	}
	s.held[e.ID] = heldEvent{endpoint: e.EndpointID, until: until}
}

// release gives all the endpoint's held events back to the claim (the
// endpoint was made active, or its breaker reset). s.mu is held.
func (s *Store) release(id kapsel.EndpointID) {
	for ev, h := range s.held {
		if h.endpoint == id {
			delete(s.held, ev)
		}
	}
}

// releaseBreaker brings the endpoint's events held for its breaker (not
// those held forever for an inactive endpoint) forward to the breaker's new
// openUntil, or gives them back when it is zero. s.mu is held.
func (s *Store) releaseBreaker(id kapsel.EndpointID, openUntil time.Time) {
	for ev, h := range s.held {
		if h.endpoint != id || h.until.Equal(forever) || !h.until.After(openUntil) {
			continue
		}
		if openUntil.IsZero() {
			delete(s.held, ev)
			continue
		}
		s.held[ev] = heldEvent{endpoint: id, until: openUntil}
	}
}

// isBlocked reports whether the endpoint's events cannot be claimed at now.
func (s *Store) isBlocked(id kapsel.EndpointID, now time.Time) bool {
	_, blocked := s.blockedUntil(id, now)
	return blocked
}
