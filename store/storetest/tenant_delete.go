package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// testTenantDelete checks TenantDelete: the tenant, its API key, its
// sources and its endpoints disappear in one step; its endpoints'
// unfinished deliveries end as EndpointDelete ends them; its events,
// deliveries and attempts stay readable; nothing new is made for it; other
// tenants are untouched.
func testTenantDelete(t *testing.T, newStore func(*testing.T) kapsel.Store) {
	t.Run("DeletesTenantAndItsResources", func(t *testing.T) {
		h := setup(t, newStore)
		ten, other := h.tenant(), h.tenant()
		srcs := []*kapsel.Source{h.source(ten), h.source(ten)}
		gone, gone2 := h.endpoint(ten), h.endpoint(ten)
		otherSrc, otherEp := h.source(other), h.endpoint(other)
		evs := make([]*kapsel.Event, 4)
		ds := make([]*kapsel.Delivery, 4)  // gone's: pending, delivering, delivered, failed
		ds2 := make([]*kapsel.Delivery, 4) // gone2's: all pending
		for i := range evs {
			var pair []*kapsel.Delivery
			evs[i], pair = h.fanned(ten, at(time.Duration(i)*time.Second), gone, gone2)
			ds[i], ds2[i] = pair[0], pair[1]
		}
		h.finish(ds[2].ID, kapsel.DeliveryDelivered, at(time.Minute))
		h.finish(ds[3].ID, kapsel.DeliveryFailed, at(time.Minute))
		inFlight := h.lease(ds[1].ID, time.Hour, at(time.Minute))
		otherD := h.delivery(otherEp, at(time.Minute))

		must(t, h.s.TenantDelete(h.ctx, &kapsel.TenantDeleteParams{ID: ten.ID, Now: at(2 * time.Minute)}), "TenantDelete")

		// The tenant is gone: its id and its API key find nothing.
		_, err := h.s.TenantGet(h.ctx, &kapsel.TenantGetParams{ID: ten.ID})
		mustIs(t, err, kapsel.ErrNotFound, "TenantGet of the deleted tenant")
		_, err = h.s.TenantGetByAPIKey(h.ctx, &kapsel.TenantGetByAPIKeyParams{APIKeyHash: ten.APIKeyHash})
		mustIs(t, err, kapsel.ErrNotFound, "TenantGetByAPIKey of the deleted tenant's key")
		if got := tenantIDs(h.listTenants(0, "")); !slices.Equal(got, []kapsel.TenantID{other.ID}) {
			t.Fatalf("TenantList after the delete = %v, want only %s", got, other.ID)
		}

		// Its sources and endpoints are deleted.
		for _, src := range srcs {
			for _, tenant := range []kapsel.TenantID{"", ten.ID} {
				_, err := h.s.SourceGet(h.ctx, &kapsel.SourceGetParams{ID: src.ID, TenantID: tenant})
				mustIs(t, err, kapsel.ErrNotFound, "SourceGet of the deleted tenant's source")
			}
		}
		for _, ep := range []*kapsel.Endpoint{gone, gone2} {
			for _, tenant := range []kapsel.TenantID{"", ten.ID} {
				_, err := h.s.EndpointGet(h.ctx, &kapsel.EndpointGetParams{ID: ep.ID, TenantID: tenant})
				mustIs(t, err, kapsel.ErrNotFound, "EndpointGet of the deleted tenant's endpoint")
			}
		}
		equal(t, "sources listed", len(h.listSources(ten.ID, 0, "")), 0)
		equal(t, "endpoints listed", len(h.listEndpoints(ten.ID, 0, "")), 0)

		// Its endpoints' unfinished deliveries ended as EndpointDelete ends
		// them; the finished ones are as they were; all stay readable.
		for i, want := range []struct {
			status    kapsel.DeliveryStatus
			lastError string
		}{
			{kapsel.DeliveryFailed, kapsel.LastErrorEndpointDeleted},
			{kapsel.DeliveryFailed, kapsel.LastErrorEndpointDeleted},
			{kapsel.DeliveryDelivered, ""},
			{kapsel.DeliveryFailed, "status 500"},
		} {
			got := h.get(ds[i].ID)
			equal(t, fmt.Sprintf("delivery %d Status", i), got.Status, want.status)
			equal(t, fmt.Sprintf("delivery %d LastError", i), got.LastError, want.lastError)
			got = h.get(ds2[i].ID)
			equal(t, fmt.Sprintf("the second endpoint's delivery %d Status", i), got.Status, kapsel.DeliveryFailed)
			equal(t, fmt.Sprintf("the second endpoint's delivery %d LastError", i), got.LastError, kapsel.LastErrorEndpointDeleted)
		}
		equal(t, "the deleted tenant's deliveries listed", len(h.listDeliveries(kapsel.DeliveryListParams{TenantID: ten.ID})), 8)
		ev, err := h.s.EventGet(h.ctx, &kapsel.EventGetParams{ID: evs[0].ID, TenantID: ten.ID})
		must(t, err, "EventGet of the deleted tenant's event")
		summary(t, "the deleted tenant's event", ev.Deliveries, kapsel.DeliverySummary{Total: 2, Failed: 2})

		// Nothing of it is claimed; the other tenant's delivery is.
		claimed := h.claim(100, time.Minute, at(24*time.Hour))
		if len(claimed) != 1 || claimed[0].ID != otherD.ID {
			t.Fatalf("claimed %v after the delete, want only the other tenant's %s", ids(claimed), otherD.ID)
		}
		// The attempt in flight is still recorded.
		must(t, h.complete(at(25*time.Hour), completion(inFlight, 200, kapsel.DeliveryDelivered, at(time.Minute)))[0],
			"completion of the attempt in flight")
		got := h.get(ds[1].ID)
		equal(t, "Status of the delivery in flight", got.Status, kapsel.DeliveryDelivered)
		equal(t, "Attempts of the delivery in flight", got.Attempts, 1)

		// The other tenant is untouched.
		equal(t, "the other tenant", h.getTenant(other.ID).ID, other.ID)
		byKey, err := h.s.TenantGetByAPIKey(h.ctx, &kapsel.TenantGetByAPIKeyParams{APIKeyHash: other.APIKeyHash})
		must(t, err, "TenantGetByAPIKey of the other tenant")
		equal(t, "tenant found by the other key", byKey.ID, other.ID)
		equal(t, "the other tenant's source", h.getSource(otherSrc.ID, other.ID).ID, otherSrc.ID)
		equal(t, "the other tenant's endpoint", h.getEndpoint(otherEp.ID, other.ID).ID, otherEp.ID)

		// Nothing new is made for the deleted tenant.
		_, err = h.s.SourceInsert(h.ctx, &kapsel.SourceInsertParams{
			Source: &kapsel.Source{TenantID: ten.ID, Verifier: kapsel.VerifierConfig{Scheme: kapsel.SchemeNone}}, Now: at(26 * time.Hour),
		})
		mustIs(t, err, kapsel.ErrNotFound, "SourceInsert for the deleted tenant")
		_, err = h.s.EndpointInsert(h.ctx, &kapsel.EndpointInsertParams{
			Endpoint: &kapsel.Endpoint{TenantID: ten.ID, URL: "https://example.com/hook", RetryPolicy: kapsel.DefaultRetryPolicy(),
				Timeout: kapsel.DefaultAttemptTimeout}, Now: at(26 * time.Hour),
		})
		mustIs(t, err, kapsel.ErrNotFound, "EndpointInsert for the deleted tenant")
		res := h.insertMany(at(26*time.Hour), 0, input(gone, "", []byte("named")))[0]
		mustIs(t, res.Err, kapsel.ErrNotFound, "a send naming the deleted tenant's endpoint")
		// Its events are refused, one row at a time: a send to its
		// subscribers and an event of its source alike.
		all := h.insertMany(at(26*time.Hour), 0, send(ten.ID, "", []byte("fan out")), ingested(srcs[0], "", []byte("ingested")),
			send(other.ID, "", []byte("the other tenant's")))
		mustIs(t, all[0].Err, kapsel.ErrNotFound, "a send to the deleted tenant's subscribers")
		mustIs(t, all[1].Err, kapsel.ErrNotFound, "an event of the deleted tenant's source")
		must(t, all[2].Err, "the other tenant's event in the same call")
		equal(t, "the deleted tenant's events", len(h.listEvents(kapsel.EventListParams{TenantID: ten.ID})), len(evs))
		equal(t, "the deleted tenant's deliveries listed", len(h.listDeliveries(kapsel.DeliveryListParams{TenantID: ten.ID})), 8)

		// It cannot be deleted, changed or given a key again.
		err = h.s.TenantDelete(h.ctx, &kapsel.TenantDeleteParams{ID: ten.ID, Now: at(27 * time.Hour)})
		mustIs(t, err, kapsel.ErrNotFound, "a second TenantDelete")
		_, err = h.s.TenantUpdate(h.ctx, &kapsel.TenantUpdateParams{ID: ten.ID, Name: "back", Now: at(27 * time.Hour)})
		mustIs(t, err, kapsel.ErrNotFound, "TenantUpdate of the deleted tenant")
		_, err = h.s.TenantRotateAPIKey(h.ctx, &kapsel.TenantRotateAPIKeyParams{ID: ten.ID, APIKeyHash: hash([]byte("revived"))})
		mustIs(t, err, kapsel.ErrNotFound, "TenantRotateAPIKey of the deleted tenant")
		_, err = h.s.TenantGetByAPIKey(h.ctx, &kapsel.TenantGetByAPIKeyParams{APIKeyHash: hash([]byte("revived"))})
		mustIs(t, err, kapsel.ErrNotFound, "TenantGetByAPIKey of the refused rotation's key")
	})

	t.Run("Unknown", func(t *testing.T) {
		h := setup(t, newStore)
		h.tenant()
		err := h.s.TenantDelete(h.ctx, &kapsel.TenantDeleteParams{ID: kapsel.NewTenantID(), Now: Base})
		mustIs(t, err, kapsel.ErrNotFound, "TenantDelete of an unknown tenant")
		equal(t, "tenants listed", len(h.listTenants(0, "")), 1)
	})

	// Whatever writes for the tenant while it is deleted — inserts fanning
	// out or naming its endpoint, new sources and endpoints, backfill,
	// retry, replay, an endpoint's own delete, a tenant update — happens
	// wholly before the delete, which then ends it, or finds the tenant or
	// its endpoints gone. Round after round, all at once: afterwards the
	// tenant has no live source or endpoint and no unfinished delivery.
	t.Run("ConcurrentWithWrites", func(t *testing.T) {
		h := setup(t, newStore)
		const rounds = 6
		type round struct {
			ten     *kapsel.Tenant
			src     *kapsel.Source
			ep, ep2 *kapsel.Endpoint
			failed  kapsel.DeliveryID
		}
		rs := make([]round, rounds)
		var in []*kapsel.EventInsertParams
		for i := range rs {
			r := &rs[i]
			r.ten = h.tenant()
			r.src, r.ep, r.ep2 = h.source(r.ten), h.endpoint(r.ten), h.endpoint(r.ten)
			in = append(in, input(r.ep, "", []byte(fmt.Sprint("round ", i))))
		}
		h.insertNew(Base, in...) // one event per round, to ep alone: ep2 can backfill it
		claimed := h.claim(kapsel.MaxPageLimit, time.Minute, at(time.Minute))
		equal(t, "claimed", len(claimed), rounds)
		comps := make([]kapsel.DeliveryCompletion, len(claimed))
		for i, c := range claimed {
			comps[i] = completion(c, 500, kapsel.DeliveryFailed, at(time.Minute))
		}
		for _, err := range h.complete(at(time.Minute), comps...) {
			must(t, err, "completion")
		}
		for i := range rs {
			rs[i].failed = h.listDeliveries(kapsel.DeliveryListParams{EndpointID: rs[i].ep.ID})[0].ID
		}

		for i, r := range rs {
			now := at(time.Duration(i+2) * time.Minute)
			var newEp *kapsel.Endpoint
			ops := []func() error{
				func() error {
					res, err := h.s.EventInsertMany(h.ctx, &kapsel.EventInsertManyParams{Now: now, Events: []*kapsel.EventInsertParams{
						send(r.ten.ID, "", []byte("fan out")), input(r.ep, "", []byte("named")), ingested(r.src, "", []byte("ingested")),
					}})
					for _, x := range res {
						err = errors.Join(err, x.Err)
					}
					return err
				},
				func() error {
					_, err := h.s.SourceInsert(h.ctx, &kapsel.SourceInsertParams{
						Source: &kapsel.Source{TenantID: r.ten.ID, Verifier: kapsel.VerifierConfig{Scheme: kapsel.SchemeNone}}, Now: now,
					})
					return err
				},
				func() error {
					ep, err := h.s.EndpointInsert(h.ctx, &kapsel.EndpointInsertParams{
						Endpoint: &kapsel.Endpoint{TenantID: r.ten.ID, URL: "https://example.com/new", RetryPolicy: kapsel.DefaultRetryPolicy(),
							Timeout: kapsel.DefaultAttemptTimeout}, Now: now,
					})
					newEp = ep
					return err
				},
				func() error {
					_, err := h.s.DeliveryBackfill(h.ctx, &kapsel.DeliveryBackfillParams{TenantID: r.ten.ID, EndpointID: r.ep2.ID, Now: now})
					return err
				},
				func() error {
					_, err := h.s.DeliveryRetry(h.ctx, &kapsel.DeliveryRetryParams{ID: r.failed, TenantID: r.ten.ID, Now: now})
					return err
				},
				func() error {
					_, err := h.s.DeliveryReplay(h.ctx, &kapsel.DeliveryReplayParams{TenantID: r.ten.ID, EndpointID: r.ep.ID,
						Status: kapsel.DeliveryFailed, Now: now})
					return err
				},
				func() error {
					return h.s.EndpointDelete(h.ctx, &kapsel.EndpointDeleteParams{ID: r.ep2.ID, TenantID: r.ten.ID, Now: now})
				},
				func() error {
					_, err := h.s.TenantUpdate(h.ctx, &kapsel.TenantUpdateParams{ID: r.ten.ID, Name: "renamed", Now: now})
					return err
				},
			}
			start := make(chan struct{})
			errs := make([]error, len(ops))
			var deleteErr error
			var wg sync.WaitGroup
			for j, op := range ops {
				wg.Go(func() { <-start; errs[j] = op() })
			}
			wg.Go(func() {
				<-start
				deleteErr = h.s.TenantDelete(h.ctx, &kapsel.TenantDeleteParams{ID: r.ten.ID, Now: now})
			})
			close(start)
			wg.Wait()
			must(t, deleteErr, "TenantDelete")
			for j, err := range errs {
				// (A retry may find its delivery requeued by the replay.)
				if err != nil && !errors.Is(err, kapsel.ErrNotFound) && !errors.Is(err, kapsel.ErrIllegalTransition) {
					t.Fatalf("round %d: operation %d racing the tenant's delete: %v, want nil or ErrNotFound", i, j, err)
				}
			}

			if list := h.listSources(r.ten.ID, 0, ""); len(list) != 0 {
				t.Fatalf("round %d: live sources %v of the deleted tenant", i, sourceIDs(list))
			}
			if list := h.listEndpoints(r.ten.ID, 0, ""); len(list) != 0 {
				t.Fatalf("round %d: live endpoints %v of the deleted tenant", i, endpointIDs(list))
			}
			if newEp != nil {
				_, err := h.s.EndpointGet(h.ctx, &kapsel.EndpointGetParams{ID: newEp.ID})
				mustIs(t, err, kapsel.ErrNotFound, fmt.Sprintf("round %d: EndpointGet of the endpoint inserted during the delete", i))
			}
			for _, d := range h.listDeliveries(kapsel.DeliveryListParams{TenantID: r.ten.ID}) {
				if d.Status != kapsel.DeliveryFailed ||
					(d.LastError != kapsel.LastErrorEndpointDeleted && d.LastError != "status 500") {
					t.Fatalf("round %d: delivery %s of the deleted tenant is %s (last error %q), want failed",
						i, d.ID, d.Status, d.LastError)
				}
			}
			_, err := h.s.TenantGet(h.ctx, &kapsel.TenantGetParams{ID: r.ten.ID})
			mustIs(t, err, kapsel.ErrNotFound, fmt.Sprintf("round %d: TenantGet after the delete", i))
		}
	})
}
