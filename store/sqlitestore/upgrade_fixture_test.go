package sqlitestore

import (
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"net/http"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// legacyFixture is a 0.1 database's content, as 0.1 had it: endpoints that
// were also inbound doors (a verifier each), events that were also the
// queue. upgrade_test.go writes it with the SQL of the old schema and
// checks what the 0.2 store makes of it.
type legacyFixture struct {
	now       time.Time
	tenants   []*kapsel.Tenant
	endpoints []*legacyEndpoint
	events    []*legacyEvent
	keys      []legacyKey
	attempts  []*kapsel.Attempt
	breakers  []*kapsel.BreakerState

	// held are the pending events an earlier claim held (schema 2 to 4),
	// until when; zero for forever (an inactive endpoint). Written only by
	// the upgrade from schema 4.
	held map[kapsel.EventID]time.Time

	ep map[string]*legacyEndpoint // by name
	ev map[string]*legacyEvent    // by label
}

// legacyEndpoint is a 0.1 endpoint: kapsel.Endpoint and the verifier it
// carried.
type legacyEndpoint struct {
	*kapsel.Endpoint
	verifier  kapsel.VerifierConfig
	deletedAt time.Time
}

// legacyEvent is a 0.1 event: the immutable part and the queue state that
// migration 0005 moves to its delivery.
type legacyEvent struct {
	*kapsel.Event
	endpoint *legacyEndpoint
	delivery *kapsel.Delivery // ID, EventID, EndpointID and TenantID as 0.2 must read them
}

// legacyKey is a row of 0.1's idempotency_keys, scoped by endpoint.
type legacyKey struct {
	endpoint  kapsel.EndpointID
	key       string
	event     kapsel.EventID
	bodyHash  []byte
	expiresAt time.Time
}

// newLegacyFixture returns rows in every state 0.1 could leave them in:
// endpoints active, paused, disabled for each reason, with a breaker open
// and deleted; events pending (due, in the future), delivering (live and
// expired lease), delivered and failed, with attempts and idempotency keys
// (live and expired); a second tenant using the same key. Ids are fresh.
func newLegacyFixture() *legacyFixture {
	now := time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)
	at := func(d time.Duration) time.Time { return now.Add(d) }
	f := &legacyFixture{now: now, held: map[kapsel.EventID]time.Time{},
		ep: map[string]*legacyEndpoint{}, ev: map[string]*legacyEvent{}}

	tenant := func(name string, limit float64, burst int) *kapsel.Tenant {
		sum := sha256.Sum256([]byte("key of " + name))
		t := &kapsel.Tenant{ID: kapsel.NewTenantID(), Name: name, APIKeyHash: sum[:], RateLimit: limit, RateBurst: burst,
			CreatedAt: at(-30 * 24 * time.Hour)}
		f.tenants = append(f.tenants, t)
		return t
	}
	acme, globex := tenant("acme", 50, 100), tenant("globex", 0, 0)

	endpoint := func(tn *kapsel.Tenant, name string, state kapsel.EndpointState, reason kapsel.DisabledReason) *legacyEndpoint {
		e := &legacyEndpoint{Endpoint: &kapsel.Endpoint{
			ID: kapsel.NewEndpointID(), TenantID: tn.ID, Name: name, URL: "https://hooks.example.com/" + name,
			State: state, DisabledReason: reason,
			SigningSecrets: []kapsel.SigningSecret{{Secret: "whsec_" + name}},
			RetryPolicy:    kapsel.DefaultRetryPolicy(), Timeout: kapsel.DefaultAttemptTimeout,
			CreatedAt: at(-48 * time.Hour), UpdatedAt: at(-24 * time.Hour),
		}, verifier: kapsel.VerifierConfig{Scheme: kapsel.SchemeNone}}
		f.endpoints = append(f.endpoints, e)
		f.ep[name] = e
		return e
	}
	active := endpoint(acme, "orders", kapsel.EndpointActive, kapsel.DisabledNone)
	active.verifier = kapsel.VerifierConfig{Scheme: kapsel.SchemeHMACSHA256, Secrets: []string{"s3cret", "old-s3cret"}, Header: "X-Sig"}
	active.SigningSecrets = []kapsel.SigningSecret{{Secret: "whsec_current"}, {Secret: "whsec_previous", ExpiresAt: at(time.Hour)}}
	active.RetryPolicy = kapsel.RetryPolicy{MaxAttempts: 10, InitialInterval: 5 * time.Second, Multiplier: 3,
		Jitter: 0.1, MaxInterval: 10 * time.Minute, MaxAge: 48 * time.Hour, Retry4xx: true}
	active.Timeout = 15 * time.Second
	active.Headers = map[string]string{"X-Team": "payments"}
	paused := endpoint(acme, "paused", kapsel.EndpointPaused, kapsel.DisabledNone)
	paused.verifier = kapsel.VerifierConfig{Scheme: kapsel.SchemeGitHub, Secrets: []string{"gh-secret"}}
	endpoint(acme, "manual", kapsel.EndpointDisabled, kapsel.DisabledManual)
	gone := endpoint(acme, "gone", kapsel.EndpointDisabled, kapsel.DisabledGone)
	failing := endpoint(acme, "failing", kapsel.EndpointDisabled, kapsel.DisabledFailing)
	deleted := endpoint(acme, "deleted", kapsel.EndpointActive, kapsel.DisabledNone)
	deleted.verifier = kapsel.VerifierConfig{Scheme: kapsel.SchemeStripe, Secrets: []string{"whsec_stripe"}}
	deleted.deletedAt = at(-time.Hour)
	open := endpoint(acme, "open", kapsel.EndpointActive, kapsel.DisabledNone)
	other := endpoint(globex, "other", kapsel.EndpointActive, kapsel.DisabledNone)
	other.verifier = kapsel.VerifierConfig{} // 0.1 kept an empty scheme as it was given

	event := func(label string, ep *legacyEndpoint, status kapsel.DeliveryStatus, created time.Duration) *legacyEvent {
		body := []byte(`{"event":"` + label + `"}`)
		sum := sha256.Sum256(body)
		e := &legacyEvent{Event: &kapsel.Event{
			ID: kapsel.NewEventID(), TenantID: ep.TenantID, SourceID: kapsel.LegacySourceID(ep.ID), Body: body,
			ContentType: "application/json", Headers: http.Header{"X-Request-Id": {"req-" + label}},
			BodyHash: sum[:], Size: len(body), CreatedAt: at(created),
		}, endpoint: ep}
		e.delivery = &kapsel.Delivery{
			ID:       kapsel.DeliveryID(kapsel.DeliveryIDPrefix + string(e.ID[len(kapsel.EventIDPrefix):])),
			TenantID: ep.TenantID, EventID: e.ID, EndpointID: ep.ID, Status: status,
			NextAttemptAt: at(created), NextTrigger: kapsel.TriggerScheduled, CreatedAt: at(created),
		}
		f.events = append(f.events, e)
		f.ev[label] = e
		return e
	}
	key := func(e *legacyEvent, k string, expires time.Time) {
		e.IdempotencyKey = k
		f.keys = append(f.keys, legacyKey{endpoint: e.endpoint.ID, key: k, event: e.ID, bodyHash: e.BodyHash, expiresAt: expires})
	}
	attempt := func(e *legacyEvent, n, status int, started time.Duration) {
		a := &kapsel.Attempt{
			ID: kapsel.NewAttemptID(), DeliveryID: e.delivery.ID, EventID: e.ID, EndpointID: e.endpoint.ID,
			TenantID: e.TenantID, Number: n, Trigger: kapsel.TriggerScheduled, StartedAt: at(started),
			Duration: time.Duration(n) * 250 * time.Millisecond, StatusCode: status,
			ResponseBody: []byte("answer " + string(rune('0'+n))),
		}
		switch {
		case status == 0:
			a.ErrorCode, a.Error = kapsel.CodeAttemptTimeout, "timeout"
		case status >= 300:
			a.ErrorCode, a.Error = kapsel.CodeAttemptStatus, http.StatusText(status)
		}
		f.attempts = append(f.attempts, a)
	}

	// Failed long ago, with a key whose window has passed.
	failed := event("failed", failing, kapsel.DeliveryFailed, -6*time.Hour)
	failed.delivery.Attempts, failed.delivery.LastError = 3, "HTTP 500"
	key(failed, "k-expired", at(-time.Hour))
	for n := 1; n <= 3; n++ {
		attempt(failed, n, 500, time.Duration(n-7)*time.Hour)
	}

	delivered := event("delivered", active, kapsel.DeliveryDelivered, -3*time.Hour)
	delivered.delivery.Attempts, delivered.delivery.DeliveredAt = 2, at(-2*time.Hour)
	key(delivered, "k-delivered", at(21*time.Hour))
	attempt(delivered, 1, 503, -3*time.Hour)
	attempt(delivered, 2, 200, -2*time.Hour)

	// Pending and due on the active endpoint, with a live key.
	due := event("due", active, kapsel.DeliveryPending, -10*time.Minute)
	key(due, "k-due", at(23*time.Hour))

	future := event("future", active, kapsel.DeliveryPending, -30*time.Minute)
	future.delivery.NextAttemptAt, future.delivery.Attempts, future.delivery.LastError = at(time.Hour), 1, "HTTP 503"
	attempt(future, 1, 503, -29*time.Minute)

	// A manual retry of a failed event, due.
	retried := event("retried", active, kapsel.DeliveryPending, -4*time.Hour)
	retried.delivery.NextAttemptAt, retried.delivery.NextTrigger = at(-time.Minute), kapsel.TriggerManual
	retried.delivery.Attempts, retried.delivery.LastError = 1, "HTTP 502"
	attempt(retried, 1, 502, -4*time.Hour)

	// Due, on blocked endpoints.
	f.held[event("paused", paused, kapsel.DeliveryPending, -20*time.Minute).ID] = time.Time{}
	event("gone", gone, kapsel.DeliveryPending, -20*time.Minute)
	f.held[event("deleted", deleted, kapsel.DeliveryPending, -20*time.Minute).ID] = time.Time{}
	f.held[event("open", open, kapsel.DeliveryPending, -20*time.Minute).ID] = at(time.Hour)

	lease := func(label string, ep *legacyEndpoint, expires time.Duration, token string) *legacyEvent {
		e := event(label, ep, kapsel.DeliveryDelivering, -15*time.Minute)
		e.delivery.LeaseToken, e.delivery.LeaseExpiresAt = token, at(expires)
		return e
	}
	lease("live", active, 5*time.Minute, "0b3c8f5e2d7a4c1e9f001a2b3c4d5e6f")
	expired := lease("expired", active, -time.Minute, "1c4d9a6f3e8b4d2f8a112b3c4d5e6f70")
	expired.delivery.Attempts, expired.delivery.LastError = 1, "timeout"
	attempt(expired, 1, 0, -14*time.Minute)
	lease("expired-paused", paused, -2*time.Minute, "2d5eab704f9c4e309b223c4d5e6f7081")
	lease("expired-deleted", deleted, -2*time.Minute, "3e6fbc8150ad4f41ac334d5e6f708192")

	// Another tenant's event, under a key an endpoint of acme uses too.
	key(event("other", other, kapsel.DeliveryPending, -time.Minute), "k-due", at(23*time.Hour))

	f.breakers = []*kapsel.BreakerState{
		{EndpointID: open.ID, Status: kapsel.BreakerOpen, Trips: 2, OpenUntil: at(time.Hour),
			FailingSince: at(-3 * time.Hour), LastSuccessAt: at(-4 * time.Hour), LastFailureAt: at(-time.Minute),
			Version: 5, UpdatedAt: at(-time.Minute)},
	}
	return f
}

// writeVersion1 writes f's rows in the SQL of schema version 1 (0.1), in
// one transaction. f.held does not apply: version 1 holds nothing.
func (f *legacyFixture) writeVersion1(db *sql.DB) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	exec := func(query string, args ...any) {
		if err == nil {
			_, err = tx.Exec(query, args...)
		}
	}
	for _, tn := range f.tenants {
		exec(`INSERT INTO tenants (id, name, api_key_hash, rate_limit, rate_burst, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			tn.ID, tn.Name, tn.APIKeyHash, tn.RateLimit, tn.RateBurst, tn.CreatedAt.UnixMicro())
	}
	for _, e := range f.endpoints {
		secrets := []map[string]any{}
		for _, s := range e.SigningSecrets {
			m := map[string]any{"secret": s.Secret}
			if !s.ExpiresAt.IsZero() {
				m["expires_at_us"] = s.ExpiresAt.UnixMicro()
			}
			secrets = append(secrets, m)
		}
		v, p := e.verifier, e.RetryPolicy
		config := map[string]any{
			// 0.1 wrote kapsel.VerifierConfig with Go's default field names.
			"ingest_verifier": map[string]any{"Scheme": v.Scheme, "Secrets": v.Secrets, "Header": v.Header},
			"signing_secrets": secrets,
			"retry_policy": map[string]any{
				"MaxAttempts": p.MaxAttempts, "InitialInterval": int64(p.InitialInterval), "Multiplier": p.Multiplier,
				"Jitter": p.Jitter, "MaxInterval": int64(p.MaxInterval), "MaxAge": int64(p.MaxAge), "Retry4xx": p.Retry4xx,
			},
			"timeout_ns": int64(e.Timeout),
		}
		if e.Headers != nil {
			config["headers"] = e.Headers
		}
		exec(`INSERT INTO endpoints (id, tenant_id, name, url, state, disabled_reason, config, created_at, updated_at, deleted_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			e.ID, e.TenantID, e.Name, e.URL, e.State, e.DisabledReason, jsonText(config),
			e.CreatedAt.UnixMicro(), e.UpdatedAt.UnixMicro(), micros(e.deletedAt))
	}
	for _, e := range f.events {
		d := e.delivery
		var token any
		if d.LeaseToken != "" {
			token = d.LeaseToken
		}
		exec(`INSERT INTO events (id, tenant_id, endpoint_id, status, attempts, next_attempt_at, next_trigger,
			lease_token, lease_expires_at, last_error, idempotency_key, content_type, headers, body_hash, size,
			created_at, delivered_at, body)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			e.ID, e.TenantID, d.EndpointID, d.Status, d.Attempts, d.NextAttemptAt.UnixMicro(), d.NextTrigger,
			token, micros(d.LeaseExpiresAt), d.LastError, e.IdempotencyKey, e.ContentType, jsonText(e.Headers),
			e.BodyHash, e.Size, e.CreatedAt.UnixMicro(), micros(d.DeliveredAt), e.Body)
	}
	for _, k := range f.keys {
		exec(`INSERT INTO idempotency_keys (endpoint_id, key, event_id, body_hash, expires_at) VALUES (?, ?, ?, ?, ?)`,
			k.endpoint, k.key, k.event, k.bodyHash, k.expiresAt.UnixMicro())
	}
	for _, a := range f.attempts {
		exec(`INSERT INTO attempts (id, event_id, endpoint_id, tenant_id, number, trigger, started_at,
			duration_ns, status_code, error_code, error, response_body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			a.ID, a.EventID, a.EndpointID, a.TenantID, a.Number, a.Trigger, a.StartedAt.UnixMicro(),
			int64(a.Duration), a.StatusCode, a.ErrorCode, a.Error, a.ResponseBody)
	}
	for _, b := range f.breakers {
		exec(`INSERT INTO breakers (endpoint_id, status, trips, open_until, probe_until, failing_since,
			last_success_at, last_failure_at, version, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			b.EndpointID, b.Status, b.Trips, micros(b.OpenUntil), micros(b.ProbeUntil), micros(b.FailingSince),
			micros(b.LastSuccessAt), micros(b.LastFailureAt), b.Version, b.UpdatedAt.UnixMicro())
	}
	if err != nil {
		return err
	}
	return tx.Commit()
}

// writeVersion4 adds, to a database written at version 1 and migrated to
// version 4, what versions 2 to 4 could hold besides: held events, event
// types and channels, endpoints' event type and channel filters (their
// source filters are replaced by the upgrade, so none is set here).
func (f *legacyFixture) writeVersion4(db *sql.DB) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	exec := func(query string, args ...any) {
		if err == nil {
			_, err = tx.Exec(query, args...)
		}
	}
	for id, until := range f.held {
		v := int64(9223372036854775807) // forever
		if !until.IsZero() {
			v = until.UnixMicro()
		}
		exec(`UPDATE events SET held_until = ? WHERE id = ?`, v, id)
	}
	due := f.ev["due"]
	due.Type, due.Channels = "invoice.paid", []string{"billing", "eu"}
	exec(`UPDATE events SET type = ?, channels = ? WHERE id = ?`, due.Type, encodeList(due.Channels), due.ID)
	active := f.ep["orders"]
	active.Subscription.EventTypes, active.Subscription.Channels = []string{"invoice.*"}, []string{"billing"}
	exec(`UPDATE endpoints SET event_types = ?, channels = ? WHERE id = ?`,
		encodeList(active.Subscription.EventTypes), encodeList(active.Subscription.Channels), active.ID)
	if err != nil {
		return err
	}
	return tx.Commit()
}

// jsonText is v as JSON text.
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
