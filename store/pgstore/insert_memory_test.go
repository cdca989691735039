package pgstore_test

import (
	"bytes"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// TestInsertKeepsNoBody: once an insert has returned, the connection it
// used holds nothing of its bodies (SPEC §9: memory comes back after a
// burst). pgx's query builder keeps the last statement's encoded
// parameters per connection until that connection runs another statement
// with as many (see dropParamsSQL): the last batch's bodies stayed live on
// every pooled connection that had inserted a large one — ~120 MiB after a
// burst of 10 MiB bodies.
//
// Not parallel: it measures the process's heap.
func TestInsertKeepsNoBody(t *testing.T) {
	f := newFixture(t)
	const size = 8 << 20
	f.insert([]*kapsel.EventInsertParams{{TenantID: f.ep.TenantID, Body: []byte(`{}`)}}) // warm up: statement caches
	before := liveHeap()
	func() {
		body := bytes.Repeat([]byte("b"), size)
		sum := sha256.Sum256(body)
		res := f.insert([]*kapsel.EventInsertParams{{TenantID: f.ep.TenantID, Body: body, BodyHash: sum[:]}})
		if res[0].Err != nil {
			t.Fatalf("insert: %v", res[0].Err)
		}
	}()
	grown := int64(liveHeap()) - int64(before)
	t.Logf("live heap after inserting one %d MiB body: %+.1f MiB", size>>20, float64(grown)/(1<<20))
	if grown > size/4 {
		t.Errorf("after the insert returned, %.1f MiB stay live; want none of the %d MiB body", float64(grown)/(1<<20), size>>20)
	}
}

// TestCompleteKeepsNoBody: once a completion batch has returned, the
// connection it used holds nothing of its response bodies. completeSQL's
// parameters are pinned as the insert's were (see dropParamsSQL): up to
// 64 KiB of response body per completion of the connection's last batch.
//
// Not parallel: it measures the process's heap.
func TestCompleteKeepsNoBody(t *testing.T) {
	f := newFixture(t)
	const n = 128 // × 64 KiB: 8 MiB of response bodies
	f.backlog(f.ep, n, f.now)
	ds := f.claim(n, f.now)
	if len(ds) != n {
		t.Fatalf("claimed %d deliveries, want %d", len(ds), n)
	}
	before := liveHeap()
	func() {
		cs := make([]kapsel.DeliveryCompletion, len(ds))
		for i, d := range ds {
			cs[i] = kapsel.DeliveryCompletion{DeliveryID: d.ID, LeaseToken: d.LeaseToken, Status: kapsel.DeliveryDelivered,
				Attempt: kapsel.Attempt{Number: 1, StartedAt: f.now, Duration: time.Millisecond, StatusCode: 200,
					ResponseBody: bytes.Repeat([]byte("r"), kapsel.MaxResponseBody)}}
		}
		errs, err := f.s.DeliveryComplete(t.Context(), &kapsel.DeliveryCompleteParams{Completions: cs, Now: f.now})
		if err != nil {
			t.Fatal(err)
		}
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}()
	grown := int64(liveHeap()) - int64(before)
	size := int64(n * kapsel.MaxResponseBody)
	t.Logf("live heap after completing %d deliveries with %d MiB of response bodies: %+.1f MiB", n, size>>20, float64(grown)/(1<<20))
	if grown > size/4 {
		t.Errorf("after the completion returned, %.1f MiB stay live; want none of the %d MiB of response bodies", float64(grown)/(1<<20), size>>20)
	}
}
