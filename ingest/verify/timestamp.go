package verify

import (
	"fmt"
	"strconv"
	"time"
)

// maxTimestampDigits bounds a unix timestamp's length; 18 digits stay far
// inside int64 and far beyond any real date.
const maxTimestampDigits = 18

// ParseTimestamp parses a unix timestamp in seconds: 1 to 18 ASCII digits,
// no sign, no spaces, no fraction.
func ParseTimestamp(s string) (int64, error) {
	if len(s) == 0 || len(s) > maxTimestampDigits {
		return 0, fmt.Errorf("%w: timestamp is not 1–%d digits", ErrMalformed, maxTimestampDigits)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: timestamp is not a number of seconds", ErrMalformed)
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

// checkTimestamp accepts ts when it is at most tolerance before or after now,
// both boundaries included. A zero or negative tolerance means
// DefaultTolerance.
func checkTimestamp(ts int64, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	t := time.Unix(ts, 0)
	if now.Sub(t) > tolerance {
		return fmt.Errorf("%w: older than %s", ErrTimestamp, tolerance)
	}
	if t.Sub(now) > tolerance {
		return fmt.Errorf("%w: more than %s in the future", ErrTimestamp, tolerance)
	}
	return nil
}
