package kapseltest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/kapseltest"
)

func post(t *testing.T, url string, body []byte, h http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
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
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
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

// memEvents is a minimal EventGetter for the Require helpers.
type memEvents struct{ ev *kapsel.Event }

func (m *memEvents) EventGet(context.Context, *kapsel.EventGetParams) (*kapsel.Event, error) {
	return m.ev, nil
}

func TestRequireStatus(t *testing.T) {
	t.Parallel()
	id := kapsel.NewEventID()
	store := &memEvents{ev: &kapsel.Event{ID: id, Status: kapsel.EventDelivered}}
	if got := kapseltest.RequireDelivered(t, store, id, time.Second); got.ID != id {
		t.Fatalf("got %s", got.ID)
	}
	// A failed event fails RequireDelivered at once, not after the timeout.
	store.ev = &kapsel.Event{ID: id, Status: kapsel.EventFailed}
	ft := &fakeT{TB: t}
	start := time.Now()
	func() {
		defer func() { _ = recover() }()
		kapseltest.RequireDelivered(ft, store, id, time.Minute)
	}()
	if !ft.failed || time.Since(start) > 10*time.Second {
		t.Fatalf("RequireDelivered on a failed event: failed=%v after %s", ft.failed, time.Since(start))
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
