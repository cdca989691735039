package kapseltest

import (
	"cmp"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Loopback lists the loopback ranges. A dispatcher delivering to a
// [Destination] needs them allowed (delivery.Config.AllowedCIDRs), since its
// SSRF guard blocks loopback by default.
var Loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// Response is how a [Destination] answers one request.
type Response struct {
	// Status defaults to 200.
	Status int
	Header http.Header
	Body   []byte
	// RetryAfter sets the Retry-After header (seconds or an HTTP date).
	RetryAfter string
	// Location sets the Location header, for redirects.
	Location string
	// Hang holds the request open, without answering, until Release is
	// called or the client gives up.
	Hang bool
	// Stream writes this many bytes of body (after Body), in chunks, until
	// the client stops reading. Destination.Streamed reports how many went.
	Stream int64
}

// Request is what a [Destination] received.
type Request struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
	// Attempt is the X-Kapsel-Attempt header, 0 when missing.
	Attempt int
	// WebhookID is the webhook-id header.
	WebhookID  string
	ReceivedAt time.Time
	// SignatureErr is the Standard Webhooks reference library's verdict on
	// the signature when the destination was given secrets (VerifyWith):
	// nil when any of them verifies it. The timestamp tolerance is not
	// checked, so that deliveries made on a fake clock verify.
	SignatureErr error
}

// Destination is a fake webhook destination on an httptest server: it
// answers from a script of responses (then a default), records every request
// and can verify signatures. It is safe for concurrent use.
type Destination struct {
	// URL is the destination's base URL (http://127.0.0.1:port).
	URL    string
	Server *httptest.Server

	mu       sync.Mutex
	script   []Response
	def      Response
	requests []Request
	verify   []*standardwebhooks.Webhook
	release  chan struct{}
	arrived  chan struct{} // closed and replaced on each request
	streamed int64
}

// NewDestination starts a destination that answers 200 to everything until
// told otherwise; it is closed when t ends.
func NewDestination(t testing.TB) *Destination {
	t.Helper()
	d := &Destination{release: make(chan struct{}), arrived: make(chan struct{})}
	d.Server = httptest.NewServer(http.HandlerFunc(d.serve))
	d.URL = d.Server.URL
	t.Cleanup(func() {
		d.Release()
		d.Server.Close()
	})
	return d
}

// Respond queues responses: the next requests get them in order, then the
// default.
func (d *Destination) Respond(responses ...Response) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.script = append(d.script, responses...)
}

// FailTimes makes the next n requests answer status, then the default.
func (d *Destination) FailTimes(n, status int) {
	rs := make([]Response, n)
	for i := range rs {
		rs[i] = Response{Status: status}
	}
	d.Respond(rs...)
}

// SetDefault sets the response given when the script is empty.
func (d *Destination) SetDefault(r Response) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.def = r
}

// VerifyWith makes the destination verify each request's Standard Webhooks
// signature with the reference library, against any of secrets.
func (d *Destination) VerifyWith(t testing.TB, secrets ...string) {
	t.Helper()
	var whs []*standardwebhooks.Webhook
	for _, s := range secrets {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			t.Fatalf("kapseltest: bad signing secret: %v", err)
		}
		whs = append(whs, wh)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.verify = whs
}

// Release lets every hanging request go (they answer their Status).
func (d *Destination) Release() {
	d.mu.Lock()
	defer d.mu.Unlock()
	close(d.release)
	d.release = make(chan struct{})
}

// Requests returns a copy of the requests received so far, in order.
func (d *Destination) Requests() []Request {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Request(nil), d.requests...)
}

// Count returns the number of requests received.
func (d *Destination) Count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.requests)
}

// Streamed returns how many bytes Stream responses have written in all.
func (d *Destination) Streamed() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.streamed
}

// WaitForRequests waits (in real time) until at least n requests arrived and
// returns them; it fails t after timeout.
func (d *Destination) WaitForRequests(t testing.TB, n int, timeout time.Duration) []Request {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		d.mu.Lock()
		if len(d.requests) >= n {
			reqs := append([]Request(nil), d.requests...)
			d.mu.Unlock()
			return reqs
		}
		arrived := d.arrived
		got := len(d.requests)
		d.mu.Unlock()
		select {
		case <-arrived:
		case <-deadline.C:
			t.Fatalf("kapseltest: destination received %d requests within %s, want %d", got, timeout, n)
			return nil
		}
	}
}

func (d *Destination) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := Request{
		Method:     r.Method,
		Path:       r.URL.RequestURI(),
		Header:     r.Header.Clone(),
		Body:       body,
		WebhookID:  r.Header.Get("webhook-id"),
		ReceivedAt: time.Now(),
	}
	req.Attempt, _ = strconv.Atoi(r.Header.Get("X-Kapsel-Attempt"))

	d.mu.Lock()
	for _, wh := range d.verify {
		if req.SignatureErr = wh.VerifyIgnoringTimestamp(body, r.Header); req.SignatureErr == nil {
			break
		}
	}
	resp := d.def
	if len(d.script) > 0 {
		resp = d.script[0]
		d.script = d.script[1:]
	}
	d.requests = append(d.requests, req)
	close(d.arrived)
	d.arrived = make(chan struct{})
	release := d.release
	d.mu.Unlock()

	if resp.Hang {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
	}
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	if resp.RetryAfter != "" {
		w.Header().Set("Retry-After", resp.RetryAfter)
	}
	if resp.Location != "" {
		w.Header().Set("Location", resp.Location)
	}
	w.WriteHeader(cmp.Or(resp.Status, http.StatusOK))
	_, _ = w.Write(resp.Body)
	if resp.Stream > 0 {
		d.stream(w, resp.Stream)
	}
}

func (d *Destination) stream(w http.ResponseWriter, total int64) {
	chunk := make([]byte, 32<<10)
	for i := range chunk {
		chunk[i] = 'k'
	}
	for sent := int64(0); sent < total; {
		n, err := w.Write(chunk[:min(int64(len(chunk)), total-sent)])
		sent += int64(n)
		d.mu.Lock()
		d.streamed += int64(n)
		d.mu.Unlock()
		if err != nil {
			return
		}
	}
}
