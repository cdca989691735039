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
//   - Boundaries are inclusive on the "due" side: a delivery is due when
//     NextAttemptAt <= Now; a lease has expired when LeaseExpiresAt <= Now;
//     a breaker lets deliveries through when OpenUntil <= Now; an
//     idempotency key inserted at T with window W is taken while Now < T+W
//     and free from T+W. Replay and backfill take the events whose
//     CreatedAt is in [Since, Until).
//   - A new delivery has CreatedAt = Now of the call that made it (the
//     insert, or the backfill), Attempts 0, no lease, no LastError.
//   - DeliveryClaim returns deliveries with their Event: Body, ContentType,
//     Headers, Type and Channels as stored. Which of the due deliveries are
//     claimed follows NextAttemptAt, but the order of the returned slice is
//     not specified.
//   - EventInsertMany returns new events with their Body, duplicates
//     without. A row that fails (ErrNotFound for its tenant or its
//     EndpointIDs, ErrIdempotencyConflict) writes nothing: no event, no
//     delivery, and its idempotency key is not taken. The key is decided
//     before the EndpointIDs: a retry whose named endpoint was deleted
//     since is a duplicate (or a conflict).
//   - DeliveryClaim returns the deliveries of one event with one shared
//     Event (the same pointer), so a fanned-out body is held once. A send naming its endpoints
//     (EndpointIDs) gets a delivery for each, paused and disabled included,
//     whatever their filters.
//   - An event's Deliveries summary counts all its deliveries, those of
//     deleted endpoints included (they stay listed, as failed).
//   - A completion with a Status other than delivered, failed or pending, or
//     an unknown DisableEndpoint reason, gets ErrInvalid and nothing of it is
//     written; EndpointSetState and SourceSetState with an unknown state
//     answer ErrInvalid.
//   - Deliveries and attempts of a deleted endpoint stay readable by id and
//     listed (the audit trail) but are never claimed. DeliveryRetry of such
//     a delivery answers ErrNotFound, DeliveryRetryEvent skips it, and
//     DeliveryReplay and DeliveryBackfill of a deleted endpoint answer
//     ErrNotFound.
//   - EndpointDelete serialises with whatever makes or requeues a delivery
//     of the endpoint — EventInsertMany, DeliveryBackfill, DeliveryRetry,
//     DeliveryRetryEvent, DeliveryReplay: each happens wholly before the
//     delete, which then ends what it made, or sees the endpoint gone
//     (ErrNotFound, or nothing made for it). No delivery of a deleted
//     endpoint is ever left pending.
//   - TenantDelete deletes each of the tenant's live endpoints as
//     EndpointDelete does (the bullet above holds for them, with the
//     tenant's delete in the place of the endpoint's) and each of its live
//     sources as SourceDelete does. It serialises as well with
//     SourceInsert and EndpointInsert for the tenant: each happens wholly
//     before the delete, which then deletes what it made, or answers
//     ErrNotFound, as for an unknown tenant. TenantUpdate, TenantRotateAPIKey
//     and a second TenantDelete of a deleted tenant answer ErrNotFound.
//     EventInsertMany refuses each row of a deleted tenant, as of an
//     unknown one (or an empty TenantID): Err wrapping ErrNotFound, nothing
//     of it written, its neighbours unaffected.
//   - Tenant UpdatedAt is CreatedAt at insert and Now of the last
//     TenantUpdate; TenantRotateAPIKey does not move it.
//   - Fencing is a compare-and-set on the lease token alone: a completion or
//     release whose lease has expired still applies as long as no other
//     claimer has taken the delivery over. A token owns only the delivery it
//     was issued for. Completing twice with one token fails the second time
//     with ErrLeaseLost. A release of a delivery that its endpoint's
//     deletion ended while leased is skipped (not counted): it stays failed
//     and its token still owns it for the completion. DeliveryExtend is
//     fenced the same way (an expired lease nobody took over is extended),
//     and answers each lease named twice in one call on its own.
//   - After any completion NextTrigger is scheduled again, and the lease is
//     cleared (empty LeaseToken, zero LeaseExpiresAt). A delivered delivery
//     has DeliveredAt = Now of the completing call. The completion of an
//     attempt that was in flight when its endpoint was deleted is recorded
//     (attempt written, Attempts counted): delivered stays delivered, any
//     other outcome leaves the delivery failed with LastError
//     kapsel.LastErrorEndpointDeleted.
//   - DeliveryReplay answers ErrNotFound when the endpoint is not visible to
//     TenantID (unknown, deleted or foreign) and ErrInvalid when Status is
//     neither delivered nor failed. DeliveryRetryEvent of an event without
//     a finished delivery returns 0 and no error.
//   - DeliveryBackfill counts every event in range it looks at towards
//     Limit, matched or not; a call that looked at every event left in
//     range (exactly Limit of them included) answers More false. Its new
//     deliveries are pending at Now with NextTrigger manual.
//   - DeliveryList's filters combine; a filter naming another tenant's
//     endpoint or event lists nothing. AttemptList by EventID lists the
//     attempts of all the event's deliveries, oldest first; with both or
//     neither of DeliveryID and EventID it answers ErrInvalid.
//   - AttemptStats counts attempts whose StartedAt >= Since; an attempt
//     succeeded when its StatusCode is 2xx. LastSuccessAt and LastFailureAt
//     are attempt StartedAt values.
//   - DeliveryStats counts no delivery of a deleted endpoint, and OldestDue
//     considers pending deliveries only. A count stopped at Limit reads
//     Limit: when more than Limit deliveries of a status exist, a store may
//     read Limit+1 of them to tell "exactly Limit" from "more"; the
//     deliveries of deleted endpoints among those it read are left out, so a
//     capped count is a lower bound.
//   - BreakerDelete of a state that does not exist is not an error.
//   - EndpointInsert and EndpointUpdate refuse what
//     kapsel.Endpoint.ValidateConfig refuses with its *kapsel.Error (code
//     E1007, E1008 or E1009, wrapping ErrInvalid) and write nothing;
//     EndpointUpdate does not check or write signing secrets. Syntax only:
//     an http URL naming 127.0.0.1 is stored (the SSRF guard is not the
//     store's). SourceInsert and SourceUpdate refuse what
//     kapsel.Source.ValidateConfig refuses, with its *kapsel.Error (E1009),
//     and write nothing; an application-registered scheme may have no
//     secret.
//   - EndpointUpdate and SourceUpdate call Update exactly once, on a copy of
//     the endpoint or source as stored (ids, state, secrets and times
//     included), while they hold it against every other write of it — so
//     the first of two concurrent updates may block the second for as long
//     as its Update runs, and the second then sees what the first wrote;
//     Update is not called when it is not visible (ErrNotFound). What
//     Update changes besides the configuration fields is ignored, even ID.
//     An Update error comes back as the very same value (==, not wrapped)
//     and nothing is written, even what Update changed in place before
//     failing; a nil Update is ErrInvalid.
//   - A source id stays taken after SourceDelete: SourceInsert with it
//     answers ErrDuplicate, as for a live source's id. SourceSetState sets
//     UpdatedAt = Now, as EndpointSetState does.
//   - EndpointRotateSecret with more than MaxSigningSecrets in their grace
//     period keeps the newest (rotation order, not expiry order).
//   - Text from outside (attempt Error, LastError, ContentType, forwarded
//     header names and values, IdempotencyKey, tenant, source and endpoint
//     names) is stored as kapsel.SafeText makes it: invalid UTF-8 and NUL
//     become U+FFFD, never a refusal, so one destination's bytes cannot fail
//     a batch and every store reads back the same text. Event bodies and
//     response bodies are bytes and are kept byte for byte. An EndpointIDs
//     entry with such bytes names no endpoint (that row's ErrNotFound).
//   - An event's Type is outside text too, and at most
//     kapsel.MaxEventTypeLen bytes: it is stored as
//     kapsel.StorableEventType makes it (SafeText, then cut at a character
//     boundary), never refused. Every read of an event returns it: EventGet,
//     EventList, the Event of DeliveryClaim, and the key owner a duplicate
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
//     written. Fan-out reads it at insert (kapsel.Subscription.Matches);
//     changing it later changes no past event's deliveries.
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
//   - A claim ends the delivering state of deliveries whose lease expired
//     while their endpoint could not be claimed (I3 of docs/guarantees.md):
//     paused, disabled or breaker open — back to pending, lease cleared,
//     Attempts and NextAttemptAt unchanged. Claims that find nothing to
//     lease do it too. A live lease of a blocked endpoint is left alone.
//     (A deleted endpoint's deliveries are ended by EndpointDelete itself.)
//   - A store may hold back (skip without walking) the due deliveries of a
//     blocked endpoint, but what lets the endpoint through again makes them
//     due at once: EndpointSetState to active, BreakerDelete, and a
//     BreakerSave that closes the breaker or brings OpenUntil forward (the
//     deliveries are then due from the new OpenUntil). Closing the breaker
//     of a paused endpoint does not make its deliveries claimable.
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
		{"Sources", testSources},
		{"Endpoints", testEndpoints},
		{"Events", testEvents},
		{"EventTypes", testEventTypes},
		{"Subscriptions", testSubscriptions},
		{"FanOut", testFanOut},
		{"Backfill", testBackfill},
		{"Claiming", testClaiming},
		{"Completion", testCompletion},
		{"Extend", testExtend},
		{"PerDelivery", testPerDelivery},
		{"EndpointDelete", testEndpointDelete},
		{"TenantDelete", testTenantDelete},
		{"Retry", testRetry},
		{"Listing", testListing},
		{"Stats", testStats},
		{"Attempts", testAttempts},
		{"Breakers", testBreakers},
		{"Text", testText},
		{"Trace", testTrace},
		{"Timekeeper", testTimekeeper},
		{"Retention", testRetention},
		{"LockOrder", testLockOrder},
	}
	for _, a := range areas {
		t.Run(a.name, func(t *testing.T) { a.run(t, newStore) })
	}
}

// harness is one subtest's store and helpers.
type harness struct {
	t   *testing.T
	s   testedStore
	ctx context.Context
}

// testedStore is a store with the optional capabilities the suite tests.
// A store without kapsel.RetentionStore is wrapped in withoutRetention:
// the Retention area skips it, and any other call of a retention method
// fails.
type testedStore interface {
	kapsel.Store
	kapsel.RetentionStore
}

// withoutRetention is a store that does not implement kapsel.RetentionStore.
type withoutRetention struct {
	kapsel.Store
}

var errNoRetention = errors.New("storetest: the store does not implement kapsel.RetentionStore")

func (withoutRetention) RetentionEraseBodies(context.Context, *kapsel.RetentionSweepParams) (*kapsel.RetentionSweepResult, error) {
	return nil, errNoRetention
}

func (withoutRetention) RetentionDeleteEvents(context.Context, *kapsel.RetentionSweepParams) (*kapsel.RetentionSweepResult, error) {
	return nil, errNoRetention
}

func (withoutRetention) RetentionDeleteIdempotencyKeys(context.Context, *kapsel.RetentionKeysParams) (*kapsel.RetentionSweepResult, error) {
	return nil, errNoRetention
}

func (withoutRetention) RetentionOldest(context.Context) (*kapsel.RetentionOldest, error) {
	return nil, errNoRetention
}

func (withoutRetention) EventExpunge(context.Context, *kapsel.EventExpungeParams) (*kapsel.RetentionSweepResult, error) {
	return nil, errNoRetention
}

// setup marks t parallel and gives it a fresh store.
func setup(t *testing.T, newStore func(*testing.T) kapsel.Store) *harness {
	t.Helper()
	t.Parallel()
	s := newStore(t)
	if s == nil {
		t.Fatal("newStore returned nil")
	}
	ts, ok := s.(testedStore)
	if !ok {
		ts = withoutRetention{s}
	}
	return &harness{t: t, s: ts, ctx: t.Context()}
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

// source inserts an active source of ten without a verifier.
func (h *harness) source(ten *kapsel.Tenant) *kapsel.Source {
	h.t.Helper()
	src, err := h.s.SourceInsert(h.ctx, &kapsel.SourceInsertParams{
		Source: &kapsel.Source{TenantID: ten.ID, Name: "github", Verifier: kapsel.VerifierConfig{Scheme: kapsel.SchemeNone}},
		Now:    Base,
	})
	must(h.t, err, "SourceInsert")
	return src
}

// endpoint inserts an active endpoint of ten without a filter: it is
// subscribed to every event of its tenant.
func (h *harness) endpoint(ten *kapsel.Tenant) *kapsel.Endpoint {
	h.t.Helper()
	return h.subscribed(ten, kapsel.Subscription{})
}

// subscribed inserts an active endpoint of ten with the filter sub.
func (h *harness) subscribed(ten *kapsel.Tenant, sub kapsel.Subscription) *kapsel.Endpoint {
	h.t.Helper()
	ep, err := h.s.EndpointInsert(h.ctx, &kapsel.EndpointInsertParams{
		Endpoint: &kapsel.Endpoint{
			TenantID:       ten.ID,
			Name:           "orders",
			URL:            "https://example.com/hook",
			SigningSecrets: []kapsel.SigningSecret{{Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}},
			RetryPolicy:    kapsel.DefaultRetryPolicy(),
			Timeout:        kapsel.DefaultAttemptTimeout,
			Subscription:   sub,
		},
		Now: Base,
	})
	must(h.t, err, "EndpointInsert")
	return ep
}

// input returns insert params for one event sent to ep alone (a send
// naming its endpoint), with the given key and body.
func input(ep *kapsel.Endpoint, key string, body []byte) *kapsel.EventInsertParams {
	in := send(ep.TenantID, key, body)
	in.EndpointIDs = []kapsel.EndpointID{ep.ID}
	return in
}

// send returns insert params for one event an application sends to the
// subscribers of tenant, with the given key and body.
func send(tenant kapsel.TenantID, key string, body []byte) *kapsel.EventInsertParams {
	return &kapsel.EventInsertParams{
		TenantID:       tenant,
		Body:           body,
		ContentType:    "application/json",
		Headers:        http.Header{"X-Github-Event": {"push"}},
		IdempotencyKey: key,
		BodyHash:       hash(body),
	}
}

// ingested returns insert params for one event ingested by src, with the
// given key and body.
func ingested(src *kapsel.Source, key string, body []byte) *kapsel.EventInsertParams {
	in := send(src.TenantID, key, body)
	in.SourceID = src.ID
	return in
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

// insertNew inserts the inputs at now and requires each to be a new event.
func (h *harness) insertNew(now time.Time, in ...*kapsel.EventInsertParams) []*kapsel.Event {
	h.t.Helper()
	out := make([]*kapsel.Event, len(in))
	for i, r := range h.insertMany(now, 0, in...) {
		if r.Err != nil || r.Duplicate || r.Event == nil {
			h.t.Fatalf("inserting event %d: err %v, duplicate %v, event %v", i, r.Err, r.Duplicate, r.Event)
		}
		out[i] = r.Event
	}
	return out
}

// events inserts n new events sent to ep alone (no idempotency key) at now.
func (h *harness) events(ep *kapsel.Endpoint, n int, now time.Time) []*kapsel.Event {
	h.t.Helper()
	in := make([]*kapsel.EventInsertParams, n)
	for i := range in {
		in[i] = input(ep, "", []byte(fmt.Sprintf(`{"n":%d}`, i)))
	}
	return h.insertNew(now, in...)
}

// event inserts one new event sent to ep alone at now.
func (h *harness) event(ep *kapsel.Endpoint, now time.Time) *kapsel.Event {
	h.t.Helper()
	return h.events(ep, 1, now)[0]
}

// deliveries inserts n new events sent to ep alone at now and returns
// their deliveries, in the order of the events.
func (h *harness) deliveries(ep *kapsel.Endpoint, n int, now time.Time) []*kapsel.Delivery {
	h.t.Helper()
	evs := h.events(ep, n, now)
	byEvent := map[kapsel.EventID]*kapsel.Delivery{}
	for _, d := range h.listDeliveries(kapsel.DeliveryListParams{EndpointID: ep.ID}) {
		byEvent[d.EventID] = d
	}
	out := make([]*kapsel.Delivery, n)
	for i, e := range evs {
		if out[i] = byEvent[e.ID]; out[i] == nil {
			h.t.Fatalf("event %s sent to %s has no delivery to it", e.ID, ep.ID)
		}
	}
	return out
}

// delivery inserts one new event sent to ep alone at now and returns its
// delivery.
func (h *harness) delivery(ep *kapsel.Endpoint, now time.Time) *kapsel.Delivery {
	h.t.Helper()
	return h.deliveryOf(h.event(ep, now).ID, ep.ID)
}

// deliveryOf returns the delivery of the event to the endpoint.
func (h *harness) deliveryOf(ev kapsel.EventID, ep kapsel.EndpointID) *kapsel.Delivery {
	h.t.Helper()
	list := h.listDeliveries(kapsel.DeliveryListParams{EventID: ev, EndpointID: ep})
	if len(list) != 1 {
		h.t.Fatalf("deliveries of event %s to %s: %v, want exactly one", ev, ep, ids(list))
	}
	return list[0]
}

// listDeliveries lists every delivery p matches, page by page.
func (h *harness) listDeliveries(p kapsel.DeliveryListParams) []*kapsel.Delivery {
	h.t.Helper()
	if p.Limit == 0 {
		p.Limit = kapsel.MaxPageLimit
	}
	var out []*kapsel.Delivery
	for range 1000 {
		list, err := h.s.DeliveryList(h.ctx, &p)
		must(h.t, err, "DeliveryList")
		if len(list) > p.Limit {
			h.t.Fatalf("DeliveryList returned %d deliveries with Limit %d", len(list), p.Limit)
		}
		if len(list) == 0 {
			return out
		}
		out = append(out, list...)
		p.Cursor = list[len(list)-1].ID
	}
	h.t.Fatal("DeliveryList pagination does not end")
	return nil
}

// getEvent returns the event with its body.
func (h *harness) getEvent(id kapsel.EventID) *kapsel.Event {
	h.t.Helper()
	e, err := h.s.EventGet(h.ctx, &kapsel.EventGetParams{ID: id, IncludeBody: true})
	must(h.t, err, "EventGet")
	return e
}

// get returns the delivery.
func (h *harness) get(id kapsel.DeliveryID) *kapsel.Delivery {
	h.t.Helper()
	d, err := h.s.DeliveryGet(h.ctx, &kapsel.DeliveryGetParams{ID: id})
	must(h.t, err, "DeliveryGet")
	return d
}

// claim claims up to limit deliveries at now with the given lease.
func (h *harness) claim(limit int, lease time.Duration, now time.Time, exclude ...kapsel.EndpointID) []*kapsel.Delivery {
	h.t.Helper()
	ds, err := h.s.DeliveryClaim(h.ctx, &kapsel.DeliveryClaimParams{
		Limit: limit, LeaseDuration: lease, ExcludeEndpoints: exclude, Now: now,
	})
	must(h.t, err, "DeliveryClaim")
	for _, d := range ds {
		if d.Event == nil || d.Event.ID != d.EventID {
			h.t.Fatalf("claimed delivery %s of event %s comes with event %v", d.ID, d.EventID, d.Event)
		}
	}
	return ds
}

// claimOne claims at now and requires exactly the delivery id.
func (h *harness) claimOne(id kapsel.DeliveryID, lease time.Duration, now time.Time) *kapsel.Delivery {
	h.t.Helper()
	ds := h.claim(10, lease, now)
	if len(ds) != 1 || ds[0].ID != id {
		h.t.Fatalf("claim at %v: got %v, want exactly %s", now, ids(ds), id)
	}
	return ds[0]
}

// completion builds a completion of a claimed delivery with an attempt that
// started at now and answered code.
func completion(d *kapsel.Delivery, code int, status kapsel.DeliveryStatus, now time.Time) kapsel.DeliveryCompletion {
	c := kapsel.DeliveryCompletion{
		DeliveryID: d.ID, LeaseToken: d.LeaseToken, Status: status,
		Attempt: kapsel.Attempt{
			Number: d.Attempts + 1, Trigger: d.NextTrigger, StartedAt: now,
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
func (h *harness) complete(now time.Time, cs ...kapsel.DeliveryCompletion) []error {
	h.t.Helper()
	errs, err := h.s.DeliveryComplete(h.ctx, &kapsel.DeliveryCompleteParams{Completions: cs, Now: now})
	must(h.t, err, "DeliveryComplete")
	if len(errs) != len(cs) {
		h.t.Fatalf("DeliveryComplete returned %d errors for %d completions", len(errs), len(cs))
	}
	return errs
}

// release gives leased deliveries back and returns how many were.
func (h *harness) release(now time.Time, rs ...kapsel.DeliveryRelease) int {
	h.t.Helper()
	n, err := h.s.DeliveryRelease(h.ctx, &kapsel.DeliveryReleaseParams{Releases: rs, Now: now})
	must(h.t, err, "DeliveryRelease")
	return n
}

// attempts lists all attempts of the delivery.
func (h *harness) attempts(id kapsel.DeliveryID) []*kapsel.Attempt {
	h.t.Helper()
	as, err := h.s.AttemptList(h.ctx, &kapsel.AttemptListParams{DeliveryID: id, Limit: kapsel.MaxPageLimit})
	must(h.t, err, "AttemptList")
	return as
}

// deleteEndpoint deletes ep at now.
func (h *harness) deleteEndpoint(ep *kapsel.Endpoint, now time.Time) {
	h.t.Helper()
	must(h.t, h.s.EndpointDelete(h.ctx, &kapsel.EndpointDeleteParams{ID: ep.ID, Now: now}), "EndpointDelete")
}

func ids(ds []*kapsel.Delivery) []kapsel.DeliveryID {
	out := make([]kapsel.DeliveryID, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

func eventIDs(evs []*kapsel.Event) []kapsel.EventID {
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

// summary requires an event's Deliveries summary to be want.
func summary(t *testing.T, what string, got, want kapsel.DeliverySummary) {
	t.Helper()
	if got != want {
		t.Fatalf("%s Deliveries = %+v, want %+v", what, got, want)
	}
}
