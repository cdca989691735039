// Package lifecycle is the start/stop bookkeeping that Kapsel's background
// parts share: the ingester, the dispatcher and the service front door each
// embed one [Runner] instead of keeping their own state flags.
//
// It is written here rather than taken from a library: what it does — one
// state under one mutex, a count of admitted work and two channels — is
// smaller than any dependency, and the libraries that manage lifecycles
// (supervisor trees, run groups, errgroup) own the goroutines, which these
// components already do themselves.
package lifecycle

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

// Errors returned by [Runner.Start].
var (
	// ErrStarted: Start already succeeded once (whether or not Stop was
	// called since).
	ErrStarted = errors.New("lifecycle: already started")
	// ErrStopped: Stop was called before any Start succeeded.
	ErrStopped = errors.New("lifecycle: stopped before start")
)

type state int

const (
	stateNew state = iota
	stateRunning
	stateStopped // Stop has begun
)

// Runner tracks one component's life: new, running, stopped. Its zero value
// is a new Runner; it must not be copied after first use. Its methods are
// safe for concurrent use.
//
//   - Start runs a start function once; a second Start returns ErrStarted,
//     a Start after Stop returns ErrStopped (or ErrStarted when a Start had
//     succeeded before).
//   - Stop runs a stop function once, and only when Start had succeeded. A
//     Stop that finds another under way or finished waits for its result,
//     or for its own ctx, and returns that first Stop's error.
//   - Admit registers a unit of work while running; from the moment Stop
//     begins nothing more is admitted, and Drain waits, bounded by ctx, for
//     the admitted work to be released.
//   - Stopping reports whether Stop has begun, without blocking.
type Runner struct {
	mu       sync.Mutex
	state    state
	started  bool          // a Start succeeded
	active   int           // admitted and not yet released
	drained  chan struct{} // closed once Stop has begun and active is 0
	stopDone chan struct{} // closed when the first Stop's function returned
	stopErr  error         // written before stopDone is closed
	stopping atomic.Bool   // mirrors state == stateStopped, for Stopping
}

// init makes the channels of a zero Runner. r.mu must be held.
func (r *Runner) init() {
	if r.drained == nil {
		r.drained = make(chan struct{})
		r.stopDone = make(chan struct{})
	}
}

// Start moves a new Runner to running after calling start (which may be
// nil). When start returns an error, Start returns it unchanged and the
// Runner stays new, so Start may be tried again. start runs under the
// Runner's lock: a concurrent Stop or Admit waits for it, and start must not
// call Start, Stop, Admit or Drain of the same Runner (Stopping is fine).
//
// Start returns ErrStarted when a Start already succeeded, and ErrStopped
// when Stop was called first; start is not called then.
func (r *Runner) Start(start func() error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.started:
		return ErrStarted
	case r.state == stateStopped:
		return ErrStopped
	}
	if start != nil {
		if err := start(); err != nil {
			return err
		}
	}
	r.state, r.started = stateRunning, true
	return nil
}

// Stop begins stopping: from its first call on, Admit refuses work and
// Stopping reports true. When a Start had succeeded it then calls stop (which
// may be nil) with ctx, outside the lock, and returns its error; before any
// Start it calls nothing and returns nil.
//
// A Stop that finds stopping already begun calls nothing: it waits for the
// first Stop to finish and returns the first one's error, or returns
// ctx.Err() when its own ctx ends first.
func (r *Runner) Stop(ctx context.Context, stop func(ctx context.Context) error) error {
	r.mu.Lock()
	r.init()
	if r.state == stateStopped {
		done := r.stopDone
		r.mu.Unlock()
		select {
		case <-done:
			return r.stopErr
		default:
		}
		select {
		case <-done:
			return r.stopErr
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	wasRunning := r.state == stateRunning
	r.state = stateStopped
	r.stopping.Store(true)
	if r.active == 0 {
		close(r.drained)
	}
	r.mu.Unlock()

	var err error
	if wasRunning && stop != nil {
		err = stop(ctx)
	}
	r.stopErr = err
	close(r.stopDone)
	return err
}

// Admit registers one unit of work (a request, say) while the Runner is
// running. It returns false, and nothing to release, before Start and from
// the moment Stop begins. When it returns true, the caller must call
// release once the work is done; release is safe to call more than once.
func (r *Runner) Admit() (release func(), ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != stateRunning {
		return nil, false
	}
	r.active++
	var once sync.Once
	return func() { once.Do(r.release) }, true
}

// release ends one admitted unit of work.
func (r *Runner) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.active--
	if r.active == 0 && r.state == stateStopped { // Stop made the channels
		close(r.drained)
	}
}

// Drain waits until Stop has begun and all admitted work was released, and
// returns nil; or returns ctx.Err() when ctx ends first. It is meant for the
// stop function passed to Stop, where stopping has begun and only admitted
// work can hold it up.
func (r *Runner) Drain(ctx context.Context) error {
	r.mu.Lock()
	r.init()
	drained := r.drained
	r.mu.Unlock()
	select {
	case <-drained:
		return nil
	default:
	}
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stopping reports whether Stop has begun (it stays true once Stop has
// returned). It never blocks, so it may be called from anywhere, including
// from the functions given to Start and Stop.
func (r *Runner) Stopping() bool { return r.stopping.Load() }
