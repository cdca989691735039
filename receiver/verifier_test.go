package receiver_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/receiver"
)

func TestNewRefusesBadConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		cfg   receiver.Config
		field string
	}{
		{"no secrets", receiver.Config{}, "Config.Secrets"},
		{"empty secret", receiver.Config{Secrets: []string{newSecret, ""}}, "Config.Secrets[1]"},
		{"prefix only", receiver.Config{Secrets: []string{"whsec_"}}, "Config.Secrets[0]"},
		{"not base64", receiver.Config{Secrets: []string{"whsec_not base64!"}}, "Config.Secrets[0]"},
		{"negative tolerance", receiver.Config{Secrets: []string{newSecret}, Tolerance: -time.Second}, "Config.Tolerance"},
		{"negative body limit", receiver.Config{Secrets: []string{newSecret}, MaxBodyBytes: -1}, "Config.MaxBodyBytes"},
		{"seen TTL shorter than the window", receiver.Config{Secrets: []string{newSecret}, Tolerance: time.Minute, SeenTTL: 119 * time.Second}, "Config.SeenTTL"},
		{"negative retry after", receiver.Config{Secrets: []string{newSecret}, RetryAfter: -time.Second}, "Config.RetryAfter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v, err := receiver.New(&tc.cfg)
			if err == nil || v != nil {
				t.Fatalf("New = %v, %v; want an error", v, err)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error %q does not name %s", err, tc.field)
			}
			for _, s := range tc.cfg.Secrets {
				if len(s) > len("whsec_") && strings.Contains(err.Error(), s) {
					t.Fatalf("error %q contains a secret", err)
				}
			}
		})
	}
}

func TestNewAcceptsMinimalConfig(t *testing.T) {
	t.Parallel()
	v, err := receiver.New(&receiver.Config{Secrets: []string{newSecret}, Tolerance: time.Minute, SeenTTL: 2 * time.Minute})
	if err != nil || v == nil {
		t.Fatalf("New = %v, %v", v, err)
	}
}

func TestAcceptsKapselSignature(t *testing.T) {
	t.Parallel()
	e := setup(t, receiver.Config{})
	body := `{"type":"order.paid","id":42}`
	w := e.serve(e.signed("evt_1", body))
	requireStatus(t, w, http.StatusNoContent)
	if e.Calls() != 1 || e.bodies[0] != body {
		t.Fatalf("next called %d times with %q, want once with %q", e.Calls(), e.bodies, body)
	}
}

func TestRotationGracePeriod(t *testing.T) {
	t.Parallel()
	both := []string{newSecret, oldSecret}
	for _, tc := range []struct {
		name     string
		receiver []string // the receiver's configured secrets
		signer   []string // the endpoint's signing secrets at Kapsel
		want     int
	}{
		{"grace period, both sides hold both", both, both, http.StatusNoContent},
		{"receiver moved first", []string{newSecret}, both, http.StatusNoContent},
		{"receiver still on the old secret", []string{oldSecret}, both, http.StatusNoContent},
		{"sender moved on, receiver holds both", both, []string{newSecret}, http.StatusNoContent},
		{"sender still on the old secret, receiver holds both", both, []string{oldSecret}, http.StatusNoContent},
		{"old secret removed from the receiver", []string{newSecret}, []string{oldSecret}, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, receiver.Config{Secrets: tc.receiver})
			w := e.serve(e.request(tc.signer, "evt_rot", e.clock.Now(), `{}`))
			if tc.want == http.StatusUnauthorized {
				requireProblem(t, w, tc.want, "E1001")
				if e.Calls() != 0 {
					t.Fatalf("next called %d times, want 0", e.Calls())
				}
				return
			}
			requireStatus(t, w, tc.want)
			if e.Calls() != 1 {
				t.Fatalf("next called %d times, want 1", e.Calls())
			}
		})
	}
}

func TestRefusesTamperedDelivery(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		tamper func(r *http.Request)
		detail string // the header the problem must name
	}{
		{"body", func(r *http.Request) { r.Body = http.NoBody; r.ContentLength = 0 }, receiver.SignatureHeader},
		{"webhook-id", func(r *http.Request) { r.Header.Set(receiver.IDHeader, "evt_other") }, receiver.SignatureHeader},
		{"timestamp", func(r *http.Request) {
			r.Header.Set(receiver.TimestampHeader, "1767225601") // one second after the clock's start
		}, receiver.SignatureHeader},
		{"signature", func(r *http.Request) {
			r.Header.Set(receiver.SignatureHeader, "v1,"+strings.Repeat("A", 43)+"=")
		}, receiver.SignatureHeader},
		{"no webhook-id", func(r *http.Request) { r.Header.Del(receiver.IDHeader) }, receiver.IDHeader},
		{"no timestamp", func(r *http.Request) { r.Header.Del(receiver.TimestampHeader) }, receiver.TimestampHeader},
		{"no signature", func(r *http.Request) { r.Header.Del(receiver.SignatureHeader) }, receiver.SignatureHeader},
		{"not v1", func(r *http.Request) {
			r.Header.Set(receiver.SignatureHeader, strings.Replace(r.Header.Get(receiver.SignatureHeader), "v1,", "v2,", 1))
		}, receiver.SignatureHeader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, receiver.Config{})
			r := e.signed("evt_1", `{"amount":100}`)
			tc.tamper(r)
			detail := requireProblem(t, e.serve(r), http.StatusUnauthorized, "E1001")
			if !strings.Contains(detail, tc.detail) {
				t.Fatalf("detail %q does not name %s", detail, tc.detail)
			}
			if e.Calls() != 0 {
				t.Fatalf("next called %d times, want 0", e.Calls())
			}
		})
	}
}

func TestTimestampTolerance(t *testing.T) {
	t.Parallel()
	tol := receiver.DefaultTolerance
	for _, tc := range []struct {
		name   string
		offset time.Duration // of the signed timestamp from now
		ok     bool
	}{
		{"now", 0, true},
		{"exactly tolerance old", -tol, true},
		{"exactly tolerance ahead", tol, true},
		{"one second too old", -tol - time.Second, false},
		{"one second too far ahead", tol + time.Second, false},
		{"a day old", -24 * time.Hour, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, receiver.Config{})
			w := e.serve(e.request([]string{newSecret}, "evt_ts", e.clock.Now().Add(tc.offset), `{}`))
			if tc.ok {
				requireStatus(t, w, http.StatusNoContent)
				return
			}
			detail := requireProblem(t, w, http.StatusUnauthorized, "E1001")
			if !strings.Contains(detail, receiver.TimestampHeader) {
				t.Fatalf("detail %q does not name %s", detail, receiver.TimestampHeader)
			}
			if e.Calls() != 0 {
				t.Fatalf("next called %d times, want 0", e.Calls())
			}
		})
	}
}

func TestCapturedDeliveryGoesStale(t *testing.T) {
	t.Parallel()
	e := setup(t, receiver.Config{Tolerance: time.Minute, SeenTTL: 2 * time.Minute})
	r := e.signed("evt_1", `{}`)
	e.clock.Advance(time.Minute + time.Second)
	requireProblem(t, e.serve(r), http.StatusUnauthorized, "E1001")
	if e.Calls() != 0 {
		t.Fatalf("next called %d times, want 0", e.Calls())
	}
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	const limit = 16
	for _, tc := range []struct {
		name          string
		size          int
		contentLength bool // false: sent without Content-Length (chunked)
		want          int
	}{
		{"at the limit", limit, true, http.StatusNoContent},
		{"one byte over", limit + 1, true, http.StatusRequestEntityTooLarge},
		{"one byte over, no Content-Length", limit + 1, false, http.StatusRequestEntityTooLarge},
		{"far over, no Content-Length", 10 * limit, false, http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, receiver.Config{MaxBodyBytes: limit})
			body := strings.Repeat("x", tc.size)
			r := e.signed("evt_big", body)
			if !tc.contentLength {
				r.ContentLength = -1
			}
			w := e.serve(r)
			if tc.want != http.StatusNoContent {
				requireProblem(t, w, tc.want, "E1002")
				if e.Calls() != 0 {
					t.Fatalf("next called %d times, want 0", e.Calls())
				}
				return
			}
			requireStatus(t, w, tc.want)
			if e.Calls() != 1 || e.bodies[0] != body {
				t.Fatalf("next got %q, want %q once", e.bodies, body)
			}
		})
	}
}

func TestDefaultBodyLimit(t *testing.T) {
	t.Parallel()
	e := setup(t, receiver.Config{})
	r := e.signed("evt_huge", strings.Repeat("x", receiver.DefaultMaxBodyBytes+1))
	requireProblem(t, e.serve(r), http.StatusRequestEntityTooLarge, "E1002")
	if e.Calls() != 0 {
		t.Fatalf("next called %d times, want 0", e.Calls())
	}
}

// The limit applies to the bytes read, never to the claim — the ingest's
// rule too (reqbody.Read; ingest's TestLyingContentLength): a handler
// called with a Content-Length over the limit and a body within it
// verifies the body, and one claiming less than an oversized body is
// still refused.
func TestBodyLimitIgnoresClaim(t *testing.T) {
	t.Parallel()
	const limit = 16
	e := setup(t, receiver.Config{MaxBodyBytes: limit})
	claims := []int64{-1, 0, 10, limit, 1 << 40}
	for i, claim := range claims {
		r := e.signed(fmt.Sprintf("evt_claim_%d", i), "within")
		r.ContentLength = claim
		requireStatus(t, e.serve(r), http.StatusNoContent)

		r = e.signed(fmt.Sprintf("evt_over_%d", i), strings.Repeat("x", limit+1))
		r.ContentLength = claim
		requireProblem(t, e.serve(r), http.StatusRequestEntityTooLarge, "E1002")
	}
	if e.Calls() != len(claims) {
		t.Fatalf("next called %d times, want %d", e.Calls(), len(claims))
	}
}

func TestVerifyReturnsSignatureError(t *testing.T) {
	t.Parallel()
	e := setup(t, receiver.Config{})
	r := e.signed("evt_1", `{"a":1}`)
	if err := e.v.Verify(r.Header, []byte(`{"a":1}`)); err != nil {
		t.Fatalf("Verify of a good delivery: %v", err)
	}
	err := e.v.Verify(r.Header, []byte(`{"a":2}`))
	if err == nil || kapsel.CodeOf(err) != kapsel.CodeSignature {
		t.Fatalf("Verify of a tampered body = %v, want an E1001 error", err)
	}
	// Verify does not deduplicate: the same delivery verifies again.
	if err := e.v.Verify(r.Header, []byte(`{"a":1}`)); err != nil {
		t.Fatalf("second Verify: %v", err)
	}
}

func TestNewRefusesNilConfig(t *testing.T) {
	t.Parallel()
	if _, err := receiver.New(nil); err == nil || !strings.Contains(err.Error(), "Secrets") {
		t.Fatalf("New(nil) = %v, want an error naming Config.Secrets", err)
	}
}
