// Package storetest is the conformance suite for [kapsel.Store]
// implementations. A store proves itself with one call from its tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) kapsel.Store { return mystore.New(t) })
//	}
//
// The suite checks the contract written on the interfaces in the root
// package, and the decisions below where that contract is silent. A change of
// store semantics lands here first.
//
// # Time
//
// Every method that depends on the time takes it in its params, and the
// suite drives that time by hand from a fixed base (2026-01-01, with a
// microsecond part). Stores must keep times at microsecond precision or
// better (Postgres' precision): the suite compares times with Equal after
// truncating both sides to the microsecond, so the time zone a store reads
// times back in does not matter. Durations on attempts must survive at
// millisecond precision or better.
//
// # Decisions where the root contract is silent
//
//   - Boundaries are inclusive on the "due" side: an event is due when
//     NextAttemptAt <= Now; a lease has expired when LeaseExpiresAt <= Now;
//     a breaker lets events through when OpenUntil <= Now; an idempotency key
//     inserted at T with window W is taken while Now < T+W and free from T+W.
//   - EventClaim returns events with their Body, since the dispatcher
//     delivers them; which of the due events are claimed follows
//     NextAttemptAt, but the order of the returned slice is not specified.
//   - EventInsertMany returns new events with their Body, duplicates without.
//     A row for an unknown or deleted endpoint, or whose TenantID does not
//     own the endpoint, fails the whole call with ErrNotFound and nothing is
//     written (what a foreign key does in SQL); the ingester checks
//     endpoints before inserting, so this is a safety net. An empty TenantID
//     is taken from the endpoint.
//   - A completion with a Status other than delivered, failed or pending, or
//     an unknown DisableEndpoint reason, gets ErrInvalid and nothing of it is
//     written; EndpointSetState with an unknown state answers ErrInvalid.
//   - Events and attempts of a deleted endpoint stay readable by id (the
//     audit trail) but are never claimed.
//   - Fencing is a compare-and-set on the lease token alone: a completion or
//     release whose lease has expired still applies as long as no other
//     claimer has taken the event over. Completing twice with one token fails
//     the second time with ErrLeaseLost.
//   - After any completion NextTrigger is scheduled again, and the lease is
//     cleared (empty LeaseToken, zero LeaseExpiresAt). A delivered event has
//     DeliveredAt = Now of the completing call.
//   - EventReplay answers ErrNotFound when the endpoint is not visible to
//     TenantID (unknown, deleted or foreign) and ErrInvalid when Status is
//     neither delivered nor failed.
//   - AttemptStats counts attempts whose StartedAt >= Since; an attempt
//     succeeded when its StatusCode is 2xx. LastSuccessAt and LastFailureAt
//     are attempt StartedAt values.
//   - EventStats counts no event of a deleted endpoint, and OldestDue
//     considers pending events only. A count stopped at Limit reads
//     Limit: when more than Limit events of a status exist, a store may
//     read Limit+1 of them to tell "exactly Limit" from "more"; the events
//     of deleted endpoints among those it read are left out, so a capped
//     count is a lower bound.
//   - BreakerDelete of a state that does not exist is not an error.
//   - EndpointInsert and EndpointUpdate refuse what
//     kapsel.Endpoint.ValidateConfig refuses with its *kapsel.Error (code
//     E1007, E1008 or E1009, wrapping ErrInvalid) and write nothing;
//     EndpointUpdate does not check or write signing secrets. Syntax only:
//     an http URL naming 127.0.0.1 is stored (the SSRF guard is not the
//     store's), and an application-registered scheme may have no secret.
//   - EndpointUpdate calls Update exactly once, on a copy of the endpoint
//     as stored (ids, state, signing secrets and times included), while it
//     holds the endpoint against every other write of it — so the first of
//     two concurrent updates may block the second for as long as its Update
//     runs, and the second then sees what the first wrote; Update is not
//     called when the endpoint is not visible (ErrNotFound). What Update
//     changes besides the configuration fields is ignored, even ID. An
//     Update error comes back as the very same value (==, not wrapped) and
//     nothing is written, even what Update changed in place before failing;
//     a nil Update is ErrInvalid.
//   - EndpointRotateSecret with more than MaxSigningSecrets in their grace
//     period keeps the newest (rotation order, not expiry order).
//   - Text from outside (attempt Error, LastError, ContentType, forwarded
//     header names and values, IdempotencyKey, tenant and endpoint names) is
//     stored as kapsel.SafeText makes it: invalid UTF-8 and NUL become
//     U+FFFD, never a refusal, so one destination's bytes cannot fail a batch
//     and every store reads back the same text. Event bodies and response
//     bodies are bytes and are kept byte for byte. An EndpointID with such
//     bytes names no endpoint (ErrNotFound).
//   - An event's Type is outside text too, and at most
//     kapsel.MaxEventTypeLen bytes: it is stored as
//     kapsel.StorableEventType makes it (SafeText, then cut at a character
//     boundary), never refused. Every read of an event returns it: EventGet,
//     EventList, EventClaim, EventRetry, and the key owner a duplicate
//     insert returns. EventListParams.Type is an exact, byte-wise match on
//     the stored type; empty lists every type. A Type filter holding bytes
//     SafeText would change (invalid UTF-8, NUL) matches no event, without
//     an error: no stored type holds them.
//   - An endpoint's Subscription is configuration: stored by
//     EndpointInsert, replaced whole by EndpointUpdate, kept by
//     EndpointSetState and EndpointRotateSecret, and returned by every read
//     with each list in the order given (an empty list may read back nil or
//     empty). A filter kapsel.Subscription.Validate refuses is refused with
//     its *kapsel.Error (E1009) through ValidateConfig, and nothing is
//     written. Stores only keep filters; who receives an event does not
//     depend on them yet.
//   - An event's Channels are stored in the order given and returned by
//     every read that returns its Type. Channels kapsel.CheckEventChannels
//     refuses fail the whole EventInsertMany call with its *kapsel.Error
//     (E1009, wrapping ErrInvalid) and nothing is written, as an idempotent
//     insert without a BodyHash does.
//   - An idempotent insert (IdempotencyKey set) without a BodyHash fails the
//     whole EventInsertMany call with ErrInvalid and nothing is written: the
//     store does not hash bodies itself, and without a hash it could not tell
//     a retry from another event reusing the key (I2 of docs/guarantees.md). Every store
//     checks inputs with kapsel.EventInsertParams.Storable before writing.
//   - A claim ends the delivering state of events whose lease expired while
//     their endpoint could not be claimed (I3 of docs/guarantees.md): paused, disabled or
//     breaker open — back to pending, lease cleared, Attempts and
//     NextAttemptAt unchanged; deleted — failed, with a LastError that says
//     the endpoint was deleted. Claims that find nothing to lease do it too.
//     A live lease of a blocked endpoint is left alone.
//   - A store may hold back (skip without walking) the due events of a
//     blocked endpoint, but what lets the endpoint through again makes them
//     due at once: EndpointSetState to active, BreakerDelete, and a
//     BreakerSave that closes the breaker or brings OpenUntil forward (the
//     events are then due from the new OpenUntil). Closing the breaker of a
//     paused endpoint does not make its events claimable.
//
// Every subtest gets a fresh store from newStore and runs in parallel with
// the others, so a store built on a shared server must isolate each one (a
// schema or database per store).
package storetest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// Base is the time every subtest starts at. It has a microsecond part, so a
// store that loses sub-second precision fails.
var Base = time.Date(2026, 1, 1, 0, 0, 0, 123456000, time.UTC)

// Run runs the whole suite against stores made by newStore, which is called
// once per subtest and must return an empty store; it should register any
// clean-up with t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) kapsel.Store) {
	t.Helper()
	areas := []struct {
		name string
		run  func(*testing.T, func(*testing.T) kapsel.Store)
	}{
		{"Tenants", testTenants},
		{"Endpoints", testEndpoints},
		{"Events", testEvents},
		{"EventTypes", testEventTypes},
		{"Subscriptions", testSubscriptions},
		{"Claiming", testClaiming},
		{"Completion", testCompletion},
		{"Retry", testRetry},
		{"Listing", testListing},
		{"Stats", testStats},
		{"Attempts", testAttempts},
		{"Breakers", testBreakers},
		{"Text", testText},
	}
	for _, a := range areas {
		t.Run(a.name, func(t *testing.T) { a.run(t, newStore) })
	}
}

// harness is one subtest's store and helpers.
type harness struct {
	t   *testing.T
	s   kapsel.Store
	ctx context.Context
}

// setup marks t parallel and gives it a fresh store.
func setup(t *testing.T, newStore func(*testing.T) kapsel.Store) *harness {
	t.Helper()
	t.Parallel()
	s := newStore(t)
	if s == nil {
		t.Fatal("newStore returned nil")
	}
	return &harness{t: t, s: s, ctx: t.Context()}
}

// at returns Base moved by d.
func at(d time.Duration) time.Time { return Base.Add(d) }

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func hash(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

// tenant inserts a tenant with a random API key hash.
func (h *harness) tenant() *kapsel.Tenant {
	h.t.Helper()
	ten, err := h.s.TenantInsert(h.ctx, &kapsel.TenantInsertParams{
		Name: "acme", APIKeyHash: hash(randomBytes(16)), Now: Base,
	})
	must(h.t, err, "TenantInsert")
	return ten
}

// endpoint inserts an active endpoint of ten.
func (h *harness) endpoint(ten *kapsel.Tenant) *kapsel.Endpoint {
	h.t.Helper()
	ep, err := h.s.EndpointInsert(h.ctx, &kapsel.EndpointInsertParams{
		Endpoint: &kapsel.Endpoint{
			TenantID:       ten.ID,
			Name:           "orders",
			URL:            "https://example.com/hook",
			IngestVerifier: kapsel.VerifierConfig{Scheme: kapsel.SchemeNone},
			SigningSecrets: []kapsel.SigningSecret{{Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}},
			RetryPolicy:    kapsel.DefaultRetryPolicy(),
			Timeout:        kapsel.DefaultAttemptTimeout,
		},
		Now: Base,
	})
	must(h.t, err, "EndpointInsert")
	return ep
}

// input returns insert params for one event of ep with the given key and
// body.
func input(ep *kapsel.Endpoint, key string, body []byte) *kapsel.EventInsertParams {
	return &kapsel.EventInsertParams{
		TenantID:       ep.TenantID,
		EndpointID:     ep.ID,
		Body:           body,
		ContentType:    "application/json",
		Headers:        http.Header{"X-Github-Event": {"push"}},
		IdempotencyKey: key,
		BodyHash:       hash(body),
	}
}

// insertMany inserts the inputs at now and fails the test on a call error.
func (h *harness) insertMany(now time.Time, window time.Duration, in ...*kapsel.EventInsertParams) []kapsel.EventInsertResult {
	h.t.Helper()
	res, err := h.s.EventInsertMany(h.ctx, &kapsel.EventInsertManyParams{Events: in, IdempotencyWindow: window, Now: now})
	must(h.t, err, "EventInsertMany")
	if len(res) != len(in) {
		h.t.Fatalf("EventInsertMany returned %d results for %d inputs", len(res), len(in))
	}
	return res
}

// events inserts n new events of ep (no idempotency key) at now.
func (h *harness) events(ep *kapsel.Endpoint, n int, now time.Time) []*kapsel.Event {
	h.t.Helper()
	in := make([]*kapsel.EventInsertParams, n)
	for i := range in {
		in[i] = input(ep, "", []byte(fmt.Sprintf(`{"n":%d}`, i)))
	}
	out := make([]*kapsel.Event, n)
	for i, r := range h.insertMany(now, 0, in...) {
		if r.Err != nil || r.Duplicate || r.Event == nil {
			h.t.Fatalf("inserting event %d: err %v, duplicate %v, event %v", i, r.Err, r.Duplicate, r.Event)
		}
		out[i] = r.Event
	}
	return out
}

// event inserts one new event of ep at now.
func (h *harness) event(ep *kapsel.Endpoint, now time.Time) *kapsel.Event {
	h.t.Helper()
	return h.events(ep, 1, now)[0]
}

// get returns the event with its body.
func (h *harness) get(id kapsel.EventID) *kapsel.Event {
	h.t.Helper()
	e, err := h.s.EventGet(h.ctx, &kapsel.EventGetParams{ID: id, IncludeBody: true})
	must(h.t, err, "EventGet")
	return e
}

// claim claims up to limit events at now with the given lease.
func (h *harness) claim(limit int, lease time.Duration, now time.Time, exclude ...kapsel.EndpointID) []*kapsel.Event {
	h.t.Helper()
	evs, err := h.s.EventClaim(h.ctx, &kapsel.EventClaimParams{
		Limit: limit, LeaseDuration: lease, ExcludeEndpoints: exclude, Now: now,
	})
	must(h.t, err, "EventClaim")
	return evs
}

// claimOne claims at now and requires exactly the event id.
func (h *harness) claimOne(id kapsel.EventID, lease time.Duration, now time.Time) *kapsel.Event {
	h.t.Helper()
	evs := h.claim(10, lease, now)
	if len(evs) != 1 || evs[0].ID != id {
		h.t.Fatalf("claim at %v: got %v, want exactly %s", now, ids(evs), id)
	}
	return evs[0]
}

// completion builds a completion of a claimed event with an attempt that
// started at now and answered code.
func completion(e *kapsel.Event, code int, status kapsel.EventStatus, now time.Time) kapsel.EventCompletion {
	c := kapsel.EventCompletion{
		EventID: e.ID, LeaseToken: e.LeaseToken, Status: status,
		Attempt: kapsel.Attempt{
			Number: e.Attempts + 1, Trigger: e.NextTrigger, StartedAt: now,
			Duration: 1234 * time.Millisecond, StatusCode: code,
		},
	}
	if code < 200 || code > 299 {
		c.Attempt.ErrorCode, c.Attempt.Error = kapsel.CodeAttemptStatus, fmt.Sprintf("status %d", code)
		c.LastError = c.Attempt.Error
	}
	return c
}

// complete applies completions at now and returns their per-completion
// errors.
func (h *harness) complete(now time.Time, cs ...kapsel.EventCompletion) []error {
	h.t.Helper()
	errs, err := h.s.EventComplete(h.ctx, &kapsel.EventCompleteParams{Completions: cs, Now: now})
	must(h.t, err, "EventComplete")
	if len(errs) != len(cs) {
		h.t.Fatalf("EventComplete returned %d errors for %d completions", len(errs), len(cs))
	}
	return errs
}

// attempts lists all attempts of the event.
func (h *harness) attempts(id kapsel.EventID) []*kapsel.Attempt {
	h.t.Helper()
	as, err := h.s.AttemptList(h.ctx, &kapsel.AttemptListParams{EventID: id, Limit: kapsel.MaxPageLimit})
	must(h.t, err, "AttemptList")
	return as
}

func ids(evs []*kapsel.Event) []kapsel.EventID {
	out := make([]kapsel.EventID, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// mustIs requires err to wrap target.
func mustIs(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want one wrapping %v", what, err, target)
	}
}

// sameTime requires got and want to be the same instant at microsecond
// precision.
func sameTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Truncate(time.Microsecond).Equal(want.Truncate(time.Microsecond)) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func equal[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}
