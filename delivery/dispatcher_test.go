package delivery_test

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/delivery"
	"github.com/kapsel-dev/kapsel/kapseltest"
)

const waitLong = 20 * time.Second

func TestDeliverFirstTime(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	start := f.clock.Now()
	dl := f.insert(nil, `{"type":"order.paid","id":42}`)

	// Delivered on the in-process wake-up alone: the fake clock never moves,
	// so no poll fires.
	got := f.requireDelivered(dl)
	if got.Attempts != 1 || !got.DeliveredAt.Equal(start) || got.LastError != "" {
		t.Fatalf("delivery after delivery: %+v", got)
	}
	reqs := f.dest.Requests()
	if len(reqs) != 1 {
		t.Fatalf("destination got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Method != "POST" || r.Path != "/hook" || string(r.Body) != `{"type":"order.paid","id":42}` {
		t.Fatalf("request %s %s %q", r.Method, r.Path, r.Body)
	}
	if r.SignatureErr != nil {
		t.Fatalf("reference library rejects the signature: %v", r.SignatureErr)
	}
	wantHeaders := map[string]string{
		"Content-Type":      "application/json",
		"User-Agent":        "Kapsel/" + kapsel.Version,
		"Webhook-Id":        string(dl.EventID),
		"Webhook-Timestamp": strconv.FormatInt(start.Unix(), 10),
		"X-Kapsel-Attempt":  "1",
	}
	for k, v := range wantHeaders {
		if got := r.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	as := f.attemptsOf(dl.ID)
	if len(as) != 1 {
		t.Fatalf("%d attempts recorded, want 1", len(as))
	}
	a := as[0]
	if a.Number != 1 || a.StatusCode != 200 || a.ErrorCode != "" || a.Trigger != kapsel.TriggerScheduled || !a.StartedAt.Equal(start) {
		t.Fatalf("attempt %+v", a)
	}
	info := <-f.attempt
	if info.Outcome != kapsel.OutcomeDelivered || info.EventID != dl.EventID || info.DeliveryID != dl.ID ||
		info.EndpointID != f.ep.ID || info.StatusCode != 200 || info.Number != 1 {
		t.Fatalf("OnAttempt %+v", info)
	}
}

// TestRetryThenSucceed: fail twice, then succeed — three attempts with the
// right codes, spaced by the default policy within its ±20 % jitter.
func TestRetryThenSucceed(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	f.dest.FailTimes(2, 500)
	dl := f.insert(nil, `{"n":1}`)

	t0 := f.clock.Now()
	first := f.waitAttempts(dl, 1)
	if first.Status != kapsel.DeliveryPending || first.LastError == "" {
		t.Fatalf("after attempt 1: %+v", first)
	}
	requireWithin(t, "wait after attempt 1", first.NextAttemptAt.Sub(t0), 2*time.Second, 0.2)

	f.advanceUntil(first.NextAttemptAt, func() bool { return f.delivery(dl.ID).Attempts >= 2 })
	second := f.waitAttempts(dl, 2)
	as := f.attemptsOf(dl.ID)
	requireWithin(t, "wait after attempt 2", second.NextAttemptAt.Sub(as[1].StartedAt), 4*time.Second, 0.2)

	f.advanceUntil(second.NextAttemptAt, func() bool { return f.delivery(dl.ID).Attempts >= 3 })
	f.requireDelivered(dl)

	as = f.attemptsOf(dl.ID)
	if len(as) != 3 {
		t.Fatalf("%d attempts, want 3", len(as))
	}
	wantCodes := []kapsel.Code{kapsel.CodeAttemptStatus, kapsel.CodeAttemptStatus, ""}
	wantStatus := []int{500, 500, 200}
	for i, a := range as {
		if a.Number != i+1 || a.ErrorCode != wantCodes[i] || a.StatusCode != wantStatus[i] {
			t.Errorf("attempt %d: number %d code %q status %d", i+1, a.Number, a.ErrorCode, a.StatusCode)
		}
	}
	if as[1].StartedAt.Before(first.NextAttemptAt) || as[2].StartedAt.Before(second.NextAttemptAt) {
		t.Error("a retry started before its scheduled time")
	}
	reqs := f.dest.Requests()
	for i, r := range reqs {
		if r.WebhookID != string(dl.EventID) || r.Attempt != i+1 || r.SignatureErr != nil {
			t.Errorf("request %d: webhook-id %q attempt %d signature %v", i+1, r.WebhookID, r.Attempt, r.SignatureErr)
		}
	}
}

func requireWithin(t *testing.T, what string, got, base time.Duration, jitter float64) {
	t.Helper()
	lo := time.Duration(float64(base) * (1 - jitter))
	hi := time.Duration(float64(base) * (1 + jitter))
	if got < lo || got > hi {
		t.Fatalf("%s = %s, want within [%s, %s]", what, got, lo, hi)
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	f.dest.Respond(kapseltest.Response{Status: 429, RetryAfter: "7"})
	dl := f.insert(nil, `{}`)
	t0 := f.clock.Now()
	after := f.waitAttempts(dl, 1)
	if want := t0.Add(7 * time.Second); !after.NextAttemptAt.Equal(want) {
		t.Fatalf("next attempt at %s, want %s (+7 s)", after.NextAttemptAt, want)
	}
	f.advanceUntil(after.NextAttemptAt, func() bool { return f.delivery(dl.ID).Attempts >= 2 })
	f.requireDelivered(dl)
	as := f.attemptsOf(dl.ID)
	if len(as) != 2 || as[0].StatusCode != 429 || as[0].ErrorCode != kapsel.CodeAttemptStatus {
		t.Fatalf("attempts %+v", as)
	}
}

func TestGoneDisablesEndpoint(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	f.dest.SetDefault(kapseltest.Response{Status: 410})
	dl := f.insert(nil, `{}`)
	after := f.waitAttempts(dl, 1)
	if after.Status != kapsel.DeliveryPending {
		t.Fatalf("delivery after 410 is %s, want pending (waiting)", after.Status)
	}
	ep, err := f.store.EndpointGet(context.Background(), &kapsel.EndpointGetParams{ID: f.ep.ID})
	if err != nil {
		t.Fatal(err)
	}
	if ep.State != kapsel.EndpointDisabled || ep.DisabledReason != kapsel.DisabledGone {
		t.Fatalf("endpoint %s/%s, want disabled/gone", ep.State, ep.DisabledReason)
	}
	if info := <-f.attempt; info.Outcome != kapsel.OutcomeDisabled || info.StatusCode != 410 {
		t.Fatalf("OnAttempt %+v", info)
	}
	f.mu.Lock()
	disabled := append([]kapsel.EndpointDisabledInfo(nil), f.disabled...)
	f.mu.Unlock()
	if len(disabled) != 1 || disabled[0].EndpointID != f.ep.ID || disabled[0].Reason != kapsel.DisabledGone {
		t.Fatalf("OnEndpointDisabled calls %+v", disabled)
	}

	// No further attempts, however long we wait and whatever arrives: the
	// dispatcher looks (a claim after the clock moved) and finds nothing.
	dl2 := f.insert(nil, `{"second":true}`)
	claims, claimed := f.spy.counts()
	f.clock.Advance(2 * time.Hour)
	f.spy.waitClaims(t, claims)
	if _, nowClaimed := f.spy.counts(); nowClaimed != claimed {
		t.Fatalf("%d deliveries claimed for a disabled endpoint", nowClaimed-claimed)
	}
	if n := f.dest.Count(); n != 1 {
		t.Fatalf("destination got %d requests after the endpoint was disabled, want 1", n)
	}

	// Resumed, the waiting deliveries are made.
	f.dest.SetDefault(kapseltest.Response{Status: 204})
	if _, err := f.store.EndpointSetState(context.Background(), &kapsel.EndpointSetStateParams{ID: f.ep.ID, State: kapsel.EndpointActive, Now: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	f.d.Wake()
	f.requireDelivered(dl)
	f.requireDelivered(dl2)
}

func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	target := kapseltest.NewDestination(t)
	f.dest.SetDefault(kapseltest.Response{Status: 302, Location: target.URL + "/elsewhere"})
	dl := f.insert(nil, `{}`)
	after := f.waitAttempts(dl, 1)
	as := f.attemptsOf(dl.ID)
	if as[0].ErrorCode != kapsel.CodeAttemptRedirect || as[0].StatusCode != 302 || after.Status != kapsel.DeliveryPending {
		t.Fatalf("attempt %+v, delivery %s", as[0], after.Status)
	}
	if target.Count() != 0 {
		t.Fatal("the redirect target was contacted")
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	ep := f.newEndpoint(f.dest.URL + "/slow")
	ep, err := f.store.EndpointUpdate(context.Background(), &kapsel.EndpointUpdateParams{
		ID: ep.ID, Now: f.clock.Now(),
		Update: func(e *kapsel.Endpoint) error { e.Timeout = time.Second; return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	f.dest.SetDefault(kapseltest.Response{Hang: true})
	dl := f.insert(ep, `{}`)
	f.waitAttempts(dl, 1)
	a := f.attemptsOf(dl.ID)[0]
	if a.ErrorCode != kapsel.CodeAttemptTimeout || a.StatusCode != 0 {
		t.Fatalf("attempt %+v, want E2001", a)
	}
	if a.Duration < 900*time.Millisecond || a.Duration > 5*time.Second {
		t.Fatalf("attempt took %s, want about the 1 s timeout", a.Duration)
	}
}

func TestConnectionRefused(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	dead := kapseltest.NewDestination(t)
	url := dead.URL
	dead.Server.Close()
	ep := f.newEndpoint(url + "/hook")
	dl := f.insert(ep, `{}`)
	f.waitAttempts(dl, 1)
	if a := f.attemptsOf(dl.ID)[0]; a.ErrorCode != kapsel.CodeAttemptConnection {
		t.Fatalf("attempt %+v, want E2002", a)
	}
}

// TestHugeResponseBody: a destination streaming 1 GiB — the attempt keeps
// exactly 64 KiB and the dispatcher stops reading there.
func TestHugeResponseBody(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	f.dest.SetDefault(kapseltest.Response{Stream: 1 << 30})
	dl := f.insert(nil, `{}`)
	f.requireDelivered(dl)
	a := f.attemptsOf(dl.ID)[0]
	if len(a.ResponseBody) != kapsel.MaxResponseBody {
		t.Fatalf("recorded %d bytes of response, want %d", len(a.ResponseBody), kapsel.MaxResponseBody)
	}
	if n := f.dest.Streamed(); n >= 64<<20 {
		t.Fatalf("destination streamed %d bytes before the dispatcher hung up", n)
	}
}

// TestSSRFGuardOn: with the guard on (no allowlist), deliveries to loopback
// — literal or by name — are recorded as E2006 and never reach the server.
func TestSSRFGuardOn(t *testing.T) {
	t.Parallel()
	f := setup(t, func(c *delivery.Config) { c.AllowedCIDRs = nil })
	_, p, err := net.SplitHostPort(f.dest.Server.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	for _, url := range []string{f.dest.URL, "http://localhost:" + p, "http://[::ffff:127.0.0.1]:" + p, "http://169.254.169.254"} {
		ep := f.newEndpoint(url + "/hook")
		dl := f.insert(ep, `{}`)
		f.waitAttempts(dl, 1)
		if a := f.attemptsOf(dl.ID)[0]; a.ErrorCode != kapsel.CodeAttemptBlocked {
			t.Errorf("%s: attempt %+v, want E2006", url, a)
		}
	}
	if n := f.dest.Count(); n != 0 {
		t.Fatalf("the loopback destination received %d requests", n)
	}
}
