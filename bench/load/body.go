package load

import (
	"bytes"
	"strings"
)

// BodySize is the size of every webhook body: 1 KiB of JSON.
const BodySize = 1024

// A body is {"seq":"<10 digits>","ts":"<19 digits>","pad":"xx…"} (strings,
// since JSON numbers have no leading zeros): the request
// number and the unix-ns time it was sent (or due), at fixed offsets so the
// generator writes them in place and the destination reads them without
// parsing JSON.
const (
	seqOff, seqLen = len(`{"seq":"`), 10
	tsOff, tsLen   = seqOff + seqLen + len(`","ts":"`), 19
)

var bodyHead = []byte(`{"seq":"`)

// NewBody returns a body template.
func NewBody() []byte {
	head := `{"seq":"` + strings.Repeat("0", seqLen) + `","ts":"` + strings.Repeat("0", tsLen) + `","pad":"`
	return []byte(head + strings.Repeat("x", BodySize-len(head)-2) + `"}`)
}

// SetBody writes seq and ts (unix ns) into a body from NewBody.
func SetBody(b []byte, seq uint64, ts int64) {
	putDigits(b[seqOff:seqOff+seqLen], seq)
	putDigits(b[tsOff:tsOff+tsLen], uint64(ts))
}

// ParseBody reads seq and ts back; ok is false for a body not made here.
func ParseBody(b []byte) (seq uint64, ts int64, ok bool) {
	if len(b) < tsOff+tsLen || !bytes.HasPrefix(b, bodyHead) {
		return 0, 0, false
	}
	seq, ok1 := digits(b[seqOff : seqOff+seqLen])
	t, ok2 := digits(b[tsOff : tsOff+tsLen])
	return seq, int64(t), ok1 && ok2
}

func putDigits(dst []byte, v uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = byte('0' + v%10)
		v /= 10
	}
}

func digits(b []byte) (uint64, bool) {
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}
