package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// postAsync posts n requests concurrently and returns their recorders once
// all are answered, through the returned wait function.
func (e *env) postAsync(n int, id func(i int) kapsel.SourceID, body func(i int) string) func() []*httptest.ResponseRecorder {
	out := make([]*httptest.ResponseRecorder, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); out[i] = e.post(id(i), body(i)) }()
	}
	return func() []*httptest.ResponseRecorder { wg.Wait(); return out }
}

func TestStoreFailureAnswers503AndWritesNothing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  *Config
		fail func(f *faultStore)
	}{
		{"unavailable", nil, func(f *faultStore) {
			f.failBatch = func([]*kapsel.EventInsertParams) error { return fmt.Errorf("dial: %w", kapsel.ErrUnavailable) }
		}},
		{"any other error", nil, func(f *faultStore) {
			f.failBatch = func([]*kapsel.EventInsertParams) error { return errors.New("disk full") }
		}},
		{"commit timeout", &Config{CommitTimeout: 20 * time.Millisecond}, func(f *faultStore) { f.hold = make(chan struct{}) }},
		{"source lookup fails", nil, func(f *faultStore) { f.failGet = fmt.Errorf("%w: reset", kapsel.ErrUnavailable) }},
		{"no group commit", &Config{DisableGroupCommit: true}, func(f *faultStore) {
			f.failBatch = func([]*kapsel.EventInsertParams) error { return fmt.Errorf("dial: %w", kapsel.ErrUnavailable) }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, f := setupFault(t, tc.cfg)
			src := e.source(nil, kapsel.VerifierConfig{})
			f.set(tc.fail)
			answers := e.postAsync(8, func(int) kapsel.SourceID { return src.ID }, func(i int) string { return fmt.Sprint(i) })()
			for _, w := range answers {
				d := refused(t, w, 503, kapsel.CodeStorageUnavailable)
				if w.Header().Get("Retry-After") != "1" {
					t.Fatalf("Retry-After %q", w.Header().Get("Retry-After"))
				}
				if strings.Contains(d.Detail, "disk full") || strings.Contains(d.Detail, "dial") {
					t.Fatalf("internal error leaked: %q", d.Detail)
				}
			}
			if n := len(e.events(src.ID)); n != 0 {
				t.Fatalf("%d events written", n)
			}
			if e.wakeCount() != 0 {
				t.Fatal("dispatcher woken for nothing")
			}
			// The store recovers: ingest works again (the lookup error was not cached).
			f.set(func(f *faultStore) { f.failBatch, f.failGet, f.hold = nil, nil, nil })
			accepted(t, e.post(src.ID, "after"), 202)
		})
	}
}

// holdCommits makes the store hold every commit until release is called.
func holdCommits(f *faultStore) (release func()) {
	hold := make(chan struct{})
	f.set(func(f *faultStore) { f.hold = hold })
	return func() { close(hold) }
}

// holdFirstCommit makes the store hold every commit until release is
// called, posts "first" to src and waits until its commit is held; first
// returns that request's answer once it is given.
func (e *env) holdFirstCommit(t *testing.T, f *faultStore, src kapsel.SourceID) (first func() []*httptest.ResponseRecorder, release func()) {
	t.Helper()
	commits := len(f.batchSizes()) + 1
	release = holdCommits(f)
	first = e.postAsync(1, func(int) kapsel.SourceID { return src }, func(int) string { return "first" })
	waitFor(t, "first commit", func() bool { return len(f.batchSizes()) == commits })
	return first, release
}

func TestGroupCommitBatchesConcurrentRequests(t *testing.T) {
	t.Parallel()
	e, f := setupFault(t, &Config{MaxFlushes: 1})
	src := e.source(nil, kapsel.VerifierConfig{})
	first, release := e.holdFirstCommit(t, f, src.ID)
	const n = 30
	rest := e.postAsync(n, func(int) kapsel.SourceID { return src.ID }, func(i int) string { return fmt.Sprint(i) })
	waitFor(t, "rows gathered", func() bool { return e.in.batcher.waiting.Load() == n })
	if got := f.batchSizes(); len(got) != 1 {
		t.Fatalf("a second commit started while the only slot was busy: %v", got)
	}
	release()
	answers := append(first(), rest()...)
	ids := map[kapsel.EventID]bool{}
	for _, w := range answers {
		ids[accepted(t, w, 202).ID] = true
	}
	if len(ids) != n+1 || len(e.events(src.ID)) != n+1 {
		t.Fatalf("%d distinct ids, %d events; want %d", len(ids), len(e.events(src.ID)), n+1)
	}
	if got := f.batchSizes(); len(got) != 2 || got[0] != 1 || got[1] != n {
		t.Fatalf("commits %v, want [1 %d]", got, n)
	}
	if e.wakeCount() != 2 {
		t.Fatalf("%d wakes, want one per batch (2)", e.wakeCount())
	}
}

func TestBatchSizeBounded(t *testing.T) {
	t.Parallel()
	e, f := setupFault(t, &Config{MaxFlushes: 1, BatchSize: 7})
	src := e.source(nil, kapsel.VerifierConfig{})
	first, release := e.holdFirstCommit(t, f, src.ID)
	rest := e.postAsync(20, func(int) kapsel.SourceID { return src.ID }, func(i int) string { return fmt.Sprint(i) })
	waitFor(t, "rows queued", func() bool { return e.in.batcher.waiting.Load() == 20 })
	release()
	first()
	rest()
	total := 0
	for _, s := range f.batchSizes() {
		if s > 7 {
			t.Fatalf("batch of %d over BatchSize 7: %v", s, f.batchSizes())
		}
		total += s
	}
	if total != 21 {
		t.Fatalf("%d rows committed, want 21", total)
	}
}

func TestBadRowDoesNotFailNeighbours(t *testing.T) {
	t.Parallel()
	e, f := setupFault(t, &Config{MaxFlushes: 1})
	src := e.source(nil, kapsel.VerifierConfig{})
	gone := e.source(nil, kapsel.VerifierConfig{})
	accepted(t, e.post(gone.ID, "warm the cache"), 202)
	// Its rows reach the store, which refuses the whole call with
	// ErrNotFound, as a foreign key would for a source (or tenant) deleted
	// for good after the ingester cached it.
	f.set(func(f *faultStore) {
		f.failBatch = func(rows []*kapsel.EventInsertParams) error {
			for _, r := range rows {
				if string(r.Body) == "poison" {
					return errors.New("invalid byte sequence")
				}
				if r.SourceID == gone.ID {
					return fmt.Errorf("source %s: %w", gone.ID, kapsel.ErrNotFound)
				}
			}
			return nil
		}
	})
	first, release := e.holdFirstCommit(t, f, src.ID)
	const n = 12
	body := func(i int) string {
		switch i {
		case 3:
			return "poison"
		}
		return fmt.Sprint(i)
	}
	id := func(i int) kapsel.SourceID {
		if i == 7 {
			return gone.ID
		}
		return src.ID
	}
	rest := e.postAsync(n, id, body)
	waitFor(t, "rows gathered", func() bool { return e.in.batcher.waiting.Load() == n })
	release()
	first()
	answers := rest()
	for i, w := range answers {
		switch i {
		case 3:
			refused(t, w, 503, kapsel.CodeStorageUnavailable)
		case 7:
			refused(t, w, 404, kapsel.CodeUnknownSource)
		default:
			accepted(t, w, 202)
		}
	}
	var bodies []string
	for _, ev := range e.events(src.ID) {
		bodies = append(bodies, string(ev.Body))
	}
	sort.Strings(bodies)
	if len(bodies) != n-1 || strings.Contains(strings.Join(bodies, ","), "poison") {
		t.Fatalf("stored %v", bodies)
	}
	if e.wakeCount() != 3 { // warm-up, first, the retried batch once
		t.Fatalf("%d wakes, want 3", e.wakeCount())
	}
}

func TestStopFlushesThenRefuses(t *testing.T) {
	t.Parallel()
	e, f := setupFault(t, nil)
	src := e.source(nil, kapsel.VerifierConfig{})
	release := holdCommits(f)
	answers := e.postAsync(10, func(int) kapsel.SourceID { return src.ID }, func(i int) string { return fmt.Sprint(i) })
	waitFor(t, "requests under way", func() bool {
		rows := int(e.in.batcher.waiting.Load())
		for _, n := range f.batchSizes() {
			rows += n
		}
		return rows == 10
	})
	stopped := make(chan error, 1)
	go func() { stopped <- e.in.Stop(context.Background()) }()
	waitFor(t, "stop refusing", func() bool {
		release, err := e.in.admit()
		if err == nil {
			release()
		}
		return err != nil
	})
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) before the commits under way ended", err)
	default:
	}
	release()
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	for _, w := range answers() {
		accepted(t, w, 202)
	}
	w := e.post(src.ID, "after stop")
	refused(t, w, 503, kapsel.CodeShuttingDown)
	if w.Header().Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	if n := len(e.events(src.ID)); n != 10 {
		t.Fatalf("%d events, want 10", n)
	}
	if err := e.in.Stop(context.Background()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

func TestNotStartedRefuses(t *testing.T) {
	t.Parallel()
	in, err := New(newFaultStore(nil), &Config{RetryAfter: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	in.Handler().ServeHTTP(w, httptest.NewRequest("POST", "/ingest/"+string(kapsel.NewSourceID()), strings.NewReader("x")))
	refused(t, w, 503, kapsel.CodeShuttingDown)
	if got := w.Header().Get("Retry-After"); got != "3" {
		t.Fatalf("Retry-After %q, want the configured 3", got)
	}
	if err := in.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := in.Start(context.Background()); err == nil {
		t.Fatal("Start after Stop succeeded")
	}
}

func TestAbandonedRowIsNeverCommitted(t *testing.T) {
	t.Parallel()
	e, f := setupFault(t, &Config{MaxFlushes: 1})
	src := e.source(nil, kapsel.VerifierConfig{})
	first, release := e.holdFirstCommit(t, f, src.ID)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := e.in.Ingest(ctx, &kapsel.IngestRequest{SourceID: string(src.ID), Body: []byte("abandoned")})
		done <- err
	}()
	waitFor(t, "row queued", func() bool { return e.in.batcher.waiting.Load() == 1 })
	cancel()
	if err := <-done; kapsel.CodeOf(err) != kapsel.CodeStorageUnavailable {
		t.Fatalf("cancelled ingest: %v", err)
	}
	release()
	accepted(t, first()[0], 202)
	accepted(t, e.post(src.ID, "next"), 202)
	for _, ev := range e.events(src.ID) {
		if string(ev.Body) == "abandoned" {
			t.Fatal("an abandoned row was committed")
		}
	}
}

func TestQueueFullAnswers503(t *testing.T) {
	t.Parallel()
	e, f := setupFault(t, &Config{MaxFlushes: 1, QueueSize: 1, BatchSize: 1})
	src := e.source(nil, kapsel.VerifierConfig{})
	first, release := e.holdFirstCommit(t, f, src.ID)
	// The loop holds one full batch waiting for the slot and the queue one
	// more; the next is refused at once.
	second := e.postAsync(2, func(int) kapsel.SourceID { return src.ID }, func(i int) string { return fmt.Sprint(i) })
	waitFor(t, "two rows waiting", func() bool { return e.in.batcher.waiting.Load() == 2 })
	w := e.post(src.ID, "overflow")
	refused(t, w, 503, kapsel.CodeStorageUnavailable)
	if w.Header().Get("Retry-After") != "1" {
		t.Fatal("no Retry-After")
	}
	release()
	accepted(t, first()[0], 202)
	for _, w := range second() {
		accepted(t, w, 202)
	}
}

func TestWithoutGroupCommit(t *testing.T) {
	t.Parallel()
	e, f := setupFault(t, &Config{DisableGroupCommit: true})
	src := e.source(nil, kapsel.VerifierConfig{})
	for _, w := range e.postAsync(10, func(int) kapsel.SourceID { return src.ID }, func(i int) string { return fmt.Sprint(i) })() {
		accepted(t, w, 202)
	}
	for _, s := range f.batchSizes() {
		if s != 1 {
			t.Fatalf("batches %v, want one row each", f.batchSizes())
		}
	}
	if len(f.batchSizes()) != 10 || e.wakeCount() != 10 {
		t.Fatalf("%d commits, %d wakes; want 10 each", len(f.batchSizes()), e.wakeCount())
	}
}
