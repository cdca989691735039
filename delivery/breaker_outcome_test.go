package delivery_test

import (
	"context"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/delivery"
	"github.com/kapsel-dev/kapsel/kapseltest"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

// brokenSecretStore hands out the endpoint with a signing secret that cannot
// be decoded, as a row corrupted or written by a foreign tool would be: the
// store's own validation cannot be relied on to make this impossible.
type brokenSecretStore struct {
	testStore
}

func (s brokenSecretStore) EndpointGet(ctx context.Context, p *kapsel.EndpointGetParams) (*kapsel.Endpoint, error) {
	ep, err := s.testStore.EndpointGet(ctx, p)
	if err == nil {
		ep.SigningSecrets = []kapsel.SigningSecret{{Secret: "whsec_not base64!"}}
	}
	return ep, err
}

// TestKapselFailureIsNotAnEndpointFailure (issue 9 item 6): when Kapsel
// cannot build the request (an undecodable signing secret), nothing reaches
// the destination and the breaker is not told — the destination did not
// fail. The attempt is recorded with E3002 and retried like any failure.
func TestKapselFailureIsNotAnEndpointFailure(t *testing.T) {
	t.Parallel()
	b := &fakeBreakers{}
	f := setupOn(t, brokenSecretStore{memstore.New()}, kapseltest.NewClock(time.Time{}), func(c *delivery.Config) { c.Breakers = b })
	dl := f.insert(nil, `{}`)
	got := f.waitAttempts(dl, 1)
	as := f.attemptsOf(dl.ID)
	if len(as) != 1 || as[0].ErrorCode != kapsel.CodeInternal || as[0].StatusCode != 0 {
		t.Fatalf("attempts %+v, want one with %s and no status", as, kapsel.CodeInternal)
	}
	if got.Status != kapsel.DeliveryPending || !got.NextAttemptAt.After(f.clock.Now()) {
		t.Fatalf("delivery %s next at %s, want pending for a later retry", got.Status, got.NextAttemptAt)
	}
	if n := f.dest.Count(); n != 0 {
		t.Fatalf("%d requests reached the destination, want none", n)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.records) != 0 {
		t.Fatalf("the breaker was told %v about a failure on Kapsel's side, want nothing", b.records)
	}
}
