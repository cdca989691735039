package storetest

import (
	"errors"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// serialisedWait is how long the first of two concurrent updates waits for
// the second to complete before it goes on. A store that serialises them
// (as the contract requires) holds the second until the first has written,
// so the wait runs out and costs this much; a store that does not lets the
// second complete in the meantime, and the first then writes over it.
const serialisedWait = 250 * time.Millisecond

// replaceWith returns an Update that overwrites the whole endpoint with
// want: its configuration is written, the rest (ids, state, signing
// secrets, times) must be ignored.
func replaceWith(want *kapsel.Endpoint) func(*kapsel.Endpoint) error {
	return func(e *kapsel.Endpoint) error { *e = *want; return nil }
}

func testEndpointUpdate(t *testing.T, newStore func(*testing.T) kapsel.Store) {
	t.Run("Update", func(t *testing.T) {
		h := setup(t, newStore)
		a, b := h.tenant(), h.tenant()
		ep := h.endpoint(a)
		paused := h.setStateOf(ep, kapsel.EndpointPaused, at(time.Minute))

		want := fullEndpoint(b) // TenantID, like the fields below, ignored
		want.ID, want.State, want.CreatedAt = kapsel.NewEndpointID(), kapsel.EndpointActive, at(time.Hour)
		var calls atomic.Int32
		update := func(e *kapsel.Endpoint) error {
			calls.Add(1)
			return replaceWith(want)(e)
		}
		for _, p := range []kapsel.EndpointUpdateParams{
			{ID: ep.ID, TenantID: b.ID},                   // another tenant's
			{ID: kapsel.NewEndpointID()},                  // unknown
			{ID: h.deletedEndpoint(a).ID, TenantID: a.ID}, // deleted
		} {
			p.Update, p.Now = update, at(2*time.Minute)
			_, err := h.s.EndpointUpdate(h.ctx, &p)
			mustIs(t, err, kapsel.ErrNotFound, "EndpointUpdate of an endpoint not visible to TenantID")
		}
		equal(t, "Update calls for endpoints not found", calls.Load(), 0)
		equal(t, "URL after a foreign update", h.getEndpoint(ep.ID, "").URL, ep.URL)
		_, err := h.s.EndpointUpdate(h.ctx, &kapsel.EndpointUpdateParams{ID: ep.ID, TenantID: a.ID, Now: at(2 * time.Minute)})
		mustIs(t, err, kapsel.ErrInvalid, "EndpointUpdate without Update")

		var seen *kapsel.Endpoint
		got, err := h.s.EndpointUpdate(h.ctx, &kapsel.EndpointUpdateParams{
			ID: ep.ID, TenantID: a.ID, Now: at(3 * time.Minute),
			Update: func(e *kapsel.Endpoint) error {
				c := *e
				seen = &c
				return update(e)
			},
		})
		must(t, err, "EndpointUpdate")
		equal(t, "Update calls", calls.Load(), 1)
		// Update is given the stored endpoint, whole.
		equal(t, "ID given to Update", seen.ID, ep.ID)
		equal(t, "TenantID given to Update", seen.TenantID, a.ID)
		equal(t, "State given to Update", seen.State, kapsel.EndpointPaused)
		sameTime(t, "UpdatedAt given to Update", seen.UpdatedAt, paused.UpdatedAt)
		sameConfig(t, seen, ep)

		want.SigningSecrets = ep.SigningSecrets // an update never writes signing secrets
		for _, got := range []*kapsel.Endpoint{got, h.getEndpoint(ep.ID, a.ID)} {
			sameConfig(t, got, want)
			equal(t, "ID kept", got.ID, ep.ID)
			equal(t, "State kept", got.State, kapsel.EndpointPaused)
			equal(t, "TenantID kept", got.TenantID, a.ID)
			sameTime(t, "CreatedAt kept", got.CreatedAt, Base)
			sameTime(t, "UpdatedAt", got.UpdatedAt, at(3*time.Minute))
		}
		_, err = h.s.EndpointGet(h.ctx, &kapsel.EndpointGetParams{ID: want.ID})
		mustIs(t, err, kapsel.ErrNotFound, "EndpointGet of the id Update set")
	})

	// An error of Update comes back as it is and writes nothing, even what
	// Update changed in place before failing.
	t.Run("UpdateErrorWritesNothing", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		ep, err := h.s.EndpointInsert(h.ctx, &kapsel.EndpointInsertParams{Endpoint: fullEndpoint(ten), Now: Base})
		must(t, err, "EndpointInsert")
		refused := errors.New("refused by the caller")
		for _, fail := range []error{refused, kapsel.NewError(kapsel.CodeInvalidURL, "url is not allowed")} {
			_, err := h.s.EndpointUpdate(h.ctx, &kapsel.EndpointUpdateParams{
				ID: ep.ID, TenantID: ten.ID, Now: at(time.Minute),
				Update: func(e *kapsel.Endpoint) error {
					e.Name, e.URL, e.Timeout = "changed", "https://changed.example.com/", 5*time.Second
					e.Headers["X-Team"] = "changed"
					e.Subscription.Channels[0] = "changed"
					return fail
				},
			})
			if err != fail { // the very error, not one wrapping it
				t.Fatalf("EndpointUpdate whose Update fails with %q: got error %v, want Update's error unchanged", fail, err)
			}
		}
		got := h.getEndpoint(ep.ID, ten.ID)
		sameConfig(t, got, fullEndpoint(ten))
		sameTime(t, "UpdatedAt after failed updates", got.UpdatedAt, Base)
	})

	// Two updates of different fields at once: the first holds the
	// endpoint until the second has started (and, if the store lets it,
	// completed); both changes must survive, the second computed from what
	// the first wrote (I8 of docs/guarantees.md).
	t.Run("UpdateConcurrently", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		ep, err := h.s.EndpointInsert(h.ctx, &kapsel.EndpointInsertParams{Endpoint: fullEndpoint(ten), Now: Base})
		must(t, err, "EndpointInsert")

		var (
			firstCalls, secondCalls atomic.Int32
			entered                 = make(chan struct{}) // the first Update is running
			secondStarted           = make(chan struct{}) // the second EndpointUpdate is about to be called
			firstDone, secondDone   = make(chan struct{}), make(chan struct{})
			errs                    = make(chan error, 2)
			wg                      sync.WaitGroup
		)
		wg.Add(2)
		go func() {
			defer wg.Done()
			defer close(firstDone)
			_, err := h.s.EndpointUpdate(h.ctx, &kapsel.EndpointUpdateParams{
				ID: ep.ID, TenantID: ten.ID, Now: at(time.Minute),
				Update: func(e *kapsel.Endpoint) error {
					if firstCalls.Add(1) == 1 {
						close(entered)
						<-secondStarted
						select {
						case <-secondDone:
						case <-time.After(serialisedWait):
						}
					}
					e.Name = "renamed"
					return nil
				},
			})
			errs <- err
		}()
		go func() {
			defer wg.Done()
			defer close(secondDone)
			select {
			case <-entered:
			case <-firstDone: // the store never called Update: the test fails below
			}
			close(secondStarted)
			_, err := h.s.EndpointUpdate(h.ctx, &kapsel.EndpointUpdateParams{
				ID: ep.ID, TenantID: ten.ID, Now: at(2 * time.Minute),
				Update: func(e *kapsel.Endpoint) error {
					secondCalls.Add(1)
					e.Headers = map[string]string{"X-Second": "1"}
					return nil
				},
			})
			errs <- err
		}()
		wg.Wait()
		close(errs)
		for err := range errs {
			must(t, err, "concurrent EndpointUpdate")
		}
		equal(t, "calls of the first Update", firstCalls.Load(), 1)
		equal(t, "calls of the second Update", secondCalls.Load(), 1)

		got := h.getEndpoint(ep.ID, ten.ID)
		want := fullEndpoint(ten)
		want.Name, want.Headers = "renamed", map[string]string{"X-Second": "1"}
		if !maps.Equal(got.Headers, want.Headers) {
			t.Fatalf("Headers after concurrent updates = %v, want the second update's %v: the first wrote back what it had read",
				got.Headers, want.Headers)
		}
		equal(t, "Name after concurrent updates", got.Name, want.Name)
		sameConfig(t, got, want)
	})
}

// setStateOf sets ep's state and returns the endpoint as stored.
func (h *harness) setStateOf(ep *kapsel.Endpoint, state kapsel.EndpointState, now time.Time) *kapsel.Endpoint {
	h.t.Helper()
	h.setState(ep, state, "", now)
	return h.getEndpoint(ep.ID, "")
}

// deletedEndpoint inserts an endpoint of ten and deletes it.
func (h *harness) deletedEndpoint(ten *kapsel.Tenant) *kapsel.Endpoint {
	h.t.Helper()
	ep := h.endpoint(ten)
	err := h.s.EndpointDelete(h.ctx, &kapsel.EndpointDeleteParams{ID: ep.ID, TenantID: ten.ID, Now: Base})
	must(h.t, err, "EndpointDelete")
	return ep
}
