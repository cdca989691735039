package delivery_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/delivery"
	"github.com/kapsel-dev/kapsel/kapseltest"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

// testStore is what the dispatcher tests need of a store.
type testStore interface {
	kapsel.Store
	kapsel.RetentionStore
}

// spyStore counts the dispatcher's claims, so a test can tell that the
// dispatcher looked for work after the clock moved, and what it found.
type spyStore struct {
	testStore
	mu      sync.Mutex
	claims  int
	claimed int
	changed chan struct{} // closed and replaced after each claim

	released []kapsel.DeliveryID
	// failExtend makes DeliveryExtend fail as an unavailable store does;
	// extended holds the number of leases of each call that did not
	// (keepalive_test.go).
	failExtend atomic.Bool
	extended   []int
}

func newSpy(s testStore) *spyStore { return &spyStore{testStore: s, changed: make(chan struct{})} }

func (s *spyStore) DeliveryClaim(ctx context.Context, p *kapsel.DeliveryClaimParams) ([]*kapsel.Delivery, error) {
	dls, err := s.testStore.DeliveryClaim(ctx, p)
	s.mu.Lock()
	s.claims++
	s.claimed += len(dls)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return dls, err
}

func (s *spyStore) DeliveryRelease(ctx context.Context, p *kapsel.DeliveryReleaseParams) (int, error) {
	n, err := s.testStore.DeliveryRelease(ctx, p)
	s.mu.Lock()
	for _, r := range p.Releases {
		s.released = append(s.released, r.DeliveryID)
	}
	s.mu.Unlock()
	return n, err
}

// releases returns how many times the delivery was released.
func (s *spyStore) releases(id kapsel.DeliveryID) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.released {
		if r == id {
			n++
		}
	}
	return n
}

// DeliveryListen passes the wrapped store's notifications through; without
// a Notifier underneath it fails, and the dispatcher polls.
func (s *spyStore) DeliveryListen(ctx context.Context) (<-chan struct{}, error) {
	if n, ok := s.testStore.(kapsel.Notifier); ok {
		return n.DeliveryListen(ctx)
	}
	return nil, errors.New("not a notifier")
}

// counts returns the number of claims made and deliveries claimed so far.
func (s *spyStore) counts() (claims, claimed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.claims, s.claimed
}

// waitClaims waits (real time) until more than n claims were made.
func (s *spyStore) waitClaims(t *testing.T, n int) {
	t.Helper()
	deadline := time.NewTimer(waitLong)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		done, ch := s.claims > n, s.changed
		s.mu.Unlock()
		if done {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("no claim after claim %d", n)
		}
	}
}

// fixture is a dispatcher on a store with one tenant, one endpoint pointing
// at a fake destination, a fake clock and recorded hooks.
type fixture struct {
	t      *testing.T
	store  testStore
	spy    *spyStore
	clock  *kapseltest.Clock
	dest   *kapseltest.Destination
	tenant *kapsel.Tenant
	ep     *kapsel.Endpoint
	secret string
	d      *delivery.Dispatcher
	cfg    delivery.Config

	mu       sync.Mutex
	attempts []kapsel.AttemptInfo
	disabled []kapsel.EndpointDisabledInfo
	attempt  chan kapsel.AttemptInfo
}

// setup builds a fixture on a memstore. edit, when set, changes the
// dispatcher config before the dispatcher is built (and started).
func setup(t *testing.T, edit func(*delivery.Config)) *fixture {
	t.Helper()
	return setupOn(t, memstore.New(), kapseltest.NewClock(time.Time{}), edit)
}

func setupOn(t *testing.T, store testStore, clock *kapseltest.Clock, edit func(*delivery.Config)) *fixture {
	t.Helper()
	spy := newSpy(store)
	f := &fixture{t: t, store: spy, spy: spy, clock: clock, attempt: make(chan kapsel.AttemptInfo, 10_000)}
	f.dest = kapseltest.NewDestination(t)
	f.secret = newSecret(t)
	f.dest.VerifyWith(t, f.secret)
	ctx := context.Background()
	var err error
	f.tenant, err = store.TenantInsert(ctx, &kapsel.TenantInsertParams{Name: "acme", APIKeyHash: randomBytes(t), Now: clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	f.ep = f.newEndpoint(f.dest.URL + "/hook")
	f.cfg = delivery.Config{
		Clock:        clock,
		AllowedCIDRs: kapseltest.Loopback,
		Logger:       slog.New(slog.DiscardHandler),
		Hooks: kapsel.Hooks{
			OnAttempt: func(info kapsel.AttemptInfo) {
				f.mu.Lock()
				f.attempts = append(f.attempts, info)
				f.mu.Unlock()
				f.attempt <- info
			},
			OnEndpointDisabled: func(_ context.Context, info kapsel.EndpointDisabledInfo) {
				f.mu.Lock()
				f.disabled = append(f.disabled, info)
				f.mu.Unlock()
			},
		},
	}
	if edit != nil {
		edit(&f.cfg)
	}
	f.d = f.newDispatcher(&f.cfg)
	return f
}

func newSecret(t testing.TB) string {
	return "whsec_" + base64.StdEncoding.EncodeToString(randomBytes(t))
}

func randomBytes(t testing.TB) []byte {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// newEndpoint inserts an active endpoint of the fixture's tenant.
func (f *fixture) newEndpoint(url string) *kapsel.Endpoint {
	f.t.Helper()
	ep, err := f.store.EndpointInsert(context.Background(), &kapsel.EndpointInsertParams{
		Endpoint: &kapsel.Endpoint{
			TenantID:       f.tenant.ID,
			Name:           "dest",
			URL:            url,
			SigningSecrets: []kapsel.SigningSecret{{Secret: f.secret}},
			RetryPolicy:    kapsel.DefaultRetryPolicy(),
			Timeout:        10 * time.Second,
		},
		Now: f.clock.Now(),
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return ep
}

// newDispatcher builds and starts a dispatcher on the fixture's store,
// stopped when the test ends.
func (f *fixture) newDispatcher(cfg *delivery.Config) *delivery.Dispatcher {
	f.t.Helper()
	d, err := delivery.New(f.store, cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.Stop(ctx); err != nil {
			f.t.Errorf("Stop: %v", err)
		}
	})
	return d
}

// insert stores an event sent to ep alone (the fixture's endpoint when nil:
// the event names it, so the tenant's other endpoints get no delivery),
// wakes the dispatcher and returns the event's delivery to ep.
func (f *fixture) insert(ep *kapsel.Endpoint, body string) *kapsel.Delivery {
	f.t.Helper()
	if ep == nil {
		ep = f.ep
	}
	ev := f.insertEvent(&kapsel.EventInsertParams{
		TenantID:    ep.TenantID,
		EndpointIDs: []kapsel.EndpointID{ep.ID},
		Body:        []byte(body),
		ContentType: "application/json",
	})
	if ev.Deliveries.Total != 1 {
		f.t.Fatalf("event sent to one endpoint has %d deliveries", ev.Deliveries.Total)
	}
	return f.deliveryTo(ev.ID, ep.ID)
}

// insertEvent stores an event as given (fanned out by the store), wakes
// the dispatcher and returns the event.
func (f *fixture) insertEvent(p *kapsel.EventInsertParams) *kapsel.Event {
	f.t.Helper()
	res, err := f.store.EventInsertMany(context.Background(), &kapsel.EventInsertManyParams{
		Events: []*kapsel.EventInsertParams{p},
		Now:    f.clock.Now(),
	})
	if err != nil {
		f.t.Fatal(err)
	}
	if res[0].Err != nil {
		f.t.Fatal(res[0].Err)
	}
	f.d.Wake()
	return res[0].Event
}

// deliveryTo returns the delivery of event to endpoint.
func (f *fixture) deliveryTo(event kapsel.EventID, endpoint kapsel.EndpointID) *kapsel.Delivery {
	f.t.Helper()
	dls, err := f.store.DeliveryList(context.Background(), &kapsel.DeliveryListParams{EventID: event, EndpointID: endpoint})
	if err != nil {
		f.t.Fatal(err)
	}
	if len(dls) != 1 {
		f.t.Fatalf("event %s has %d deliveries to endpoint %s, want 1", event, len(dls), endpoint)
	}
	return dls[0]
}

// insertHanging makes the fixture's destination hang every request, inserts
// n events for it and waits until all n attempts are in flight.
func (f *fixture) insertHanging(n int) []*kapsel.Delivery {
	f.t.Helper()
	f.dest.SetDefault(kapseltest.Response{Hang: true})
	dls := make([]*kapsel.Delivery, n)
	for i := range dls {
		dls[i] = f.insert(nil, `{}`)
	}
	f.dest.WaitForRequests(f.t, n, waitLong)
	return dls
}

// delivery reads a delivery.
func (f *fixture) delivery(id kapsel.DeliveryID) *kapsel.Delivery {
	f.t.Helper()
	dl, err := f.store.DeliveryGet(context.Background(), &kapsel.DeliveryGetParams{ID: id})
	if err != nil {
		f.t.Fatal(err)
	}
	return dl
}

// attemptsOf lists a delivery's recorded attempts.
func (f *fixture) attemptsOf(id kapsel.DeliveryID) []*kapsel.Attempt {
	f.t.Helper()
	as, err := f.store.AttemptList(context.Background(), &kapsel.AttemptListParams{DeliveryID: id, Limit: 500})
	if err != nil {
		f.t.Fatal(err)
	}
	return as
}

// waitAttempts waits until the delivery has n recorded attempts and is not
// being attempted.
func (f *fixture) waitAttempts(dl *kapsel.Delivery, n int) *kapsel.Delivery {
	f.t.Helper()
	return f.waitFor(dl, func(d *kapsel.Delivery) bool {
		return d.Attempts >= n && d.Status != kapsel.DeliveryDelivering
	})
}

// waitFor polls the delivery (in real time) until cond holds.
func (f *fixture) waitFor(dl *kapsel.Delivery, cond func(*kapsel.Delivery) bool) *kapsel.Delivery {
	f.t.Helper()
	return kapseltest.WaitForDelivery(f.t, f.store, dl.EventID, dl.EndpointID, waitLong, cond)
}

// requireDelivered waits until the delivery is delivered.
func (f *fixture) requireDelivered(dl *kapsel.Delivery) *kapsel.Delivery {
	f.t.Helper()
	return kapseltest.RequireDelivered(f.t, f.store, dl.EventID, dl.EndpointID, waitLong)
}

// advanceUntil moves the fake clock to at least target, and on by a poll
// interval at a time while cond (checked in real time) does not hold — the
// dispatcher may not have re-armed its poll timer yet when the clock first
// moves.
func (f *fixture) advanceUntil(target time.Time, cond func() bool) {
	f.t.Helper()
	f.clock.Set(target)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for range 200 {
		for range 25 {
			if cond() {
				return
			}
			<-tick.C
		}
		f.clock.Advance(delivery.DefaultPollInterval)
	}
	f.t.Fatal("condition not met after advancing the clock")
}
