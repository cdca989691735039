package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kapsel-dev/kapsel/bench/chart"
	"github.com/kapsel-dev/kapsel/bench/target"
)

// Memory mode: --clients concurrent bodies of --body-bytes each, --rounds
// times, to one source whose one endpoint is paused (nothing is delivered,
// so only the ingest holds bodies), while kapseld's VmRSS and VmHWM are
// read from /proc every 50 ms; then its RSS 5 s and 30 s after the last
// round. SPEC §9: a body costs O(body), and memory comes back after a
// burst.

// memorySample is kapseld's resident memory at a moment of the run.
type memorySample struct {
	AtS    float64 `json:"at_s"` // since the first round began
	RSSMiB float64 `json:"rss_mib"`
}

// memoryResult is the memory mode's JSON result.
type memoryResult struct {
	Store     string  `json:"store"`
	Clients   int     `json:"clients"`
	BodyBytes int64   `json:"body_bytes"`
	Rounds    int     `json:"rounds"`
	InFlight  float64 `json:"in_flight_mib"` // clients × body, MiB (10^6)
	// RoundS is each round's duration: first request sent → last answer.
	RoundS   []float64        `json:"round_s"`
	Acked    int64            `json:"acked"`
	Failed   int64            `json:"failed"`
	Statuses map[string]int64 `json:"failed_statuses,omitempty"`
	FirstErr string           `json:"first_error,omitempty"`

	BeforeMiB  float64 `json:"rss_before_mib"` // after setup, before the first round
	PeakMiB    float64 `json:"rss_peak_mib"`   // highest VmRSS sampled
	HWMMiB     float64 `json:"hwm_mib"`        // VmHWM after the last round (the kernel's peak)
	After5MiB  float64 `json:"rss_after_5s_mib"`
	After30MiB float64 `json:"rss_after_30s_mib"`
	// PeakOverBodies is (peak − before) ÷ bodies in flight: 1 = each body
	// held once.
	PeakOverBodies float64 `json:"peak_over_bodies"`

	LoadBefore [3]float64     `json:"load_avg_before"`
	LoadAfter  [3]float64     `json:"load_avg_after"`
	Samples    []memorySample `json:"samples"`
}

func (m *memoryResult) line() string {
	return fmt.Sprintf("memory %s: %d × %.1f MiB × %d rounds (acked %d, failed %d): RSS %.0f MiB before, peak %.0f MiB (HWM %.0f MiB; peak − before = %.2f× the %.0f MiB in flight), %.0f MiB 5 s after, %.0f MiB 30 s after; load %s",
		m.Store, m.Clients, float64(m.BodyBytes)/(1<<20), m.Rounds, m.Acked, m.Failed, m.BeforeMiB, m.PeakMiB, m.HWMMiB,
		m.PeakOverBodies, m.InFlight, m.After5MiB, m.After30MiB, fmtLoad(m.LoadAfter))
}

// memoryBench runs the memory mode against a kapseld it starts.
func memoryBench(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	rep := newReport(o) // started now
	var db *target.Database
	if o.Store == "postgres" {
		var err error
		if db, err = target.CreateDatabase(ctx, o.DatabaseURL, "kapsel"); err != nil {
			return err
		}
		defer func() {
			if err := db.Drop(context.Background()); err != nil {
				fmt.Fprintln(stderr, "kapsel-bench: cleaning up:", err)
			}
		}()
	}
	k, stopK, err := startKapsel(ctx, o, db)
	if err != nil {
		return err
	}
	defer func() {
		if err := stopK(); err != nil {
			fmt.Fprintln(stderr, "kapsel-bench: stopping kapseld:", err)
		}
	}()
	src, err := k.api.CreateSource(ctx, k.apiKey, secret)
	if err != nil {
		return err
	}
	ep, err := k.api.CreateEndpoint(ctx, k.apiKey, "http://127.0.0.1:9/never", src.ID)
	if err != nil {
		return err
	}
	if err := k.api.Pause(ctx, k.apiKey, ep.ID); err != nil {
		return err
	}
	res, err := runMemory(ctx, o, k.proc.Pid(), k.api.Base+src.IngestPath, newProgress(stderr))
	if err != nil {
		return err
	}
	res.Store = o.Store
	fmt.Fprintln(stdout, res.line())
	if err := writeJSON(o.Out, struct {
		*report
		Memory *memoryResult `json:"memory"`
	}{rep, res}, stdout); err != nil {
		return err
	}
	if o.Chart == "" {
		return nil
	}
	p := chart.Panel{Title: "kapseld resident memory", XLabel: "seconds since the first round", YLabel: "MiB"}
	s := chart.Series{Name: "VmRSS " + o.Store, Color: "#1f77b4"}
	for _, sm := range res.Samples {
		s.Points = append(s.Points, chart.Point{X: sm.AtS, Y: sm.RSSMiB})
	}
	p.Series = append(p.Series, s, chart.Series{Name: "bodies in flight", Color: "#7f7f7f", Dashed: true,
		Points: []chart.Point{{X: 0, Y: res.BeforeMiB + res.InFlight}, {X: res.Samples[len(res.Samples)-1].AtS, Y: res.BeforeMiB + res.InFlight}}})
	f, err := os.Create(o.Chart)
	if err != nil {
		return err
	}
	title := fmt.Sprintf("kapsel-bench memory, %s, %d × %.0f MiB × %d rounds, %s", o.Store, o.Clients, float64(o.BodyBytes)/(1<<20), o.Rounds, rep.Started.Format("2006-01-02 15:04 MST"))
	if err := chart.Write(f, title, []chart.Panel{p}); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "chart: %s\n", o.Chart)
	return nil
}

// runMemory sends the rounds to url while sampling pid's memory, then
// reads it 5 s and 30 s after the last round.
func runMemory(ctx context.Context, o *options, pid int, url string, pr *progress) (*memoryResult, error) {
	res := &memoryResult{
		Clients: o.Clients, BodyBytes: o.BodyBytes, Rounds: o.Rounds,
		InFlight: float64(o.Clients) * float64(o.BodyBytes) / (1 << 20), Statuses: map[string]int64{},
	}
	// Each request's body is a distinct JSON document — a header with its
	// number, then padding shared by all of them — signed in advance, so
	// the generator neither holds a copy per request nor hashes during
	// the rounds.
	pad := bytes.Repeat([]byte("x"), int(o.BodyBytes))
	n := o.Clients * o.Rounds
	heads, sigs := make([][]byte, n), make([]string, n)
	for i := range n {
		heads[i] = fmt.Appendf(nil, `{"seq":"%010d","pad":"`, i)
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(heads[i])
		mac.Write(pad[:padLen(o.BodyBytes, heads[i])])
		mac.Write([]byte(`"}`))
		sigs[i] = "sha256=" + hex.EncodeToString(mac.Sum(nil))
	}
	tr := &http.Transport{MaxIdleConnsPerHost: o.Clients, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 2 * time.Minute}

	// The sampler.
	var samples []memorySample
	var peak atomic.Int64
	start := time.Now()
	before, _, err := procMemory(pid)
	if err != nil {
		return nil, err
	}
	res.BeforeMiB = kbToMiB(before)
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for range 200_000 { // bounded: hours at 50 ms
			rss, _, err := procMemory(pid)
			if err == nil {
				samples = append(samples, memorySample{AtS: time.Since(start).Seconds(), RSSMiB: kbToMiB(rss)})
				if rss > peak.Load() {
					peak.Store(rss)
				}
			}
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
		}
	}()

	res.LoadBefore = loadAvg()
	var acked, failed atomic.Int64
	var mu sync.Mutex
	for round := range o.Rounds {
		t0 := time.Now()
		var wg sync.WaitGroup
		for c := range o.Clients {
			i := round*o.Clients + c
			wg.Add(1)
			go func() {
				defer wg.Done()
				status, err := postBody(ctx, client, url, heads[i], pad[:padLen(o.BodyBytes, heads[i])], sigs[i])
				if err == nil && status/100 == 2 {
					acked.Add(1)
					return
				}
				failed.Add(1)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					res.Statuses["error"]++
					if res.FirstErr == "" {
						res.FirstErr = err.Error()
					}
				} else {
					res.Statuses[strconv.Itoa(status)]++
				}
			}()
		}
		wg.Wait()
		res.RoundS = append(res.RoundS, time.Since(t0).Seconds())
		fmt.Fprintf(pr.w, "[memory %s] round %d/%d: %.1f s, acked %d, failed %d, peak RSS %.0f MiB\n",
			o.Store, round+1, o.Rounds, time.Since(t0).Seconds(), acked.Load(), failed.Load(), kbToMiB(peak.Load()))
		if err := ctx.Err(); err != nil {
			close(stopSampling)
			<-sampled
			return nil, err
		}
	}
	end := time.Now()
	tr.CloseIdleConnections()
	_, hwm, _ := procMemory(pid)
	res.HWMMiB = kbToMiB(hwm)
	for _, after := range []time.Duration{5 * time.Second, 30 * time.Second} {
		select {
		case <-ctx.Done():
			close(stopSampling)
			<-sampled
			return nil, ctx.Err()
		case <-time.After(time.Until(end.Add(after))):
		}
		rss, _, err := procMemory(pid)
		if err != nil {
			close(stopSampling)
			<-sampled
			return nil, err
		}
		if after == 5*time.Second {
			res.After5MiB = kbToMiB(rss)
		} else {
			res.After30MiB = kbToMiB(rss)
		}
		fmt.Fprintf(pr.w, "[memory %s] RSS %.0f MiB %s after the last round\n", o.Store, kbToMiB(rss), after)
	}
	close(stopSampling)
	<-sampled
	res.LoadAfter = loadAvg()
	res.Acked, res.Failed = acked.Load(), failed.Load()
	res.PeakMiB = kbToMiB(peak.Load())
	res.PeakOverBodies = (res.PeakMiB - res.BeforeMiB) / res.InFlight
	res.Samples = samples
	if len(res.Statuses) == 0 {
		res.Statuses = nil
	}
	return res, nil
}

// padLen is how much padding makes head + padding + `"}` size bytes.
func padLen(size int64, head []byte) int { return max(int(size)-len(head)-2, 0) }

// postBody posts head + pad + `"}` with its signature and Content-Length,
// and returns the answer's status.
func postBody(ctx context.Context, client *http.Client, url string, head, pad []byte, sig string) (int, error) {
	body := io.MultiReader(bytes.NewReader(head), bytes.NewReader(pad), strings.NewReader(`"}`))
	req, err := http.NewRequestWithContext(ctx, "POST", url, body)
	if err != nil {
		return 0, err
	}
	req.ContentLength = int64(len(head) + len(pad) + 2)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-Hub-Signature-256", sig)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, nil
}

// procMemory reads VmRSS and VmHWM (kB) of pid from /proc (Linux).
func procMemory(pid int) (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != "VmRSS" && k != "VmHWM" {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/status %s: %w", pid, k, err)
		}
		if k == "VmRSS" {
			rss = n
		} else {
			hwm = n
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if rss == 0 {
		return 0, 0, errors.New("no VmRSS in /proc/" + strconv.Itoa(pid) + "/status (Linux only)")
	}
	return rss, hwm, nil
}

func kbToMiB(kb int64) float64 { return float64(kb) / 1024 }
