package delivery

import (
	"time"

	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/internal/lifecycle"
)

var _ kapsel.Dispatcher = (*Dispatcher)(nil)

// ErrStarted is returned by Start on a dispatcher that was already started
// (whether or not it was stopped since).
var ErrStarted = errors.New("delivery: dispatcher already started")

// Dispatcher is the default [kapsel.Dispatcher]. A claim loop leases due
// deliveries from the store in batches and hands each to a worker goroutine (at
// most Config.Workers at once, at most Config.PerEndpointConcurrency per
// endpoint, with a short queue per endpoint behind its running attempts);
// each worker makes one HTTP attempt at a time and passes the outcome to a
// completer that records many outcomes per store call, each fenced by its
// lease token. A keep-alive extends the leases of the deliveries it holds
// every third of Config.LeaseDuration. See docs/delivery.md for the whole
// story.
type Dispatcher struct {
	store     kapsel.DispatcherStore
	cfg       Config
	guard     *Guard
	client    *http.Client
	transport *http.Transport
	log       *slog.Logger

	wakeCh     chan struct{} // coalesced wake-ups (Wake, notifications)
	freedCh    chan struct{} // coalesced "a worker finished"
	handoff    chan *job     // admit → an idle worker (slots.go); unbuffered
	dueCh      chan struct{} // coalesced "a retry is due before the next poll" (due.go)
	dueMu      sync.Mutex
	dues       dueHeap       // retries due before the next poll, under dueMu (due.go)
	quit       chan struct{} // closed by Stop: stop claiming
	claimDone  chan struct{}
	completeCh chan *outcome
	compDone   chan struct{}
	// giveUpCh is closed by Stop when its context ends: the completer stops
	// waiting for an unavailable store (complete.go).
	giveUpCh chan struct{}

	// attemptCtx is the parent of every attempt; Stop cancels it when its
	// own context ends before the attempts do.
	attemptCtx    context.Context
	attemptCancel context.CancelFunc
	// listenCancel stops the store notification listener.
	listenCancel context.CancelFunc
	workers      sync.WaitGroup
	// workersStarted counts worker goroutines started (tests: they are reused).
	workersStarted atomic.Int64

	// Owned by the claim loop goroutine.
	lastFull     bool
	lastExcluded []kapsel.EndpointID
	// idleExcluded are the endpoints excluded by the last claim when it
	// found nothing; nil otherwise.
	idleExcluded []kapsel.EndpointID

	// life is new, running or stopped: Start and Stop run once, a second
	// Stop waits for the first one's result.
	life lifecycle.Runner

	mu          sync.Mutex
	cache       endpointCache // endpoints read for claimed deliveries
	gen         uint64        // endpoint changes reported (endpoints.go)
	marks       map[kapsel.EndpointID]endpointMark
	expunge     expungeMarks                        // expunges reported (expunge.go)
	reading     map[kapsel.EndpointID]*endpointRead // workers' re-reads under way
	running     int                                 // busy workers (idle ones wait in work)
	inflight    map[kapsel.EndpointID]int           // attempts running per endpoint
	queued      map[kapsel.EndpointID][]*job        // claimed, waiting for a slot
	queuedTotal int
	recordErr   error // first store failure recording outcomes, for Stop

	// The lease set and its keep-alive (keepalive.go).
	leaseMu    sync.Mutex
	leases     map[leaseKey]*lease
	keepCtx    context.Context // ended by Stop once every outcome is recorded
	keepCancel context.CancelFunc
	keepDone   chan struct{}

	// syncDone is closed when the clock sync loop ends; nil without clock
	// sync (clocksync.go).
	syncDone chan struct{}
}

// New returns a dispatcher making the deliveries of store. cfg may be nil;
// its zero fields take their defaults. It returns an error wrapping
// kapsel.ErrInvalid naming a bad field.
func New(store kapsel.DispatcherStore, cfg *Config) (*Dispatcher, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: delivery: store is nil", kapsel.ErrInvalid)
	}
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if c.Clock, err = AnchoredClock(store, c.Clock, c.ClockSync); err != nil {
		return nil, err
	}
	g := &Guard{AllowPrivate: c.AllowPrivateDestinations, Allowed: c.AllowedCIDRs}
	tr := newTransport(g, c.PerEndpointConcurrency, c.TLSConfig, c.Resolver)
	d := &Dispatcher{
		store:      store,
		cfg:        c,
		guard:      g,
		client:     newHTTPClient(tr),
		transport:  tr,
		log:        c.Logger.With(slog.String("component", "delivery")),
		wakeCh:     make(chan struct{}, 1),
		freedCh:    make(chan struct{}, 1),
		handoff:    make(chan *job),
		dueCh:      make(chan struct{}, 1),
		quit:       make(chan struct{}),
		claimDone:  make(chan struct{}),
		completeCh: make(chan *outcome, c.Workers),
		compDone:   make(chan struct{}),
		giveUpCh:   make(chan struct{}),
		cache:      endpointCache{ttl: c.EndpointCacheTTL, m: map[kapsel.EndpointID]endpointView{}},
		marks:      map[kapsel.EndpointID]endpointMark{},
		expunge:    expungeMarks{events: map[kapsel.EventID]time.Time{}, tenants: map[kapsel.TenantID]tenantExpunge{}},
		reading:    map[kapsel.EndpointID]*endpointRead{},
		inflight:   map[kapsel.EndpointID]int{},
		queued:     map[kapsel.EndpointID][]*job{},
		leases:     map[leaseKey]*lease{},
		keepDone:   make(chan struct{}),
	}
	if _, ok := c.Clock.(*storeClock); ok {
		d.syncDone = make(chan struct{})
	}
	d.attemptCtx, d.attemptCancel = context.WithCancel(context.Background())
	d.keepCtx, d.keepCancel = context.WithCancel(context.Background())
	return d, nil
}

// Guard returns the dispatcher's SSRF guard, whose ValidateURL the
// management API can use to refuse blocked destinations with the same
// settings.
func (d *Dispatcher) Guard() *Guard { return d.guard }

// Start begins claiming and delivering in the background. When the store is
// a kapsel.Notifier, the dispatcher also wakes on its notifications; without
// one (or when listening fails) it polls every Config.PollInterval. ctx bounds
// only the start-up; when it has already ended, Start returns its error and
// may be called again. With clock sync on (Config.ClockSync) Start first
// reads the store's clock, bounded by ctx and Config.StoreTimeout; when that
// fails it still starts, and claims nothing until the store's clock answers.
// A second Start returns ErrStarted; a Start after a Stop that came first
// returns kapsel.ErrShuttingDown.
func (d *Dispatcher) Start(ctx context.Context) error {
	err := d.life.Start(func() error { return d.start(ctx) })
	switch {
	case errors.Is(err, lifecycle.ErrStarted):
		return ErrStarted
	case errors.Is(err, lifecycle.ErrStopped):
		return kapsel.ErrShuttingDown
	}
	return err
}

// start is Start's work, run once by d.life.
func (d *Dispatcher) start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if sc, ok := d.cfg.Clock.(*storeClock); ok {
		// The first measurement, before anything is claimed; on failure the
		// loop tries again and the claim loop waits for it.
		d.syncClock(ctx, sc)
		go d.clockSync(sc)
	}
	listenCtx, cancel := context.WithCancel(context.Background())
	d.listenCancel = cancel
	if n, ok := kapsel.StoreAs[kapsel.Notifier](d.store); ok {
		ch, err := n.DeliveryListen(listenCtx)
		if err != nil {
			d.log.Warn("listening for new deliveries failed; polling only", slog.Any("error", err))
		} else {
			go d.forwardNotifications(listenCtx, ch)
		}
	}
	go d.completer()
	go d.keepAlive()
	go d.claimLoop()
	d.Wake()
	return nil
}

// forwardNotifications turns store notifications into wake-ups.
func (d *Dispatcher) forwardNotifications(ctx context.Context, ch <-chan struct{}) {
	for range ch {
		d.Wake()
	}
	if ctx.Err() == nil {
		d.log.Warn("delivery notifications ended; polling only")
	}
}

// Wake makes the dispatcher claim now instead of at its next poll. It never
// blocks; wake-ups that arrive while one is pending are coalesced.
func (d *Dispatcher) Wake() {
	select {
	case d.wakeCh <- struct{}{}:
	default:
	}
}

// Stop stops claiming, lets in-flight attempts finish until ctx ends, then
// cancels the remaining ones: an attempt whose request was already sent is
// recorded (code E3003) and rescheduled for now, one not yet sent is released
// without an attempt, so another dispatcher can take them at once. It returns
// after every outcome was recorded; while the store is unavailable it keeps
// retrying until ctx ends, then tries each outcome left once more (each store
// call bounded by Config.StoreTimeout). The error reports a store failure
// while recording (the affected leases then expire and are re-claimed).
// Stopping twice, or before Start, is safe: a second Stop waits for the first
// one and returns its result, or returns ctx.Err() when its own ctx ends
// first.
func (d *Dispatcher) Stop(ctx context.Context) error {
	return d.life.Stop(ctx, d.stop)
}

// stop is Stop's work, run once by d.life and only after a Start.
func (d *Dispatcher) stop(ctx context.Context) error {
	close(d.quit)
	<-d.claimDone
	if d.syncDone != nil {
		<-d.syncDone
	}
	d.listenCancel()
	// Claimed deliveries still waiting for a slot were never in flight:
	// give them back at once.
	for _, j := range d.dropQueued() {
		d.completeCh <- &outcome{release: &kapsel.DeliveryRelease{DeliveryID: j.dl.ID, LeaseToken: j.dl.LeaseToken, NextAttemptAt: d.cfg.Clock.Now()}}
	}

	idle := make(chan struct{})
	go func() { d.workers.Wait(); close(idle) }()
	select {
	case <-idle:
	case <-ctx.Done():
		d.log.Info("stop deadline reached; cancelling in-flight attempts")
		d.attemptCancel()
		<-idle
	}
	d.attemptCancel()
	close(d.completeCh)
	select {
	case <-d.compDone:
	case <-ctx.Done():
		// The store is slow or unavailable: each outcome left is tried once
		// more, without waiting for the store to come back.
		close(d.giveUpCh)
		<-d.compDone
	}
	// Every outcome is recorded, released or given up: no lease is needed.
	d.keepCancel()
	<-d.keepDone
	d.transport.CloseIdleConnections()

	d.mu.Lock()
	defer d.mu.Unlock()
	return d.recordErr
}
