package kapsel

import (
	"encoding/binary"
	"math/big"
	"testing"
)

// decodeULID returns the 48-bit timestamp and the 80-bit random part of an
// id's ULID (the test inverts encodeCrockford).
func decodeULID(t *testing.T, id, prefix string) (ms uint64, random *big.Int) {
	t.Helper()
	if err := parseID(id, prefix); err != nil {
		t.Fatalf("id %q: %v", id, err)
	}
	v := new(big.Int)
	for _, c := range id[len(prefix):] {
		v.Lsh(v, 5)
		v.Or(v, big.NewInt(int64(indexCrockford(byte(c)))))
	}
	var b [16]byte
	v.FillBytes(b[:])
	ms = binary.BigEndian.Uint64(b[0:8]) >> 16
	random = new(big.Int).SetBytes(b[6:16])
	return ms, random
}

func indexCrockford(c byte) int {
	for i := range len(crockford) {
		if crockford[i] == c {
			return i
		}
	}
	return -1
}

// TestCapabilityIDsAreUnpredictable: tenant, endpoint and source ids carry 80 bits
// from crypto/rand each, unrelated to any id made before them — in
// particular not an event id plus one, which the shared monotonic source
// produced (I9 of docs/guarantees.md; issue 9 item 8: 990 of 1,000 pairs were exactly +1).
func TestCapabilityIDsAreUnpredictable(t *testing.T) {
	t.Parallel()
	const n = 1000
	near := new(big.Int).Lsh(big.NewInt(1), 32) // a guess this close is a hit
	related := func(a, b *big.Int) bool {
		d := new(big.Int).Sub(a, b)
		return d.Abs(d).Cmp(near) < 0
	}
	var ones, srcOnes [80]int
	for i := range n {
		evMS, evRand := decodeULID(t, string(NewEventID()), EventIDPrefix)
		epMS, epRand := decodeULID(t, string(NewEndpointID()), EndpointIDPrefix)
		tnMS, tnRand := decodeULID(t, string(NewTenantID()), TenantIDPrefix)
		ep2MS, ep2Rand := decodeULID(t, string(NewEndpointID()), EndpointIDPrefix)
		srcMS, srcRand := decodeULID(t, string(NewSourceID()), SourceIDPrefix)
		if evMS == epMS && related(evRand, epRand) {
			t.Fatalf("pair %d: endpoint id random part %x is within 2^32 of the event id's before it %x", i, epRand, evRand)
		}
		if epMS == tnMS && related(epRand, tnRand) {
			t.Fatalf("pair %d: tenant id random part %x is within 2^32 of the endpoint id's before it %x", i, tnRand, epRand)
		}
		if epMS == ep2MS && related(epRand, ep2Rand) {
			t.Fatalf("pair %d: consecutive endpoint ids' random parts %x and %x are within 2^32", i, epRand, ep2Rand)
		}
		if ep2MS == srcMS && related(ep2Rand, srcRand) {
			t.Fatalf("pair %d: source id random part %x is within 2^32 of the endpoint id's before it %x", i, srcRand, ep2Rand)
		}
		for bit := range 80 {
			ones[bit] += int(epRand.Bit(bit))
			srcOnes[bit] += int(srcRand.Bit(bit))
		}
	}
	// Each of the 80 random bits is set in about half of the ids: 35–65 %
	// is ±9.5 standard deviations, so only a bit that is not random fails.
	for bit, c := range ones {
		if c < n*35/100 || c > n*65/100 {
			t.Errorf("random bit %d of endpoint ids is set in %d of %d ids; it is not random", bit, c, n)
		}
		if c := srcOnes[bit]; c < n*35/100 || c > n*65/100 {
			t.Errorf("random bit %d of source ids is set in %d of %d ids; it is not random", bit, c, n)
		}
	}
}

// TestEventIDsStayMonotonic: events and attempts keep sorting in creation
// order within one process, even within one millisecond.
func TestEventIDsStayMonotonic(t *testing.T) {
	t.Parallel()
	prev := string(NewEventID())
	for range 1000 {
		NewEndpointID() // capability ids do not disturb the event sequence
		next := string(NewEventID())
		if next <= prev {
			t.Fatalf("event id %s after %s: not increasing", next, prev)
		}
		prev = next
	}
}
