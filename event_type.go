package kapsel

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// MaxEventTypeLen is the longest event type, in bytes. Like an idempotency
// key's limit, it keeps the index that lists events by type small.
const MaxEventTypeLen = 255

// StorableEventType returns t as every store keeps it: made safe with
// [SafeText], then cut to at most [MaxEventTypeLen] bytes at a character
// boundary. An event type is text from outside — a provider's header or
// body field — so it is made to fit rather than refused: a provider's
// webhook is never turned away for its type, and one odd type cannot fail
// the group-committed batch it travels in. [EventInsertParams.Storable]
// applies it; the ingester applies it to the type it reads, so the event it
// answers with is the one stored.
func StorableEventType(t string) string {
	t = SafeText(t)
	if len(t) <= MaxEventTypeLen {
		return t
	}
	cut := MaxEventTypeLen
	for cut > 0 && !utf8.RuneStart(t[cut]) {
		cut--
	}
	return t[:cut]
}

// ValidEventType checks the type of an event an application sends (the
// front door's Send): at most [MaxEventTypeLen] bytes of valid UTF-8, every
// character printable (no control characters; spaces are allowed). Empty
// is valid: an event may have no type. The error wraps ErrInvalid. An
// application is told rather than having its type changed; a provider's type
// is made to fit instead ([StorableEventType]).
func ValidEventType(t string) error {
	if len(t) > MaxEventTypeLen {
		return fmt.Errorf("%w: event type must be at most %d bytes, got %d", ErrInvalid, MaxEventTypeLen, len(t))
	}
	for i, r := range t {
		if r == utf8.RuneError && !validRuneErrorAt(t, i) {
			return fmt.Errorf("%w: event type is not valid UTF-8 at byte %d", ErrInvalid, i)
		}
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%w: event type must be printable; byte %d starts %U", ErrInvalid, i, r)
		}
	}
	return nil
}

// validRuneErrorAt reports whether s holds an encoded U+FFFD at i (rather
// than a byte that is not UTF-8, which ranging also yields as U+FFFD).
func validRuneErrorAt(s string, i int) bool {
	_, size := utf8.DecodeRuneInString(s[i:])
	return size == 3
}
