package kapseltest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/kapseltest"
)

// testClient has a transport of its own: httptest.Server.Close closes the
// idle connections of http.DefaultTransport, which broke a request of a
// parallel test that was about to reuse one ("CloseIdleConnections called").
var testClient = &http.Client{Transport: &http.Transport{}}

func post(t *testing.T, url string, body []byte, h http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestDestinationScript(t *testing.T) {
	t.Parallel()
	d := kapseltest.NewDestination(t)
	d.FailTimes(2, 503)
	d.Respond(kapseltest.Response{Status: 429, RetryAfter: "7"}, kapseltest.Response{Status: 302, Location: "/x"})
	d.SetDefault(kapseltest.Response{Status: 201, Body: []byte("ok")})
	client := &http.Client{Transport: &http.Transport{}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var got []int
	for i := range 6 {
		req, _ := http.NewRequest(http.MethodPost, d.URL+"/p?q=1", bytes.NewReader([]byte("b")))
		req.Header.Set("X-Kapsel-Attempt", strconv.Itoa(i+1))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got = append(got, resp.StatusCode)
		switch resp.StatusCode {
		case 429:
			if resp.Header.Get("Retry-After") != "7" {
				t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
			}
		case 302:
			if resp.Header.Get("Location") != "/x" {
				t.Errorf("Location %q", resp.Header.Get("Location"))
			}
		case 201:
			if string(body) != "ok" {
				t.Errorf("body %q", body)
			}
		}
	}
	want := []int{503, 503, 429, 302, 201, 201}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("statuses %v, want %v", got, want)
		}
	}
	reqs := d.Requests()
	if len(reqs) != 6 || d.Count() != 6 {
		t.Fatalf("%d requests recorded", len(reqs))
	}
	if reqs[3].Attempt != 4 || reqs[0].Path != "/p?q=1" || string(reqs[0].Body) != "b" || reqs[0].Method != "POST" {
		t.Fatalf("request 1 %+v, request 4 attempt %d", reqs[0], reqs[3].Attempt)
	}
}

func TestDestinationVerifiesSignatures(t *testing.T) {
	t.Parallel()
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	d := kapseltest.NewDestination(t)
	d.VerifyWith(t, secret)
	wh, _ := standardwebhooks.NewWebhook(secret)
	body := []byte(`{"a":1}`)
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) // far from now: tolerance is not checked
	sig, _ := wh.Sign("evt_1", ts, body)
	h := http.Header{"Webhook-Id": {"evt_1"}, "Webhook-Timestamp": {strconv.FormatInt(ts.Unix(), 10)}, "Webhook-Signature": {sig}}
	post(t, d.URL, body, h)
	post(t, d.URL, []byte(`{"a":2}`), h) // body changed: signature no longer matches
	reqs := d.Requests()
	if reqs[0].SignatureErr != nil || reqs[0].WebhookID != "evt_1" {
		t.Fatalf("valid signature rejected: %v", reqs[0].SignatureErr)
	}
	if reqs[1].SignatureErr == nil {
		t.Fatal("tampered body accepted")
	}
}

func TestDestinationHangAndRelease(t *testing.T) {
	t.Parallel()
	d := kapseltest.NewDestination(t)
	d.Respond(kapseltest.Response{Hang: true, Status: 202})
	done := make(chan int, 1)
	go func() {
		resp, err := http.Post(d.URL, "text/plain", nil)
		if err != nil {
			done <- -1
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	d.WaitForRequests(t, 1, 10*time.Second)
	select {
	case code := <-done:
		t.Fatalf("hanging response answered %d before Release", code)
	default:
	}
	d.Release()
	if code := <-done; code != 202 {
		t.Fatalf("released response %d, want 202", code)
	}
}

func TestDestinationStream(t *testing.T) {
	t.Parallel()
	d := kapseltest.NewDestination(t)
	d.SetDefault(kapseltest.Response{Stream: 100_000})
	resp := post(t, d.URL, nil, nil)
	n, _ := io.Copy(io.Discard, resp.Body)
	if n != 100_000 || d.Streamed() != 100_000 {
		t.Fatalf("read %d, streamed %d, want 100000", n, d.Streamed())
	}
}

// memDeliveries is a minimal DeliveryLister for the Require helpers: it
// filters its deliveries as a store would.
type memDeliveries struct {
	mu  sync.Mutex
	dls []*kapsel.Delivery
	// then, when set, replaces dls after calls more lists.
	then  []*kapsel.Delivery
	calls int
}

func (m *memDeliveries) set(dls ...*kapsel.Delivery) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dls = dls
}

func (m *memDeliveries) DeliveryList(_ context.Context, p *kapsel.DeliveryListParams) ([]*kapsel.Delivery, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.then != nil {
		if m.calls--; m.calls < 0 {
			m.dls, m.then = m.then, nil
		}
	}
	var out []*kapsel.Delivery
	for _, dl := range m.dls {
		if (p.EventID == "" || dl.EventID == p.EventID) && (p.EndpointID == "" || dl.EndpointID == p.EndpointID) &&
			dl.ID > p.Cursor && len(out) < p.Limit {
			c := *dl
			out = append(out, &c)
		}
	}
	return out, nil
}

// fails reports whether f fails its fakeT, and how long it took.
func fails(f func(t testing.TB)) (bool, time.Duration) {
	ft := &fakeT{TB: nil}
	start := time.Now()
	func() {
		defer func() { _ = recover() }()
		f(ft)
	}()
	return ft.failed, time.Since(start)
}

func TestRequireDelivered(t *testing.T) {
	t.Parallel()
	ev := kapsel.NewEventID()
	a, b := kapsel.NewEndpointID(), kapsel.NewEndpointID()
	dlA := &kapsel.Delivery{ID: kapsel.NewDeliveryID(), EventID: ev, EndpointID: a, Status: kapsel.DeliveryDelivered}
	dlB := &kapsel.Delivery{ID: kapsel.NewDeliveryID(), EventID: ev, EndpointID: b, Status: kapsel.DeliveryPending}
	store := &memDeliveries{}
	store.set(dlA)

	// One delivery: no endpoint needed.
	if got := kapseltest.RequireDelivered(t, store, ev, "", time.Second); got.ID != dlA.ID {
		t.Fatalf("RequireDelivered(only delivery) = %s, want %s", got.ID, dlA.ID)
	}
	// Two: the endpoint picks one; without one, t fails at once.
	store.set(dlA, dlB)
	if got := kapseltest.RequireDelivered(t, store, ev, a, time.Second); got.ID != dlA.ID {
		t.Fatalf("RequireDelivered(a) = %s, want %s", got.ID, dlA.ID)
	}
	if failed, took := fails(func(ft testing.TB) { kapseltest.RequireDelivered(ft, store, ev, "", time.Minute) }); !failed || took > 10*time.Second {
		t.Fatalf("RequireDelivered without an endpoint on a fanned-out event: failed=%v after %s", failed, took)
	}
	// b becomes delivered while RequireDelivered waits for it (after
	// three looks at the store).
	done := *dlB
	done.Status, done.Attempts = kapsel.DeliveryDelivered, 2
	store.mu.Lock()
	store.then, store.calls = []*kapsel.Delivery{dlA, &done}, 3
	store.mu.Unlock()
	if got := kapseltest.RequireDelivered(t, store, ev, b, 10*time.Second); got.Attempts != 2 {
		t.Fatalf("RequireDelivered(b) = %+v, want the delivered one after 2 attempts", got)
	}

	// A failed delivery fails RequireDelivered at once, not after the timeout.
	failedB := *dlB
	failedB.Status = kapsel.DeliveryFailed
	store.set(dlA, &failedB)
	if failed, took := fails(func(ft testing.TB) { kapseltest.RequireDelivered(ft, store, ev, b, time.Minute) }); !failed || took > 10*time.Second {
		t.Fatalf("RequireDelivered on a failed delivery: failed=%v after %s", failed, took)
	}
	if got := kapseltest.RequireStatus(t, store, ev, b, kapsel.DeliveryFailed, time.Second); got.ID != dlB.ID {
		t.Fatalf("RequireStatus(failed) = %s", got.ID)
	}
	// A delivery that never exists fails after the timeout.
	if failed, _ := fails(func(ft testing.TB) {
		kapseltest.RequireDelivered(ft, store, ev, kapsel.NewEndpointID(), 20*time.Millisecond)
	}); !failed {
		t.Fatal("RequireDelivered to an endpoint without a delivery did not fail")
	}
}

func TestRequireAllDelivered(t *testing.T) {
	t.Parallel()
	ev := kapsel.NewEventID()
	var dls []*kapsel.Delivery
	for range 3 {
		dls = append(dls, &kapsel.Delivery{ID: kapsel.NewDeliveryID(), EventID: ev, EndpointID: kapsel.NewEndpointID(), Status: kapsel.DeliveryDelivered})
	}
	other := &kapsel.Delivery{ID: kapsel.NewDeliveryID(), EventID: kapsel.NewEventID(), EndpointID: dls[0].EndpointID, Status: kapsel.DeliveryFailed}
	store := &memDeliveries{}
	store.set(append(dls, other)...)
	if got := kapseltest.RequireAllDelivered(t, store, ev, time.Second); len(got) != 3 {
		t.Fatalf("RequireAllDelivered = %d deliveries, want 3", len(got))
	}

	pending := *dls[1]
	pending.Status = kapsel.DeliveryPending
	store.set(dls[0], &pending, dls[2])
	if failed, _ := fails(func(ft testing.TB) { kapseltest.RequireAllDelivered(ft, store, ev, 20*time.Millisecond) }); !failed {
		t.Fatal("RequireAllDelivered with a pending delivery did not fail after its timeout")
	}
	failedOne := *dls[1]
	failedOne.Status = kapsel.DeliveryFailed
	store.set(dls[0], &failedOne, dls[2])
	if failed, took := fails(func(ft testing.TB) { kapseltest.RequireAllDelivered(ft, store, ev, time.Minute) }); !failed || took > 10*time.Second {
		t.Fatalf("RequireAllDelivered with a failed delivery: failed=%v after %s", failed, took)
	}
	// An event with no delivery is not "all delivered".
	store.set()
	if failed, _ := fails(func(ft testing.TB) { kapseltest.RequireAllDelivered(ft, store, ev, 20*time.Millisecond) }); !failed {
		t.Fatal("RequireAllDelivered on an event without deliveries did not fail")
	}
}

// fakeT records Fatalf instead of stopping the real test.
type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Helper() {}

func (f *fakeT) Fatalf(string, ...any) {
	f.failed = true
	panic("fatal")
}
