package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/kapsel-dev/kapsel/bench/load"
	"github.com/kapsel-dev/kapsel/bench/stats"
	"github.com/kapsel-dev/kapsel/bench/target"
)

// phase is one measurement: a load plan against one target, the
// destination that receives its deliveries, and what to do between the
// load and the wait for deliveries.
type phase struct {
	target, mode, store string
	pid                 int              // the target's process, for its CPU; 0 = unknown
	db                  *target.Database // its database, for its backends' CPU; nil = none
	dest                *load.Destination
	tgt                 load.Target
	plan                load.Plan
	deliver             bool
	// healthy reports whether request n goes to endpoints that deliver;
	// nil = all do.
	healthy func(n int) bool
	// afterLoad runs once the load has ended (drain: resume the endpoint)
	// and returns when delivery may start.
	afterLoad func(ctx context.Context) (time.Time, error)
}

// newPhase plans a phase against target and opens the destination that
// receives its deliveries, fanout per request; the caller closes ph.dest.
func newPhase(o *options, target, store string, rate float64, fanout int) (*phase, error) {
	ph := &phase{target: target, mode: o.Mode, store: store, deliver: o.Mode != "ingest", plan: planFor(o, rate)}
	dest, err := load.NewDestination(ph.plan.Max, fanout)
	if err != nil {
		return nil, err
	}
	ph.dest = dest
	return ph, nil
}

// kapselPhase sets kapseld up for the phase and runs it. Failing mode:
// --endpoints sources, each with one endpoint subscribed to it, the last
// of which fails; the load is spread over the sources. Other modes: one
// source and --endpoints endpoints subscribed to it, so each event fans
// out to every one of them (deliveries/s counts each delivery).
func kapselPhase(ctx context.Context, o *options, k *kapsel, rate float64, pr *progress) (*result, error) {
	sources, fanout := 1, o.endpoints()
	if o.Mode == "failing" {
		sources, fanout = o.endpoints(), 1
	}
	ph, err := newPhase(o, "kapsel", k.store, rate, fanout)
	if err != nil {
		return nil, err
	}
	defer ph.dest.Close()
	if k.proc != nil {
		ph.pid = k.proc.Pid()
	}
	ph.db = k.db
	if o.Mode == "failing" {
		n := sources
		ph.healthy = func(i int) bool { return i%n != n-1 } // the last source's endpoint fails
	}
	var ids []string
	for i := range sources {
		src, err := k.api.CreateSource(ctx, k.apiKey, secret)
		if err != nil {
			return nil, err
		}
		ph.tgt.Paths = append(ph.tgt.Paths, src.IngestPath)
		for e := range fanout {
			url := fmt.Sprintf("%s/ok/%d", ph.dest.URL, e)
			if o.Mode == "failing" && i == sources-1 {
				url = ph.dest.URL + "/fail"
			}
			ep, err := k.api.CreateEndpoint(ctx, k.apiKey, url, src.ID)
			if err != nil {
				return nil, err
			}
			if o.Mode == "ingest" || o.Mode == "drain" {
				if err := k.api.Pause(ctx, k.apiKey, ep.ID); err != nil {
					return nil, err
				}
			}
			ids = append(ids, ep.ID)
		}
	}
	ph.tgt.Addr = k.api.Base[len("http://"):]
	ph.tgt.Secret = secret
	if o.Mode == "drain" {
		ph.afterLoad = func(ctx context.Context) (time.Time, error) {
			at := time.Now()
			for _, id := range ids {
				if err := k.api.Resume(ctx, k.apiKey, id); err != nil {
					return at, err
				}
			}
			return at, nil
		}
	}
	return ph.run(ctx, o, pr, nil)
}

func riverPhase(ctx context.Context, o *options, db *target.Database, rate float64, pr *progress) (*result, error) {
	ph, err := newPhase(o, "river", "postgres", rate, 1)
	if err != nil {
		return nil, err
	}
	defer ph.dest.Close()
	svc, err := target.StartSelf(ctx, "river", "serve-river", "--database-url", db.URL,
		"--destination", ph.dest.URL+"/ok", "--secret", secret, fmt.Sprintf("--work=%t", ph.deliver))
	if err != nil {
		return nil, err
	}
	defer svc.Stop()
	ph.pid, ph.db = svc.Pid(), db
	ph.tgt = load.Target{Addr: svc.Addr, Paths: []string{"/ingest/river"}, Secret: secret}
	return ph.run(ctx, o, pr, svc)
}

// planFor bounds a phase: rate mode sends at most rate × duration
// requests; drain sends --events, with --wait as its time bound.
func planFor(o *options, rate float64) load.Plan {
	p := load.Plan{Clients: o.Clients, Duration: o.Duration, Max: o.MaxEvents}
	switch o.Mode {
	case "rate":
		p.Clients, p.Rate = o.RateConns, rate
		p.Max = min(o.MaxEvents, int(rate*o.Duration.Seconds()))
	case "drain":
		p.Max, p.Duration = o.Events, max(o.Wait, o.Duration)
	}
	return p
}

// run drives the load, waits (bounded) for the deliveries and measures.
func (ph *phase) run(ctx context.Context, o *options, pr *progress, svc *target.Process) (*result, error) {
	res := &result{
		Target: ph.target, Mode: ph.mode, Store: ph.store, Clients: ph.plan.Clients, OfferedRate: ph.plan.Rate,
		Fanout: ph.dest.Fanout(), LoadBefore: loadAvg(),
	}
	cpu0, self0 := target.ProcCPU(ph.pid), target.ProcCPU(os.Getpid())
	pg0 := ph.backendCPU(ctx)
	gen := load.Start(ctx, ph.tgt, ph.plan)
	label := ph.target + " " + ph.mode
	if ph.plan.Rate > 0 {
		label += fmt.Sprintf(" %.0f/s", ph.plan.Rate)
	}
	stop := pr.watch(label, gen, ph.dest)
	gen.Wait()
	res.LoadAfter = loadAvg()
	res.DurationS = gen.End.Sub(gen.Start).Seconds()

	deliveryStart := gen.Start
	if ph.afterLoad != nil {
		at, err := ph.afterLoad(ctx)
		if err != nil {
			stop()
			return nil, err
		}
		deliveryStart = at
	}
	if ph.deliver {
		deadline := time.Now().Add(o.Wait)
		tick := time.NewTicker(100 * time.Millisecond)
		for ph.missing(gen) > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
			<-tick.C
		}
		tick.Stop()
	}
	stop()
	end := time.Now()
	wall := end.Sub(gen.Start).Seconds()
	if ph.pid != 0 {
		res.TargetCores = (target.ProcCPU(ph.pid) - cpu0).Seconds() / wall
	}
	res.BenchCores = (target.ProcCPU(os.Getpid()) - self0).Seconds() / wall
	if pg0 != nil {
		if pg1 := ph.backendCPU(ctx); pg1 != nil {
			res.PostgresCores = target.CPUSince(pg0, pg1).Seconds() / wall
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	ph.measure(res, gen, deliveryStart)
	if n, per := res.Delivered, "delivery"; n > 0 || res.Acked > 0 {
		if !ph.deliver {
			n, per = res.Acked, "ack"
		}
		us := wall * 1e6 / float64(n)
		res.CPUPerEvent = &cpuPerEvent{Per: per, Target: res.TargetCores * us, Postgres: res.PostgresCores * us, Bench: res.BenchCores * us}
	}
	if res.Acked == 0 {
		msg := fmt.Sprintf("%s: no request was acknowledged (%d failed; first: %s)", label, res.Failed, res.FirstError)
		if svc != nil {
			msg += "\nservice output:\n" + svc.Logs()
		}
		return nil, fmt.Errorf("%s", msg)
	}
	return res, nil
}

// backendCPU is the CPU time of the target's Postgres backends so far, nil
// when there is no database to read (SQLite, --kapseld-url) or it cannot be
// read: the result then has no postgres_cores.
func (ph *phase) backendCPU(ctx context.Context) map[int]time.Duration {
	if ph.db == nil {
		return nil
	}
	cpu, err := ph.db.BackendCPU(ctx)
	if err != nil {
		return nil
	}
	return cpu
}

// missing counts the deliveries of acknowledged requests to healthy
// endpoints not yet received: one per request and endpoint of its fan-out.
func (ph *phase) missing(gen *load.Run) int {
	n := 0
	for i := range gen.AckAt {
		if gen.AckAt[i].Load() == 0 || (ph.healthy != nil && !ph.healthy(i)) {
			continue
		}
		for k := range ph.dest.Fanout() {
			if ph.dest.Copies(i, k) == 0 {
				n++
			}
		}
	}
	return n
}

func (ph *phase) measure(res *result, gen *load.Run, deliveryStart time.Time) {
	res.Sent, res.Acked, res.Failed = gen.Sent.Load(), gen.Acked.Load(), gen.Failed.Load()
	if ph.plan.Rate > 0 {
		res.Unsent = max(int64(ph.plan.Max)-res.Sent, 0)
	}
	res.FirstError = gen.FirstError()
	res.Statuses = map[string]int64{}
	for s, c := range gen.Statuses() {
		res.Statuses[fmt.Sprint(s)] = c
	}
	res.AcksPerS = float64(res.Acked) / res.DurationS
	res.AckLatency = gen.AckLatency.Summarize()
	res.ackCDF = gen.AckLatency.CDF()
	if !ph.deliver {
		return
	}
	ackToDest := stats.New()
	var lost, delivered, dups, unacked, early int64
	var last int64
	for i := range gen.AckAt {
		ack := gen.AckAt[i].Load()
		for k := range ph.dest.Fanout() {
			c := int64(ph.dest.Copies(i, k))
			if c > 1 {
				dups += c - 1
			}
			if ack == 0 {
				if c > 0 {
					unacked++
				}
				continue
			}
			if ph.healthy != nil && !ph.healthy(i) {
				continue
			}
			if c == 0 {
				lost++
				continue
			}
			delivered++
			first := ph.dest.FirstAt(i, k)
			last = max(last, first)
			if first < ack {
				early++
			}
			ackToDest.RecordDuration(time.Duration(first - ack))
		}
	}
	res.Lost = &lost
	res.Delivered, res.Duplicates, res.DuplicateIDs = delivered, dups, ph.dest.DuplicateIDs.Load()
	res.Foreign = ph.dest.Foreign.Load()
	res.DeliveredUnacked, res.DeliveredBeforeAck = unacked, early
	res.FailingAttempts = ph.dest.Failed.Load()
	if last > 0 {
		res.DeliveryWindowS = time.Duration(last - deliveryStart.UnixNano()).Seconds()
		res.DeliveriesPerS = float64(delivered) / res.DeliveryWindowS
	}
	res.AckToDest = ackToDest.Summarize()
	res.SendToDest = ph.dest.SendLatency.Summarize()
	res.ackToDestCDF = ackToDest.CDF()
}
