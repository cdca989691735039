package service_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/delivery"
	"github.com/kapsel-dev/kapsel/ingest"
	"github.com/kapsel-dev/kapsel/kapseltest"
	"github.com/kapsel-dev/kapsel/service"
)

// TestEndpointChangesReachClaimedDeliveries (SPEC §3): a delivery claimed
// and queued behind its endpoint's running attempt is not attempted once
// DeleteEndpoint has answered (it stays failed by the delete), nor once
// PauseEndpoint has (it is given back and waits, pending), nor once
// DeleteTenant has deleted the endpoint with its tenant. The dispatcher's
// re-read of old endpoint views is off, so only the front door's in-process
// notice can stop the attempt.
func TestEndpointChangesReachClaimedDeliveries(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		act  func(e *env, ten kapsel.TenantID, ep kapsel.EndpointID) error
		want kapsel.DeliveryStatus
	}{
		{"delete", func(e *env, ten kapsel.TenantID, ep kapsel.EndpointID) error {
			return e.svc.DeleteEndpoint(e.ctx, ten, ep)
		}, kapsel.DeliveryFailed},
		{"pause", func(e *env, ten kapsel.TenantID, ep kapsel.EndpointID) error {
			_, err := e.svc.PauseEndpoint(e.ctx, ten, ep)
			return err
		}, kapsel.DeliveryPending},
		{"tenant delete", func(e *env, ten kapsel.TenantID, _ kapsel.EndpointID) error {
			return e.svc.DeleteTenant(e.ctx, ten)
		}, kapsel.DeliveryFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, service.Config{Workers: 2, Delivery: delivery.Config{PerEndpointConcurrency: 1, EndpointRecheckAfter: -1}})
			dest := kapseltest.NewDestination(t)
			dest.Respond(kapseltest.Response{Hang: true}) // then 200 to everything
			ten := e.tenant()
			ep := e.endpoint(ten, dest.URL+"/hook")
			send := func(n int) kapsel.EventID {
				res, err := e.svc.Send(e.ctx, ten.ID, service.Send{Type: "t", Payload: map[string]int{"n": n}})
				if err != nil {
					t.Fatal(err)
				}
				return res.Event.ID
			}
			running := send(1)
			dest.WaitForRequests(t, 1, 10*time.Second)
			queued := send(2)
			kapseltest.RequireStatus(t, e.store, queued, ep.ID, kapsel.DeliveryDelivering, 10*time.Second)

			if err := tc.act(e, ten.ID, ep.ID); err != nil {
				t.Fatal(err)
			}
			dest.Release()
			// The attempt in flight is recorded, whatever the delete did.
			kapseltest.WaitForDelivery(t, e.store, running, ep.ID, 10*time.Second, func(dl *kapsel.Delivery) bool {
				return dl.Attempts == 1 && dl.Status != kapsel.DeliveryDelivering
			})
			got := kapseltest.RequireStatus(t, e.store, queued, ep.ID, tc.want, 10*time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := e.svc.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			if n := dest.Count(); n != 1 {
				t.Fatalf("destination got %d requests, want 1: the queued delivery was attempted after the %s was answered", n, tc.name)
			}
			if got.Attempts != 0 {
				t.Fatalf("queued delivery has %d attempts, want 0", got.Attempts)
			}
		})
	}
}

// TestSourceChangesReachIngestAtOnce (SPEC §3): through the front door, a
// new verifier, a pause, a resume and a delete of a source take effect on
// its ingest URL as soon as the operation has answered, however long the
// ingester caches sources.
func TestSourceChangesReachIngestAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, service.Config{Ingest: ingest.Config{SourceCacheTTL: time.Hour}})
	ten := e.tenant()
	src, err := e.svc.CreateSource(e.ctx, ten.ID, service.SourceCreate{
		Verifier: kapsel.VerifierConfig{Scheme: kapsel.SchemeHMACSHA256, Secrets: []string{"old"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	ingestStatus := func(secret string) int {
		t.Helper()
		n++
		body := `{"n":` + strings.Repeat("1", n) + `}`
		req, err := http.NewRequest(http.MethodPost, e.srv.URL+service.IngestURL(src.ID), strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(body))
		req.Header.Set("X-Kapsel-Signature", hex.EncodeToString(m.Sum(nil)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	steps := []struct {
		what   string
		act    func() error
		secret string
		want   int
	}{
		{"before any change", func() error { return nil }, "old", 202},
		{"old secret after the verifier changed", func() error {
			_, err := e.svc.UpdateSource(e.ctx, ten.ID, src.ID, service.SourceUpdate{
				Verifier: &kapsel.VerifierConfig{Scheme: kapsel.SchemeHMACSHA256, Secrets: []string{"new"}},
			})
			return err
		}, "old", 401},
		{"new secret", func() error { return nil }, "new", 202},
		{"after the pause", func() error { _, err := e.svc.PauseSource(e.ctx, ten.ID, src.ID); return err }, "new", 503},
		{"after the resume", func() error { _, err := e.svc.ResumeSource(e.ctx, ten.ID, src.ID); return err }, "new", 202},
		{"after the delete", func() error { return e.svc.DeleteSource(e.ctx, ten.ID, src.ID) }, "new", 404},
	}
	for _, s := range steps {
		if err := s.act(); err != nil {
			t.Fatalf("%s: %v", s.what, err)
		}
		if got := ingestStatus(s.secret); got != s.want {
			t.Fatalf("ingest %s: %d, want %d", s.what, got, s.want)
		}
	}
}
