package pgstore

import (
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
