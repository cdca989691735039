package kapsel

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Subscription limits (docs/delivery.md#subscriptions).
const (
	// MaxSubscriptionItems is the most entries each list of a
	// [Subscription] holds.
	MaxSubscriptionItems = 100
	// MaxEventChannels is the most channels one event is sent on.
	MaxEventChannels = 10
	// MaxChannelLen is the longest channel name, in bytes.
	MaxChannelLen = 255
)

// Subscription is an endpoint's subscription filter (SPEC §3): which of its
// tenant's events it receives. Each list left empty means "any"; an event
// matches when all three match ([Subscription.Matches]):
//
//   - EventTypes: one entry matches the event's type. An entry is an exact
//     type ("invoice.paid"); a trailing-wildcard prefix "p.*", which
//     matches every type that begins with "p." ("invoice.*" matches
//     "invoice.paid" and "invoice.payment.failed", but neither "invoice"
//     nor "invoices.paid"); or "*" alone, which matches every event, with
//     a type or without, as the empty list does. Comparison is byte-wise
//     and case-sensitive. An event without a type matches only the empty
//     list or "*".
//   - SourceIDs: the event came in by one of these sources. An event
//     without a source (an application's send) matches only the empty
//     list.
//   - Channels: the event is on at least one of these channels (exact,
//     case-sensitive). An event on no channel matches only the empty list.
//
// [Subscription.Validate] is the one set of rules for what a filter may
// hold; stores apply it through [Endpoint.ValidateConfig], and the
// management API answers its errors with 400 E1009.
type Subscription struct {
	EventTypes []string
	SourceIDs  []SourceID
	Channels   []string
}

// EventRouting is what a subscription is matched against: the parts of an
// event that decide which endpoints receive it.
type EventRouting struct {
	TenantID TenantID
	// SourceID is the source the event came in by; empty for a send.
	SourceID SourceID
	// Type is the event type; empty for none.
	Type string
	// Channels are the channels the event is sent on; empty for none.
	Channels []string
}

// Matches reports whether an event with routing ev passes the filter s: its
// type, source and channels each match (see [Subscription]). The tenant is
// not looked at; [Endpoint.Receives] adds it.
func (s Subscription) Matches(ev EventRouting) bool {
	return matchesEventTypes(s.EventTypes, ev.Type) &&
		(len(s.SourceIDs) == 0 || slices.Contains(s.SourceIDs, ev.SourceID)) &&
		(len(s.Channels) == 0 || slices.ContainsFunc(ev.Channels, func(c string) bool { return slices.Contains(s.Channels, c) }))
}

// Receives reports whether the endpoint is subscribed to an event with
// routing ev: the event is of the endpoint's tenant and passes its
// [Subscription]. Its state does not matter: a paused or disabled endpoint
// receives its events, which wait.
func (e *Endpoint) Receives(ev EventRouting) bool {
	return e.TenantID == ev.TenantID && e.Subscription.Matches(ev)
}

// matchesEventTypes reports whether one of patterns matches typ; an empty
// list matches every type.
func matchesEventTypes(patterns []string, typ string) bool {
	if len(patterns) == 0 {
		return true
	}
	return slices.ContainsFunc(patterns, func(p string) bool { return matchEventType(p, typ) })
}

// matchEventType reports whether the pattern p — "*", "prefix.*" or an
// exact type — matches typ.
func matchEventType(p, typ string) bool {
	if p == "*" {
		return true
	}
	if prefix, ok := strings.CutSuffix(p, "*"); ok {
		return strings.HasPrefix(typ, prefix) // prefix ends with "." (Validate)
	}
	return p == typ
}

// Validate checks the filter: each list at most [MaxSubscriptionItems]
// entries, none listed twice, and
//
//   - each event type a pattern: "*", or a type [ValidEventType] accepts —
//     non-empty, at most [MaxEventTypeLen] bytes of printable text — in
//     which "*" appears only as a final ".*" after a non-empty prefix
//     ("invoice.*"; not "invoice*", "*.paid", "a.*.b" or ".*");
//   - each source id one [ParseSourceID] accepts;
//   - each channel 1–[MaxChannelLen] bytes of printable ASCII without
//     space or "*" (reserved: channels are matched exactly, and "*" would
//     read as "any" while matching nothing — leave the list empty for any).
//
// The error is a *[Error] with code E1009 wrapping [ErrInvalid], naming
// the field and the index of the first bad entry ("event_types[2]: …").
func (s Subscription) Validate() error {
	if err := checkList("event_types", s.EventTypes, MaxSubscriptionItems, checkEventTypePattern); err != nil {
		return err
	}
	if err := checkList("source_ids", s.SourceIDs, MaxSubscriptionItems, checkSourceID); err != nil {
		return err
	}
	return checkList("channels", s.Channels, MaxSubscriptionItems, checkChannel)
}

// CheckEventChannels checks the channels an event is sent on: at most
// [MaxEventChannels], none twice, each a channel name as
// [Subscription.Validate] wants it. The error is a *[Error] with code E1009
// wrapping [ErrInvalid], naming the index of the first bad channel.
func CheckEventChannels(channels []string) error {
	return checkList("channels", channels, MaxEventChannels, checkChannel)
}

// checkList applies check to each item of a list named field, and the
// list's rules: at most limit items, none twice.
func checkList[T ~string](field string, items []T, limit int, check func(string) error) error {
	if len(items) > limit {
		return invalid(CodeMalformedRequest, "%s holds at most %d entries, got %d", field, limit, len(items))
	}
	for i, it := range items {
		if err := check(string(it)); err != nil {
			return invalid(CodeMalformedRequest, "%s[%d]: %s", field, i, err)
		}
		if slices.Contains(items[:i], it) {
			return invalid(CodeMalformedRequest, "%s[%d]: %q is listed twice", field, i, clip(string(it), 64))
		}
	}
	return nil
}

// checkEventTypePattern checks one entry of Subscription.EventTypes.
func checkEventTypePattern(p string) error {
	switch {
	case p == "":
		return errors.New("an event type must not be empty (an empty list means any type)")
	case p == "*":
		return nil
	}
	if err := ValidEventType(p); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
	}
	prefix, _ := strings.CutSuffix(p, ".*")
	switch {
	case strings.Contains(prefix, "*"):
		return fmt.Errorf(`%q: "*" may only end a pattern as ".*" (as in "invoice.*") or stand alone`, clip(p, 64))
	case prefix == "":
		return errors.New(`".*" has no prefix; "*" alone means any type`)
	}
	return nil
}

// checkSourceID checks one entry of Subscription.SourceIDs.
func checkSourceID(id string) error {
	if _, err := ParseSourceID(id); err != nil {
		return fmt.Errorf("%q is not a source id (%s followed by a ULID)", clip(id, 64), SourceIDPrefix)
	}
	return nil
}

// checkChannel checks one channel name, of a filter or of an event.
func checkChannel(c string) error {
	if c == "" || len(c) > MaxChannelLen {
		return fmt.Errorf("a channel must be 1–%d bytes, got %d", MaxChannelLen, len(c))
	}
	for i := range len(c) {
		if b := c[i]; b <= ' ' || b > '~' || b == '*' {
			return fmt.Errorf("a channel must be printable ASCII without space or \"*\"; byte %d is %q", i, b)
		}
	}
	return nil
}

// clone returns a copy of s that shares no slice with it.
func (s Subscription) clone() Subscription {
	return Subscription{EventTypes: slices.Clone(s.EventTypes), SourceIDs: slices.Clone(s.SourceIDs), Channels: slices.Clone(s.Channels)}
}
