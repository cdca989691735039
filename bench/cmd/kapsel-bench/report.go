package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/kapsel-dev/kapsel/bench/chart"
	"github.com/kapsel-dev/kapsel/bench/stats"
	"github.com/kapsel-dev/kapsel/bench/target"
)

// result is one phase's measurements, as the JSON result holds them.
type result struct {
	Target      string  `json:"target"` // kapsel, river or noop (calibration)
	Mode        string  `json:"mode"`
	Store       string  `json:"store,omitempty"`
	Clients     int     `json:"clients"`                // connections
	OfferedRate float64 `json:"offered_rate,omitempty"` // open loop; 0 = closed loop
	DurationS   float64 `json:"duration_s"`             // of the load

	// Unsent counts open-loop requests that fell due before the end of the
	// load but found no free connection in time: the target fell behind.
	Unsent     int64            `json:"unsent,omitempty"`
	Sent       int64            `json:"sent"`
	Acked      int64            `json:"acked"`
	Failed     int64            `json:"failed"`
	Statuses   map[string]int64 `json:"failed_statuses,omitempty"`
	FirstError string           `json:"first_error,omitempty"`
	AcksPerS   float64          `json:"acks_per_s"`

	// Delivery (absent in ingest mode and calibration). Fanout is the
	// number of endpoints each event is delivered to. Delivered counts
	// deliveries (an acknowledged event at one endpoint) received at least
	// once — events × Fanout when nothing is lost; Lost the deliveries of
	// events acknowledged to healthy endpoints not received by the end of
	// --wait. DeliveriesPerS, Duplicates, the unacked and early counts and
	// AckToDest count deliveries too.
	Fanout             int     `json:"fanout,omitempty"`
	Delivered          int64   `json:"delivered"`
	DeliveriesPerS     float64 `json:"deliveries_per_s"`
	DeliveryWindowS    float64 `json:"delivery_window_s"` // load start (drain: resume) → last first delivery
	Lost               *int64  `json:"lost,omitempty"`
	Duplicates         int64   `json:"duplicates"`    // copies beyond the first, by request number and endpoint
	DuplicateIDs       int64   `json:"duplicate_ids"` // deliveries repeating a webhook-id at one endpoint
	Foreign            int64   `json:"foreign"`       // 2xx deliveries of a body the generator did not send (altered)
	DeliveredUnacked   int64   `json:"delivered_unacked"`
	DeliveredBeforeAck int64   `json:"delivered_before_ack"` // counted as 0 ms in ack_to_destination
	FailingAttempts    int64   `json:"failing_attempts,omitempty"`

	AckLatency stats.Summary `json:"ack_latency"`        // sent (open loop: due) → 2xx read
	AckToDest  stats.Summary `json:"ack_to_destination"` // 2xx read → first receipt
	SendToDest stats.Summary `json:"send_to_destination"`

	TargetCores float64 `json:"target_cores"` // the target process's CPU ÷ wall time
	BenchCores  float64 `json:"bench_cores"`  // generator + destination
	// PostgresCores is the CPU ÷ wall time of the Postgres backends serving
	// the target's database (not the server's shared WAL writer and
	// checkpointer); 0 without one.
	PostgresCores float64 `json:"postgres_cores,omitempty"`
	// CPUPerEvent divides the CPU time behind the cores above by the
	// deliveries made (acknowledged requests when the phase delivers
	// nothing): where the cores go, per unit of work.
	CPUPerEvent *cpuPerEvent `json:"cpu_per_event,omitempty"`
	LoadBefore  [3]float64   `json:"load_avg_before"`
	LoadAfter   [3]float64   `json:"load_avg_after"`

	ackCDF, ackToDestCDF []stats.CDFPoint
}

// cpuPerEvent is CPU time per delivery (or per acknowledged request), in
// microseconds.
type cpuPerEvent struct {
	Per      string  `json:"per"` // "delivery" or "ack"
	Target   float64 `json:"target_us"`
	Postgres float64 `json:"postgres_us"`
	Bench    float64 `json:"bench_us"`
}

// report is the JSON result.
type report struct {
	Started      time.Time `json:"started"`
	Host         host      `json:"host"`
	Command      []string  `json:"command"`
	Options      *options  `json:"options"`
	RiverVersion string    `json:"river_version"`
	Calibration  *result   `json:"calibration,omitempty"`
	// PGBench is the Postgres server's single-row ceiling in the same run
	// (--pgbench).
	PGBench *target.PGBenchResult `json:"pgbench,omitempty"`
	Results []*result             `json:"results"`
}

type host struct {
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go_version"`
	Hostname  string `json:"hostname"`
}

func newReport(o *options) *report {
	h, _ := os.Hostname()
	r := &report{
		Started: time.Now().UTC(), Command: os.Args, Options: o,
		Host: host{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Hostname: h},
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/riverqueue/river" {
				r.RiverVersion = d.Version
			}
		}
	}
	return r
}

func (r *report) add(res *result) { r.Results = append(r.Results, res) }

// line is a one-line summary of a result.
func (res *result) line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", res.Target, res.Mode)
	if res.OfferedRate > 0 {
		fmt.Fprintf(&b, " %.0f/s", res.OfferedRate)
	}
	fmt.Fprintf(&b, " (%s, %d conns, %.1f s): acked %d (%.0f/s), failed %d",
		res.Store, res.Clients, res.DurationS, res.Acked, res.AcksPerS, res.Failed)
	if res.Unsent > 0 {
		fmt.Fprintf(&b, ", %d due but never sent (fell behind)", res.Unsent)
	}
	fmt.Fprintf(&b, "; ack p50/p90/p99/max %s", pcts(res.AckLatency))
	if res.Lost != nil {
		fanout := ""
		if res.Fanout > 1 {
			fanout = fmt.Sprintf(" to %d endpoints each", res.Fanout)
		}
		fmt.Fprintf(&b, "; delivered %d%s (%.0f deliveries/s), lost %d, duplicates %d; ack→destination %s",
			res.Delivered, fanout, res.DeliveriesPerS, *res.Lost, res.Duplicates, pcts(res.AckToDest))
		if res.Foreign > 0 {
			fmt.Fprintf(&b, "; %d deliveries of an altered body", res.Foreign)
		}
	}
	fmt.Fprintf(&b, "; target %.2f cores", res.TargetCores)
	if res.PostgresCores > 0 {
		fmt.Fprintf(&b, ", its Postgres backends %.2f", res.PostgresCores)
	}
	fmt.Fprintf(&b, ", bench %.2f cores", res.BenchCores)
	if c := res.CPUPerEvent; c != nil {
		fmt.Fprintf(&b, " (CPU per %s: target %.0f µs, Postgres %.0f µs, bench %.0f µs)", c.Per, c.Target, c.Postgres, c.Bench)
	}
	fmt.Fprintf(&b, "; load %s → %s", fmtLoad(res.LoadBefore), fmtLoad(res.LoadAfter))
	return b.String()
}

func pcts(s stats.Summary) string {
	return fmt.Sprintf("%.1f/%.1f/%.1f/%.1f ms", s.P50, s.P90, s.P99, s.Max)
}

func fmtLoad(l [3]float64) string { return fmt.Sprintf("%.2f %.2f %.2f", l[0], l[1], l[2]) }

// loadAvg reads the 1, 5 and 15 minute load averages (Linux).
func loadAvg() [3]float64 {
	var out [3]float64
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return out
	}
	for i, f := range strings.Fields(string(raw))[:3] {
		out[i], _ = strconv.ParseFloat(f, 64)
	}
	return out
}

// writeJSON writes v, indented, to path and says so on stdout.
func writeJSON(path string, v any, stdout io.Writer) error {
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(raw, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "result: %s\n", path)
	return nil
}

func (r *report) write(o *options, stdout io.Writer) error {
	if err := writeJSON(o.Out, r, stdout); err != nil {
		return err
	}
	if o.Chart == "" {
		return nil
	}
	f, err := os.Create(o.Chart)
	if err != nil {
		return err
	}
	if err := chart.Write(f, r.title(), r.panels()); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "chart: %s\n", o.Chart)
	return nil
}

func (r *report) title() string {
	t := fmt.Sprintf("kapsel-bench %s, %s, %d CPUs, %s", r.Options.Mode, r.Started.Format("2006-01-02 15:04 MST"), r.Host.CPUs, r.Host.Hostname)
	if c := r.Calibration; c != nil {
		t += fmt.Sprintf(" — generator calibrated at %.0f requests/s", c.AcksPerS)
	}
	return t
}

// panels: throughput and latency percentiles against offered load (the
// rate in an open loop, the acknowledged rate in a closed one), and the
// latency CDFs. The calibration run (the generator against a handler that
// does nothing) is only in the CDF and the title: on the offered-load axes
// its tens of thousands of requests/s would squash every other point.
func (r *report) panels() []chart.Panel {
	thr := chart.Panel{Title: "Throughput", XLabel: "offered load (requests/s)", YLabel: "per second"}
	lat := chart.Panel{Title: "Latency percentiles", XLabel: "offered load (requests/s)", YLabel: "ms", LogY: true}
	cdf := chart.Panel{Title: "Latency CDF", XLabel: "ms (log)", YLabel: "fraction", LogX: true}
	colors := map[string]string{"kapsel": "#1f77b4", "river": "#d62728", "noop": "#7f7f7f"}
	all := r.Results
	if r.Calibration != nil {
		all = append([]*result{r.Calibration}, all...)
	}
	index := map[string]int{} // panel title|series name → index in the panel's Series
	add := func(p *chart.Panel, target, metric string, dashed bool, pt chart.Point) {
		name := target + " " + metric
		i, ok := index[p.Title+"|"+name]
		if !ok {
			i = len(p.Series)
			index[p.Title+"|"+name] = i
			p.Series = append(p.Series, chart.Series{Name: name, Color: colors[target], Dashed: dashed})
		}
		p.Series[i].Points = append(p.Series[i].Points, pt)
	}
	for _, res := range r.Results {
		x := res.OfferedRate
		if x == 0 {
			x = res.AcksPerS
		}
		add(&thr, res.Target, "acks/s", false, chart.Point{X: x, Y: res.AcksPerS})
		add(&lat, res.Target, "ack p50", true, chart.Point{X: x, Y: res.AckLatency.P50})
		add(&lat, res.Target, "ack p99", false, chart.Point{X: x, Y: res.AckLatency.P99})
		if res.Lost != nil {
			add(&thr, res.Target, "deliveries/s", true, chart.Point{X: x, Y: res.DeliveriesPerS})
			add(&lat, res.Target, "ack→dest p50", true, chart.Point{X: x, Y: res.AckToDest.P50})
			add(&lat, res.Target, "ack→dest p99", false, chart.Point{X: x, Y: res.AckToDest.P99})
		}
	}
	for _, res := range all {
		name := res.Target + " " + res.Mode
		if res.OfferedRate > 0 {
			name += fmt.Sprintf(" %.0f/s", res.OfferedRate)
		}
		cdf.Series = append(cdf.Series, chart.Series{Name: name + " ack", Color: colors[res.Target], Points: cdfPoints(res.ackCDF)})
		if res.Lost != nil {
			cdf.Series = append(cdf.Series, chart.Series{Name: name + " ack→dest", Color: colors[res.Target], Dashed: true, Points: cdfPoints(res.ackToDestCDF)})
		}
	}
	return []chart.Panel{thr, lat, cdf}
}

func cdfPoints(c []stats.CDFPoint) []chart.Point {
	out := make([]chart.Point, 0, len(c))
	for _, p := range c {
		out = append(out, chart.Point{X: max(float64(p.Value)/1000, 0.001), Y: p.Fraction})
	}
	return out
}
