package upgradetest

import (
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// Check asserts, through s, that the upgraded store holds every row of f
// as the 0.2 model maps it (WantSource, WantEndpoint, WantEvent,
// WantDelivery, WantAttempt); then that a claim takes exactly the due
// deliveries of claimable endpoints, that deliveries held for a blocked
// endpoint are released when it is unblocked, that migrated leases still
// fence (and complete) as they did, that every old idempotency key still
// deduplicates in its new scope (tenant, legacy source), and that events
// inserted through a legacy source fan out to the endpoints subscribed to
// it. It changes s.
func Check(t *testing.T, s kapsel.Store, f *Fixture) {
	t.Helper()
	checkRows(t, s, f)
	checkDeliveries(t, s, f)
	checkClaims(t, s, f)
	checkInserts(t, s, f)
}

// checkRows reads every row back: the 0.2 values, and nothing more.
func checkRows(t *testing.T, s kapsel.Store, f *Fixture) {
	t.Helper()
	ctx := t.Context()
	for _, want := range f.Tenants {
		got, err := s.TenantGet(ctx, &kapsel.TenantGetParams{ID: want.ID})
		requireEqual(t, "tenant", got, err, want)
		got, err = s.TenantGetByAPIKey(ctx, &kapsel.TenantGetByAPIKeyParams{APIKeyHash: want.APIKeyHash})
		requireEqual(t, "tenant by API key", got, err, want)
	}

	for _, e := range f.Endpoints {
		src, srcErr := s.SourceGet(ctx, &kapsel.SourceGetParams{ID: kapsel.LegacySourceID(e.ID)})
		ep, epErr := s.EndpointGet(ctx, &kapsel.EndpointGetParams{ID: e.ID})
		if _, deleted := f.DeletedAt[e.ID]; deleted {
			if !errors.Is(srcErr, kapsel.ErrNotFound) || !errors.Is(epErr, kapsel.ErrNotFound) {
				t.Fatalf("the deleted endpoint and its source after the upgrade: %v, %v; %v, %v; want ErrNotFound for both",
					ep, epErr, src, srcErr)
			}
			continue
		}
		requireEqual(t, "the source of endpoint "+e.Name, src, srcErr, f.WantSource(e))
		requireEqual(t, "endpoint "+e.Name, ep, epErr, f.WantEndpoint(e))
		// The source is its tenant's only.
		other := f.tenantB.ID
		if e.TenantID == other {
			other = f.tenantA.ID
		}
		if got, err := s.SourceGet(ctx, &kapsel.SourceGetParams{ID: kapsel.LegacySourceID(e.ID), TenantID: other}); !errors.Is(err, kapsel.ErrNotFound) {
			t.Fatalf("SourceGet of %s's source by another tenant = %v, %v; want ErrNotFound", e.Name, got, err)
		}
	}
	for _, tn := range f.Tenants {
		eps := f.liveEndpoints(tn.ID)
		var srcs []*kapsel.Source
		for _, e := range eps {
			srcs = append(srcs, f.WantSource(f.endpoint(e.ID)))
		}
		gotSrcs, err := s.SourceList(ctx, &kapsel.SourceListParams{TenantID: tn.ID, Limit: kapsel.MaxPageLimit})
		requireEqual(t, "source list of "+tn.Name, gotSrcs, err, srcs)
		gotEps, err := s.EndpointList(ctx, &kapsel.EndpointListParams{TenantID: tn.ID, Limit: kapsel.MaxPageLimit})
		requireEqual(t, "endpoint list of "+tn.Name, gotEps, err, eps)
	}

	byTenant := map[kapsel.TenantID][]*kapsel.Event{}
	bySource := map[kapsel.SourceID][]*kapsel.Event{}
	for _, e := range f.Events {
		want := f.WantEvent(e)
		got, err := s.EventGet(ctx, &kapsel.EventGetParams{ID: e.ID, IncludeBody: true})
		requireEqual(t, "event "+f.label(e.ID), got, err, want)
		want.Body = nil // lists leave it out
		byTenant[e.TenantID] = append(byTenant[e.TenantID], want)
		bySource[want.SourceID] = append(bySource[want.SourceID], want)
	}
	for tenant, want := range byTenant {
		got, err := s.EventList(ctx, &kapsel.EventListParams{TenantID: tenant, Limit: kapsel.MaxPageLimit})
		requireEqual(t, "event list", got, err, sortedBy(want, func(e *kapsel.Event) kapsel.EventID { return e.ID }))
	}
	src := kapsel.LegacySourceID(f.active.ID)
	got, err := s.EventList(ctx, &kapsel.EventListParams{TenantID: f.tenantA.ID, SourceID: src, Limit: kapsel.MaxPageLimit})
	requireEqual(t, "event list of the orders source", got, err,
		sortedBy(bySource[src], func(e *kapsel.Event) kapsel.EventID { return e.ID }))

	for _, want := range f.Breakers {
		got, err := s.BreakerGet(ctx, &kapsel.BreakerGetParams{EndpointID: want.EndpointID})
		requireEqual(t, "breaker", got, err, want)
	}
}

// checkDeliveries reads the deliveries and attempts the upgrade made: one
// delivery per 0.1 event, listed by endpoint, by event and by tenant, and
// every attempt under its delivery and its event.
func checkDeliveries(t *testing.T, s kapsel.Store, f *Fixture) {
	t.Helper()
	ctx := t.Context()
	byEndpoint := map[kapsel.EndpointID][]*kapsel.Delivery{}
	byTenant := map[kapsel.TenantID][]*kapsel.Delivery{}
	for _, e := range f.Events {
		want := f.WantDelivery(e)
		got, err := s.DeliveryGet(ctx, &kapsel.DeliveryGetParams{ID: want.ID, TenantID: e.TenantID})
		requireEqual(t, "the delivery of event "+f.label(e.ID), got, err, want)
		list, err := s.DeliveryList(ctx, &kapsel.DeliveryListParams{TenantID: e.TenantID, EventID: e.ID})
		requireEqual(t, "the deliveries of event "+f.label(e.ID), list, err, []*kapsel.Delivery{want})
		byEndpoint[e.EndpointID] = append(byEndpoint[e.EndpointID], want)
		byTenant[e.TenantID] = append(byTenant[e.TenantID], want)
	}
	for _, e := range f.Endpoints { // deleted ones too: their deliveries stay listed
		got, err := s.DeliveryList(ctx, &kapsel.DeliveryListParams{TenantID: e.TenantID, EndpointID: e.ID, Limit: kapsel.MaxPageLimit})
		requireEqual(t, "the deliveries of endpoint "+e.Name, got, err,
			sortedBy(byEndpoint[e.ID], func(d *kapsel.Delivery) kapsel.DeliveryID { return d.ID }))
	}
	for tenant, want := range byTenant {
		got, err := s.DeliveryList(ctx, &kapsel.DeliveryListParams{TenantID: tenant, Limit: kapsel.MaxPageLimit})
		requireEqual(t, "the deliveries of a tenant", got, err, sortedBy(want, func(d *kapsel.Delivery) kapsel.DeliveryID { return d.ID }))
	}

	attempts := map[kapsel.EventID][]*kapsel.Attempt{}
	for _, a := range f.Attempts {
		attempts[a.EventID] = append(attempts[a.EventID], f.WantAttempt(a))
	}
	if len(attempts) < 3 {
		t.Fatalf("the fixture has attempts of %d events, want several", len(attempts))
	}
	for _, e := range f.Events {
		got, err := s.AttemptList(ctx, &kapsel.AttemptListParams{DeliveryID: LegacyDeliveryID(e.ID), TenantID: e.TenantID})
		requireEqual(t, "attempts of the delivery of "+f.label(e.ID), got, err, attempts[e.ID])
		got, err = s.AttemptList(ctx, &kapsel.AttemptListParams{EventID: e.ID, TenantID: e.TenantID})
		requireEqual(t, "attempts of event "+f.label(e.ID), got, err, attempts[e.ID])
	}
}

// checkClaims claims at f.Now: exactly the due pending deliveries and
// expired leases of active endpoints whose breaker lets them through. It
// completes some of them, and the leases the upgrade kept, with their 0.1
// tokens. The due deliveries of blocked endpoints stay (held, on a store
// that holds), and are claimed once their endpoint is active again or its
// breaker reset.
func checkClaims(t *testing.T, s kapsel.Store, f *Fixture) {
	t.Helper()
	ctx := t.Context()
	claimed := map[string]*kapsel.Delivery{}
	claim := func() []string {
		t.Helper()
		got, err := s.DeliveryClaim(ctx, &kapsel.DeliveryClaimParams{Limit: 100, LeaseDuration: time.Minute, Now: f.Now})
		if err != nil {
			t.Fatalf("DeliveryClaim: %v", err)
		}
		var labels []string
		for _, d := range got {
			label := f.label(d.EventID)
			labels = append(labels, label)
			claimed[label] = d
			want := f.ev[label]
			if d.ID != LegacyDeliveryID(want.ID) || d.EndpointID != want.EndpointID || d.Status != kapsel.DeliveryDelivering ||
				d.LeaseToken == "" || d.LeaseToken == want.LeaseToken || d.Attempts != want.Attempts ||
				d.Event == nil || d.Event.ID != want.ID || string(d.Event.Body) != string(want.Body) ||
				d.Event.Headers.Get("X-Request-Id") != want.Headers.Get("X-Request-Id") {
				t.Fatalf("claimed %+v (event %+v), want the delivery of %s leased anew with its event's body and headers and its attempts",
					d, d.Event, label)
			}
		}
		slices.Sort(labels)
		return labels
	}
	if got, want := claim(), []string{"closed", "due", "expired", "half-open", "other"}; !slices.Equal(got, want) {
		t.Fatalf("the first claim after the upgrade took %v, want %v", got, want)
	}

	// The expired lease of the paused endpoint was given back, unattempted.
	got, err := s.DeliveryGet(ctx, &kapsel.DeliveryGetParams{ID: LegacyDeliveryID(f.ev["expired-paused"].ID)})
	if err != nil || got.Status != kapsel.DeliveryPending || got.LeaseToken != "" || got.Attempts != 0 {
		t.Fatalf("the expired lease of a paused endpoint after a claim = %+v, %v; want pending, unleased", got, err)
	}

	checkCompletions(t, s, f, claimed)

	if _, err := s.EndpointSetState(ctx, &kapsel.EndpointSetStateParams{ID: f.paused.ID, State: kapsel.EndpointActive, Now: f.Now}); err != nil {
		t.Fatal(err)
	}
	if err := s.BreakerDelete(ctx, &kapsel.BreakerDeleteParams{EndpointID: f.open.ID}); err != nil {
		t.Fatal(err)
	}
	if got, want := claim(), []string{"expired-paused", "open", "paused"}; !slices.Equal(got, want) {
		t.Fatalf("the claim after unblocking took %v, want %v", got, want)
	}
	if got := claim(); len(got) != 0 {
		t.Fatalf("a third claim took %v, want nothing (disabled and deleted endpoints stay blocked)", got)
	}
}

// checkCompletions completes migrated deliveries: three just claimed
// (delivered, retried, failed), the live 0.1 lease and the lease of the
// deleted endpoint with their 0.1 tokens, and the re-claimed expired lease
// with its stale 0.1 token, which must lose.
func checkCompletions(t *testing.T, s kapsel.Store, f *Fixture, claimed map[string]*kapsel.Delivery) {
	t.Helper()
	ctx := t.Context()
	type outcome struct {
		label  string
		token  string
		status kapsel.DeliveryStatus
		code   int
		// want: the delivery's status and last error afterwards, and the
		// trigger of its new attempt.
		wantStatus  kapsel.DeliveryStatus
		wantError   string
		wantTrigger kapsel.AttemptTrigger
	}
	outcomes := []outcome{
		{"due", claimed["due"].LeaseToken, kapsel.DeliveryDelivered, 200, kapsel.DeliveryDelivered, "", kapsel.TriggerScheduled},
		{"expired", claimed["expired"].LeaseToken, kapsel.DeliveryPending, 503, kapsel.DeliveryPending, "HTTP 503", kapsel.TriggerScheduled},
		{"closed", claimed["closed"].LeaseToken, kapsel.DeliveryFailed, 500, kapsel.DeliveryFailed, "HTTP 500", kapsel.TriggerManual},
		{"live", f.ev["live"].LeaseToken, kapsel.DeliveryDelivered, 204, kapsel.DeliveryDelivered, "", kapsel.TriggerScheduled},
		{"leased-deleted", f.ev["leased-deleted"].LeaseToken, kapsel.DeliveryPending, 503, kapsel.DeliveryFailed,
			kapsel.LastErrorEndpointDeleted, kapsel.TriggerScheduled},
	}
	var cs []kapsel.DeliveryCompletion
	for _, o := range outcomes {
		e := f.ev[o.label]
		c := kapsel.DeliveryCompletion{
			DeliveryID: LegacyDeliveryID(e.ID), LeaseToken: o.token, Status: o.status,
			Attempt: kapsel.Attempt{Number: e.Attempts + 1, StartedAt: f.Now, Duration: 40 * time.Millisecond, StatusCode: o.code},
		}
		if o.status != kapsel.DeliveryDelivered {
			c.LastError, c.Attempt.ErrorCode, c.Attempt.Error = "HTTP "+strconv.Itoa(o.code), kapsel.CodeAttemptStatus, "HTTP "+strconv.Itoa(o.code)
			c.NextAttemptAt = f.Now.Add(time.Hour)
		}
		cs = append(cs, c)
	}
	stale := f.ev["expired"]
	cs = append(cs, kapsel.DeliveryCompletion{
		DeliveryID: LegacyDeliveryID(stale.ID), LeaseToken: stale.LeaseToken, Status: kapsel.DeliveryDelivered,
		Attempt: kapsel.Attempt{Number: stale.Attempts + 1, StartedAt: f.Now, StatusCode: 200},
	})
	errs, err := s.DeliveryComplete(ctx, &kapsel.DeliveryCompleteParams{Completions: cs, Now: f.Now})
	if err != nil {
		t.Fatalf("DeliveryComplete: %v", err)
	}
	for i, o := range outcomes {
		if errs[i] != nil {
			t.Fatalf("completing the delivery of %s with its token: %v", o.label, errs[i])
		}
	}
	if !errors.Is(errs[len(outcomes)], kapsel.ErrLeaseLost) {
		t.Fatalf("completing the re-claimed delivery of expired with its 0.1 token = %v, want ErrLeaseLost", errs[len(outcomes)])
	}
	for _, o := range outcomes {
		e := f.ev[o.label]
		d, err := s.DeliveryGet(ctx, &kapsel.DeliveryGetParams{ID: LegacyDeliveryID(e.ID)})
		if err != nil || d.Status != o.wantStatus || d.LastError != o.wantError || d.Attempts != e.Attempts+1 {
			t.Fatalf("the delivery of %s after its completion = %+v, %v; want %s, last error %q, %d attempts",
				o.label, d, err, o.wantStatus, o.wantError, e.Attempts+1)
		}
		if (o.wantStatus == kapsel.DeliveryDelivered) != !d.DeliveredAt.IsZero() {
			t.Fatalf("the delivery of %s after its completion has DeliveredAt %v", o.label, d.DeliveredAt)
		}
		as, err := s.AttemptList(ctx, &kapsel.AttemptListParams{DeliveryID: d.ID})
		if err != nil || len(as) != e.Attempts+1 {
			t.Fatalf("attempts of the delivery of %s after its completion: %d, %v; want %d", o.label, len(as), err, e.Attempts+1)
		}
		a := as[len(as)-1]
		if a.DeliveryID != d.ID || a.EventID != e.ID || a.EndpointID != e.EndpointID || a.TenantID != e.TenantID ||
			a.Number != e.Attempts+1 || a.Trigger != o.wantTrigger || a.StatusCode != o.code {
			t.Fatalf("the new attempt of %s = %+v; want number %d of delivery %s, trigger %s", o.label, a, e.Attempts+1, d.ID, o.wantTrigger)
		}
	}
}

// checkInserts inserts after the upgrade, through the legacy sources as the
// ingester does for an old /ingest/ep_… URL: every old live key
// deduplicates in its new scope (and refuses another body), every old
// expired key is free, a send (no source) is of another scope, and new
// events fan out to the endpoints subscribed to their source — the
// migrated endpoint of that source — and are claimed and delivered.
func checkInserts(t *testing.T, s kapsel.Store, f *Fixture) {
	t.Helper()
	ctx := t.Context()
	newEvents := map[kapsel.TenantID]int{}
	var in []*kapsel.EventInsertParams
	for _, k := range f.Keys {
		e := f.event(k.EventID)
		tenant, source := f.WantKeyScope(k)
		in = append(in, &kapsel.EventInsertParams{TenantID: tenant, SourceID: source, IdempotencyKey: k.Key,
			Body: e.Body, BodyHash: e.BodyHash, ContentType: e.ContentType})
	}
	delivered, due := f.ev["delivered"], f.ev["due"]
	conflict := &kapsel.EventInsertParams{TenantID: delivered.TenantID, SourceID: kapsel.LegacySourceID(delivered.EndpointID),
		IdempotencyKey: delivered.IdempotencyKey, Body: []byte("other"), BodyHash: []byte("other hash")}
	send := &kapsel.EventInsertParams{TenantID: due.TenantID, IdempotencyKey: due.IdempotencyKey, Body: due.Body, BodyHash: due.BodyHash}
	in = append(in, conflict, send)
	res, err := s.EventInsertMany(ctx, &kapsel.EventInsertManyParams{Now: f.Now, Events: in})
	if err != nil {
		t.Fatalf("EventInsertMany: %v", err)
	}
	for i, k := range f.Keys {
		r := res[i]
		if k.ExpiresAt.After(f.Now) {
			if !r.Duplicate || r.Err != nil || r.Event.ID != k.EventID || r.Event.Deliveries.Total != 0 {
				t.Fatalf("retrying old live key %q in its new scope = %+v, want a duplicate of %s", k.Key, r, k.EventID)
			}
			continue
		}
		if r.Duplicate || r.Err != nil || r.Event.ID == k.EventID {
			t.Fatalf("reusing old expired key %q = %+v, want a new event", k.Key, r)
		}
		newEvents[r.Event.TenantID]++
		checkFanOut(t, s, f, in[i], r.Event)
	}
	if r := res[len(f.Keys)]; !errors.Is(r.Err, kapsel.ErrIdempotencyConflict) {
		t.Fatalf("reusing the key of an old event with another body = %+v, want ErrIdempotencyConflict", r)
	}
	if r := res[len(f.Keys)+1]; r.Err != nil || r.Duplicate {
		t.Fatalf("a send with the key of an old ingested event = %+v, want a new event (the scope is the tenant)", r)
	} else {
		newEvents[r.Event.TenantID]++
		checkFanOut(t, s, f, send, r.Event)
	}

	// New events through old ingest URLs, as the ingester makes them: it
	// resolves /ingest/ep_… to the legacy source and inserts with its id,
	// the type its scheme gives (if any) and no channels. Each reaches the
	// migrated endpoint of that URL, and only it, whatever filter the
	// endpoint had before the upgrade (the orders endpoint had "invoice.*",
	// the closed one the "billing" channel: 0.1 never applied them).
	source, err := s.SourceGet(ctx, &kapsel.SourceGetParams{ID: kapsel.LegacySourceID(f.active.ID)})
	if err != nil {
		t.Fatalf("SourceGet of the orders endpoint's legacy source: %v", err)
	}
	closedSource := kapsel.LegacySourceID(f.closed.ID)
	in = []*kapsel.EventInsertParams{
		{TenantID: source.TenantID, SourceID: source.ID, Type: "invoice.paid", Body: []byte(`{}`), BodyHash: []byte("h")},
		{TenantID: source.TenantID, SourceID: source.ID, Body: []byte(`{}`), BodyHash: []byte("h")},
		{TenantID: f.closed.TenantID, SourceID: closedSource, Body: []byte(`{}`), BodyHash: []byte("h")},
		{TenantID: source.TenantID, EndpointIDs: []kapsel.EndpointID{f.deleted.ID}, Body: []byte(`{}`)},
	}
	res, err = s.EventInsertMany(ctx, &kapsel.EventInsertManyParams{Now: f.Now, Events: in})
	if err != nil || res[0].Err != nil || res[1].Err != nil || res[2].Err != nil {
		t.Fatalf("inserting through the legacy sources after the upgrade: %v, %+v", err, res)
	}
	if !errors.Is(res[3].Err, kapsel.ErrNotFound) {
		t.Fatalf("a send naming the deleted endpoint = %+v, want ErrNotFound", res[3])
	}
	newEvents[source.TenantID] += 3
	var wantClaim []kapsel.EventID
	for i, to := range []*Endpoint{f.active, f.active, f.closed} {
		if want := f.fanOut(routing(in[i])); !slices.Equal(want, []kapsel.EndpointID{to.ID}) {
			t.Fatalf("the mapping sends an event of %s's legacy URL to %v, want only %s", to.Name, want, to.ID)
		}
		checkFanOut(t, s, f, in[i], res[i].Event)
		wantClaim = append(wantClaim, res[i].Event.ID)
	}
	slices.Sort(wantClaim)
	got, err := s.EventGet(ctx, &kapsel.EventGetParams{ID: res[0].Event.ID})
	if err != nil || got.Type != "invoice.paid" || len(got.Channels) != 0 ||
		got.TenantID != f.tenantA.ID || got.SourceID != source.ID {
		t.Fatalf("the typed event reads back as %+v, %v", got, err)
	}
	list, err := s.EventList(ctx, &kapsel.EventListParams{TenantID: f.tenantA.ID, Type: "invoice.paid"})
	wantTyped := []kapsel.EventID{res[0].Event.ID}
	if f.routing {
		wantTyped = []kapsel.EventID{due.ID, res[0].Event.ID}
	}
	if err != nil || !slices.Equal(ids(list, func(e *kapsel.Event) kapsel.EventID { return e.ID }), wantTyped) {
		t.Fatalf("listing by type = %v, %v; want %v", list, err, wantTyped)
	}
	for tenant, n := range newEvents {
		all, err := s.EventList(ctx, &kapsel.EventListParams{TenantID: tenant, Limit: kapsel.MaxPageLimit})
		want := n
		for _, e := range f.Events {
			if e.TenantID == tenant {
				want++
			}
		}
		if err != nil || len(all) != want {
			t.Fatalf("tenant %s lists %d events, %v; want %d", tenant, len(all), err, want)
		}
	}

	// The new deliveries of the legacy URLs' endpoints are the only due
	// ones; they are claimed and delivered.
	ds, err := s.DeliveryClaim(ctx, &kapsel.DeliveryClaimParams{Limit: 100, LeaseDuration: time.Minute, Now: f.Now})
	if err != nil {
		t.Fatal(err)
	}
	var claimed []kapsel.EventID
	var cs []kapsel.DeliveryCompletion
	for _, d := range ds {
		claimed = append(claimed, d.EventID)
		cs = append(cs, kapsel.DeliveryCompletion{DeliveryID: d.ID, LeaseToken: d.LeaseToken, Status: kapsel.DeliveryDelivered,
			Attempt: kapsel.Attempt{Number: 1, StartedAt: f.Now, StatusCode: 200}})
	}
	slices.Sort(claimed)
	if !slices.Equal(claimed, wantClaim) {
		t.Fatalf("claimed the deliveries of %v, want those of %v", claimed, wantClaim)
	}
	if len(cs) > 0 {
		errs, err := s.DeliveryComplete(ctx, &kapsel.DeliveryCompleteParams{Completions: cs, Now: f.Now})
		if err != nil || errors.Join(errs...) != nil {
			t.Fatalf("completing the new deliveries: %v, %v", err, errs)
		}
	}
}

// checkFanOut checks the deliveries of a new event: one pending delivery
// per endpoint the root rule sends it to, counted in its summary.
func checkFanOut(t *testing.T, s kapsel.Store, f *Fixture, in *kapsel.EventInsertParams, ev *kapsel.Event) {
	t.Helper()
	want := f.fanOut(routing(in))
	if ev.Deliveries != (kapsel.DeliverySummary{Total: len(want), Pending: len(want)}) {
		t.Fatalf("event %s inserted with %+v has deliveries %+v, want %d pending (to %v)", ev.ID, in, ev.Deliveries, len(want), want)
	}
	ds, err := s.DeliveryList(t.Context(), &kapsel.DeliveryListParams{TenantID: in.TenantID, EventID: ev.ID})
	if err != nil {
		t.Fatal(err)
	}
	var got []kapsel.EndpointID
	for _, d := range ds {
		if d.Status != kapsel.DeliveryPending || d.Attempts != 0 || !d.NextAttemptAt.Equal(f.Now) || d.NextTrigger != kapsel.TriggerScheduled {
			t.Fatalf("new delivery %+v, want pending now, scheduled, unattempted", d)
		}
		got = append(got, d.EndpointID)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("event %s inserted with %+v went to %v, want %v", ev.ID, in, got, want)
	}
}

// routing is the routing of an event inserted with in.
func routing(in *kapsel.EventInsertParams) kapsel.EventRouting {
	return kapsel.EventRouting{TenantID: in.TenantID, SourceID: in.SourceID, Type: in.Type, Channels: in.Channels}
}

// label returns the fixture's name of an event.
func (f *Fixture) label(id kapsel.EventID) string {
	for label, e := range f.ev {
		if e.ID == id {
			return label
		}
	}
	return "unknown " + string(id)
}

// event returns the fixture's event with the id.
func (f *Fixture) event(id kapsel.EventID) *Event {
	for _, e := range f.Events {
		if e.ID == id {
			return e
		}
	}
	panic("upgradetest: no event " + string(id))
}
