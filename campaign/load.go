package campaign

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// loader plays the providers: it POSTs signed webhooks (Standard Webhooks)
// to the source's ingest URL on the live nodes at a fixed rate, each with
// its own idempotency key, and sends a refused or unanswered one again with
// the same key, as providers do, until it is acknowledged or the run ends.
// Half the requests carry the key in an Idempotency-Key header (which
// Kapsel forwards to the destinations), the other half only as webhook-id.
type loader struct {
	ingestPath string
	secret     []byte // the source's verifier key, decoded
	nodes      func() []string
	client     *http.Client
	rate       float64
	workers    int
	prefix     string // idempotency keys are prefix-<n>

	mu        sync.Mutex
	next      int
	acked     map[string]string // idempotency key → event id
	ackedAt   map[string]time.Time
	offered   int // distinct keys sent at least once
	sent      int // requests, resends included
	statuses  map[int]int
	noRetry   int // 503s without Retry-After
	transport int // requests without an answer (node down)
	bad       []string
	errBodies []string
	start     time.Time
	end       time.Time
}

func newLoader(ingestPath string, verifierSecret string, nodes func() []string, rate float64, prefix string) *loader {
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(verifierSecret, "whsec_"))
	return &loader{
		ingestPath: ingestPath, secret: key, nodes: nodes, rate: rate, prefix: prefix,
		workers: 64,
		client: &http.Client{Timeout: 10 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}},
		acked: map[string]string{}, ackedAt: map[string]time.Time{}, statuses: map[int]int{},
	}
}

// run offers new webhooks at the loader's rate until ctx ends, then keeps
// resending the unacknowledged ones for at most grace.
func (l *loader) run(ctx context.Context, grace time.Duration) {
	l.mu.Lock()
	l.start = time.Now()
	l.mu.Unlock()
	resendCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sem := make(chan struct{}, l.workers)
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Duration(float64(time.Second) / l.rate))
	defer tick.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		l.mu.Lock()
		n := l.next
		l.next++
		l.offered++
		l.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			l.deliver(ctx, resendCtx, n)
		}()
	}
	l.mu.Lock()
	l.end = time.Now()
	l.mu.Unlock()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		cancel()
		<-done
	}
}

// deliver sends webhook n until it is acknowledged: at most 200 tries,
// while ctx runs, then until resendCtx ends.
func (l *loader) deliver(ctx, resendCtx context.Context, n int) {
	key := fmt.Sprintf("%s-%d", l.prefix, n)
	body := fmt.Appendf(nil, `{"key":"%s","n":%d,"pad":"%s"}`, key, n, strings.Repeat("x", 64+n%200))
	for try := range 200 {
		nodes := l.nodes()
		if len(nodes) > 0 {
			wait, done := l.send(nodes[(n+try)%len(nodes)], key, n%2 == 0, body)
			if done {
				return
			}
			if ctx.Err() != nil && resendCtx.Err() != nil {
				return
			}
			select {
			case <-time.After(wait):
			case <-resendCtx.Done():
				return
			}
			continue
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-resendCtx.Done():
			return
		}
	}
}

// send makes one request; done means acknowledged (or refused for good),
// else wait is how long to wait before the next try.
func (l *loader) send(base, key string, keyHeader bool, body []byte) (wait time.Duration, done bool) {
	req, err := http.NewRequest(http.MethodPost, base+l.ingestPath, bytes.NewReader(body))
	if err != nil {
		return time.Second, false
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, l.secret)
	fmt.Fprintf(mac, "%s.%s.%s", key, ts, body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", key)
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	if keyHeader {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := l.client.Do(req)
	l.mu.Lock()
	l.sent++
	l.mu.Unlock()
	if err != nil {
		l.mu.Lock()
		l.transport++
		l.mu.Unlock()
		return 100 * time.Millisecond, false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	l.mu.Lock()
	defer l.mu.Unlock()
	l.statuses[resp.StatusCode]++
	switch {
	case resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusOK:
		var out struct {
			ID        string `json:"id"`
			Duplicate bool   `json:"duplicate"`
		}
		if err := json.Unmarshal(b, &out); err != nil || out.ID == "" {
			l.bad = append(l.bad, fmt.Sprintf("%d answer without an id: %q", resp.StatusCode, b))
			return 0, true
		}
		if prev, ok := l.acked[key]; ok && prev != out.ID {
			l.bad = append(l.bad, fmt.Sprintf("key %s acknowledged as %s, then as %s (I2)", key, prev, out.ID))
		}
		if _, ok := l.acked[key]; !ok {
			l.acked[key] = out.ID
			l.ackedAt[key] = time.Now()
		}
		return 0, true
	case resp.StatusCode == http.StatusServiceUnavailable:
		l.errBodies = append(l.errBodies, string(b))
		ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		if err != nil || ra < 0 {
			l.noRetry++
			ra = 1
		}
		return min(time.Duration(ra)*time.Second, time.Second), false
	default:
		l.errBodies = append(l.errBodies, string(b))
		l.bad = append(l.bad, fmt.Sprintf("ingest answered %d: %.300s", resp.StatusCode, b))
		return 200 * time.Millisecond, resp.StatusCode < 500
	}
}

// loadStats is what the loader did.
type loadStats struct {
	Offered, Sent, Acked, Transport, NoRetryAfter int
	Statuses                                      map[int]int
	Rate                                          float64 // acknowledged per second of load
	Bad                                           []string
}

func (l *loader) stats() loadStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := loadStats{Offered: l.offered, Sent: l.sent, Acked: len(l.acked), Transport: l.transport,
		NoRetryAfter: l.noRetry, Statuses: map[int]int{}, Bad: append([]string(nil), l.bad...)}
	for k, v := range l.statuses {
		s.Statuses[k] = v
	}
	if d := l.end.Sub(l.start).Seconds(); d > 0 {
		s.Rate = float64(len(l.acked)) / d
	}
	return s
}

// ackedKeys returns a copy of key → event id.
func (l *loader) ackedKeys() map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]string, len(l.acked))
	for k, v := range l.acked {
		out[k] = v
	}
	return out
}

func (l *loader) errorBodies() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errBodies...)
}
