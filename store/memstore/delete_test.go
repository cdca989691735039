package memstore_test

import (
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

func TestEndpointDeleteEndsUnfinishedDeliveries(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ep := f.endpoint(f.tenant, kapsel.Subscription{})
	other := f.endpoint(f.tenant, kapsel.Subscription{})
	for range 5 {
		f.insert(event(f.tenant, "", "x", `{}`, ""))
	}
	// Of ep's five deliveries: one delivered, one failed, two in flight,
	// one pending.
	var mine []*kapsel.Delivery
	for _, d := range f.claim(10) {
		if d.EndpointID == ep {
			mine = append(mine, d)
		}
	}
	if len(mine) != 5 {
		t.Fatalf("claimed %d deliveries of the endpoint, want 5", len(mine))
	}
	delivered, failed, inFlightOK, inFlightRetry, pending := mine[0], mine[1], mine[2], mine[3], mine[4]
	must(t, f.complete(delivered, kapsel.DeliveryDelivered, 200))
	must(t, f.complete(failed, kapsel.DeliveryFailed, 500))
	n, err := f.store.DeliveryRelease(f.ctx, &kapsel.DeliveryReleaseParams{Now: f.now, Releases: []kapsel.DeliveryRelease{
		{DeliveryID: pending.ID, LeaseToken: pending.LeaseToken, NextAttemptAt: f.now.Add(time.Hour)}}})
	must(t, err)
	if n != 1 {
		t.Fatalf("released %d, want 1", n)
	}

	must(t, f.store.EndpointDelete(f.ctx, &kapsel.EndpointDeleteParams{ID: ep, TenantID: f.tenant, Now: f.now}))

	get := func(id kapsel.DeliveryID) *kapsel.Delivery {
		t.Helper()
		d, err := f.store.DeliveryGet(f.ctx, &kapsel.DeliveryGetParams{ID: id, TenantID: f.tenant})
		must(t, err)
		return d
	}
	if d := get(delivered.ID); d.Status != kapsel.DeliveryDelivered {
		t.Fatalf("delivered delivery became %s", d.Status)
	}
	if d := get(failed.ID); d.Status != kapsel.DeliveryFailed || d.LastError != "boom" {
		t.Fatalf("failed delivery became %s (%q)", d.Status, d.LastError)
	}
	if d := get(pending.ID); d.Status != kapsel.DeliveryFailed || d.LastError != kapsel.LastErrorEndpointDeleted || d.Attempts != 0 {
		t.Fatalf("pending delivery after delete: %+v", d)
	}
	for _, c := range []*kapsel.Delivery{inFlightOK, inFlightRetry} {
		if d := get(c.ID); d.Status != kapsel.DeliveryFailed || d.LastError != kapsel.LastErrorEndpointDeleted || d.LeaseToken != c.LeaseToken {
			t.Fatalf("delivering delivery after delete: %+v", d)
		}
	}

	// Nothing of the endpoint is claimed, counted or retried any more.
	if again := f.claim(10); len(again) != 0 {
		t.Fatalf("claimed %d deliveries after the delete", len(again))
	}
	stats, err := f.store.DeliveryStats(f.ctx, &kapsel.DeliveryStatsParams{Now: f.now})
	must(t, err)
	if stats.Count[kapsel.DeliveryPending] != 0 || stats.Count[kapsel.DeliveryDelivering] != 5 {
		t.Fatalf("stats after delete: %+v (the other endpoint's 5 are delivering)", stats.Count)
	}
	_, err = f.store.DeliveryRetry(f.ctx, &kapsel.DeliveryRetryParams{ID: pending.ID, Now: f.now})
	wantErr(t, err, kapsel.ErrNotFound)
	n, err = f.store.DeliveryRetryEvent(f.ctx, &kapsel.DeliveryRetryEventParams{EventID: failed.EventID, Now: f.now})
	must(t, err)
	if n != 0 {
		t.Fatalf("retried %d deliveries of an event whose only finished delivery's endpoint is deleted", n)
	}
	_, err = f.store.DeliveryReplay(f.ctx, &kapsel.DeliveryReplayParams{EndpointID: ep, Status: kapsel.DeliveryFailed, Now: f.now})
	wantErr(t, err, kapsel.ErrNotFound)
	_, err = f.store.DeliveryBackfill(f.ctx, &kapsel.DeliveryBackfillParams{EndpointID: ep, Now: f.now})
	wantErr(t, err, kapsel.ErrNotFound)

	// The attempts in flight are still recorded: a success is kept, any
	// other outcome stays failed, and no disable is applied.
	must(t, f.complete(inFlightOK, kapsel.DeliveryDelivered, 200))
	if d := get(inFlightOK.ID); d.Status != kapsel.DeliveryDelivered || d.Attempts != 1 || d.LeaseToken != "" || d.DeliveredAt.IsZero() {
		t.Fatalf("in-flight success after delete: %+v", d)
	}
	errs, err := f.store.DeliveryComplete(f.ctx, &kapsel.DeliveryCompleteParams{Now: f.now, Completions: []kapsel.DeliveryCompletion{{
		DeliveryID: inFlightRetry.ID, LeaseToken: inFlightRetry.LeaseToken, Status: kapsel.DeliveryPending,
		NextAttemptAt: f.now.Add(time.Minute), LastError: "HTTP 410", DisableEndpoint: kapsel.DisabledGone,
		Attempt: kapsel.Attempt{StatusCode: 410, StartedAt: f.now}}}})
	must(t, err)
	must(t, errs[0])
	if d := get(inFlightRetry.ID); d.Status != kapsel.DeliveryFailed || d.LastError != kapsel.LastErrorEndpointDeleted || d.Attempts != 1 || d.LeaseToken != "" {
		t.Fatalf("in-flight retry after delete: %+v", d)
	}
	attempts, err := f.store.AttemptList(f.ctx, &kapsel.AttemptListParams{DeliveryID: inFlightRetry.ID})
	must(t, err)
	if len(attempts) != 1 || attempts[0].StatusCode != 410 {
		t.Fatalf("attempts of the in-flight retry: %+v", attempts)
	}
	wantErr(t, f.complete(inFlightRetry, kapsel.DeliveryDelivered, 200), kapsel.ErrLeaseLost)

	// New events are not fanned out to it, and cannot name it.
	res := f.insert(event(f.tenant, "", "x", `{}`, ""))
	if got := f.endpointsOf(res[0].Event.ID); len(got) != 1 || got[0] != other {
		t.Fatalf("new event fanned out to %v, want [%s]", got, other)
	}
}

func TestReleaseAfterEndpointDelete(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ep := f.endpoint(f.tenant, kapsel.Subscription{})
	f.insert(event(f.tenant, "", "x", `{}`, ""))
	d := f.claim(1)[0]
	must(t, f.store.EndpointDelete(f.ctx, &kapsel.EndpointDeleteParams{ID: ep, Now: f.now}))
	n, err := f.store.DeliveryRelease(f.ctx, &kapsel.DeliveryReleaseParams{Now: f.now, Releases: []kapsel.DeliveryRelease{
		{DeliveryID: d.ID, LeaseToken: d.LeaseToken, NextAttemptAt: f.now}}})
	must(t, err)
	got, err := f.store.DeliveryGet(f.ctx, &kapsel.DeliveryGetParams{ID: d.ID})
	must(t, err)
	if n != 0 || got.Status != kapsel.DeliveryFailed || got.LeaseToken != d.LeaseToken {
		t.Fatalf("release after delete: released %d, delivery %+v; want 0, failed, its lease kept", n, got)
	}
}
