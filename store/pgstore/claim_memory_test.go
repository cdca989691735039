package pgstore_test

import (
	"crypto/rand"
	"crypto/sha256"
	"runtime"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// TestClaimHoldsFannedOutBodyOnce: a claim of one event fanned out to 20
// endpoints reads its body once and shares it among the 20 deliveries
// (SPEC §9: a body costs O(body), not O(body × endpoints)). The live heap
// the claimed deliveries hold grows by about one body; when claimSQL
// returned e.body on every delivery row it grew by 20 (2 MiB body: 40 MiB).
//
// Not parallel: it measures the process's heap.
func TestClaimHoldsFannedOutBodyOnce(t *testing.T) {
	f := newFixture(t)
	const fan, size = 20, 2 << 20
	f.endpoints(t, fan-1)
	body := make([]byte, size)
	_, _ = rand.Read(body) // incompressible: TOAST keeps it whole
	sum := sha256.Sum256(body)
	res := f.insert([]*kapsel.EventInsertParams{{TenantID: f.ep.TenantID, Body: body, BodyHash: sum[:]}})
	if res[0].Err != nil || res[0].Event.Deliveries.Total != fan {
		t.Fatalf("insert: %+v, want %d deliveries", res[0], fan)
	}
	res, body = nil, nil

	before := liveHeap()
	ds, err := f.s.DeliveryClaim(t.Context(), &kapsel.DeliveryClaimParams{Limit: 100, LeaseDuration: time.Minute, Now: f.now})
	if err != nil || len(ds) != fan {
		t.Fatalf("claimed %d deliveries, %v; want %d", len(ds), err, fan)
	}
	grown := int64(liveHeap()) - int64(before)
	t.Logf("live heap after claiming one %d MiB event fanned out to %d endpoints: +%.1f MiB", size>>20, fan, float64(grown)/(1<<20))
	for _, d := range ds {
		if len(d.Event.Body) != size || &d.Event.Body[0] != &ds[0].Event.Body[0] {
			t.Fatalf("delivery %s holds a body of its own", d.ID)
		}
	}
	if grown > 3*size {
		t.Errorf("the claimed deliveries hold %.1f MiB, want about one body (%d MiB)", float64(grown)/(1<<20), size>>20)
	}
	runtime.KeepAlive(ds)
}

// liveHeap returns the bytes of live heap objects after a full collection
// (two: the driver's buffer pools are sync.Pools, which keep a victim
// cache for one cycle).
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
