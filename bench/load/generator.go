package load

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kapsel-dev/kapsel/bench/stats"
)

// Target is where the generator sends: host:port, the ingest paths (request
// n goes to Paths[n % len(Paths)]) and the secret each body is signed with
// (GitHub's X-Hub-Signature-256).
type Target struct {
	Addr   string
	Paths  []string
	Secret string
}

// Plan bounds a run. Rate 0 is a closed loop: Clients connections each send
// the next request as soon as the last is answered. Rate > 0 is an open
// loop: request n is due at start + n/Rate whatever the answers do, sent by
// whichever of the Clients connections is free, and its latency runs from
// when it was due — so a server that stalls shows its queue instead of
// slowing the generator down. A run ends after Duration or Max requests,
// whichever comes first.
type Plan struct {
	Clients  int
	Rate     float64
	Duration time.Duration
	Max      int
	Timeout  time.Duration // per request; defaults to 30 s
}

// Run is a load run under way; its counters are live.
type Run struct {
	Target Target
	Plan   Plan
	Start  time.Time
	End    time.Time // set when Wait returns

	Sent, Acked, Failed atomic.Int64
	// AckAt[n] is when request n's 2xx answer was read (unix ns); 0 if not.
	AckAt []atomic.Int64
	// AckLatency is send (or due, in an open loop) → 2xx answer read.
	AckLatency *stats.Histogram

	next     atomic.Int64
	wg       sync.WaitGroup
	firstErr string
	statusMu sync.Mutex
	statuses map[int]int64 // non-2xx answers by status
}

// Start begins sending; Wait ends the run.
func Start(ctx context.Context, t Target, p Plan) *Run {
	if p.Timeout == 0 {
		p.Timeout = 30 * time.Second
	}
	p.Clients = max(p.Clients, 1)
	r := &Run{
		Target: t, Plan: p, AckAt: make([]atomic.Int64, p.Max),
		AckLatency: stats.New(), statuses: map[int]int64{},
	}
	r.Start = time.Now()
	run, cancel := context.WithDeadline(ctx, r.Start.Add(p.Duration))
	for range p.Clients {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.client(ctx, run)
		}()
	}
	go func() { r.wg.Wait(); cancel() }()
	return r
}

// Wait returns when every client has stopped: at the end of Duration or of
// Max requests.
func (r *Run) Wait() {
	r.wg.Wait()
	r.End = time.Now()
}

// FirstError describes the first failed request, "" when none failed.
func (r *Run) FirstError() string {
	r.statusMu.Lock()
	defer r.statusMu.Unlock()
	return r.firstErr
}

// Statuses returns the non-2xx answers by status code.
func (r *Run) Statuses() map[int]int64 {
	r.statusMu.Lock()
	defer r.statusMu.Unlock()
	out := make(map[int]int64, len(r.statuses))
	for k, v := range r.statuses {
		out[k] = v
	}
	return out
}

func (r *Run) fail(status int, err error) {
	r.Failed.Add(1)
	r.statusMu.Lock()
	defer r.statusMu.Unlock()
	if status > 0 {
		r.statuses[status]++
	}
	if r.firstErr == "" {
		if err != nil {
			r.firstErr = err.Error()
		} else {
			r.firstErr = fmt.Sprintf("answered %d", status)
		}
	}
}

// client is one connection's loop; it owns its buffers, so a request
// allocates nothing. In a closed loop it takes no new request once run (ctx
// bounded by the plan's Duration) ends; in an open loop it takes each
// request due before that end, even after it (the loop below). A request it
// has taken waits for its due time, cut short only by ctx itself.
func (r *Run) client(ctx, run context.Context) {
	c := &conn{addr: r.Target.Addr}
	defer c.close()
	prefixes := make([][]byte, len(r.Target.Paths))
	for i, p := range r.Target.Paths {
		prefixes[i] = fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"+
			"X-GitHub-Event: push\r\nContent-Length: %d\r\nX-Hub-Signature-256: sha256=", p, r.Target.Addr, BodySize)
	}
	body := NewBody()
	mac := hmac.New(sha256.New, []byte(r.Target.Secret))
	sum := make([]byte, 0, sha256.Size)
	req := make([]byte, 0, 512+BodySize)
	interval := time.Duration(0)
	if r.Plan.Rate > 0 {
		interval = time.Duration(float64(time.Second) / r.Plan.Rate)
	}
	deadline := r.Start.Add(r.Plan.Duration)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	// A closed loop stops taking requests when run ends; an open loop takes
	// every request due before that end, however late it gets to it — a
	// request the generator was too busy to send when due is sent late and
	// its latency counts the wait, or a stalled server would hide its queue.
	for interval > 0 || run.Err() == nil {
		n := r.next.Add(1) - 1
		if n >= int64(r.Plan.Max) {
			return
		}
		var at time.Time
		if interval > 0 {
			at = r.Start.Add(time.Duration(n) * interval)
			if !at.Before(deadline) {
				return
			}
			if d := time.Until(at); d > 0 {
				// Not run.Done(): it falls after at, and when a loaded
				// machine wakes this client late both would be ready and
				// select would drop a due request at random.
				timer.Reset(d) // Go ≥ 1.23: no stale tick to drain
				select {
				case <-ctx.Done():
					return
				case <-timer.C:
				}
			}
		} else {
			at = time.Now()
		}
		SetBody(body, uint64(n), at.UnixNano())
		mac.Reset()
		mac.Write(body)
		sum = mac.Sum(sum[:0])
		req = append(req[:0], prefixes[n%int64(len(prefixes))]...)
		req = hex.AppendEncode(req, sum)
		req = append(req, "\r\n\r\n"...)
		req = append(req, body...)

		if interval == 0 {
			at = time.Now() // closed loop: from the write, not from building and signing
		}
		r.Sent.Add(1)
		status, err := c.roundTrip(req, r.Plan.Timeout)
		now := time.Now()
		switch {
		case err != nil:
			r.fail(0, err)
		case status < 200 || status > 299:
			r.fail(status, nil)
		default:
			r.AckAt[n].Store(now.UnixNano())
			r.Acked.Add(1)
			r.AckLatency.RecordDuration(now.Sub(at))
		}
	}
}
