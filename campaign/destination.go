package campaign

import (
	"bufio"
	"io"
	"math/rand"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// destination is the endpoints' receiver: an HTTP/1.1 server on
// 127.0.0.1 written on a bare net.Listener, so that it can misbehave below
// HTTP (reset, half-close, invalid bytes). Every request it reads in full is
// recorded before it answers: the log is reality, which the attempt records
// must equal (SPEC I5).
type destination struct {
	t  testing.TB
	ln net.Listener

	mu     sync.Mutex
	rng    *rand.Rand
	faults faultPlan
	reqs   []*request
	conns  map[uint64]*connInfo
	nextID uint64

	done   chan struct{}
	wg     sync.WaitGroup
	closed atomic.Bool
}

// faultPlan says how the destination answers: each request draws a mode,
// a fault with probability Rate (uniformly among Modes), else modeOK.
type faultPlan struct {
	Rate  float64
	Modes []mode
	// AttemptTimeout is the endpoints' per-attempt timeout: modeTimeout
	// answers after it, modeSlowBody drips its body past it.
	AttemptTimeout time.Duration
	// Latency, when set, delays a successful answer by a uniform random
	// time in [0, Latency): attempts stay in flight long enough for a kill
	// to catch some.
	Latency time.Duration
}

// request is one request the destination read in full.
type request struct {
	Seq        int
	At         time.Time
	Conn       uint64
	ConnSeq    int // 1 for the first request on its connection, 2 for the next…
	RemotePort int
	Endpoint   string // the last element of the path: the endpoint's index
	WebhookID  string
	Attempt    int
	Key        string // the idempotency key the load generator put in the body
	Header     http.Header
	Mode       mode
	// Answered2xx is set once a well-formed 2xx status line was written:
	// the receiver has the event.
	Answered2xx bool
	// Done is when its answer ended (written, or the connection closed).
	Done time.Time
}

// connInfo is one accepted connection.
type connInfo struct {
	RemotePort int
	Requests   int
	Opened     time.Time
	Closed     time.Time // zero while open
}

func newDestination(t testing.TB, seed int64, plan faultPlan) *destination {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("campaign: destination: %v", err)
	}
	d := &destination{t: t, ln: ln, rng: rand.New(rand.NewSource(seed)), faults: plan,
		conns: map[uint64]*connInfo{}, done: make(chan struct{})}
	d.wg.Add(1)
	go d.serve()
	t.Cleanup(d.close)
	return d
}

// url returns the URL of endpoint index i.
func (d *destination) url(i int) string {
	return "http://" + d.ln.Addr().String() + "/e/" + strconv.Itoa(i)
}

func (d *destination) port() int { return d.ln.Addr().(*net.TCPAddr).Port }

// setPlan changes how later requests are answered.
func (d *destination) setPlan(p faultPlan) {
	d.mu.Lock()
	d.faults = p
	d.mu.Unlock()
}

func (d *destination) close() {
	if d.closed.Swap(true) {
		return
	}
	close(d.done)
	d.ln.Close()
	d.wg.Wait()
}

func (d *destination) serve() {
	defer d.wg.Done()
	for {
		c, err := d.ln.Accept()
		if err != nil {
			return
		}
		d.mu.Lock()
		d.nextID++
		id := d.nextID
		d.conns[id] = &connInfo{RemotePort: c.RemoteAddr().(*net.TCPAddr).Port, Opened: time.Now()}
		d.mu.Unlock()
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.handle(id, c.(*net.TCPConn))
		}()
	}
}

// handle serves one connection: requests one after the other (keep-alive)
// until a mode ends it.
func (d *destination) handle(id uint64, c *net.TCPConn) {
	defer func() {
		c.Close()
		d.mu.Lock()
		d.conns[id].Closed = time.Now()
		d.mu.Unlock()
	}()
	// Closing the destination unblocks every read and write.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-d.done:
			_ = c.SetDeadline(time.Now())
		case <-stop:
		}
	}()
	br := bufio.NewReader(c)
	for {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Minute))
		if d.closing() { // close may have set its deadline just before ours
			return
		}
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		if err != nil {
			return
		}
		r, plan := d.record(id, req, body)
		more := d.respond(c, r, plan)
		d.mu.Lock()
		r.Done = time.Now()
		d.mu.Unlock()
		if !more {
			return
		}
	}
}

// record logs the request and draws its mode.
func (d *destination) record(conn uint64, req *http.Request, body []byte) (*request, faultPlan) {
	attempt, _ := strconv.Atoi(req.Header.Get("X-Kapsel-Attempt"))
	r := &request{
		At:        time.Now(),
		Conn:      conn,
		Endpoint:  req.URL.Path[strings.LastIndexByte(req.URL.Path, '/')+1:],
		WebhookID: req.Header.Get("webhook-id"),
		Attempt:   attempt,
		Key:       bodyKey(body),
		Header:    req.Header,
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	ci := d.conns[conn]
	ci.Requests++
	r.RemotePort, r.ConnSeq = ci.RemotePort, ci.Requests
	r.Seq = len(d.reqs)
	r.Mode = modeOK
	if p := d.faults; p.Rate > 0 && len(p.Modes) > 0 && d.rng.Float64() < p.Rate {
		r.Mode = p.Modes[d.rng.Intn(len(p.Modes))]
	}
	d.reqs = append(d.reqs, r)
	plan := d.faults
	if plan.Latency > 0 {
		plan.Latency = time.Duration(d.rng.Int63n(int64(plan.Latency)))
	}
	return r, plan
}

// answered2xx marks r as answered with a 2xx status line.
func (d *destination) answered2xx(r *request) {
	d.mu.Lock()
	r.Answered2xx = true
	d.mu.Unlock()
}

// closing reports whether close was called.
func (d *destination) closing() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// sleep waits for dt, or less when the destination closes; it reports
// whether the whole time passed.
func (d *destination) sleep(dt time.Duration) bool {
	select {
	case <-time.After(dt):
		return true
	case <-d.done:
		return false
	}
}

// requests returns a copy of the log.
func (d *destination) requests() []request {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]request, len(d.reqs))
	for i, r := range d.reqs {
		out[i] = *r
	}
	return out
}

// connections returns a copy of the connection table.
func (d *destination) connections() map[uint64]connInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[uint64]connInfo, len(d.conns))
	for id, c := range d.conns {
		out[id] = *c
	}
	return out
}

// lastRequestAt returns when the latest request arrived.
func (d *destination) lastRequestAt() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.reqs) == 0 {
		return time.Time{}
	}
	return d.reqs[len(d.reqs)-1].At
}

// bodyKey reads the "key" member the load generator puts at the start of
// every body, without a JSON parser (bodies are ours, always the same shape).
func bodyKey(body []byte) string {
	const prefix = `{"key":"`
	s := string(body)
	if !strings.HasPrefix(s, prefix) {
		return ""
	}
	s = s[len(prefix):]
	if i := strings.IndexByte(s, '"'); i >= 0 {
		return s[:i]
	}
	return ""
}

// overlapping counts the requests of one (webhook-id, endpoint) that
// arrived while an earlier request of it was still being answered: the same
// delivery attempted twice at once.
func overlapping(reqs []request) int {
	type pair struct{ id, ep string }
	last := map[pair]time.Time{} // latest Done so far, in arrival order
	n := 0
	for _, q := range reqs {
		p := pair{q.WebhookID, q.Endpoint}
		if done, ok := last[p]; ok && (done.IsZero() || q.At.Before(done)) {
			n++
		}
		if d, ok := last[p]; !ok || (!d.IsZero() && (q.Done.IsZero() || q.Done.After(d))) {
			last[p] = q.Done
		}
	}
	return n
}
