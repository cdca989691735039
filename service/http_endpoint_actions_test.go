package service_test

import (
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/service"
)

func TestPauseResume(t *testing.T) {
	t.Parallel()
	f := setup(t)
	_, key := f.tenant("acme")
	ep := f.endpoint(key, nil)
	id := kapsel.EndpointID(ep["id"].(string))
	path := "/v1/endpoints/" + string(id)

	if out := f.ok(200, "POST", path+"/pause", key, nil); out["state"] != "paused" || out["disabled_reason"] != nil {
		t.Fatalf("paused: %v", out)
	}
	if got := f.ok(200, "GET", path, key, nil); got["state"] != "paused" {
		t.Fatalf("state after pause %v", got["state"])
	}

	// A disabled endpoint with an open breaker: resume re-enables it and
	// resets the breaker.
	ctx := t.Context()
	if _, err := f.store.EndpointSetState(ctx, &kapsel.EndpointSetStateParams{
		ID: id, State: kapsel.EndpointDisabled, DisabledReason: kapsel.DisabledFailing, Now: f.clock.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.BreakerSave(ctx, &kapsel.BreakerSaveParams{
		State: &kapsel.BreakerState{EndpointID: id, Status: kapsel.BreakerOpen, OpenUntil: f.clock.Now().Add(time.Hour), Trips: 3},
		Now:   f.clock.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	if got := f.ok(200, "GET", path, key, nil); got["state"] != "disabled" || got["disabled_reason"] != "failing" {
		t.Fatalf("disabled endpoint reads %v / %v", got["state"], got["disabled_reason"])
	}
	if out := f.ok(200, "POST", path+"/resume", key, nil); out["state"] != "active" || out["disabled_reason"] != nil {
		t.Fatalf("resumed: %v", out)
	}
	if _, err := f.store.BreakerGet(ctx, &kapsel.BreakerGetParams{EndpointID: id}); err == nil {
		t.Fatal("breaker state survived resume")
	}
	// Resuming an active endpoint is harmless.
	f.ok(200, "POST", path+"/resume", key, nil)
}

func TestRotateSigningSecret(t *testing.T) {
	t.Parallel()
	f := setup(t)
	_, key := f.tenant("acme")
	ep := f.endpoint(key, nil)
	id := kapsel.EndpointID(ep["id"].(string))
	path := "/v1/endpoints/" + string(id) + "/rotate-signing-secret"
	first := ep["signing_secret"].(string)

	out := f.ok(200, "POST", path, key, map[string]any{"grace_period_s": 600})
	second, _ := out["signing_secret"].(string)
	if second == "" || second == first || out["previous_expires_at"] != "2026-01-01T00:10:00Z" {
		t.Fatalf("rotation: %v", out)
	}
	stored := func() *kapsel.Endpoint {
		e, err := f.store.EndpointGet(t.Context(), &kapsel.EndpointGetParams{ID: id})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	now := f.clock.Now()
	if got := stored().ActiveSigningSecrets(now); len(got) != 2 || got[0] != second || got[1] != first {
		t.Fatalf("active secrets after rotation %v", got)
	}
	if got := stored().ActiveSigningSecrets(now.Add(10 * time.Minute)); len(got) != 1 || got[0] != second {
		t.Fatalf("active secrets after the grace period %v", got)
	}

	// A second rotation within the grace keeps the first until its expiry.
	f.clock.Advance(time.Minute)
	third := f.ok(200, "POST", path, key, nil)["signing_secret"].(string) // default grace: 24 h
	if got := stored().ActiveSigningSecrets(f.clock.Now()); len(got) != 3 || got[0] != third || got[1] != second || got[2] != first {
		t.Fatalf("active secrets after two rotations %v", got)
	}
	// grace 0 drops the previous secret at once; expired ones are dropped.
	f.clock.Advance(time.Hour)
	fourth := f.ok(200, "POST", path, key, map[string]any{"grace_period_s": 0})
	if fourth["previous_expires_at"] != nil {
		t.Fatalf("grace 0: %v", fourth)
	}
	e := stored()
	if len(e.SigningSecrets) != 2 || e.SigningSecrets[0].Secret != fourth["signing_secret"] || e.SigningSecrets[1].Secret != second {
		t.Fatalf("secrets after grace-0 rotation %+v", e.SigningSecrets)
	}
	// The secret never shows in reads.
	rec := f.do("GET", "/v1/endpoints/"+string(id), key, nil)
	requireNoSecret(t, rec.Body.String(), first, second, third, fourth["signing_secret"].(string))

	f.problem(400, kapsel.CodeMalformedRequest, "POST", path, key, map[string]any{"grace_period_s": -1})
	f.problem(400, kapsel.CodeMalformedRequest, "POST", path, key, map[string]any{"grace_period_s": 31 * 86400})
	f.problem(400, kapsel.CodeMalformedRequest, "POST", path, key, map[string]any{"grace": 1})
	if len(stored().SigningSecrets) != 2 {
		t.Fatal("refused rotation changed the secrets")
	}
}

func TestEndpointHealth(t *testing.T) {
	t.Parallel()
	f := setup(t)
	tid, key := f.tenant("acme")
	ep := f.endpoint(key, nil)
	id := ep["id"].(string)
	path := "/v1/endpoints/" + id + "/health"

	out := f.ok(200, "GET", path, key, nil)
	if out["state"] != "active" || out["attempts"] != 0.0 || out["success_rate"] != nil || out["last_success_at"] != nil ||
		out["window_s"] != 3600.0 || out["breaker"].(map[string]any)["state"] != "closed" {
		t.Fatalf("fresh health %v", out)
	}

	// Two hours ago: one success (outside the window). Now: one success and two failures.
	f.event(tid, id, "old")
	f.attempt(200)
	f.clock.Advance(2 * time.Hour)
	f.event(tid, id, "a")
	f.attempt(200)
	f.clock.Advance(time.Second)
	f.event(tid, id, "b")
	f.event(tid, id, "c")
	f.attempt(500)
	if _, err := f.store.BreakerSave(t.Context(), &kapsel.BreakerSaveParams{
		State: &kapsel.BreakerState{EndpointID: kapsel.EndpointID(id), Status: kapsel.BreakerOpen,
			OpenUntil: f.clock.Now().Add(time.Minute), Trips: 2, FailingSince: f.clock.Now()},
		Now: f.clock.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	out = f.ok(200, "GET", path, key, nil)
	if out["attempts"] != 3.0 || out["succeeded"] != 1.0 || out["success_rate"] != 1.0/3.0 {
		t.Fatalf("window counts %v", out)
	}
	if out["last_success_at"] != "2026-01-01T02:00:00Z" || out["last_failure_at"] != "2026-01-01T02:00:01Z" {
		t.Fatalf("last success/failure %v / %v", out["last_success_at"], out["last_failure_at"])
	}
	b := out["breaker"].(map[string]any)
	if b["state"] != "open" || b["open_until"] != "2026-01-01T02:01:01Z" || b["trips"] != 2.0 || b["failing_since"] != "2026-01-01T02:00:01Z" {
		t.Fatalf("breaker %v", b)
	}
}

func TestReplay(t *testing.T) {
	t.Parallel()
	f := setup(t)
	tid, key := f.tenant("acme")
	ep := f.endpoint(key, nil)
	id := ep["id"].(string)
	other := f.endpoint(key, map[string]any{"name": "other"})["id"].(string)
	path := "/v1/endpoints/" + id + "/replay"

	f.event(tid, id, "e1") // 00:00, will fail
	f.clock.Advance(time.Hour)
	f.event(tid, id, "e2") // 01:00, will fail
	f.event(tid, other, "o1")
	f.attempt(500)
	f.clock.Advance(time.Hour)
	f.event(tid, id, "e3") // 02:00, delivered
	f.attempt(200)

	// Only failed deliveries of this endpoint whose events were created
	// within [since, until).
	out := f.ok(202, "POST", path, key, map[string]any{"status": "failed", "since": "2026-01-01T00:30:00Z", "until": "2026-01-01T03:00:00Z"})
	if out["count"] != 1.0 {
		t.Fatalf("replayed %v, want 1", out["count"])
	}
	pending := data(t, f.ok(200, "GET", "/v1/deliveries?endpoint_id="+id+"&status=pending", key, nil))
	if len(pending) != 1 {
		t.Fatalf("pending after replay %v", pending)
	}
	// The replayed delivery is attempted manually.
	f.attempt(200)
	atts := data(t, f.ok(200, "GET", "/v1/deliveries/"+pending[0]["id"].(string)+"/attempts", key, nil))
	if len(atts) != 2 || atts[1]["trigger"] != "manual" || atts[0]["trigger"] != "scheduled" {
		t.Fatalf("attempts after replay %v", atts)
	}
	// Open bounds; delivered ones.
	if out := f.ok(202, "POST", path, key, map[string]any{"status": "delivered"}); out["count"] != 2.0 {
		t.Fatalf("replay delivered: %v", out)
	}
	for _, body := range []any{
		map[string]any{},
		map[string]any{"status": "pending"},
		map[string]any{"status": "failed", "since": "yesterday"},
		map[string]any{"status": "failed", "since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
	} {
		f.problem(400, kapsel.CodeMalformedRequest, "POST", path, key, body)
	}
}

func TestBackfill(t *testing.T) {
	t.Parallel()
	f := setup(t)
	tid, key := f.tenant("acme")
	otherTid, _ := f.tenant("other")
	old := f.endpoint(key, nil)["id"].(string)
	typed := func(tenant kapsel.TenantID, typ string) kapsel.EventID {
		return f.insert(&kapsel.EventInsertParams{TenantID: tenant, Type: typ, Body: []byte(typ)})
	}
	e1 := typed(tid, "invoice.paid") // 00:00
	f.clock.Advance(time.Hour)
	typed(tid, "user.created") // 01:00, not matched by the new endpoint
	typed(otherTid, "invoice.paid")
	f.clock.Advance(time.Hour)
	e3 := typed(tid, "invoice.refunded") // 02:00
	e4 := f.event(tid, old, "sent to the old endpoint only")
	if n := f.attempt(200); n != 4 {
		t.Fatalf("the old endpoint's deliveries: %d, want 4", n)
	}
	f.clock.Advance(time.Hour)

	// An endpoint created at 03:00 has no delivery of the past events …
	ep := f.endpoint(key, map[string]any{"event_types": []string{"invoice.*"}})["id"].(string)
	path := "/v1/endpoints/" + ep + "/backfill"
	if ds := data(t, f.ok(200, "GET", "/v1/deliveries?endpoint_id="+ep, key, nil)); len(ds) != 0 {
		t.Fatalf("deliveries of a new endpoint: %v", ds)
	}
	// … until a backfill gives it one per matching event of the range.
	out := f.ok(202, "POST", path, key, map[string]any{"since": "2026-01-01T00:30:00Z"})
	if out["count"] != 1.0 || out["has_more"] != false || out["next_cursor"] != nil {
		t.Fatalf("backfill since 00:30: %v, want 1 (invoice.refunded)", out)
	}
	if out := f.ok(202, "POST", path, key, map[string]any{"since": "2026-01-01T00:30:00Z"}); out["count"] != 0.0 {
		t.Fatalf("the same backfill again created %v, want 0", out["count"])
	}
	if out := f.ok(202, "POST", path, key, nil); out["count"] != 1.0 {
		t.Fatalf("backfill of all time: %v, want 1 more (invoice.paid)", out)
	}
	ds := data(t, f.ok(200, "GET", "/v1/deliveries?endpoint_id="+ep, key, nil))
	if len(ds) != 2 || ds[0]["event_id"] != string(e3) || ds[1]["event_id"] != string(e1) || ds[0]["status"] != "pending" {
		t.Fatalf("deliveries after backfills: %v", ds)
	}
	for _, id := range []kapsel.EventID{e1, e3} {
		if sum := f.ok(200, "GET", "/v1/events/"+string(id), key, nil)["deliveries"].(map[string]any); sum["total"] != 2.0 {
			t.Fatalf("event %s after the backfill: deliveries %v, want the old endpoint's and the new one's", id, sum)
		}
	}
	if sum := f.ok(200, "GET", "/v1/events/"+string(e4), key, nil)["deliveries"].(map[string]any); sum["total"] != 1.0 {
		t.Fatalf("an event sent to one endpoint, untyped, after the backfill: %v", sum)
	}
	// Backfilled deliveries are attempted at once, by hand.
	if n := f.attempt(200); n != 2 {
		t.Fatalf("attempted %d, want the 2 backfilled deliveries", n)
	}
	atts := data(t, f.ok(200, "GET", "/v1/deliveries/"+ds[0]["id"].(string)+"/attempts", key, nil))
	if len(atts) != 1 || atts[0]["trigger"] != "manual" || atts[0]["endpoint_id"] != ep {
		t.Fatalf("attempts of a backfilled delivery: %v", atts)
	}

	for _, body := range []any{
		map[string]any{"since": "yesterday"},
		map[string]any{"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
		map[string]any{"cursor": "evt_nope"},
		map[string]any{"status": "failed"},
	} {
		f.problem(400, kapsel.CodeMalformedRequest, "POST", path, key, body)
	}
	f.problem(404, kapsel.CodeNotFound, "POST", "/v1/endpoints/"+string(kapsel.NewEndpointID())+"/backfill", key, nil)
}

// TestBackfillInRounds: a backfill looks at a bounded number of events per
// store call and per operation, and says where to continue.
func TestBackfillInRounds(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.svc.SetBackfillBounds(2, 4) // two events per round, two rounds per call
	tid, key := f.tenant("acme")
	var events []kapsel.EventID
	for i := range 9 {
		events = append(events, f.event(tid, "", string(rune('a'+i))))
		f.clock.Advance(time.Millisecond)
	}
	ep := f.endpoint(key, nil)["id"].(string)
	path := "/v1/endpoints/" + ep + "/backfill"
	out := f.ok(202, "POST", path, key, nil)
	if out["count"] != 4.0 || out["has_more"] != true || out["next_cursor"] != string(events[3]) {
		t.Fatalf("first call: %v, want 4 and a cursor at the fourth event", out)
	}
	out = f.ok(202, "POST", path, key, map[string]any{"cursor": out["next_cursor"]})
	if out["count"] != 4.0 || out["has_more"] != true {
		t.Fatalf("second call: %v", out)
	}
	out = f.ok(202, "POST", path, key, map[string]any{"cursor": out["next_cursor"]})
	if out["count"] != 1.0 || out["has_more"] != false || out["next_cursor"] != nil {
		t.Fatalf("last call: %v", out)
	}
	if ds := data(t, f.ok(200, "GET", "/v1/deliveries?endpoint_id="+ep+"&limit=500", key, nil)); len(ds) != 9 {
		t.Fatalf("deliveries after three calls: %d, want one per event", len(ds))
	}
	// The Go operation says the same.
	res, err := f.svc.BackfillEndpoint(t.Context(), tid, kapsel.EndpointID(ep), service.Backfill{})
	if err != nil || res.Created != 0 || !res.More || res.Next != events[3] {
		t.Fatalf("BackfillEndpoint again = %+v, %v; want nothing created, more after the fourth event", res, err)
	}
}
