package storetest

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// fullEndpoint is an endpoint of ten with every configuration field set.
func fullEndpoint(ten *kapsel.Tenant) *kapsel.Endpoint {
	return &kapsel.Endpoint{
		TenantID: ten.ID,
		Name:     "payments",
		URL:      "https://hooks.example.com/stripe?x=1",
		SigningSecrets: []kapsel.SigningSecret{
			{Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
			{Secret: "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", ExpiresAt: at(time.Hour)},
		},
		RetryPolicy: kapsel.RetryPolicy{
			MaxAttempts: 7, InitialInterval: 1500 * time.Millisecond, Multiplier: 1.5, Jitter: 0.1,
			MaxInterval: 10 * time.Minute, MaxAge: 6 * time.Hour, Retry4xx: false,
		},
		Timeout: 12 * time.Second,
		Headers: map[string]string{"X-Team": "billing", "X-Env": "prod"},
		Subscription: kapsel.Subscription{
			EventTypes: []string{"invoice.*", "customer.created"},
			SourceIDs:  []kapsel.SourceID{fullSourceID},
			Channels:   []string{"eu", "org_42"},
		},
	}
}

// fullSourceID is the source fullEndpoint subscribes to.
var fullSourceID = kapsel.NewSourceID()

// sameConfig requires the configuration fields of got and want to match.
func sameConfig(t *testing.T, got, want *kapsel.Endpoint) {
	t.Helper()
	equal(t, "Name", got.Name, want.Name)
	equal(t, "URL", got.URL, want.URL)
	equal(t, "len(SigningSecrets)", len(got.SigningSecrets), len(want.SigningSecrets))
	for i := range want.SigningSecrets {
		equal(t, "SigningSecrets.Secret", got.SigningSecrets[i].Secret, want.SigningSecrets[i].Secret)
		sameTime(t, "SigningSecrets.ExpiresAt", got.SigningSecrets[i].ExpiresAt, want.SigningSecrets[i].ExpiresAt)
	}
	equal(t, "RetryPolicy", got.RetryPolicy, want.RetryPolicy)
	equal(t, "Timeout", got.Timeout, want.Timeout)
	if !maps.Equal(got.Headers, want.Headers) {
		t.Fatalf("Headers = %v, want %v", got.Headers, want.Headers)
	}
	sameSubscription(t, "Subscription", got.Subscription, want.Subscription)
}

// sameSubscription requires the lists of got and want to be equal, in
// order; an empty list may come back nil or empty.
func sameSubscription(t *testing.T, what string, got, want kapsel.Subscription) {
	t.Helper()
	if !slices.Equal(got.EventTypes, want.EventTypes) || !slices.Equal(got.SourceIDs, want.SourceIDs) ||
		!slices.Equal(got.Channels, want.Channels) {
		t.Fatalf("%s = %+v, want %+v", what, got, want)
	}
}

func testEndpoints(t *testing.T, newStore func(*testing.T) kapsel.Store) {
	testEndpointPolicy(t, newStore)
	testEndpointSecrets(t, newStore)
	testEndpointUpdate(t, newStore)

	t.Run("InsertGet", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		want := fullEndpoint(ten)
		ep, err := h.s.EndpointInsert(h.ctx, &kapsel.EndpointInsertParams{Endpoint: want, Now: at(time.Minute)})
		must(t, err, "EndpointInsert")
		_, err = kapsel.ParseEndpointID(ep.ID.String())
		must(t, err, "ParseEndpointID of the new id")
		for _, got := range []*kapsel.Endpoint{ep, h.getEndpoint(ep.ID, "")} {
			equal(t, "ID", got.ID, ep.ID)
			equal(t, "TenantID", got.TenantID, ten.ID)
			equal(t, "State (empty means active)", got.State, kapsel.EndpointActive)
			equal(t, "DisabledReason", got.DisabledReason, kapsel.DisabledNone)
			sameTime(t, "CreatedAt", got.CreatedAt, at(time.Minute))
			sameTime(t, "UpdatedAt", got.UpdatedAt, at(time.Minute))
			sameConfig(t, got, want)
		}
	})

	t.Run("InsertUnknownTenant", func(t *testing.T) {
		h := setup(t, newStore)
		e := fullEndpoint(&kapsel.Tenant{ID: kapsel.NewTenantID()})
		_, err := h.s.EndpointInsert(h.ctx, &kapsel.EndpointInsertParams{Endpoint: e, Now: Base})
		mustIs(t, err, kapsel.ErrNotFound, "EndpointInsert for an unknown tenant")
	})

	t.Run("GetScoping", func(t *testing.T) {
		h := setup(t, newStore)
		a, b := h.tenant(), h.tenant()
		ep := h.endpoint(a)
		equal(t, "own tenant", h.getEndpoint(ep.ID, a.ID).ID, ep.ID)
		equal(t, "no tenant check", h.getEndpoint(ep.ID, "").ID, ep.ID)
		_, err := h.s.EndpointGet(h.ctx, &kapsel.EndpointGetParams{ID: ep.ID, TenantID: b.ID})
		mustIs(t, err, kapsel.ErrNotFound, "EndpointGet by another tenant")
		_, err = h.s.EndpointGet(h.ctx, &kapsel.EndpointGetParams{ID: kapsel.NewEndpointID()})
		mustIs(t, err, kapsel.ErrNotFound, "EndpointGet of an unknown id")
	})

	t.Run("SetState", func(t *testing.T) {
		h := setup(t, newStore)
		a, b := h.tenant(), h.tenant()
		ep := h.endpoint(a)
		steps := []struct {
			state      kapsel.EndpointState
			reason     kapsel.DisabledReason
			wantReason kapsel.DisabledReason
		}{
			{kapsel.EndpointPaused, "", ""},
			{kapsel.EndpointDisabled, kapsel.DisabledGone, kapsel.DisabledGone},
			{kapsel.EndpointDisabled, kapsel.DisabledFailing, kapsel.DisabledFailing},
			{kapsel.EndpointActive, kapsel.DisabledManual, ""}, // a reason only sticks to disabled
			{kapsel.EndpointPaused, kapsel.DisabledManual, ""},
			{kapsel.EndpointActive, "", ""},
		}
		for i, s := range steps {
			now := at(time.Duration(i+1) * time.Minute)
			got, err := h.s.EndpointSetState(h.ctx, &kapsel.EndpointSetStateParams{
				ID: ep.ID, TenantID: a.ID, State: s.state, DisabledReason: s.reason, Now: now,
			})
			must(t, err, "EndpointSetState")
			for _, got := range []*kapsel.Endpoint{got, h.getEndpoint(ep.ID, "")} {
				equal(t, "State", got.State, s.state)
				equal(t, "DisabledReason", got.DisabledReason, s.wantReason)
				sameTime(t, "UpdatedAt", got.UpdatedAt, now)
			}
		}
		_, err := h.s.EndpointSetState(h.ctx, &kapsel.EndpointSetStateParams{
			ID: ep.ID, TenantID: b.ID, State: kapsel.EndpointPaused, Now: Base,
		})
		mustIs(t, err, kapsel.ErrNotFound, "EndpointSetState by another tenant")
		equal(t, "State after a foreign change", h.getEndpoint(ep.ID, "").State, kapsel.EndpointActive)
		_, err = h.s.EndpointSetState(h.ctx, &kapsel.EndpointSetStateParams{ID: ep.ID, State: "sleeping", Now: Base})
		mustIs(t, err, kapsel.ErrInvalid, "EndpointSetState to an unknown state")
		equal(t, "State after an invalid change", h.getEndpoint(ep.ID, "").State, kapsel.EndpointActive)
	})

	t.Run("SoftDelete", func(t *testing.T) {
		h := setup(t, newStore)
		a, b := h.tenant(), h.tenant()
		ep, keep := h.endpoint(a), h.endpoint(a)
		d := h.delivery(ep, Base)

		err := h.s.EndpointDelete(h.ctx, &kapsel.EndpointDeleteParams{ID: ep.ID, TenantID: b.ID, Now: Base})
		mustIs(t, err, kapsel.ErrNotFound, "EndpointDelete by another tenant")
		h.getEndpoint(ep.ID, a.ID)

		must(t, h.s.EndpointDelete(h.ctx, &kapsel.EndpointDeleteParams{ID: ep.ID, TenantID: a.ID, Now: Base}), "EndpointDelete")
		_, err = h.s.EndpointGet(h.ctx, &kapsel.EndpointGetParams{ID: ep.ID})
		mustIs(t, err, kapsel.ErrNotFound, "EndpointGet after delete")
		err = h.s.EndpointDelete(h.ctx, &kapsel.EndpointDeleteParams{ID: ep.ID, Now: Base})
		mustIs(t, err, kapsel.ErrNotFound, "second EndpointDelete")
		_, err = h.s.EndpointSetState(h.ctx, &kapsel.EndpointSetStateParams{ID: ep.ID, State: kapsel.EndpointActive, Now: Base})
		mustIs(t, err, kapsel.ErrNotFound, "EndpointSetState after delete")

		list := h.listEndpoints(a.ID, 0, "")
		if len(list) != 1 || list[0].ID != keep.ID {
			t.Fatalf("EndpointList after delete = %v, want only %s", endpointIDs(list), keep.ID)
		}
		if got := h.claim(10, time.Minute, at(time.Hour)); len(got) != 0 {
			t.Fatalf("claimed %v of a deleted endpoint", ids(got))
		}
		// The audit trail is kept.
		equal(t, "event of the deleted endpoint", h.getEvent(d.EventID).ID, d.EventID)
		equal(t, "delivery of the deleted endpoint", h.get(d.ID).ID, d.ID)
	})

	t.Run("List", func(t *testing.T) {
		h := setup(t, newStore)
		a, b := h.tenant(), h.tenant()
		var want []kapsel.EndpointID
		for range 7 {
			want = append(want, h.endpoint(a).ID)
			h.endpoint(b)
		}
		slices.Sort(want)
		var got []kapsel.EndpointID
		var cursor kapsel.EndpointID
		for page := 0; ; page++ {
			if page > 10 {
				t.Fatal("EndpointList pagination does not end")
			}
			list := h.listEndpoints(a.ID, 3, cursor)
			if len(list) > 3 {
				t.Fatalf("page of %d endpoints with Limit 3", len(list))
			}
			if len(list) == 0 {
				break
			}
			for _, e := range list {
				equal(t, "TenantID of a listed endpoint", e.TenantID, a.ID)
				got = append(got, e.ID)
			}
			cursor = list[len(list)-1].ID
		}
		if !slices.Equal(got, want) {
			t.Fatalf("paged EndpointList = %v, want %v (id order)", got, want)
		}
		if list := h.listEndpoints(kapsel.NewTenantID(), 0, ""); len(list) != 0 {
			t.Fatalf("EndpointList of an unknown tenant = %v", endpointIDs(list))
		}
	})

	t.Run("ValuesAreCopies", func(t *testing.T) {
		h := setup(t, newStore)
		in := fullEndpoint(h.tenant())
		ep, err := h.s.EndpointInsert(h.ctx, &kapsel.EndpointInsertParams{Endpoint: in, Now: Base})
		must(t, err, "EndpointInsert")
		want := fullEndpoint(&kapsel.Tenant{ID: in.TenantID})
		in.Headers["X-Team"], in.Subscription.Channels[0], in.SigningSecrets[0].Secret = "x", "x", "x"
		ep.Headers["X-Team"], ep.Subscription.Channels[0], ep.SigningSecrets[0].Secret = "y", "y", "y"
		sameConfig(t, h.getEndpoint(ep.ID, ""), want)
	})
}

func (h *harness) getEndpoint(id kapsel.EndpointID, tenant kapsel.TenantID) *kapsel.Endpoint {
	h.t.Helper()
	ep, err := h.s.EndpointGet(h.ctx, &kapsel.EndpointGetParams{ID: id, TenantID: tenant})
	must(h.t, err, "EndpointGet")
	return ep
}

func (h *harness) setState(ep *kapsel.Endpoint, state kapsel.EndpointState, reason kapsel.DisabledReason, now time.Time) {
	h.t.Helper()
	_, err := h.s.EndpointSetState(h.ctx, &kapsel.EndpointSetStateParams{
		ID: ep.ID, State: state, DisabledReason: reason, Now: now,
	})
	must(h.t, err, "EndpointSetState")
}

func (h *harness) listEndpoints(tenant kapsel.TenantID, limit int, cursor kapsel.EndpointID) []*kapsel.Endpoint {
	h.t.Helper()
	list, err := h.s.EndpointList(h.ctx, &kapsel.EndpointListParams{TenantID: tenant, Limit: limit, Cursor: cursor})
	must(h.t, err, "EndpointList")
	return list
}

func endpointIDs(list []*kapsel.Endpoint) []kapsel.EndpointID {
	out := make([]kapsel.EndpointID, len(list))
	for i, e := range list {
		out[i] = e.ID
	}
	return out
}
