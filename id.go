package kapsel

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync"
	"time"
)

// Wire prefixes of Kapsel's typed identifiers.
const (
	TenantIDPrefix   = "ten_"
	EndpointIDPrefix = "ep_"
	SourceIDPrefix   = "src_"
	EventIDPrefix    = "evt_"
	DeliveryIDPrefix = "dlv_"
	AttemptIDPrefix  = "att_"
)

// Two kinds of id share the ULID form (48-bit millisecond timestamp, 80 more
// bits, Crockford base32):
//
//   - Events, deliveries and attempts must sort in creation order, so their ids come
//     from one monotonic source: within a millisecond the 80 bits are the
//     previous id's plus one.
//   - Tenant, endpoint and source ids are capabilities: a
//     source's id is its ingest URL (I9 of docs/guarantees.md wants at least 80
//     unpredictable bits). Their 80 bits are drawn from crypto/rand for
//     every id, never derived from another id; were they taken from the
//     monotonic source, an endpoint created in the same millisecond as an
//     event would be that event's id plus one. They keep the timestamp, so
//     they still sort roughly by creation and parse as before.

// TenantID identifies a [Tenant]; on the wire it reads "ten_" followed by a
// ULID whose 80 low bits are random.
type TenantID string

// EndpointID identifies an [Endpoint]; on the wire it reads "ep_" followed
// by a ULID whose 80 low bits are random. It is a capability (the ingest URL
// names it), so it is unguessable.
type EndpointID string

// SourceID identifies a [Source], the inbound door events arrive by; on
// the wire it reads "src_" followed by a ULID whose 80 low bits are random.
// An endpoint's [Subscription] names sources by it. It is a capability (the
// source's ingest URL names it), so it is unguessable.
type SourceID string

// DeliveryID identifies a [Delivery]; on the wire it reads "dlv_" followed
// by a ULID.
type DeliveryID string

// EventID identifies an [Event]; on the wire it reads "evt_" followed by a ULID.
// It is also the event's Standard Webhooks "webhook-id", the same on every attempt.
type EventID string

// AttemptID identifies an [Attempt]; on the wire it reads "att_" followed by a ULID.
type AttemptID string

// NewTenantID returns a new TenantID with 80 bits from crypto/rand.
func NewTenantID() TenantID { return TenantID(TenantIDPrefix + newRandomULID()) }

// NewEndpointID returns a new EndpointID with 80 bits from crypto/rand: it is
// unrelated to every id made before it.
func NewEndpointID() EndpointID { return EndpointID(EndpointIDPrefix + newRandomULID()) }

// NewSourceID returns a new SourceID with 80 bits from crypto/rand: it is
// unrelated to every id made before it.
func NewSourceID() SourceID { return SourceID(SourceIDPrefix + newRandomULID()) }

// NewEventID returns a new, time-sortable EventID.
func NewEventID() EventID { return EventID(EventIDPrefix + newULID()) }

// NewDeliveryID returns a new, time-sortable DeliveryID.
func NewDeliveryID() DeliveryID { return DeliveryID(DeliveryIDPrefix + newULID()) }

// NewAttemptID returns a new, time-sortable AttemptID.
func NewAttemptID() AttemptID { return AttemptID(AttemptIDPrefix + newULID()) }

// ParseTenantID checks that s is a well-formed TenantID.
// It returns an error wrapping [ErrInvalid] otherwise.
func ParseTenantID(s string) (TenantID, error) {
	return TenantID(s), parseID(s, TenantIDPrefix)
}

// ParseEndpointID checks that s is a well-formed EndpointID.
// It returns an error wrapping [ErrInvalid] otherwise.
func ParseEndpointID(s string) (EndpointID, error) {
	return EndpointID(s), parseID(s, EndpointIDPrefix)
}

// ParseSourceID checks that s is a well-formed SourceID.
// It returns an error wrapping [ErrInvalid] otherwise.
func ParseSourceID(s string) (SourceID, error) {
	return SourceID(s), parseID(s, SourceIDPrefix)
}

// ParseEventID checks that s is a well-formed EventID.
// It returns an error wrapping [ErrInvalid] otherwise.
func ParseEventID(s string) (EventID, error) {
	return EventID(s), parseID(s, EventIDPrefix)
}

// ParseDeliveryID checks that s is a well-formed DeliveryID.
// It returns an error wrapping [ErrInvalid] otherwise.
func ParseDeliveryID(s string) (DeliveryID, error) {
	return DeliveryID(s), parseID(s, DeliveryIDPrefix)
}

// ParseAttemptID checks that s is a well-formed AttemptID.
// It returns an error wrapping [ErrInvalid] otherwise.
func ParseAttemptID(s string) (AttemptID, error) {
	return AttemptID(s), parseID(s, AttemptIDPrefix)
}

// String returns the wire form of the id.
func (id TenantID) String() string { return string(id) }

// String returns the wire form of the id.
func (id EndpointID) String() string { return string(id) }

// String returns the wire form of the id.
func (id SourceID) String() string { return string(id) }

// String returns the wire form of the id.
func (id EventID) String() string { return string(id) }

// String returns the wire form of the id.
func (id AttemptID) String() string { return string(id) }

// String returns the wire form of the id.
func (id DeliveryID) String() string { return string(id) }

// ulidLen is the length of a ULID in Crockford base32.
const ulidLen = 26

// crockford is the ULID alphabet: Crockford's base32, upper case.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

func parseID(s, prefix string) error {
	if len(s) != len(prefix)+ulidLen || s[:len(prefix)] != prefix {
		return fmt.Errorf("%w: id %q is not of the form %s<ulid>", ErrInvalid, truncate(s, 64), prefix)
	}
	// The first character carries only 3 bits (48-bit timestamp + 80 random bits = 128 bits).
	if s[len(prefix)] > '7' {
		return fmt.Errorf("%w: id %q overflows 128 bits", ErrInvalid, truncate(s, 64))
	}
	for i := len(prefix); i < len(s); i++ {
		if !isCrockford(s[i]) {
			return fmt.Errorf("%w: id %q is not of the form %s<ulid>", ErrInvalid, truncate(s, 64), prefix)
		}
	}
	return nil
}

func isCrockford(c byte) bool {
	switch {
	case c >= '0' && c <= '9':
		return true
	case c >= 'A' && c <= 'Z':
		return c != 'I' && c != 'L' && c != 'O' && c != 'U'
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// ulidState makes ids generated within the same millisecond increase
// monotonically, so that ids sort in creation order within one process, as the
// ULID specification's monotonic mode does. The standard library has no ULID or
// UUIDv7 generator, and the root package imports only the standard library, so
// the 30 lines are written here.
var ulidState struct {
	sync.Mutex
	ms   uint64
	hi   uint16 // top 16 of the 80 random bits
	lo   uint64 // low 64 of the 80 random bits
	init bool
}

func newULID() string {
	ms := uint64(time.Now().UnixMilli())
	ulidState.Lock()
	if !ulidState.init || ms > ulidState.ms {
		var b [10]byte
		if _, err := rand.Read(b[:]); err != nil {
			panic("kapsel: crypto/rand failed: " + err.Error())
		}
		ulidState.ms, ulidState.init = ms, true
		ulidState.hi = binary.BigEndian.Uint16(b[:2])
		ulidState.lo = binary.BigEndian.Uint64(b[2:])
	} else {
		// Same (or an earlier, after a clock step) millisecond: increment the
		// random part so the new id still sorts after the previous one.
		ms = ulidState.ms
		ulidState.lo++
		if ulidState.lo == 0 {
			ulidState.hi++
		}
	}
	hi, lo := ulidState.hi, ulidState.lo
	ulidState.Unlock()

	// 128 bits: 48-bit timestamp, 16 + 64 random bits.
	var v [16]byte
	binary.BigEndian.PutUint64(v[0:8], ms<<16|uint64(hi))
	binary.BigEndian.PutUint64(v[8:16], lo)
	return encodeCrockford(v)
}

// newRandomULID returns a ULID of the current millisecond whose 80 low bits
// are fresh from crypto/rand: no state is shared with any other id.
func newRandomULID() string {
	var v [16]byte
	if _, err := rand.Read(v[6:]); err != nil {
		panic("kapsel: crypto/rand failed: " + err.Error())
	}
	ms := uint64(time.Now().UnixMilli())
	binary.BigEndian.PutUint16(v[4:6], uint16(ms))
	binary.BigEndian.PutUint32(v[0:4], uint32(ms>>16))
	return encodeCrockford(v)
}

func encodeCrockford(v [16]byte) string {
	var out [ulidLen]byte
	// 130 bits of output for 128 bits of input: the first character carries 3 bits.
	hi := binary.BigEndian.Uint64(v[0:8])
	lo := binary.BigEndian.Uint64(v[8:16])
	for i := ulidLen - 1; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}
