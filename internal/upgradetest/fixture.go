// Package upgradetest checks that a store's migrations keep what an older
// schema held. A store's upgrade test builds its database at the older
// version (applying only its migrations up to there), writes the rows of a
// [Fixture] with that schema's own SQL, migrates to the latest version the
// way the store always does, and hands the store to [Check], which reads
// every row back through kapsel.Store and then works the queue.
//
// The fixture holds rows in every state 0.1 could leave them in: tenants;
// endpoints active, paused, disabled for each reason and deleted; events
// pending (due, future, held by an earlier claim), delivering (live and
// expired lease), delivered and failed, with and without idempotency keys
// (live and expired); attempts of several events; breakers closed, open and
// half-open with a probe out.
package upgradetest

import (
	"crypto/sha256"
	"net/http"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// Fixture is the data written at the older schema, as kapsel values: what
// the store must read back after the upgrade, field for field.
type Fixture struct {
	// Now is the time of the checks; every time below is relative to it.
	Now       time.Time
	Tenants   []*kapsel.Tenant
	Endpoints []*kapsel.Endpoint
	// DeletedAt is when an endpoint of Endpoints was deleted; the others are
	// live.
	DeletedAt map[kapsel.EndpointID]time.Time
	// Events have their bodies.
	Events []*kapsel.Event
	// Held are the pending events an earlier claim moved out of its way
	// (pgstore's claimable_at > next_attempt_at), with the time they are held
	// until; zero means until the endpoint is active again ('infinity').
	// SQLite's older schema has no hold: a store without one ignores this.
	Held     map[kapsel.EventID]time.Time
	Keys     []Key
	Attempts []*kapsel.Attempt
	Breakers []*kapsel.BreakerState

	// The rows the checks name.
	tenantA, tenantB                    *kapsel.Tenant
	active, paused, gone, deleted, open *kapsel.Endpoint
	ev                                  map[string]*kapsel.Event
	newKey                              string // key of an expired Keys row
}

// Key is a row of idempotency_keys.
type Key struct {
	EndpointID kapsel.EndpointID
	Key        string
	EventID    kapsel.EventID
	BodyHash   []byte
	ExpiresAt  time.Time
}

// New returns the fixture. Ids are fresh, so fixtures never collide.
func New() *Fixture {
	now := time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)
	f := &Fixture{
		Now: now, DeletedAt: map[kapsel.EndpointID]time.Time{}, Held: map[kapsel.EventID]time.Time{},
		ev: map[string]*kapsel.Event{}, newKey: "k-expired",
	}
	at := func(d time.Duration) time.Time { return now.Add(d) }

	tenant := func(name string, limit float64, burst int) *kapsel.Tenant {
		sum := sha256.Sum256([]byte("key of " + name))
		t := &kapsel.Tenant{ID: kapsel.NewTenantID(), Name: name, APIKeyHash: sum[:], RateLimit: limit, RateBurst: burst,
			CreatedAt: at(-30 * 24 * time.Hour)}
		f.Tenants = append(f.Tenants, t)
		return t
	}
	f.tenantA, f.tenantB = tenant("acme", 50, 100), tenant("globex", 0, 0)

	endpoint := func(tn *kapsel.Tenant, name string, state kapsel.EndpointState, reason kapsel.DisabledReason) *kapsel.Endpoint {
		e := &kapsel.Endpoint{
			ID: kapsel.NewEndpointID(), TenantID: tn.ID, Name: name, URL: "https://hooks.example.com/" + name,
			State: state, DisabledReason: reason,
			IngestVerifier: kapsel.VerifierConfig{Scheme: kapsel.SchemeNone},
			SigningSecrets: []kapsel.SigningSecret{{Secret: "whsec_" + name}},
			RetryPolicy:    kapsel.DefaultRetryPolicy(), Timeout: kapsel.DefaultAttemptTimeout,
			CreatedAt: at(-48 * time.Hour), UpdatedAt: at(-24 * time.Hour),
		}
		f.Endpoints = append(f.Endpoints, e)
		return e
	}
	f.active = endpoint(f.tenantA, "orders", kapsel.EndpointActive, kapsel.DisabledNone)
	f.active.IngestVerifier = kapsel.VerifierConfig{Scheme: "hmac-sha256", Secrets: []string{"s3cret", "old-s3cret"}, Header: "X-Sig"}
	f.active.SigningSecrets = []kapsel.SigningSecret{{Secret: "whsec_current"}, {Secret: "whsec_previous", ExpiresAt: at(time.Hour)}}
	f.active.RetryPolicy = kapsel.RetryPolicy{MaxAttempts: 10, InitialInterval: 5 * time.Second, Multiplier: 3,
		Jitter: 0.1, MaxInterval: 10 * time.Minute, MaxAge: 48 * time.Hour, Retry4xx: true}
	f.active.Timeout = 15 * time.Second
	f.active.Headers = map[string]string{"X-Team": "payments"}
	f.paused = endpoint(f.tenantA, "paused", kapsel.EndpointPaused, kapsel.DisabledNone)
	endpoint(f.tenantA, "manual", kapsel.EndpointDisabled, kapsel.DisabledManual)
	f.gone = endpoint(f.tenantA, "gone", kapsel.EndpointDisabled, kapsel.DisabledGone)
	failing := endpoint(f.tenantA, "failing", kapsel.EndpointDisabled, kapsel.DisabledFailing)
	f.deleted = endpoint(f.tenantA, "deleted", kapsel.EndpointActive, kapsel.DisabledNone)
	f.DeletedAt[f.deleted.ID] = at(-time.Hour)
	f.open = endpoint(f.tenantA, "open", kapsel.EndpointActive, kapsel.DisabledNone)
	halfOpen := endpoint(f.tenantA, "half-open", kapsel.EndpointActive, kapsel.DisabledNone)
	closed := endpoint(f.tenantA, "closed", kapsel.EndpointActive, kapsel.DisabledNone)
	other := endpoint(f.tenantB, "other", kapsel.EndpointActive, kapsel.DisabledNone)

	// event adds an event created at created; the caller sets the rest.
	event := func(label string, ep *kapsel.Endpoint, status kapsel.EventStatus, created time.Duration) *kapsel.Event {
		body := []byte(`{"event":"` + label + `"}`)
		sum := sha256.Sum256(body)
		e := &kapsel.Event{
			ID: kapsel.NewEventID(), TenantID: ep.TenantID, EndpointID: ep.ID, Body: body,
			ContentType: "application/json", Headers: http.Header{"X-Request-Id": {"req-" + label}},
			BodyHash: sum[:], Size: len(body), Status: status, NextAttemptAt: at(created),
			NextTrigger: kapsel.TriggerScheduled, CreatedAt: at(created),
		}
		f.Events = append(f.Events, e)
		f.ev[label] = e
		return e
	}
	key := func(e *kapsel.Event, k string, expires time.Time) {
		e.IdempotencyKey = k
		f.Keys = append(f.Keys, Key{EndpointID: e.EndpointID, Key: k, EventID: e.ID, BodyHash: e.BodyHash, ExpiresAt: expires})
	}
	attempt := func(e *kapsel.Event, n, status int, started time.Duration) {
		a := &kapsel.Attempt{
			ID: kapsel.NewAttemptID(), EventID: e.ID, EndpointID: e.EndpointID, TenantID: e.TenantID, Number: n,
			Trigger: kapsel.TriggerScheduled, StartedAt: at(started), Duration: time.Duration(n) * 250 * time.Millisecond,
			StatusCode: status, ResponseBody: []byte("answer " + string(rune('0'+n))),
		}
		switch {
		case status == 0:
			a.ErrorCode, a.Error = kapsel.CodeAttemptTimeout, "timeout"
		case status >= 300:
			a.ErrorCode, a.Error = kapsel.CodeAttemptStatus, http.StatusText(status)
		}
		f.Attempts = append(f.Attempts, a)
	}

	// Failed long ago, with a key whose window has passed.
	failed := event("failed", failing, kapsel.EventFailed, -6*time.Hour)
	failed.Attempts, failed.LastError = 3, "HTTP 500"
	key(failed, f.newKey, at(-time.Hour))
	for n := 1; n <= 3; n++ {
		attempt(failed, n, 500, time.Duration(n-7)*time.Hour)
	}

	delivered := event("delivered", f.active, kapsel.EventDelivered, -3*time.Hour)
	delivered.Attempts, delivered.DeliveredAt, delivered.LastError = 2, at(-2*time.Hour), ""
	key(delivered, "k-delivered", at(21*time.Hour))
	attempt(delivered, 1, 503, -3*time.Hour)
	attempt(delivered, 2, 200, -2*time.Hour)

	// Pending, due, on an active endpoint, with a live key.
	due := event("due", f.active, kapsel.EventPending, -10*time.Minute)
	key(due, "k-due", at(23*time.Hour))

	future := event("future", f.active, kapsel.EventPending, -30*time.Minute)
	future.NextAttemptAt, future.Attempts, future.LastError = at(time.Hour), 1, "HTTP 503"
	attempt(future, 1, 503, -29*time.Minute)

	// Due events of blocked endpoints: some held by an earlier claim, one not
	// seen by a claim yet.
	f.Held[event("paused", f.paused, kapsel.EventPending, -20*time.Minute).ID] = time.Time{}
	event("gone", f.gone, kapsel.EventPending, -20*time.Minute)
	f.Held[event("deleted", f.deleted, kapsel.EventPending, -20*time.Minute).ID] = time.Time{}
	f.Held[event("open", f.open, kapsel.EventPending, -20*time.Minute).ID] = at(time.Hour)

	event("half-open", halfOpen, kapsel.EventPending, -5*time.Minute)
	retried := event("closed", closed, kapsel.EventPending, -4*time.Hour)
	retried.NextAttemptAt, retried.NextTrigger, retried.Attempts, retried.LastError = at(-time.Minute), kapsel.TriggerManual, 1, "HTTP 502"
	attempt(retried, 1, 502, -4*time.Hour)

	lease := func(label string, ep *kapsel.Endpoint, expires time.Duration, token string) *kapsel.Event {
		e := event(label, ep, kapsel.EventDelivering, -15*time.Minute)
		e.LeaseToken, e.LeaseExpiresAt = token, at(expires)
		return e
	}
	lease("live", f.active, 5*time.Minute, "0b3c8f5e-2d7a-4c1e-9f00-1a2b3c4d5e6f")
	expired := lease("expired", f.active, -time.Minute, "1c4d9a6f-3e8b-4d2f-8a11-2b3c4d5e6f70")
	expired.Attempts, expired.LastError = 1, "timeout"
	attempt(expired, 1, 0, -14*time.Minute)
	lease("expired-paused", f.paused, -2*time.Minute, "2d5eab70-4f9c-4e30-9b22-3c4d5e6f7081")

	// Another tenant's event, under a key another endpoint uses too.
	key(event("other", other, kapsel.EventPending, -time.Minute), "k-due", at(23*time.Hour))

	f.Breakers = []*kapsel.BreakerState{
		{EndpointID: f.open.ID, Status: kapsel.BreakerOpen, Trips: 2, OpenUntil: at(time.Hour),
			FailingSince: at(-3 * time.Hour), LastSuccessAt: at(-4 * time.Hour), LastFailureAt: at(-time.Minute),
			Version: 5, UpdatedAt: at(-time.Minute)},
		{EndpointID: halfOpen.ID, Status: kapsel.BreakerHalfOpen, Trips: 1, OpenUntil: at(-time.Minute),
			ProbeUntil: at(30 * time.Second), FailingSince: at(-time.Hour), LastFailureAt: at(-11 * time.Minute),
			Version: 3, UpdatedAt: at(-time.Minute)},
		{EndpointID: closed.ID, Status: kapsel.BreakerClosed, LastSuccessAt: at(-5 * time.Hour),
			LastFailureAt: at(-4 * time.Hour), Version: 7, UpdatedAt: at(-5 * time.Hour)},
	}
	return f
}
