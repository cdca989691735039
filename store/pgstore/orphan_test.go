package pgstore_test

import (
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// TestClaimEndsOrphans: a delivery whose event is missing (deliveries.event_id
// has no foreign key; a backfill racing retention could leave one before the
// event lock) is not leased again and again — the claim's join would drop it
// and its lease would run out for ever (SPEC I3) — but ended, failed, with
// no lease, whether it was pending or delivering with its lease run out.
func TestClaimEndsOrphans(t *testing.T) {
	f := setup(t)
	ctx := t.Context()
	res := f.insert(f.inputs(3, ""))
	var ds [3]*kapsel.Delivery
	for i, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		list, err := f.s.DeliveryList(ctx, &kapsel.DeliveryListParams{EventID: r.Event.ID})
		if err != nil || len(list) != 1 {
			t.Fatalf("deliveries of event %d: %v, %v", i, list, err)
		}
		ds[i] = list[0]
	}
	// ds[1] is delivering: lease it alone (the others are not due yet).
	if _, err := f.s.Pool().Exec(ctx, `UPDATE deliveries SET next_attempt_at = next_attempt_at + interval '1 day',
		claimable_at = claimable_at + interval '1 day' WHERE id <> $1`, string(ds[1].ID)); err != nil {
		t.Fatal(err)
	}
	cs, err := f.s.DeliveryClaim(ctx, &kapsel.DeliveryClaimParams{Limit: 10, LeaseDuration: time.Minute, Now: f.now})
	if err != nil || len(cs) != 1 || cs[0].ID != ds[1].ID {
		t.Fatalf("claimed %v, %v; want %s", cs, err, ds[1].ID)
	}
	// The events of ds[0] and ds[1] go; ds[2]'s stays.
	if _, err := f.s.Pool().Exec(ctx, `DELETE FROM events WHERE id = ANY ($1)`,
		[]string{string(res[0].Event.ID), string(res[1].Event.ID)}); err != nil {
		t.Fatal(err)
	}
	later := f.now.Add(2 * 24 * time.Hour) // all due, ds[1]'s lease run out
	cs, err = f.s.DeliveryClaim(ctx, &kapsel.DeliveryClaimParams{Limit: 10, LeaseDuration: time.Minute, Now: later})
	if err != nil || len(cs) != 1 || cs[0].ID != ds[2].ID {
		t.Fatalf("claimed %v, %v; want only %s, whose event exists", cs, err, ds[2].ID)
	}
	for _, d := range ds[:2] {
		got, err := f.s.DeliveryGet(ctx, &kapsel.DeliveryGetParams{ID: d.ID})
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != kapsel.DeliveryFailed || got.LeaseToken != "" || got.LastError == "" {
			t.Fatalf("orphan %s after the claim: status %s, lease %q, last error %q; want failed, no lease, a reason",
				d.ID, got.Status, got.LeaseToken, got.LastError)
		}
	}
	cs, err = f.s.DeliveryClaim(ctx, &kapsel.DeliveryClaimParams{Limit: 10, LeaseDuration: time.Minute, Now: later.Add(time.Hour)})
	if err != nil || len(cs) != 1 || cs[0].ID != ds[2].ID {
		t.Fatalf("claimed %v, %v an hour later; want only %s again (its lease ran out)", cs, err, ds[2].ID)
	}
}
