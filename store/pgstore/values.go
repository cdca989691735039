package pgstore

import (
	"encoding/json"
	"time"
)

// Conversions between Go values and columns.

// micro keeps t at the microsecond precision Postgres stores, as pgx does
// when it encodes a time (it truncates).
func micro(t time.Time) time.Time { return t.Truncate(time.Microsecond) }

// timePtr is the value of a nullable timestamptz column: NULL for the zero
// time.
func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = micro(t)
	return &t
}

// timeVal reads a nullable timestamptz column: the zero time for NULL.
func timeVal(p *time.Time) time.Time {
	if p == nil {
		return time.Time{}
	}
	return *p
}

// nanos reads a duration kept as integer nanoseconds.
func nanos(n int64) time.Duration { return time.Duration(n) }

// textArray is the value of a NOT NULL text[] column: pgx encodes a nil
// slice as NULL, so none is an empty array.
func textArray[T ~string](l []T) []string {
	out := make([]string, len(l))
	for i, v := range l {
		out[i] = string(v)
	}
	return out
}

// listOrNil reads a text[] column: nil for an empty array, so every store
// reads "none" alike.
func listOrNil(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	return l
}

// jsonList encodes a list as a JSON array, "[]" for none, for a statement
// that takes one list per row (see insertEventsSQL). Marshalling strings
// cannot fail.
func jsonList(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(l)
	return string(b)
}
