package pgstore_test

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

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

// backlog inserts n events sent to ep (EndpointIDs), created and due at at.
func (f *fixture) backlog(ep *kapsel.Endpoint, n int, at time.Time) {
	f.t.Helper()
	for n > 0 {
		in := make([]*kapsel.EventInsertParams, min(n, 500))
		for i := range in {
			body := []byte(fmt.Sprintf(`{"i":%d}`, i))
			sum := sha256.Sum256(body)
			in[i] = &kapsel.EventInsertParams{TenantID: ep.TenantID, EndpointIDs: []kapsel.EndpointID{ep.ID}, Body: body, BodyHash: sum[:]}
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

func (f *fixture) claim(limit int, now time.Time) []*kapsel.Delivery {
	f.t.Helper()
	evs, err := f.s.DeliveryClaim(f.t.Context(), &kapsel.DeliveryClaimParams{Limit: limit, LeaseDuration: time.Minute, Now: now})
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
	// The claim reads deliveries_pending_idx from the front up to
	// claimable_at <= now: that range is what every claim may have to walk.
	dueRange := func() int {
		return f.count(`SELECT count(*) FROM deliveries WHERE status = 'pending' AND claimable_at <= $1`, f.now)
	}
	if got := dueRange(); got != n+5 {
		t.Fatalf("%d deliveries in the due range before any claim, want %d", got, n+5)
	}
	ds := f.claim(10, f.now)
	if len(ds) != 5 {
		t.Fatalf("claimed %d deliveries, want the active endpoint's 5", len(ds))
	}
	for _, d := range ds {
		if d.EndpointID != f.ep.ID {
			t.Fatalf("claimed a delivery of the paused endpoint")
		}
	}
	if held := f.count(`SELECT count(*) FROM deliveries WHERE endpoint_id = $1 AND claimable_at = 'infinity'`, paused.ID); held != n {
		t.Fatalf("%d of the paused endpoint's %d deliveries are held", held, n)
	}
	// What the API shows does not change.
	var one string
	if err := f.s.Pool().QueryRow(ctx, `SELECT id FROM deliveries WHERE endpoint_id = $1 LIMIT 1`, paused.ID).Scan(&one); err != nil {
		t.Fatal(err)
	}
	got, err := f.s.DeliveryGet(ctx, &kapsel.DeliveryGetParams{ID: kapsel.DeliveryID(one)})
	if err != nil || !got.NextAttemptAt.Equal(f.now.Add(-time.Hour)) || got.Status != kapsel.DeliveryPending {
		t.Fatalf("held delivery = %+v, %v; want pending, NextAttemptAt unchanged", got, err)
	}
	if got := dueRange(); got != 0 {
		t.Fatalf("%d deliveries left in the due range after one claim, want none", got)
	}

	// Resumed: the backlog is due again, earliest first.
	if _, err := f.s.EndpointSetState(ctx, &kapsel.EndpointSetStateParams{ID: paused.ID, State: kapsel.EndpointActive, Now: f.now}); err != nil {
		t.Fatal(err)
	}
	if held := f.count(`SELECT count(*) FROM deliveries WHERE claimable_at > next_attempt_at`); held != 0 {
		t.Fatalf("%d deliveries still held after the resume", held)
	}
	ds = f.claim(n, f.now)
	if len(ds) != n {
		t.Fatalf("claimed %d deliveries after the resume, want %d", len(ds), n)
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
	if ds := f.claim(500, f.now); len(ds) != 0 {
		t.Fatalf("claimed %d deliveries while the breaker is open", len(ds))
	}
	if held := f.count(`SELECT count(*) FROM deliveries WHERE claimable_at = $1 AND next_attempt_at = $2`, openUntil, f.now); held != 300 {
		t.Fatalf("%d of 300 deliveries held until the breaker's OpenUntil", held)
	}
	if ds := f.claim(500, openUntil.Add(-time.Microsecond)); len(ds) != 0 {
		t.Fatalf("claimed %d deliveries before OpenUntil", len(ds))
	}
	if ds := f.claim(500, openUntil); len(ds) != 300 {
		t.Fatalf("claimed %d deliveries at OpenUntil, want 300", len(ds))
	}

	// A breaker reset gives held deliveries back at once.
	f.backlog(f.ep, 50, f.now)
	if _, err := f.s.BreakerSave(ctx, &kapsel.BreakerSaveParams{State: &kapsel.BreakerState{
		EndpointID: f.ep.ID, Status: kapsel.BreakerOpen, OpenUntil: f.now.Add(time.Hour)}, ExpectedVersion: 1, Now: f.now}); err != nil {
		t.Fatal(err)
	}
	if ds := f.claim(500, f.now); len(ds) != 0 {
		t.Fatalf("claimed %d deliveries while the breaker is open", len(ds))
	}
	if err := f.s.BreakerDelete(ctx, &kapsel.BreakerDeleteParams{EndpointID: f.ep.ID}); err != nil {
		t.Fatal(err)
	}
	if ds := f.claim(500, f.now); len(ds) != 50 {
		t.Fatalf("claimed %d deliveries after the breaker reset, want 50", len(ds))
	}
}

// TestPauseResumeWhileClaiming pauses and resumes an endpoint while claimers
// run, so that holds race with resumes; every delivery must still be made
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
// claimers run, so that claims holding deliveries for the open breaker race
// with saves that close it; every delivery must still be made with the
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
// and unblocks ep, round after round; every delivery must be made in the
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
				ds, err := f.s.DeliveryClaim(ctx, &kapsel.DeliveryClaimParams{Limit: 20, LeaseDuration: time.Hour, Now: f.now})
				if err != nil {
					t.Error(err)
					return
				}
				cs := make([]kapsel.DeliveryCompletion, len(ds))
				for i, d := range ds {
					cs[i] = kapsel.DeliveryCompletion{DeliveryID: d.ID, LeaseToken: d.LeaseToken, Status: kapsel.DeliveryDelivered,
						Attempt: kapsel.Attempt{StartedAt: f.now, StatusCode: 200}}
				}
				if len(cs) > 0 {
					if _, err := f.s.DeliveryComplete(ctx, &kapsel.DeliveryCompleteParams{Completions: cs, Now: f.now}); err != nil {
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
		stranded := f.count(`SELECT count(*) FROM deliveries WHERE status = 'pending' AND claimable_at > next_attempt_at`)
		t.Fatalf("made %d of %d deliveries; %d pending deliveries are still held", got, rounds*perRound, stranded)
	}
}

// TestBreakerSaveLocksOnlyWhatItReleases: a breaker transition writes no
// tuple lock on held deliveries it leaves as they are — those held at
// 'infinity' for an inactive endpoint, and those held until no later than
// the new OpenUntil. Locking them cost a tuple lock (xmax, WAL, a dirty
// page) per row of the backlog on every trip, probe and close, and waited
// on any claim holding one.
func TestBreakerSaveLocksOnlyWhatItReleases(t *testing.T) {
	f := setup(t)
	ctx := t.Context()
	// A tuple lock sets the row's xmax to the locking transaction: the
	// rows whose xmax changed between two calls were locked (or updated)
	// in between.
	xmaxes := func(ep *kapsel.Endpoint) map[string]string {
		rows, _ := f.s.Pool().Query(ctx, `SELECT id, xmax::text FROM deliveries WHERE endpoint_id = $1`, ep.ID)
		m := map[string]string{}
		var id, xmax string
		if _, err := pgx.ForEachRow(rows, []any{&id, &xmax}, func() error { m[id] = xmax; return nil }); err != nil {
			t.Fatal(err)
		}
		return m
	}
	changed := func(before, after map[string]string) int {
		n := 0
		for id, x := range after {
			if before[id] != x {
				n++
			}
		}
		return n
	}
	save := func(ep *kapsel.Endpoint, version int64, openUntil time.Time) {
		t.Helper()
		if _, err := f.s.BreakerSave(ctx, &kapsel.BreakerSaveParams{State: &kapsel.BreakerState{
			EndpointID: ep.ID, Status: kapsel.BreakerOpen, OpenUntil: openUntil}, ExpectedVersion: version, Now: f.now}); err != nil {
			t.Fatal(err)
		}
	}

	// Backlogs of 2,000: with a few rows the planner's join may never
	// read the lock CTE (its outer side is empty), so nothing is locked
	// whatever the CTE says.
	// Held at 'infinity': the endpoint is paused.
	paused := f.endpoint(kapsel.EndpointPaused)
	f.backlog(paused, 2000, f.now)
	// Held until the breaker's OpenUntil, which the next trip moves later.
	openUntil := f.now.Add(time.Minute)
	save(f.ep, 0, openUntil)
	f.backlog(f.ep, 2000, f.now)
	if ds := f.claim(5000, f.now); len(ds) != 0 {
		t.Fatalf("claimed %d deliveries, want none (paused, or breaker open)", len(ds))
	}
	if held := f.count(`SELECT count(*) FROM deliveries WHERE claimable_at > next_attempt_at`); held != 4000 {
		t.Fatalf("%d of 4000 deliveries held", held)
	}
	pausedBefore, heldBefore := xmaxes(paused), xmaxes(f.ep)

	save(paused, 0, f.now.Add(time.Hour))
	save(f.ep, 1, openUntil.Add(time.Hour))
	if n := changed(pausedBefore, xmaxes(paused)); n != 0 {
		t.Errorf("a breaker save locked %d deliveries held at 'infinity', which it does not update", n)
	}
	if n := changed(heldBefore, xmaxes(f.ep)); n != 0 {
		t.Errorf("a breaker save locked %d deliveries held until before its OpenUntil, which it does not update", n)
	}
	if held := f.count(`SELECT count(*) FROM deliveries WHERE claimable_at = $1`, openUntil); held != 2000 {
		t.Errorf("%d of 2000 deliveries still held until the old OpenUntil", held)
	}
}
