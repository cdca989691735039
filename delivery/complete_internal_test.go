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

// refusingStore refuses every DeliveryComplete call that contains one
// poisoned delivery, as Postgres refused a whole statement for one row's bytes (SQLSTATE
// 22021), and counts the calls.
type refusingStore struct {
	kapsel.Store
	poisoned kapsel.DeliveryID
	refusal  error

	mu    sync.Mutex
	calls int
}

func (s *refusingStore) DeliveryComplete(ctx context.Context, p *kapsel.DeliveryCompleteParams) ([]error, error) {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	for _, c := range p.Completions {
		if c.DeliveryID == s.poisoned {
			return nil, s.refusal
		}
	}
	return s.Store.DeliveryComplete(ctx, p)
}

// TestCompleterIsolatesRefusedRow: one completion the store refuses does not
// drop its batch's neighbours (issue 9 item 1). Each refusal is tried once:
// a typed invalid-argument error and an error the completer cannot classify.
func TestCompleterIsolatesRefusedRow(t *testing.T) {
	for name, refusal := range map[string]error{
		"ErrInvalid":   fmt.Errorf("completing deliveries: %w: ERROR: invalid byte sequence for encoding \"UTF8\": 0xff (SQLSTATE 22021)", kapsel.ErrInvalid),
		"Unclassified": errors.New("completing deliveries: something only this row causes"),
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
				in[i] = &kapsel.EventInsertParams{TenantID: ten.ID, Body: []byte(fmt.Sprint(i))}
			}
			if _, err := mem.EventInsertMany(ctx, &kapsel.EventInsertManyParams{Events: in, Now: clock.Now()}); err != nil {
				t.Fatal(err)
			}
			claimed, err := mem.DeliveryClaim(ctx, &kapsel.DeliveryClaimParams{Limit: n, LeaseDuration: time.Minute, Now: clock.Now()})
			if err != nil || len(claimed) != n {
				t.Fatalf("claim: %d deliveries, %v", len(claimed), err)
			}
			store := &refusingStore{Store: mem, poisoned: claimed[n/2].ID, refusal: refusal}
			var mu sync.Mutex
			hooked := map[kapsel.DeliveryID]kapsel.AttemptOutcome{}
			d, err := New(store, &Config{Clock: clock, Logger: slog.New(slog.DiscardHandler), Hooks: kapsel.Hooks{
				OnAttempt: func(info kapsel.AttemptInfo) {
					mu.Lock()
					hooked[info.DeliveryID] = info.Outcome
					mu.Unlock()
				},
			}})
			if err != nil {
				t.Fatal(err)
			}
			batch := make([]*outcome, n)
			for i, dl := range claimed {
				batch[i] = &outcome{
					completion: &kapsel.DeliveryCompletion{DeliveryID: dl.ID, LeaseToken: dl.LeaseToken, Status: kapsel.DeliveryDelivered,
						Attempt: kapsel.Attempt{Number: 1, StartedAt: clock.Now(), StatusCode: 200}},
					info: kapsel.AttemptInfo{EventID: dl.EventID, DeliveryID: dl.ID, EndpointID: ep.ID, Number: 1,
						Outcome: kapsel.OutcomeDelivered},
					giveUpAt: d.cfg.giveUpAt(dl.LeaseExpiresAt, clock.Now()),
				}
			}
			d.flush(batch) // one batch, as the completer would take it under load

			for _, dl := range claimed {
				got, err := mem.DeliveryGet(ctx, &kapsel.DeliveryGetParams{ID: dl.ID})
				if err != nil {
					t.Fatal(err)
				}
				as, err := mem.AttemptList(ctx, &kapsel.AttemptListParams{DeliveryID: dl.ID, Limit: 10})
				if err != nil {
					t.Fatal(err)
				}
				wantStatus, wantAttempts, wantHook := kapsel.DeliveryDelivered, 1, kapsel.OutcomeDelivered
				if dl.ID == store.poisoned {
					// Refused: its lease will expire and it is attempted again.
					wantStatus, wantAttempts, wantHook = kapsel.DeliveryDelivering, 0, kapsel.OutcomeLeaseLost
				}
				if got.Status != wantStatus || len(as) != wantAttempts || hooked[dl.ID] != wantHook {
					t.Errorf("delivery %s (poisoned %v): status %s, %d attempt records, hook %s; want %s, %d, %s",
						dl.ID, dl.ID == store.poisoned, got.Status, len(as), hooked[dl.ID], wantStatus, wantAttempts, wantHook)
				}
			}
			// Bisecting: the refused halves down to the row, plus one call
			// per half that went through — about 2·log2(n), not n.
			if store.calls > 2*4+1 {
				t.Errorf("%d DeliveryComplete calls to isolate one row of %d", store.calls, n)
			}
			t.Logf("%d DeliveryComplete calls isolated the refused row among %d", store.calls, n)
		})
	}
}
