package delivery_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"log/slog"
	"sync"
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
}

// spyStore counts the dispatcher's claims, so a test can tell that the
// dispatcher looked for work after the clock moved, and what it found.
type spyStore struct {
	testStore
	mu      sync.Mutex
	claims  int
	claimed int
	changed chan struct{} // closed and replaced after each claim

	released []kapsel.EventID
}

func newSpy(s testStore) *spyStore { return &spyStore{testStore: s, changed: make(chan struct{})} }

func (s *spyStore) EventClaim(ctx context.Context, p *kapsel.EventClaimParams) ([]*kapsel.Event, error) {
	evs, err := s.testStore.EventClaim(ctx, p)
	s.mu.Lock()
	s.claims++
	s.claimed += len(evs)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return evs, err
}

func (s *spyStore) EventRelease(ctx context.Context, p *kapsel.EventReleaseParams) (int, error) {
	n, err := s.testStore.EventRelease(ctx, p)
	s.mu.Lock()
	for _, r := range p.Releases {
		s.released = append(s.released, r.EventID)
	}
	s.mu.Unlock()
	return n, err
}

// releases returns how many times the event was released.
func (s *spyStore) releases(id kapsel.EventID) int {
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

// EventListen passes the wrapped store's notifications through; without a
// Notifier underneath it fails, and the dispatcher polls.
func (s *spyStore) EventListen(ctx context.Context) (<-chan struct{}, error) {
	if n, ok := s.testStore.(kapsel.Notifier); ok {
		return n.EventListen(ctx)
	}
	return nil, errors.New("not a notifier")
}

// counts returns the number of claims made and events claimed so far.
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
			OnEndpointDisabled: func(info kapsel.EndpointDisabledInfo) {
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

// insert stores an event for ep (the fixture's endpoint when nil) and wakes
// the dispatcher.
func (f *fixture) insert(ep *kapsel.Endpoint, body string) *kapsel.Event {
	f.t.Helper()
	if ep == nil {
		ep = f.ep
	}
	res, err := f.store.EventInsertMany(context.Background(), &kapsel.EventInsertManyParams{
		Events: []*kapsel.EventInsertParams{{
			TenantID:    ep.TenantID,
			EndpointID:  ep.ID,
			Body:        []byte(body),
			ContentType: "application/json",
		}},
		Now: f.clock.Now(),
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

// insertHanging makes the fixture's destination hang every request, inserts
// n events for it and waits until all n attempts are in flight.
func (f *fixture) insertHanging(n int) []*kapsel.Event {
	f.t.Helper()
	f.dest.SetDefault(kapseltest.Response{Hang: true})
	evs := make([]*kapsel.Event, n)
	for i := range evs {
		evs[i] = f.insert(nil, `{}`)
	}
	f.dest.WaitForRequests(f.t, n, waitLong)
	return evs
}

// event reads an event.
func (f *fixture) event(id kapsel.EventID) *kapsel.Event {
	f.t.Helper()
	ev, err := f.store.EventGet(context.Background(), &kapsel.EventGetParams{ID: id})
	if err != nil {
		f.t.Fatal(err)
	}
	return ev
}

// attemptsOf lists an event's recorded attempts.
func (f *fixture) attemptsOf(id kapsel.EventID) []*kapsel.Attempt {
	f.t.Helper()
	as, err := f.store.AttemptList(context.Background(), &kapsel.AttemptListParams{EventID: id, Limit: 500})
	if err != nil {
		f.t.Fatal(err)
	}
	return as
}

// waitAttempts waits until the event has n recorded attempts.
func (f *fixture) waitAttempts(id kapsel.EventID, n int) *kapsel.Event {
	f.t.Helper()
	return kapseltest.WaitForEvent(f.t, f.store, id, waitLong, func(ev *kapsel.Event) bool {
		return ev.Attempts >= n && ev.Status != kapsel.EventDelivering
	})
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
