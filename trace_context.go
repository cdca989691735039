package kapsel

import (
	"net/http"
	"strings"
)

// W3C Trace Context header names (https://www.w3.org/TR/trace-context/).
const (
	HeaderTraceParent = "traceparent"
	HeaderTraceState  = "tracestate"
)

// The header names as http.Header keys them.
const (
	canonicalTraceParent = "Traceparent"
	canonicalTraceState  = "Tracestate"
)

// MaxTraceStateLen is the longest tracestate kept with an event. W3C Trace
// Context asks vendors to propagate at least 512 characters; a longer one
// is dropped whole rather than cut (a cut list member would be wrong).
const MaxTraceStateLen = 512

// TraceContext is a W3C Trace Context: the values of the traceparent and
// tracestate headers. An event keeps the one it arrived with (see
// [Event.Trace]), so that its deliveries join the sender's trace. The zero
// value is "no trace context".
type TraceContext struct {
	// Parent is a traceparent: "00-<32 hex trace id>-<16 hex parent id>-<2
	// hex flags>", lowercase.
	Parent string
	// State is the tracestate (vendor-specific list); empty for none.
	State string
}

// IsZero reports whether tc holds no trace context.
func (tc TraceContext) IsZero() bool { return tc.Parent == "" }

// Storable returns tc as an event keeps it. A Parent that is not a valid
// traceparent (ValidTraceParent) drops the whole context, State included —
// as W3C Trace Context tells a receiver to ignore a tracestate whose
// traceparent it cannot parse. A State longer than MaxTraceStateLen or
// with bytes outside printable ASCII is dropped on its own. Dropped, never
// refused: a provider's malformed header must not cost it its webhook.
func (tc TraceContext) Storable() TraceContext {
	if !ValidTraceParent(tc.Parent) {
		return TraceContext{}
	}
	if !validTraceState(tc.State) {
		tc.State = ""
	}
	return tc
}

// TraceContextFromHeader returns the trace context a request carries, as
// Storable keeps it: zero when it has no traceparent, more than one, or an
// invalid one. Several tracestate headers are one list, joined by commas.
func TraceContextFromHeader(h http.Header) TraceContext {
	// The canonical keys, read directly: no allocation for the common
	// request, which has none.
	parents := h[canonicalTraceParent]
	if len(parents) != 1 {
		return TraceContext{}
	}
	tc := TraceContext{Parent: parents[0]}
	if states := h[canonicalTraceState]; len(states) == 1 {
		tc.State = states[0]
	} else if len(states) > 1 {
		tc.State = strings.Join(states, ",")
	}
	return tc.Storable()
}

// ValidTraceParent reports whether s is a traceparent W3C Trace Context
// accepts: version 00 with exactly 55 characters, or a later version
// (not ff) whose first 55 characters parse as version 00's and are
// followed by nothing or "-"; lowercase hex; trace id and parent id not
// all zeros.
func ValidTraceParent(s string) bool {
	if len(s) < 55 || (len(s) > 55 && s[55] != '-') {
		return false
	}
	if s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return false
	}
	version, traceID, parentID, flags := s[0:2], s[3:35], s[36:52], s[53:55]
	if !lowerHex(version) || version == "ff" || (version == "00" && len(s) != 55) {
		return false
	}
	if !lowerHex(traceID) || !lowerHex(parentID) || !lowerHex(flags) {
		return false
	}
	return strings.Trim(traceID, "0") != "" && strings.Trim(parentID, "0") != ""
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// validTraceState reports whether s may be kept and sent again as a
// tracestate header: at most MaxTraceStateLen bytes of printable ASCII.
func validTraceState(s string) bool {
	if len(s) > MaxTraceStateLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
