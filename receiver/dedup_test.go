package receiver_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel/receiver"
)

func TestDuplicateIsAnswered200WithoutCallingNext(t *testing.T) {
	t.Parallel()
	e := setup(t, receiver.Config{})
	requireStatus(t, e.serve(e.signed("evt_1", `{"n":1}`)), http.StatusNoContent)

	// Kapsel's retry of the same event: same webhook-id, a new timestamp.
	e.clock.Advance(2 * time.Second)
	w := e.serve(e.signed("evt_1", `{"n":1}`))
	requireStatus(t, w, http.StatusOK)
	if w.Body.Len() != 0 {
		t.Fatalf("duplicate answered with a body: %q", w.Body.String())
	}
	if e.Calls() != 1 {
		t.Fatalf("next called %d times, want 1", e.Calls())
	}

	// Another event is not a duplicate.
	requireStatus(t, e.serve(e.signed("evt_2", `{"n":1}`)), http.StatusNoContent)
	if e.Calls() != 2 {
		t.Fatalf("next called %d times, want 2", e.Calls())
	}
}

func TestFailedHandlingIsRetried(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusInternalServerError, http.StatusServiceUnavailable, http.StatusBadRequest, http.StatusFound} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			t.Parallel()
			e := setup(t, receiver.Config{})
			e.answer = func(w http.ResponseWriter, call int) {
				if call == 1 {
					http.Error(w, "try again", status)
					return
				}
				w.WriteHeader(http.StatusAccepted)
			}
			requireStatus(t, e.serve(e.signed("evt_1", `{}`)), status)

			e.clock.Advance(2 * time.Second)
			requireStatus(t, e.serve(e.signed("evt_1", `{}`)), http.StatusAccepted)
			if e.Calls() != 2 {
				t.Fatalf("next called %d times, want 2: the retry of a failed handling must be handled", e.Calls())
			}

			e.clock.Advance(2 * time.Second)
			requireStatus(t, e.serve(e.signed("evt_1", `{}`)), http.StatusOK)
			if e.Calls() != 2 {
				t.Fatalf("next called %d times, want 2: a handled id is a duplicate", e.Calls())
			}
		})
	}
}

func TestHandlerWritingNothingSucceeds(t *testing.T) {
	t.Parallel()
	e := setup(t, receiver.Config{})
	e.answer = func(http.ResponseWriter, int) {} // net/http sends 200
	requireStatus(t, e.serve(e.signed("evt_1", `{}`)), http.StatusOK)
	requireStatus(t, e.serve(e.signed("evt_1", `{}`)), http.StatusOK)
	if e.Calls() != 1 {
		t.Fatalf("next called %d times, want 1", e.Calls())
	}
}

func TestPanickingHandlerReleasesTheClaim(t *testing.T) {
	t.Parallel()
	e := setup(t, receiver.Config{})
	e.answer = func(w http.ResponseWriter, call int) {
		if call == 1 {
			w.WriteHeader(http.StatusOK) // even after a 2xx header: the handling did not finish
			panic(http.ErrAbortHandler)
		}
	}
	func() {
		defer func() {
			if p := recover(); p != http.ErrAbortHandler {
				t.Fatalf("recovered %v, want the handler's panic", p)
			}
		}()
		e.serve(e.signed("evt_1", `{}`))
	}()
	requireStatus(t, e.serve(e.signed("evt_1", `{}`)), http.StatusOK)
	if e.Calls() != 2 {
		t.Fatalf("next called %d times, want 2", e.Calls())
	}
}

func TestForgedDeliveryDoesNotUseUpItsID(t *testing.T) {
	t.Parallel()
	e := setup(t, receiver.Config{})
	forged := e.request([]string{oldSecret}, "evt_1", e.clock.Now(), `{}`)
	requireProblem(t, e.serve(forged), http.StatusUnauthorized, "E1001")
	requireStatus(t, e.serve(e.signed("evt_1", `{}`)), http.StatusNoContent)
	if e.Calls() != 1 {
		t.Fatalf("next called %d times, want 1", e.Calls())
	}
}

func TestSeenIDIsForgottenAfterSeenTTL(t *testing.T) {
	t.Parallel()
	e := setup(t, receiver.Config{Tolerance: time.Minute, SeenTTL: 10 * time.Minute})
	requireStatus(t, e.serve(e.signed("evt_1", `{}`)), http.StatusNoContent)
	e.clock.Advance(10*time.Minute - time.Second)
	requireStatus(t, e.serve(e.signed("evt_1", `{}`)), http.StatusOK)
	e.clock.Advance(time.Second)
	requireStatus(t, e.serve(e.signed("evt_1", `{}`)), http.StatusNoContent)
	if e.Calls() != 2 {
		t.Fatalf("next called %d times, want 2", e.Calls())
	}
}

// A delivery that arrives while the same webhook-id is being handled is
// asked to come back later; once the first handling succeeded it is a
// duplicate.
func TestConcurrentDuplicateWaitsForTheFirstHandling(t *testing.T) {
	t.Parallel()
	e := setup(t, receiver.Config{RetryAfter: 1500 * time.Millisecond})
	entered, release := make(chan struct{}), make(chan struct{})
	e.answer = func(w http.ResponseWriter, call int) {
		if call == 1 {
			close(entered)
			<-release
		}
		w.WriteHeader(http.StatusNoContent)
	}
	first := make(chan *httptest.ResponseRecorder)
	go func() { first <- e.serve(e.signed("evt_1", `{}`)) }()
	<-entered

	var wg sync.WaitGroup
	answers := make([]*httptest.ResponseRecorder, 8)
	for i := range answers {
		wg.Go(func() { answers[i] = e.serve(e.signed("evt_1", `{}`)) })
	}
	wg.Wait()
	for _, w := range answers {
		requireProblem(t, w, http.StatusTooManyRequests, "E1006")
		if got := w.Header().Get("Retry-After"); got != "2" {
			t.Fatalf("Retry-After = %q, want 2", got)
		}
	}

	close(release)
	requireStatus(t, <-first, http.StatusNoContent)
	requireStatus(t, e.serve(e.signed("evt_1", `{}`)), http.StatusOK)
	if e.Calls() != 1 {
		t.Fatalf("next called %d times, want 1", e.Calls())
	}
}

// Many deliveries of one id at once, over a real connection: the handler
// runs exactly once, and every answer is either its success, a duplicate or
// a request to come back.
func TestConcurrentDuplicatesCallNextOnce(t *testing.T) {
	t.Parallel()
	e := setup(t, receiver.Config{})
	srv := httptest.NewServer(e.h)
	defer srv.Close()

	const n = 32
	const body = `{"same":"event"}`
	header := e.signed("evt_1", body).Header
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			req, err := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			req.Header = header.Clone()
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes[i] = resp.StatusCode
		})
	}
	wg.Wait()
	handled := 0
	for _, c := range codes {
		switch c {
		case http.StatusNoContent:
			handled++
		case http.StatusOK, http.StatusTooManyRequests:
		default:
			t.Fatalf("answer %d, want 204, 200 or 429 (all: %v)", c, codes)
		}
	}
	if handled != 1 || e.Calls() != 1 {
		t.Fatalf("next called %d times, %d answers 204; want 1 and 1 (all: %v)", e.Calls(), handled, codes)
	}
}

// failingSeen is a SeenStore whose methods fail on demand, recording calls.
type failingSeen struct {
	*receiver.MemorySeen
	claimErr, commitErr error

	mu       sync.Mutex
	released []string
}

func (f *failingSeen) Claim(ctx context.Context, id string, now time.Time) (receiver.ClaimStatus, error) {
	if f.claimErr != nil {
		return 0, f.claimErr
	}
	return f.MemorySeen.Claim(ctx, id, now)
}

func (f *failingSeen) Commit(ctx context.Context, id string, expires time.Time) error {
	if f.commitErr != nil {
		return f.commitErr
	}
	return f.MemorySeen.Commit(ctx, id, expires)
}

func (f *failingSeen) Release(ctx context.Context, id string) error {
	f.mu.Lock()
	f.released = append(f.released, id)
	f.mu.Unlock()
	return f.MemorySeen.Release(ctx, id)
}

func TestSeenStoreClaimFailureAnswers503(t *testing.T) {
	t.Parallel()
	seen := &failingSeen{MemorySeen: receiver.NewMemorySeen(0), claimErr: errors.New("redis: connection refused")}
	e := setup(t, receiver.Config{Seen: seen})
	w := e.serve(e.signed("evt_1", `{}`))
	detail := requireProblem(t, w, http.StatusServiceUnavailable, "E3001")
	if w.Header().Get("Retry-After") != "1" {
		t.Fatalf("Retry-After = %q, want 1", w.Header().Get("Retry-After"))
	}
	if e.Calls() != 0 {
		t.Fatalf("next called %d times, want 0", e.Calls())
	}
	if strings.Contains(detail, "redis") {
		t.Fatalf("detail %q leaks the store's error", detail)
	}
}

func TestSeenStoreCommitFailureReleasesTheClaim(t *testing.T) {
	t.Parallel()
	seen := &failingSeen{MemorySeen: receiver.NewMemorySeen(0), commitErr: errors.New("disk full")}
	e := setup(t, receiver.Config{Seen: seen})
	requireStatus(t, e.serve(e.signed("evt_1", `{}`)), http.StatusNoContent)
	// The id could not be remembered: at least once, so a repeat is
	// handled again rather than refused as busy forever.
	requireStatus(t, e.serve(e.signed("evt_1", `{}`)), http.StatusNoContent)
	if e.Calls() != 2 || len(seen.released) != 2 {
		t.Fatalf("next called %d times, %d releases; want 2 and 2", e.Calls(), len(seen.released))
	}
}
