package campaign

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestDestinationModes checks each of the destination's modes against a Go
// client, as kapseld's dispatcher would meet it: what the client sees, and
// that the request is in the log with its mode either way.
func TestDestinationModes(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	cases := []struct {
		mode mode
		// want checks the client's outcome.
		want func(resp *http.Response, body []byte, err error) error
		is2x bool
	}{
		{modeOK, status(200), true},
		{mode5xx, status(500), false},
		{mode429, func(resp *http.Response, body []byte, err error) error {
			if err != nil || resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" {
				return errors.New("want 429 with Retry-After: 1")
			}
			return nil
		}, false},
		{modeTimeout, failsWith("Client.Timeout"), false},
		{modeReset, failsWith("reset"), false},
		{modeHalfClose, failsWith("EOF"), false},
		{modeSlowBody, func(resp *http.Response, body []byte, err error) error {
			// The status line comes at once; the body does not.
			if resp == nil || resp.StatusCode != 200 || err == nil || len(body) > 2 {
				return errors.New("want 200, then a body read cut by the timeout")
			}
			return nil
		}, true},
		{modeHugeBody, func(resp *http.Response, body []byte, err error) error {
			if err != nil || resp.StatusCode != 200 || len(body) != 64<<10 || resp.ContentLength != 64<<20 {
				return errors.New("want 200 announcing 64 MiB, the first 64 KiB readable")
			}
			return nil
		}, true},
		{modeChunkedOK, func(resp *http.Response, body []byte, err error) error {
			if err != nil || resp.StatusCode != 200 || resp.ContentLength != -1 || len(body) != 64<<10 {
				return errors.New("want 200 with no length, the first 64 KiB readable")
			}
			return nil
		}, true},
		{modeBadStatus, failsWith("malformed HTTP"), false},
		{modeBadHeader, failsWith("malformed MIME header"), false},
	}
	for _, c := range cases {
		t.Run(string(c.mode), func(t *testing.T) {
			t.Parallel()
			d := newDestination(t, 1, faultPlan{Rate: 1, Modes: []mode{c.mode}, AttemptTimeout: timeout})
			if c.mode == modeOK {
				d.setPlan(faultPlan{})
			}
			client := &http.Client{Timeout: 1500 * time.Millisecond}
			if c.mode == modeTimeout {
				client.Timeout = timeout // the destination answers after timeout+500 ms
			}
			req, _ := http.NewRequest(http.MethodPost, d.url(3), strings.NewReader(`{"key":"k-1","n":1}`))
			req.Header.Set("webhook-id", "evt_1")
			req.Header.Set("X-Kapsel-Attempt", "2")
			resp, err := client.Do(req)
			var body []byte
			if err == nil {
				body, err = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
				resp.Body.Close()
			}
			if werr := c.want(resp, body, err); werr != nil {
				t.Fatalf("%s: %v (got %v, err %v)", c.mode, werr, statusOf(resp), err)
			}
			d.close() // waits for the handler, so the log is complete
			reqs := d.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests logged, want 1", len(reqs))
			}
			q := reqs[0]
			if q.Mode != c.mode || q.WebhookID != "evt_1" || q.Attempt != 2 || q.Endpoint != "3" || q.Key != "k-1" || q.Answered2xx != c.is2x {
				t.Fatalf("logged %+v", q)
			}
		})
	}
}

func status(code int) func(*http.Response, []byte, error) error {
	return func(resp *http.Response, _ []byte, err error) error {
		if err != nil || resp.StatusCode != code {
			return errors.New("want status " + http.StatusText(code))
		}
		return nil
	}
}

func failsWith(s string) func(*http.Response, []byte, error) error {
	return func(resp *http.Response, _ []byte, err error) error {
		if err == nil || !strings.Contains(err.Error(), s) {
			return errors.New("want an error containing " + s)
		}
		return nil
	}
}

func statusOf(resp *http.Response) string {
	if resp == nil {
		return "no response"
	}
	return resp.Status
}

// TestCutByKill checks the attribution of a request without an attempt
// record to a kill: only a request that reached the destination before the
// kill, on a connection of the killed node open at that moment.
func TestCutByKill(t *testing.T) {
	t.Parallel()
	kill := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	before := kill.Add(-time.Minute)
	conns := map[uint64]connInfo{
		1: {RemotePort: 40001, Opened: before},                                     // the victim's, open at the kill
		2: {RemotePort: 40002, Opened: before},                                     // another node's
		3: {RemotePort: 40003, Opened: before, Closed: kill.Add(-time.Second)},     // the victim's port, closed before
		4: {RemotePort: 40001, Opened: before, Closed: kill.Add(time.Millisecond)}, // closed by the kill
		5: {RemotePort: 40001, Opened: kill.Add(5 * time.Second)},                  // the port reused after the kill
		6: {RemotePort: 40001, Opened: kill.Add(46 * time.Millisecond)},            // the victim's, accepted late (loaded machine)
	}
	kills := []killRecord{{At: kill, Ports: map[int]bool{40001: true, 40003: true}}}
	cases := []struct {
		name string
		q    request
		want int
	}{
		{"victim, before", request{Conn: 1, At: kill.Add(-time.Second)}, 0},
		{"victim, read just after the freeze", request{Conn: 1, At: kill.Add(time.Millisecond)}, 0},
		{"victim, closed by the kill", request{Conn: 4, At: kill.Add(-time.Second)}, 0},
		{"other node", request{Conn: 2, At: kill.Add(-time.Second)}, -1},
		{"port of a connection closed before", request{Conn: 3, At: kill.Add(-2 * time.Second)}, -1},
		{"port reused after", request{Conn: 5, At: kill.Add(6 * time.Second)}, -1},
		{"victim, accepted 46 ms after the freeze", request{Conn: 6, At: kill.Add(50 * time.Millisecond)}, 0},
	}
	for _, c := range cases {
		if got := cutByKill(c.q, conns, kills, time.Second); got != c.want {
			t.Errorf("%s: cut by kill %d, want %d", c.name, got, c.want)
		}
	}
	// Without the ports, only the time counts.
	blind := []killRecord{{At: kill}}
	if cutByKill(request{Conn: 2, At: kill.Add(-time.Second)}, conns, blind, time.Second) != 0 ||
		cutByKill(request{Conn: 2, At: kill.Add(-time.Minute)}, conns, blind, time.Second) != -1 {
		t.Error("time-only attribution")
	}
}
