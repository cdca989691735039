// Package upgradetest checks that a store's migrations keep what an older
// schema held. A store's upgrade test builds its database at the older
// version (applying only its migrations up to there), writes the rows of a
// [Fixture] with that schema's own SQL, migrates to the latest version the
// way the store always does, and hands the store to [Check], which reads
// every row back through kapsel.Store — as the 0.2 model maps it (see
// [Fixture.WantSource] and its siblings) — and then works the queue.
//
// The fixture holds rows in every state 0.1 could leave them in: tenants;
// endpoints active, paused, disabled for each reason and deleted, with
// several verifier schemes; events pending (due, future, held by an earlier
// claim), delivering (live and expired lease), delivered and failed, with
// and without idempotency keys (live and expired); attempts of several
// events; breakers closed, open and half-open with a probe out. Its rows
// are 0.1's: [Endpoint] and [Event] have the fields kapsel.Endpoint and
// kapsel.Event had then, so a store writes them with its old schema's SQL.
// [Fixture.WithRouting] adds what schema versions of the 0.2 development
// (event types, channels, subscription filters) could hold.
package upgradetest

import (
	"crypto/sha256"
	"net/http"
	"strings"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// Fixture is the data written at the older schema: 0.1's rows, which the
// store must read back, mapped to 0.2's model, after the upgrade.
type Fixture struct {
	// Now is the time of the checks; every time below is relative to it.
	Now       time.Time
	Tenants   []*kapsel.Tenant
	Endpoints []*Endpoint
	// DeletedAt is when an endpoint of Endpoints was deleted; the others are
	// live.
	DeletedAt map[kapsel.EndpointID]time.Time
	// Events have their bodies.
	Events []*Event
	// Held are the pending events an earlier claim moved out of its way
	// (pgstore's claimable_at > next_attempt_at), with the time they are held
	// until; zero means until the endpoint is active again ('infinity').
	// SQLite's older schema has no hold: a store without one ignores this.
	Held map[kapsel.EventID]time.Time
	Keys []Key
	// Attempts are 0.1's: DeliveryID is empty (see WantAttempt).
	Attempts []*kapsel.Attempt
	Breakers []*kapsel.BreakerState

	// The rows the checks name.
	tenantA, tenantB                                   *kapsel.Tenant
	active, paused, gone, deleted, open, closed, other *Endpoint
	ev                                                 map[string]*Event
	newKey                                             string // key of an expired Keys row
	routing                                            bool   // WithRouting was called
}

// Endpoint is a 0.1 endpoint: the fields kapsel.Endpoint had in 0.1,
// IngestVerifier included (0.2 moved it to the endpoint's source), and the
// Subscription that schema versions of the 0.2 development added (empty
// unless [Fixture.WithRouting]).
type Endpoint struct {
	ID             kapsel.EndpointID
	TenantID       kapsel.TenantID
	Name           string
	URL            string
	State          kapsel.EndpointState
	DisabledReason kapsel.DisabledReason
	IngestVerifier kapsel.VerifierConfig
	SigningSecrets []kapsel.SigningSecret
	RetryPolicy    kapsel.RetryPolicy
	Timeout        time.Duration
	Headers        map[string]string
	Subscription   kapsel.Subscription
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Event is a 0.1 event: the fields kapsel.Event had in 0.1, with its
// endpoint and its queue state (0.2 moved both to the event's delivery),
// and the Type and Channels that schema versions of the 0.2 development
// added (empty unless [Fixture.WithRouting]).
type Event struct {
	ID             kapsel.EventID
	TenantID       kapsel.TenantID
	EndpointID     kapsel.EndpointID
	Type           string
	Channels       []string
	Body           []byte
	ContentType    string
	Headers        http.Header
	IdempotencyKey string
	BodyHash       []byte
	Size           int
	Status         kapsel.DeliveryStatus
	Attempts       int
	NextAttemptAt  time.Time
	NextTrigger    kapsel.AttemptTrigger
	LeaseToken     string
	LeaseExpiresAt time.Time
	LastError      string
	CreatedAt      time.Time
	DeliveredAt    time.Time
}

// Key is a row of 0.1's idempotency_keys, scoped by endpoint (0.2 scopes
// keys by tenant and source: see WantKeyScope).
type Key struct {
	EndpointID kapsel.EndpointID
	Key        string
	EventID    kapsel.EventID
	BodyHash   []byte
	ExpiresAt  time.Time
}

// New returns the fixture of 0.1's schema. Ids are fresh, so fixtures never
// collide.
func New() *Fixture {
	now := time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)
	f := &Fixture{
		Now: now, DeletedAt: map[kapsel.EndpointID]time.Time{}, Held: map[kapsel.EventID]time.Time{},
		ev: map[string]*Event{}, newKey: "k-expired",
	}
	at := func(d time.Duration) time.Time { return now.Add(d) }

	tenant := func(name string, limit float64, burst int) *kapsel.Tenant {
		sum := sha256.Sum256([]byte("key of " + name))
		t := &kapsel.Tenant{ID: kapsel.NewTenantID(), Name: name, APIKeyHash: sum[:], RateLimit: limit, RateBurst: burst,
			CreatedAt: at(-30 * 24 * time.Hour), UpdatedAt: at(-30 * 24 * time.Hour)} // 0006 backfills updated_at = created_at
		f.Tenants = append(f.Tenants, t)
		return t
	}
	f.tenantA, f.tenantB = tenant("acme", 50, 100), tenant("globex", 0, 0)

	endpoint := func(tn *kapsel.Tenant, name string, state kapsel.EndpointState, reason kapsel.DisabledReason) *Endpoint {
		e := &Endpoint{
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
	f.paused.IngestVerifier = kapsel.VerifierConfig{Scheme: kapsel.SchemeGitHub, Secrets: []string{"gh-secret"}}
	endpoint(f.tenantA, "manual", kapsel.EndpointDisabled, kapsel.DisabledManual)
	f.gone = endpoint(f.tenantA, "gone", kapsel.EndpointDisabled, kapsel.DisabledGone)
	f.gone.IngestVerifier = kapsel.VerifierConfig{Scheme: kapsel.SchemeStripe, Secrets: []string{"whsec_stripe"}}
	failing := endpoint(f.tenantA, "failing", kapsel.EndpointDisabled, kapsel.DisabledFailing)
	f.deleted = endpoint(f.tenantA, "deleted", kapsel.EndpointActive, kapsel.DisabledNone)
	f.deleted.IngestVerifier = kapsel.VerifierConfig{Scheme: kapsel.SchemeShopify, Secrets: []string{"shpss"}}
	f.DeletedAt[f.deleted.ID] = at(-time.Hour)
	f.open = endpoint(f.tenantA, "open", kapsel.EndpointActive, kapsel.DisabledNone)
	f.open.IngestVerifier = kapsel.VerifierConfig{Scheme: kapsel.SchemeStandardWebhooks,
		Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_b2xkIHNlY3JldCBvZiB0aGUgcHJvdmlkZXI="}}
	halfOpen := endpoint(f.tenantA, "half-open", kapsel.EndpointActive, kapsel.DisabledNone)
	halfOpen.IngestVerifier = kapsel.VerifierConfig{Scheme: kapsel.SchemeSlack, Secrets: []string{"slack-signing"}}
	f.closed = endpoint(f.tenantA, "closed", kapsel.EndpointActive, kapsel.DisabledNone)
	f.other = endpoint(f.tenantB, "other", kapsel.EndpointActive, kapsel.DisabledNone)

	// event adds an event created at created; the caller sets the rest.
	event := func(label string, ep *Endpoint, status kapsel.DeliveryStatus, created time.Duration) *Event {
		body := []byte(`{"event":"` + label + `"}`)
		sum := sha256.Sum256(body)
		e := &Event{
			ID: kapsel.NewEventID(), TenantID: ep.TenantID, EndpointID: ep.ID, Body: body,
			ContentType: "application/json", Headers: http.Header{"X-Request-Id": {"req-" + label}},
			BodyHash: sum[:], Size: len(body), Status: status, NextAttemptAt: at(created),
			NextTrigger: kapsel.TriggerScheduled, CreatedAt: at(created),
		}
		f.Events = append(f.Events, e)
		f.ev[label] = e
		return e
	}
	key := func(e *Event, k string, expires time.Time) {
		e.IdempotencyKey = k
		f.Keys = append(f.Keys, Key{EndpointID: e.EndpointID, Key: k, EventID: e.ID, BodyHash: e.BodyHash, ExpiresAt: expires})
	}
	attempt := func(e *Event, n, status int, started time.Duration) {
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
	failed := event("failed", failing, kapsel.DeliveryFailed, -6*time.Hour)
	failed.Attempts, failed.LastError = 3, "HTTP 500"
	key(failed, f.newKey, at(-time.Hour))
	for n := 1; n <= 3; n++ {
		attempt(failed, n, 500, time.Duration(n-7)*time.Hour)
	}

	delivered := event("delivered", f.active, kapsel.DeliveryDelivered, -3*time.Hour)
	delivered.Attempts, delivered.DeliveredAt, delivered.LastError = 2, at(-2*time.Hour), ""
	key(delivered, "k-delivered", at(21*time.Hour))
	attempt(delivered, 1, 503, -3*time.Hour)
	attempt(delivered, 2, 200, -2*time.Hour)

	// Pending, due, on an active endpoint, with a live key.
	due := event("due", f.active, kapsel.DeliveryPending, -10*time.Minute)
	key(due, "k-due", at(23*time.Hour))

	future := event("future", f.active, kapsel.DeliveryPending, -30*time.Minute)
	future.NextAttemptAt, future.Attempts, future.LastError = at(time.Hour), 1, "HTTP 503"
	attempt(future, 1, 503, -29*time.Minute)

	// Due events of blocked endpoints: some held by an earlier claim, one not
	// seen by a claim yet.
	f.Held[event("paused", f.paused, kapsel.DeliveryPending, -20*time.Minute).ID] = time.Time{}
	event("gone", f.gone, kapsel.DeliveryPending, -20*time.Minute)
	f.Held[event("deleted", f.deleted, kapsel.DeliveryPending, -20*time.Minute).ID] = time.Time{}
	f.Held[event("open", f.open, kapsel.DeliveryPending, -20*time.Minute).ID] = at(time.Hour)

	event("half-open", halfOpen, kapsel.DeliveryPending, -5*time.Minute)
	retried := event("closed", f.closed, kapsel.DeliveryPending, -4*time.Hour)
	retried.NextAttemptAt, retried.NextTrigger, retried.Attempts, retried.LastError = at(-time.Minute), kapsel.TriggerManual, 1, "HTTP 502"
	attempt(retried, 1, 502, -4*time.Hour)

	lease := func(label string, ep *Endpoint, expires time.Duration, token string) *Event {
		e := event(label, ep, kapsel.DeliveryDelivering, -15*time.Minute)
		e.LeaseToken, e.LeaseExpiresAt = token, at(expires)
		return e
	}
	lease("live", f.active, 5*time.Minute, "0b3c8f5e-2d7a-4c1e-9f00-1a2b3c4d5e6f")
	expired := lease("expired", f.active, -time.Minute, "1c4d9a6f-3e8b-4d2f-8a11-2b3c4d5e6f70")
	expired.Attempts, expired.LastError = 1, "timeout"
	attempt(expired, 1, 0, -14*time.Minute)
	lease("expired-paused", f.paused, -2*time.Minute, "2d5eab70-4f9c-4e30-9b22-3c4d5e6f7081")
	// In flight when its endpoint was deleted (0.1 left it delivering).
	lease("leased-deleted", f.deleted, 5*time.Minute, "3e6fbc81-5a0d-4f41-8c33-4d5e6f708192")

	// Another tenant's event, under a key another endpoint uses too.
	key(event("other", f.other, kapsel.DeliveryPending, -time.Minute), "k-due", at(23*time.Hour))

	f.Breakers = []*kapsel.BreakerState{
		{EndpointID: f.open.ID, Status: kapsel.BreakerOpen, Trips: 2, OpenUntil: at(time.Hour),
			FailingSince: at(-3 * time.Hour), LastSuccessAt: at(-4 * time.Hour), LastFailureAt: at(-time.Minute),
			Version: 5, UpdatedAt: at(-time.Minute)},
		{EndpointID: halfOpen.ID, Status: kapsel.BreakerHalfOpen, Trips: 1, OpenUntil: at(-time.Minute),
			ProbeUntil: at(30 * time.Second), FailingSince: at(-time.Hour), LastFailureAt: at(-11 * time.Minute),
			Version: 3, UpdatedAt: at(-time.Minute)},
		{EndpointID: f.closed.ID, Status: kapsel.BreakerClosed, LastSuccessAt: at(-5 * time.Hour),
			LastFailureAt: at(-4 * time.Hour), Version: 7, UpdatedAt: at(-5 * time.Hour)},
	}
	return f
}

// WithRouting gives some rows the event types, channels and subscription
// filters that schema versions of the 0.2 development store (pgstore 4,
// sqlitestore 4), for an upgrade test that starts there: the orders
// endpoint takes "invoice.*" and names a source of its own, the closed
// endpoint takes the "billing" channel (the upgrade replaces both filters
// with the legacy source: see WantEndpoint), and their events have
// matching types and channels. It returns f.
func (f *Fixture) WithRouting() *Fixture {
	f.routing = true
	f.active.Subscription = kapsel.Subscription{EventTypes: []string{"invoice.*"}, SourceIDs: []kapsel.SourceID{kapsel.NewSourceID()}}
	f.closed.Subscription = kapsel.Subscription{Channels: []string{"billing"}}
	f.ev["due"].Type = "invoice.paid"
	f.ev["delivered"].Type = "invoice.created"
	f.ev["closed"].Type, f.ev["closed"].Channels = "refund", []string{"billing", "audit"}
	f.ev["other"].Type = "push"
	return f
}

// LegacyDeliveryID is the id the upgrade gives the delivery made from a 0.1
// event: "dlv_" and the event's ULID.
func LegacyDeliveryID(id kapsel.EventID) kapsel.DeliveryID {
	return kapsel.DeliveryID(kapsel.DeliveryIDPrefix + strings.TrimPrefix(string(id), kapsel.EventIDPrefix))
}
