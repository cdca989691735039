package lifecycle_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel/internal/lifecycle"
)

var (
	errStart = errors.New("start failed")
	errStop  = errors.New("stop failed")
)

// step is one call on a Runner in a sequence test.
type step struct {
	op      string // "start", "start-fail", "stop", "stop-fail", "admit"
	wantErr error  // for start and stop
	wantOK  bool   // for admit
}

func TestSequences(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		steps      []step
		wantStarts int // start functions called
		wantStops  int // stop functions called
	}{
		{"admit before start", []step{{op: "admit", wantOK: false}}, 0, 0},
		{"start then admit", []step{{op: "start"}, {op: "admit", wantOK: true}}, 1, 0},
		{"start twice", []step{{op: "start"}, {op: "start", wantErr: lifecycle.ErrStarted}}, 1, 0},
		{"stop before start", []step{
			{op: "stop"}, {op: "admit", wantOK: false}, {op: "start", wantErr: lifecycle.ErrStopped}, {op: "stop"},
		}, 0, 0},
		{"start after stop", []step{
			{op: "start"}, {op: "stop"}, {op: "start", wantErr: lifecycle.ErrStarted}, {op: "admit", wantOK: false},
		}, 1, 1},
		{"failed start leaves it new", []step{
			{op: "start-fail", wantErr: errStart}, {op: "admit", wantOK: false}, {op: "start"}, {op: "admit", wantOK: true},
		}, 2, 0},
		{"stop after failed start calls nothing", []step{
			{op: "start-fail", wantErr: errStart}, {op: "stop"}, {op: "start", wantErr: lifecycle.ErrStopped},
		}, 1, 0},
		{"second stop returns the first one's error", []step{
			{op: "start"}, {op: "stop-fail", wantErr: errStop}, {op: "stop", wantErr: errStop}, {op: "stop", wantErr: errStop},
		}, 1, 1},
		{"second stop returns the first one's nil", []step{
			{op: "start"}, {op: "stop"}, {op: "stop-fail"},
		}, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var r lifecycle.Runner
			starts, stops := 0, 0
			start := func(err error) func() error { return func() error { starts++; return err } }
			stop := func(err error) func(context.Context) error {
				return func(context.Context) error { stops++; return err }
			}
			ctx := context.Background()
			for i, s := range tt.steps {
				var err error
				switch s.op {
				case "start":
					err = r.Start(start(nil))
				case "start-fail":
					err = r.Start(start(errStart))
				case "stop":
					err = r.Stop(ctx, stop(nil))
				case "stop-fail":
					err = r.Stop(ctx, stop(errStop))
				case "admit":
					release, ok := r.Admit()
					if ok != s.wantOK {
						t.Fatalf("step %d: Admit ok = %v, want %v", i, ok, s.wantOK)
					}
					if ok {
						release()
					} else if release != nil {
						t.Fatalf("step %d: a refused Admit returned a release func", i)
					}
					continue
				}
				if !errors.Is(err, s.wantErr) { // errors.Is(err, nil) is err == nil
					t.Fatalf("step %d (%s) = %v, want %v", i, s.op, err, s.wantErr)
				}
			}
			if starts != tt.wantStarts || stops != tt.wantStops {
				t.Fatalf("start called %d times, stop %d times; want %d and %d", starts, stops, tt.wantStarts, tt.wantStops)
			}
		})
	}
}

// TestSecondStopWaitsForFirst: while the first Stop is under way, a later
// Stop returns only the first one's result, or its own ctx's error.
func TestSecondStopWaitsForFirst(t *testing.T) {
	t.Parallel()
	var r lifecycle.Runner
	if err := r.Start(nil); err != nil {
		t.Fatal(err)
	}
	entered, finish := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- r.Stop(context.Background(), func(context.Context) error {
			close(entered)
			<-finish
			return errStop
		})
	}()
	<-entered
	if !r.Stopping() {
		t.Fatal("Stopping() = false while Stop runs")
	}

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Stop(cancelled, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("second Stop with an ended ctx while the first runs = %v, want context.Canceled", err)
	}

	second := make(chan error, 1)
	called := atomic.Bool{}
	go func() {
		second <- r.Stop(context.Background(), func(context.Context) error { called.Store(true); return nil })
	}()
	close(finish)
	// errStop exists only once the first stop function has returned, so
	// getting it proves the second Stop waited.
	if err := <-second; !errors.Is(err, errStop) {
		t.Fatalf("second Stop = %v, want the first one's %v", err, errStop)
	}
	if err := <-first; !errors.Is(err, errStop) {
		t.Fatalf("first Stop = %v, want %v", err, errStop)
	}
	if called.Load() {
		t.Fatal("a second Stop called its stop function")
	}
	// Finished: even an ended ctx gets the first one's result.
	if err := r.Stop(cancelled, nil); !errors.Is(err, errStop) {
		t.Fatalf("Stop with an ended ctx after the first finished = %v, want %v", err, errStop)
	}
}

// TestAdmitVersusStop races admitters against Stop: nothing is admitted once
// Stop began, and Drain returns only when every admitted unit was released.
func TestAdmitVersusStop(t *testing.T) {
	t.Parallel()
	for range 20 {
		var r lifecycle.Runner
		if err := r.Start(nil); err != nil {
			t.Fatal(err)
		}
		var (
			drained  atomic.Bool
			inFlight atomic.Int64
			admitted atomic.Int64
			late     atomic.Int64 // admitted after Drain returned
			wg       sync.WaitGroup
		)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					release, ok := r.Admit()
					if !ok {
						return
					}
					inFlight.Add(1)
					if drained.Load() {
						late.Add(1)
					}
					admitted.Add(1)
					runtime.Gosched()
					inFlight.Add(-1)
					release()
				}
			}()
		}
		// Stop while work is being admitted.
		for admitted.Load() < 50 {
			runtime.Gosched()
		}
		var leftOver int64
		err := r.Stop(context.Background(), func(ctx context.Context) error {
			if err := r.Drain(ctx); err != nil {
				return err
			}
			leftOver = inFlight.Load()
			drained.Store(true)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if late.Load() != 0 || leftOver != 0 {
			t.Fatalf("%d admitted after the drain, %d still in flight at it", late.Load(), leftOver)
		}
		if _, ok := r.Admit(); ok {
			t.Fatal("Admit succeeded after Stop")
		}
	}
}

// TestDrainBoundedByCtx: work that is never released holds Drain only until
// ctx ends; Stop returns that error, and a later Drain sees the release.
func TestDrainBoundedByCtx(t *testing.T) {
	t.Parallel()
	var r lifecycle.Runner
	if err := r.Start(nil); err != nil {
		t.Fatal(err)
	}
	held, ok := r.Admit()
	if !ok {
		t.Fatal("Admit refused while running")
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() {
		stopped <- r.Stop(ctx, func(ctx context.Context) error { return r.Drain(ctx) })
	}()
	for !r.Stopping() {
		runtime.Gosched()
	}
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) while admitted work was held", err)
	default:
	}
	cancel()
	if err := <-stopped; !errors.Is(err, context.Canceled) {
		t.Fatalf("Stop = %v, want context.Canceled", err)
	}

	deadline, cancel2 := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel2()
	if err := r.Drain(deadline); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain with work held = %v, want context.DeadlineExceeded", err)
	}
	held()
	if err := r.Drain(context.Background()); err != nil {
		t.Fatalf("Drain after the release = %v", err)
	}
}

// TestReleaseTwice: a release called twice counts once, so it cannot hide
// another unit still at work.
func TestReleaseTwice(t *testing.T) {
	t.Parallel()
	var r lifecycle.Runner
	if err := r.Start(nil); err != nil {
		t.Fatal(err)
	}
	a, _ := r.Admit()
	b, ok := r.Admit()
	if !ok {
		t.Fatal("Admit refused while running")
	}
	a()
	a()
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Stop(ended, func(ctx context.Context) error { return r.Drain(ctx) }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Stop with one unit still admitted = %v, want context.Canceled", err)
	}
	b()
	if err := r.Drain(ended); err != nil {
		t.Fatalf("Drain once all were released = %v, want nil even with an ended ctx", err)
	}
}

// TestStopDuringStart: Start's function runs under the lock, so a Stop that
// arrives meanwhile finds the Runner running and calls its stop function.
func TestStopDuringStart(t *testing.T) {
	t.Parallel()
	var r lifecycle.Runner
	entered, finish := make(chan struct{}), make(chan struct{})
	started := make(chan error, 1)
	go func() {
		started <- r.Start(func() error { close(entered); <-finish; return nil })
	}()
	<-entered
	stopCalled := make(chan bool, 1)
	stopped := make(chan error, 1)
	go func() {
		stopped <- r.Stop(context.Background(), func(context.Context) error { stopCalled <- true; return nil })
	}()
	close(finish)
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	select {
	case <-stopCalled:
	default:
		t.Fatal("Stop racing a Start that succeeded did not call its stop function")
	}
}

// TestStopping: false until Stop is called, then true for good — also when
// Stop comes before Start.
func TestStopping(t *testing.T) {
	t.Parallel()
	for _, start := range []bool{false, true} {
		var r lifecycle.Runner
		if start {
			if err := r.Start(nil); err != nil {
				t.Fatal(err)
			}
		}
		if r.Stopping() {
			t.Fatal("Stopping() = true before Stop")
		}
		var inside bool
		if err := r.Stop(context.Background(), func(context.Context) error { inside = r.Stopping(); return nil }); err != nil {
			t.Fatal(err)
		}
		if start && !inside {
			t.Fatal("Stopping() = false inside the stop function")
		}
		if !r.Stopping() {
			t.Fatalf("Stopping() = false after Stop (started: %v)", start)
		}
	}
}
