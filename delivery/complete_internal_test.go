package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/kapseltest"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

// refusingStore refuses every EventComplete call that contains one poisoned
// event, as Postgres refused a whole statement for one row's bytes (SQLSTATE
// 22021), and counts the calls.
type refusingStore struct {
	kapsel.Store
	poisoned kapsel.EventID
	refusal  error

	mu    sync.Mutex
	calls int
}

func (s *refusingStore) EventComplete(ctx context.Context, p *kapsel.EventCompleteParams) ([]error, error) {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	for _, c := range p.Completions {
		if c.EventID == s.poisoned {
			return nil, s.refusal
		}
	}
	return s.Store.EventComplete(ctx, p)
}

// TestCompleterIsolatesRefusedRow: one completion the store refuses does not
// drop its batch's neighbours (issue 9 item 1). Each refusal is tried once:
// a typed invalid-argument error and an error the completer cannot classify.
func TestCompleterIsolatesRefusedRow(t *testing.T) {
	for name, refusal := range map[string]error{
		"ErrInvalid":   fmt.Errorf("completing events: %w: ERROR: invalid byte sequence for encoding \"UTF8\": 0xff (SQLSTATE 22021)", kapsel.ErrInvalid),
		"Unclassified": errors.New("completing events: something only this row causes"),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			clock := kapseltest.NewClock(time.Time{})
			mem := memstore.New()
			ten, err := mem.TenantInsert(ctx, &kapsel.TenantInsertParams{Name: "acme", APIKeyHash: []byte("k"), Now: clock.Now()})
			if err != nil {
				t.Fatal(err)
			}
			ep, err := mem.EndpointInsert(ctx, &kapsel.EndpointInsertParams{Now: clock.Now(), Endpoint: &kapsel.Endpoint{
				TenantID: ten.ID, Name: "dest", URL: "https://example.com/", RetryPolicy: kapsel.DefaultRetryPolicy(),
			}})
			if err != nil {
				t.Fatal(err)
			}
			const n = 13
			in := make([]*kapsel.EventInsertParams, n)
			for i := range in {
				in[i] = &kapsel.EventInsertParams{EndpointID: ep.ID, Body: []byte(fmt.Sprint(i))}
			}
			if _, err := mem.EventInsertMany(ctx, &kapsel.EventInsertManyParams{Events: in, Now: clock.Now()}); err != nil {
				t.Fatal(err)
			}
			claimed, err := mem.EventClaim(ctx, &kapsel.EventClaimParams{Limit: n, LeaseDuration: time.Minute, Now: clock.Now()})
			if err != nil || len(claimed) != n {
				t.Fatalf("claim: %d events, %v", len(claimed), err)
			}
			store := &refusingStore{Store: mem, poisoned: claimed[n/2].ID, refusal: refusal}
			var mu sync.Mutex
			hooked := map[kapsel.EventID]kapsel.AttemptOutcome{}
			d, err := New(store, &Config{Clock: clock, Logger: slog.New(slog.DiscardHandler), Hooks: kapsel.Hooks{
				OnAttempt: func(info kapsel.AttemptInfo) {
					mu.Lock()
					hooked[info.EventID] = info.Outcome
					mu.Unlock()
				},
			}})
			if err != nil {
				t.Fatal(err)
			}
			batch := make([]*outcome, n)
			for i, ev := range claimed {
				batch[i] = &outcome{
					completion: &kapsel.EventCompletion{EventID: ev.ID, LeaseToken: ev.LeaseToken, Status: kapsel.EventDelivered,
						Attempt: kapsel.Attempt{Number: 1, StartedAt: clock.Now(), StatusCode: 200}},
					info:     kapsel.AttemptInfo{EventID: ev.ID, EndpointID: ep.ID, Number: 1, Outcome: kapsel.OutcomeDelivered},
					giveUpAt: d.cfg.giveUpAt(ev.LeaseExpiresAt, clock.Now()),
				}
			}
			d.flush(batch) // one batch, as the completer would take it under load

			for _, ev := range claimed {
				got, err := mem.EventGet(ctx, &kapsel.EventGetParams{ID: ev.ID})
				if err != nil {
					t.Fatal(err)
				}
				as, err := mem.AttemptList(ctx, &kapsel.AttemptListParams{EventID: ev.ID, Limit: 10})
				if err != nil {
					t.Fatal(err)
				}
				wantStatus, wantAttempts, wantHook := kapsel.EventDelivered, 1, kapsel.OutcomeDelivered
				if ev.ID == store.poisoned {
					// Refused: its lease will expire and it is attempted again.
					wantStatus, wantAttempts, wantHook = kapsel.EventDelivering, 0, kapsel.OutcomeLeaseLost
				}
				if got.Status != wantStatus || len(as) != wantAttempts || hooked[ev.ID] != wantHook {
					t.Errorf("event %s (poisoned %v): status %s, %d attempt records, hook %s; want %s, %d, %s",
						ev.ID, ev.ID == store.poisoned, got.Status, len(as), hooked[ev.ID], wantStatus, wantAttempts, wantHook)
				}
			}
			// Bisecting: the refused halves down to the row, plus one call
			// per half that went through — about 2·log2(n), not n.
			if store.calls > 2*4+1 {
				t.Errorf("%d EventComplete calls to isolate one row of %d", store.calls, n)
			}
			t.Logf("%d EventComplete calls isolated the refused row among %d", store.calls, n)
		})
	}
}
