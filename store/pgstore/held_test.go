package pgstore_test

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// endpoint adds an endpoint to the fixture's tenant.
func (f *fixture) endpoint(state kapsel.EndpointState) *kapsel.Endpoint {
	f.t.Helper()
	ep, err := f.s.EndpointInsert(f.t.Context(), &kapsel.EndpointInsertParams{Endpoint: &kapsel.Endpoint{
		TenantID: f.ep.TenantID, Name: "x", URL: "https://example.com/", State: state,
		DisabledReason: kapsel.DisabledManual, RetryPolicy: kapsel.DefaultRetryPolicy(),
	}, Now: f.now})
	if err != nil {
		f.t.Fatal(err)
	}
	return ep
}

// backlog inserts n events of ep created (and due) at at.
func (f *fixture) backlog(ep *kapsel.Endpoint, n int, at time.Time) {
	f.t.Helper()
	for n > 0 {
		in := make([]*kapsel.EventInsertParams, min(n, 500))
		for i := range in {
			body := []byte(fmt.Sprintf(`{"i":%d}`, i))
			sum := sha256.Sum256(body)
			in[i] = &kapsel.EventInsertParams{EndpointID: ep.ID, Body: body, BodyHash: sum[:]}
		}
		if _, err := f.s.EventInsertMany(f.t.Context(), &kapsel.EventInsertManyParams{Events: in, Now: at}); err != nil {
			f.t.Fatal(err)
		}
		n -= len(in)
	}
}

// count runs a count(*) query.
func (f *fixture) count(sql string, args ...any) int {
	f.t.Helper()
	var n int
	if err := f.s.Pool().QueryRow(f.t.Context(), sql, args...).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

func (f *fixture) claim(limit int, now time.Time) []*kapsel.Event {
	f.t.Helper()
	evs, err := f.s.EventClaim(f.t.Context(), &kapsel.EventClaimParams{Limit: limit, LeaseDuration: time.Minute, Now: now})
	if err != nil {
		f.t.Fatal(err)
	}
	return evs
}

func TestPausedBacklogIsHeldAndReleased(t *testing.T) {
	f := setup(t)
	ctx := t.Context()
	paused := f.endpoint(kapsel.EndpointPaused)
	const n = 3000
	f.backlog(paused, n, f.now.Add(-time.Hour))
	f.backlog(f.ep, 5, f.now)
	// The claim reads events_pending_idx from the front up to claimable_at
	// <= now: that range is what every claim may have to walk.
	dueRange := func() int {
		return f.count(`SELECT count(*) FROM events WHERE status = 'pending' AND claimable_at <= $1`, f.now)
	}
	if got := dueRange(); got != n+5 {
		t.Fatalf("%d events in the due range before any claim, want %d", got, n+5)
	}
	evs := f.claim(10, f.now)
	if len(evs) != 5 {
		t.Fatalf("claimed %d events, want the active endpoint's 5", len(evs))
	}
	for _, e := range evs {
		if e.EndpointID != f.ep.ID {
			t.Fatalf("claimed an event of the paused endpoint")
		}
	}
	if held := f.count(`SELECT count(*) FROM events WHERE endpoint_id = $1 AND claimable_at = 'infinity'`, paused.ID); held != n {
		t.Fatalf("%d of the paused endpoint's %d events are held", held, n)
	}
	// What the API shows does not change.
	var one string
	if err := f.s.Pool().QueryRow(ctx, `SELECT id FROM events WHERE endpoint_id = $1 LIMIT 1`, paused.ID).Scan(&one); err != nil {
		t.Fatal(err)
	}
	got, err := f.s.EventGet(ctx, &kapsel.EventGetParams{ID: kapsel.EventID(one)})
	if err != nil || !got.NextAttemptAt.Equal(f.now.Add(-time.Hour)) || got.Status != kapsel.EventPending {
		t.Fatalf("held event = %+v, %v; want pending, NextAttemptAt unchanged", got, err)
	}
	if got := dueRange(); got != 0 {
		t.Fatalf("%d events left in the due range after one claim, want none", got)
	}

	// Resumed: the backlog is due again, earliest first.
	if _, err := f.s.EndpointSetState(ctx, &kapsel.EndpointSetStateParams{ID: paused.ID, State: kapsel.EndpointActive, Now: f.now}); err != nil {
		t.Fatal(err)
	}
	if held := f.count(`SELECT count(*) FROM events WHERE claimable_at > next_attempt_at`); held != 0 {
		t.Fatalf("%d events still held after the resume", held)
	}
	evs = f.claim(n, f.now)
	if len(evs) != n {
		t.Fatalf("claimed %d events after the resume, want %d", len(evs), n)
	}
}

func TestBreakerBacklogIsHeldUntilOpenUntil(t *testing.T) {
	f := setup(t)
	ctx := t.Context()
	openUntil := f.now.Add(time.Minute)
	if _, err := f.s.BreakerSave(ctx, &kapsel.BreakerSaveParams{State: &kapsel.BreakerState{
		EndpointID: f.ep.ID, Status: kapsel.BreakerOpen, OpenUntil: openUntil}, Now: f.now}); err != nil {
		t.Fatal(err)
	}
	f.backlog(f.ep, 300, f.now)
	if evs := f.claim(500, f.now); len(evs) != 0 {
		t.Fatalf("claimed %d events while the breaker is open", len(evs))
	}
	if held := f.count(`SELECT count(*) FROM events WHERE claimable_at = $1 AND next_attempt_at = $2`, openUntil, f.now); held != 300 {
		t.Fatalf("%d of 300 events held until the breaker's OpenUntil", held)
	}
	if evs := f.claim(500, openUntil.Add(-time.Microsecond)); len(evs) != 0 {
		t.Fatalf("claimed %d events before OpenUntil", len(evs))
	}
	if evs := f.claim(500, openUntil); len(evs) != 300 {
		t.Fatalf("claimed %d events at OpenUntil, want 300", len(evs))
	}

	// A breaker reset gives held events back at once.
	f.backlog(f.ep, 50, f.now)
	if _, err := f.s.BreakerSave(ctx, &kapsel.BreakerSaveParams{State: &kapsel.BreakerState{
		EndpointID: f.ep.ID, Status: kapsel.BreakerOpen, OpenUntil: f.now.Add(time.Hour)}, ExpectedVersion: 1, Now: f.now}); err != nil {
		t.Fatal(err)
	}
	if evs := f.claim(500, f.now); len(evs) != 0 {
		t.Fatalf("claimed %d events while the breaker is open", len(evs))
	}
	if err := f.s.BreakerDelete(ctx, &kapsel.BreakerDeleteParams{EndpointID: f.ep.ID}); err != nil {
		t.Fatal(err)
	}
	if evs := f.claim(500, f.now); len(evs) != 50 {
		t.Fatalf("claimed %d events after the breaker reset, want 50", len(evs))
	}
}

// TestPauseResumeWhileClaiming pauses and resumes an endpoint while claimers
// run, so that holds race with resumes; every event must still be delivered
// in the end — none stranded behind a hold.
func TestPauseResumeWhileClaiming(t *testing.T) {
	f := setup(t)
	ep := f.endpoint(kapsel.EndpointActive)
	setState := func(s kapsel.EndpointState) {
		if _, err := f.s.EndpointSetState(t.Context(), &kapsel.EndpointSetStateParams{ID: ep.ID, State: s, Now: f.now}); err != nil {
			t.Error(err)
		}
	}
	f.deliverWhileBlocking(ep, func() { setState(kapsel.EndpointPaused) }, func() { setState(kapsel.EndpointActive) })
}

// TestBreakerCloseWhileClaiming opens and closes an endpoint's breaker while
// claimers run, so that claims holding events for the open breaker race
// with saves that close it; every event must still be delivered with the
// clock standing still — none left held until an OpenUntil that no longer
// applies.
func TestBreakerCloseWhileClaiming(t *testing.T) {
	f := setup(t)
	ep := f.endpoint(kapsel.EndpointActive)
	var version int64
	save := func(status kapsel.BreakerStatus, openUntil time.Time) {
		st, err := f.s.BreakerSave(t.Context(), &kapsel.BreakerSaveParams{State: &kapsel.BreakerState{
			EndpointID: ep.ID, Status: status, OpenUntil: openUntil}, ExpectedVersion: version, Now: f.now})
		if err != nil {
			t.Error(err)
			return
		}
		version = st.Version
	}
	f.deliverWhileBlocking(ep,
		func() { save(kapsel.BreakerOpen, f.now.Add(time.Hour)) },
		func() { save(kapsel.BreakerClosed, time.Time{}) })
}

// deliverWhileBlocking runs two claimers that deliver whatever they claim,
// with the clock standing still, while it blocks ep, inserts a due backlog
// and unblocks ep, round after round; every event must be delivered in the
// end — none stranded behind a hold.
func (f *fixture) deliverWhileBlocking(ep *kapsel.Endpoint, block, unblock func()) {
	t := f.t
	ctx := t.Context()
	const rounds, perRound = 8, 150
	var delivered atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				evs, err := f.s.EventClaim(ctx, &kapsel.EventClaimParams{Limit: 20, LeaseDuration: time.Hour, Now: f.now})
				if err != nil {
					t.Error(err)
					return
				}
				cs := make([]kapsel.EventCompletion, len(evs))
				for i, e := range evs {
					cs[i] = kapsel.EventCompletion{EventID: e.ID, LeaseToken: e.LeaseToken, Status: kapsel.EventDelivered,
						Attempt: kapsel.Attempt{StartedAt: f.now, StatusCode: 200}}
				}
				if len(cs) > 0 {
					if _, err := f.s.EventComplete(ctx, &kapsel.EventCompleteParams{Completions: cs, Now: f.now}); err != nil {
						t.Error(err)
						return
					}
					delivered.Add(int64(len(cs)))
				}
			}
		})
	}
	for range rounds {
		block()
		f.backlog(ep, perRound, f.now.Add(-time.Minute))
		unblock()
	}
	deadline := time.Now().Add(60 * time.Second)
	for delivered.Load() < rounds*perRound && time.Now().Before(deadline) {
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
		}
	}
	close(stop)
	wg.Wait()
	if got := delivered.Load(); got != rounds*perRound {
		stranded := f.count(`SELECT count(*) FROM events WHERE status = 'pending' AND claimable_at > next_attempt_at`)
		t.Fatalf("delivered %d of %d events; %d pending events are still held", got, rounds*perRound, stranded)
	}
}
