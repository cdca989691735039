package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// secretN returns a distinct valid signing secret (24-byte key) per n.
func secretN(n int) string {
	return fmt.Sprintf("whsec_%032d", n) // 32 base64 digits = 24 bytes
}

// secretsOf returns the Secret strings of e's signing secrets, in order.
func secretsOf(e *kapsel.Endpoint) []string {
	out := make([]string, len(e.SigningSecrets))
	for i, s := range e.SigningSecrets {
		out[i] = s.Secret
	}
	return out
}

func (h *harness) rotate(ep *kapsel.Endpoint, secret string, grace time.Duration, now time.Time) *kapsel.Endpoint {
	h.t.Helper()
	got, err := h.s.EndpointRotateSecret(h.ctx, &kapsel.EndpointRotateSecretParams{
		ID: ep.ID, TenantID: ep.TenantID, Secret: secret, Grace: grace, Now: now,
	})
	must(h.t, err, "EndpointRotateSecret")
	return got
}

func testEndpointSecrets(t *testing.T, newStore func(*testing.T) kapsel.Store) {
	t.Run("UpdateKeepsSigningSecrets", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		ep := h.endpoint(ten)
		want := secretsOf(ep)
		in := fullEndpoint(ten)
		in.SigningSecrets = []kapsel.SigningSecret{{Secret: secretN(1)}} // ignored
		got, err := h.s.EndpointUpdate(h.ctx, &kapsel.EndpointUpdateParams{
			ID: ep.ID, TenantID: ten.ID, Update: replaceWith(in), Now: at(time.Minute),
		})
		must(t, err, "EndpointUpdate")
		for _, got := range []*kapsel.Endpoint{got, h.getEndpoint(ep.ID, "")} {
			if !slices.Equal(secretsOf(got), want) {
				t.Fatalf("signing secrets after EndpointUpdate = %q, want %q (kept)", secretsOf(got), want)
			}
			equal(t, "URL updated", got.URL, in.URL)
		}
	})

	t.Run("RotateSecret", func(t *testing.T) {
		h := setup(t, newStore)
		a, b := h.tenant(), h.tenant()
		ep := h.endpoint(a)
		first := ep.SigningSecrets[0].Secret

		_, err := h.s.EndpointRotateSecret(h.ctx, &kapsel.EndpointRotateSecretParams{
			ID: ep.ID, TenantID: b.ID, Secret: secretN(1), Grace: time.Hour, Now: at(time.Minute),
		})
		mustIs(t, err, kapsel.ErrNotFound, "EndpointRotateSecret by another tenant")
		for _, bad := range []kapsel.EndpointRotateSecretParams{
			{Secret: "whsec_", Grace: time.Hour},
			{Secret: "not-a-secret", Grace: time.Hour},
			{Secret: secretN(1), Grace: -time.Second},
		} {
			bad.ID, bad.TenantID, bad.Now = ep.ID, a.ID, at(time.Minute)
			_, err := h.s.EndpointRotateSecret(h.ctx, &bad)
			mustIs(t, err, kapsel.ErrInvalid, fmt.Sprintf("EndpointRotateSecret with grace %v", bad.Grace))
		}
		if got := secretsOf(h.getEndpoint(ep.ID, "")); !slices.Equal(got, []string{first}) {
			t.Fatalf("secrets after refused rotations = %q, want only the first", got)
		}

		got := h.rotate(ep, secretN(1), time.Hour, at(time.Minute))
		for _, got := range []*kapsel.Endpoint{got, h.getEndpoint(ep.ID, a.ID)} {
			if s := secretsOf(got); !slices.Equal(s, []string{secretN(1), first}) {
				t.Fatalf("secrets after a rotation = %q, want the new one then the previous", s)
			}
			if !got.SigningSecrets[0].ExpiresAt.IsZero() {
				t.Fatalf("the new current secret expires at %v", got.SigningSecrets[0].ExpiresAt)
			}
			sameTime(t, "previous secret's expiry", got.SigningSecrets[1].ExpiresAt, at(time.Minute+time.Hour))
			sameTime(t, "UpdatedAt", got.UpdatedAt, at(time.Minute))
		}
		// Grace 0 drops the previous current secret at once, and a secret
		// whose grace has ended is dropped by the next rotation.
		got = h.rotate(ep, secretN(2), 0, at(2*time.Hour))
		if s := secretsOf(got); !slices.Equal(s, []string{secretN(2)}) {
			t.Fatalf("secrets after a rotation with no grace, past the last expiry = %q, want only the new one", s)
		}
	})

	// Issue 9 item 9: at most MaxSigningSecrets are kept; the oldest go.
	t.Run("RotateKeepsAtMostFive", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		for i := 1; i <= 12; i++ {
			ep = h.rotate(ep, secretN(i), 30*24*time.Hour, at(time.Duration(i)*time.Minute))
		}
		want := []string{secretN(12), secretN(11), secretN(10), secretN(9), secretN(8)}
		got := h.getEndpoint(ep.ID, "")
		if s := secretsOf(got); !slices.Equal(s, want) {
			t.Fatalf("secrets after 12 rotations = %q, want the newest %d: %q", s, kapsel.MaxSigningSecrets, want)
		}
		if n := len(got.ActiveSigningSecrets(at(time.Hour))); n != kapsel.MaxSigningSecrets {
			t.Fatalf("%d secrets sign a delivery, want %d", n, kapsel.MaxSigningSecrets)
		}
	})

	// Rotations are atomic: concurrent ones are all applied, none undone by
	// another computed from an older read (I8 of docs/guarantees.md, issue 9 item 7).
	t.Run("RotateConcurrently", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		const n = kapsel.MaxSigningSecrets - 1
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := h.s.EndpointRotateSecret(h.ctx, &kapsel.EndpointRotateSecretParams{
					ID: ep.ID, TenantID: ep.TenantID, Secret: secretN(i + 1), Grace: time.Hour, Now: at(time.Minute),
				})
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			must(t, err, "concurrent EndpointRotateSecret")
		}
		got := secretsOf(h.getEndpoint(ep.ID, ""))
		if len(got) != n+1 {
			t.Fatalf("after %d concurrent rotations the endpoint has secrets %q, want %d: a rotation was lost", n, got, n+1)
		}
		slices.Sort(got)
		want := []string{ep.SigningSecrets[0].Secret}
		for i := range n {
			want = append(want, secretN(i+1))
		}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("secrets after concurrent rotations = %q, want %q", got, want)
		}
	})
}
