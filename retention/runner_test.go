package retention_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/kapseltest"
	"github.com/kapsel-dev/kapsel/retention"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

var base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// env is a memstore with two tenants, an endpoint each, and a fake clock.
type env struct {
	t     *testing.T
	s     *memstore.Store
	clock *kapseltest.Clock
	a, b  *kapsel.Endpoint
}

func setup(t *testing.T) *env {
	t.Helper()
	t.Parallel()
	e := &env{t: t, s: memstore.New(), clock: kapseltest.NewClock(base)}
	e.a, e.b = e.endpoint(), e.endpoint()
	return e
}

func (e *env) endpoint() *kapsel.Endpoint {
	e.t.Helper()
	key := sha256.Sum256([]byte(e.t.Name() + time.Now().String()))
	ten, err := e.s.TenantInsert(e.t.Context(), &kapsel.TenantInsertParams{Name: "t", APIKeyHash: key[:], Now: base})
	if err != nil {
		e.t.Fatal(err)
	}
	ep, err := e.s.EndpointInsert(e.t.Context(), &kapsel.EndpointInsertParams{Endpoint: &kapsel.Endpoint{
		TenantID: ten.ID, Name: "e", URL: "https://example.com/", RetryPolicy: kapsel.DefaultRetryPolicy(),
		SigningSecrets: []kapsel.SigningSecret{{Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}},
		Timeout:        kapsel.DefaultAttemptTimeout,
	}, Now: base})
	if err != nil {
		e.t.Fatal(err)
	}
	return ep
}

// send stores one event for ep now and returns it.
func (e *env) send(ep *kapsel.Endpoint) *kapsel.Event {
	e.t.Helper()
	body := []byte(`{"hello":"world"}`)
	h := sha256.Sum256(body)
	res, err := e.s.EventInsertMany(e.t.Context(), &kapsel.EventInsertManyParams{Now: e.clock.Now(), Events: []*kapsel.EventInsertParams{{
		TenantID: ep.TenantID, EndpointIDs: []kapsel.EndpointID{ep.ID}, Body: body, BodyHash: h[:],
	}}})
	if err != nil || res[0].Err != nil {
		e.t.Fatal(err, res[0].Err)
	}
	return res[0].Event
}

// deliverAll delivers every due delivery now.
func (e *env) deliverAll() {
	e.t.Helper()
	now := e.clock.Now()
	ds, err := e.s.DeliveryClaim(e.t.Context(), &kapsel.DeliveryClaimParams{Limit: 100, LeaseDuration: time.Minute, Now: now})
	if err != nil {
		e.t.Fatal(err)
	}
	var cs []kapsel.DeliveryCompletion
	for _, d := range ds {
		cs = append(cs, kapsel.DeliveryCompletion{DeliveryID: d.ID, LeaseToken: d.LeaseToken, Status: kapsel.DeliveryDelivered,
			Attempt: kapsel.Attempt{Number: 1, Trigger: kapsel.TriggerScheduled, StartedAt: now, StatusCode: 200}})
	}
	if _, err := e.s.DeliveryComplete(e.t.Context(), &kapsel.DeliveryCompleteParams{Completions: cs, Now: now}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) erasure(id kapsel.EventID) kapsel.BodyErasure {
	e.t.Helper()
	ev, err := e.s.EventGet(e.t.Context(), &kapsel.EventGetParams{ID: id})
	if errors.Is(err, kapsel.ErrNotFound) {
		return "removed"
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return ev.BodyErasure
}

func (e *env) runner(cfg retention.Config) *retention.Runner {
	e.t.Helper()
	cfg.Clock, cfg.BatchPause = e.clock, -1
	r, err := retention.New(e.s, &cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *env) pass(r *retention.Runner) *retention.Pass {
	e.t.Helper()
	p, err := r.RunPass(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func want[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func TestTenantPolicyOverridesGlobal(t *testing.T) {
	e := setup(t)
	r := e.runner(retention.Config{
		Policy:  kapsel.RetentionPolicy{Body: 7 * day, Metadata: 30 * day},
		Tenants: map[kapsel.TenantID]kapsel.RetentionPolicy{e.a.TenantID: {Body: time.Hour, Metadata: 2 * day}},
	})
	ea, eb := e.send(e.a), e.send(e.b)
	e.deliverAll()

	e.clock.Advance(2 * time.Hour)
	p := e.pass(r)
	want(t, "bodies erased after 2 h", p.Removed[kapsel.RetentionEventBodies], 1)
	want(t, "a's body (1 h)", e.erasure(ea.ID), kapsel.BodyExpired)
	want(t, "b's body (7 d)", e.erasure(eb.ID), kapsel.BodyKept)

	e.clock.Advance(3 * day)
	p = e.pass(r)
	want(t, "a's event (2 d)", e.erasure(ea.ID), "removed")
	want(t, "b's body after 3 d", e.erasure(eb.ID), kapsel.BodyKept)
	want(t, "events removed", p.Removed[kapsel.RetentionEvents], 1)
	want(t, "deliveries removed", p.Removed[kapsel.RetentionDeliveries], 1)
	want(t, "attempts removed", p.Removed[kapsel.RetentionAttempts], 1)

	e.clock.Advance(5 * day)
	e.pass(r)
	want(t, "b's body after 8 d", e.erasure(eb.ID), kapsel.BodyExpired)
	e.clock.Advance(30 * day)
	e.pass(r)
	want(t, "b's event after 38 d", e.erasure(eb.ID), "removed")
}

func TestBlockedEventIsSweptOnceEnded(t *testing.T) {
	e := setup(t)
	r := e.runner(retention.Config{Policy: kapsel.RetentionPolicy{Body: time.Hour, Metadata: 2 * day}, BatchSize: 2})
	pending := e.send(e.a) // not delivered yet
	e.clock.Advance(time.Minute)
	var done []*kapsel.Event
	for range 5 {
		ev := e.send(e.b)
		done = append(done, ev)
		e.clock.Advance(time.Second)
	}
	ds, err := e.s.DeliveryClaim(t.Context(), &kapsel.DeliveryClaimParams{Limit: 100, LeaseDuration: time.Minute, Now: e.clock.Now(), ExcludeEndpoints: []kapsel.EndpointID{e.a.ID}})
	if err != nil || len(ds) != 5 {
		t.Fatal(len(ds), err)
	}
	var cs []kapsel.DeliveryCompletion
	for _, d := range ds {
		cs = append(cs, kapsel.DeliveryCompletion{DeliveryID: d.ID, LeaseToken: d.LeaseToken, Status: kapsel.DeliveryDelivered,
			Attempt: kapsel.Attempt{Number: 1, StartedAt: e.clock.Now(), StatusCode: 200}})
	}
	if _, err := e.s.DeliveryComplete(t.Context(), &kapsel.DeliveryCompleteParams{Completions: cs, Now: e.clock.Now()}); err != nil {
		t.Fatal(err)
	}

	e.clock.Advance(2 * time.Hour)
	p := e.pass(r)
	want(t, "bodies erased (the pending one kept)", p.Removed[kapsel.RetentionEventBodies], 5)
	want(t, "the pending event's body", e.erasure(pending.ID), kapsel.BodyKept)
	if p.Batches < 3 {
		t.Fatalf("%d batches for 6 events in batches of 2", p.Batches)
	}
	// Ended now: the next pass comes back to it although its cursor moved on.
	e.deliverAll()
	e.clock.Advance(time.Minute)
	p = e.pass(r)
	want(t, "bodies erased by the second pass", p.Removed[kapsel.RetentionEventBodies], 1)
	want(t, "the formerly pending event's body", e.erasure(pending.ID), kapsel.BodyExpired)
	for _, ev := range done {
		want(t, "an ended event's body", e.erasure(ev.ID), kapsel.BodyExpired)
	}
}

func TestHooksAndStartStop(t *testing.T) {
	e := setup(t)
	var mu sync.Mutex
	rows := map[kapsel.RetentionTable]int{}
	oldest := make(chan kapsel.RetentionOldestInfo, 16)
	ev := e.send(e.a)
	e.deliverAll()
	e.clock.Advance(40 * day)
	r := e.runner(retention.Config{
		Policy: kapsel.RetentionPolicy{Body: day, Metadata: 30 * day},
		Hooks: kapsel.Hooks{
			OnRetention: func(i kapsel.RetentionInfo) {
				mu.Lock()
				defer mu.Unlock()
				rows[i.Table] += i.Rows
			},
			OnRetentionOldest: func(i kapsel.RetentionOldestInfo) { oldest <- i },
		},
	})
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	select { // the first pass runs at once
	case got := <-oldest:
		want(t, "oldest event after the pass", got.Oldest, time.Time{})
	case <-time.After(10 * time.Second):
		t.Fatal("no pass within 10 s of Start")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	want(t, "events reported", rows[kapsel.RetentionEvents], 1)
	want(t, "deliveries reported", rows[kapsel.RetentionDeliveries], 1)
	want(t, "attempts reported", rows[kapsel.RetentionAttempts], 1)
	want(t, "the event", e.erasure(ev.ID), "removed")
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	s := memstore.New()
	for _, c := range []struct {
		name string
		cfg  retention.Config
	}{
		{"Metadata shorter than Body", retention.Config{Policy: kapsel.RetentionPolicy{Body: 10 * day, Metadata: 5 * day}}},
		{"Metadata shorter than the idempotency window", retention.Config{Policy: kapsel.RetentionPolicy{Body: time.Hour, Metadata: 2 * time.Hour}}},
		{"a tenant's Metadata shorter than its Body", retention.Config{Tenants: map[kapsel.TenantID]kapsel.RetentionPolicy{
			kapsel.NewTenantID(): {Body: 100 * day}}}},
		{"a malformed tenant id", retention.Config{Tenants: map[kapsel.TenantID]kapsel.RetentionPolicy{"acme": {}}}},
		{"negative Interval", retention.Config{Interval: -time.Second}},
		{"Share over 1", retention.Config{Share: 1.5}},
	} {
		if _, err := retention.New(s, &c.cfg); !errors.Is(err, kapsel.ErrInvalid) {
			t.Errorf("%s: New = %v, want ErrInvalid", c.name, err)
		}
	}
	if _, err := retention.New(s, &retention.Config{Policy: kapsel.RetentionPolicy{Body: kapsel.RetentionForever, Metadata: kapsel.RetentionForever}}); err != nil {
		t.Errorf("keeping everything for ever: %v", err)
	}
}
