package storetest

import (
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// testTimekeeper checks the optional kapsel.Timekeeper capability, when the
// store offers it: the store's time is set and does not go backwards.
func testTimekeeper(t *testing.T, newStore func(*testing.T) kapsel.Store) {
	h := setup(t, newStore)
	tk, ok := kapsel.StoreAs[kapsel.Timekeeper](h.s)
	if !ok {
		t.Skip("the store does not offer kapsel.Timekeeper (single-process stores need not)")
	}
	first, err := tk.StoreNow(h.ctx)
	must(t, err, "StoreNow")
	if first.IsZero() || first.Year() < 2000 {
		t.Fatalf("StoreNow = %v, want the store's current time", first)
	}
	var last time.Time
	for range 3 {
		last, err = tk.StoreNow(h.ctx)
		must(t, err, "StoreNow")
	}
	if last.Before(first) {
		t.Fatalf("StoreNow went backwards: %v then %v", first, last)
	}
}
