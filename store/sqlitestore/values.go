package sqlitestore

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"time"
)

// Times are stored as microseconds since the Unix epoch, NULL for a zero
// time; they are read back in UTC.

// micros returns t as stored: nil (NULL) for a zero time.
func micros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// fromMicros turns a stored time back into a time.Time.
func fromMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

// blob returns b as stored: never NULL, so NOT NULL BLOB columns accept an
// empty body.
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func encodeHeader(h http.Header) (string, error) {
	if h == nil {
		h = http.Header{}
	}
	b, err := json.Marshal(h)
	return string(b), err
}

func decodeHeader(s string) (http.Header, error) {
	var h http.Header
	if err := json.Unmarshal([]byte(s), &h); err != nil {
		return nil, err
	}
	if len(h) == 0 {
		return nil, nil
	}
	return h, nil
}

// encodeList returns a list column's JSON array of strings, "[]" for none
// (migration 0004). Marshalling strings cannot fail; the lists hold only
// what kapsel's rules accept, valid UTF-8.
func encodeList[T ~string](l []T) string {
	if len(l) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(l)
	return string(b)
}

// decodeList reads a list column; nil for none.
func decodeList[T ~string](s string) ([]T, error) {
	var l []T
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, err
	}
	if len(l) == 0 {
		return nil, nil
	}
	return l, nil
}
