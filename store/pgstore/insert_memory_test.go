package pgstore_test

import (
	"bytes"
	"crypto/sha256"
	"testing"

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
