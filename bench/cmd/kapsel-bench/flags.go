package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kapsel-dev/kapsel/bench/target"
)

// options is the benchmark's configuration, from flags.
type options struct {
	Mode        string        `json:"mode"`
	Store       string        `json:"store"`
	DatabaseURL string        `json:"-"` // may hold a password
	KapseldURL  string        `json:"kapseld_url,omitempty"`
	KapseldDB   string        `json:"kapseld_database,omitempty"`
	Repo        string        `json:"-"`
	Baseline    string        `json:"baseline,omitempty"`
	Clients     int           `json:"clients"`
	RateConns   int           `json:"rate_conns"`
	Rates       []float64     `json:"rates,omitempty"`
	Duration    time.Duration `json:"-"`
	DurationS   float64       `json:"duration_s"`
	MaxEvents   int           `json:"max_events"`
	Events      int           `json:"events,omitempty"`
	Endpoints   int           `json:"endpoints,omitempty"`
	Wait        time.Duration `json:"-"`
	WaitS       float64       `json:"wait_s"`
	Calibrate   time.Duration `json:"-"`
	PGBench     time.Duration `json:"-"`
	PGBenchS    float64       `json:"pgbench_s,omitempty"`
	CalibrateS  float64       `json:"calibrate_s"`
	BodyBytes   int64         `json:"body_bytes,omitempty"`
	Rounds      int           `json:"rounds,omitempty"`
	Out         string        `json:"-"`
	Chart       string        `json:"-"`
}

var modes = []string{"ingest", "sustained", "rate", "drain", "failing", "memory"}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("kapsel-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var rates string
	fs.StringVar(&o.Mode, "mode", "sustained", "ingest, sustained, rate, drain, failing or memory")
	fs.StringVar(&o.Store, "store", "postgres", "kapseld's store: postgres or sqlite (embedded)")
	fs.StringVar(&o.DatabaseURL, "database-url", target.DefaultDatabaseURL,
		"Postgres server to create the run's throw-away databases on (dropped afterwards)")
	fs.StringVar(&o.KapseldURL, "kapseld-url", "", "measure a kapseld running on this machine, http://127.0.0.1:port (admin token from KAPSEL_ADMIN_TOKEN), instead of starting one")
	fs.StringVar(&o.KapseldDB, "kapseld-database", "", "with --kapseld-url: the database (on --database-url's server) that kapseld uses, to measure its backends' CPU")
	fs.StringVar(&o.Repo, "repo", "", "Kapsel repository to build cmd/kapseld from; default: found above the working directory")
	fs.StringVar(&o.Baseline, "baseline", "", `"river": measure the River baseline service too, in the same run`)
	fs.IntVar(&o.Clients, "clients", 64, "keep-alive connections of the closed loop (ingest, sustained, drain, failing, calibration)")
	fs.IntVar(&o.RateConns, "rate-conns", 256, "connections the open loop (rate) may use at once")
	fs.StringVar(&rates, "rate", "1000", "rate mode: requests per second, or a comma-separated list measured in turn")
	fs.DurationVar(&o.Duration, "duration", 15*time.Second, "how long each load phase runs at most")
	fs.IntVar(&o.MaxEvents, "max-events", 1_000_000, "most requests one phase sends")
	fs.IntVar(&o.Events, "events", 100_000, "drain mode: events accepted while the endpoint is paused")
	fs.IntVar(&o.Endpoints, "endpoints", 0, "endpoints subscribed to the source, each event delivered to all of them (default 1); failing mode: sources with one endpoint each, the last of which fails (default 10)")
	fs.DurationVar(&o.Wait, "wait", 2*time.Minute, "how long to wait for deliveries after the load; what is missing then is lost")
	fs.DurationVar(&o.Calibrate, "calibrate", 5*time.Second, "how long to calibrate the generator against a no-op handler; 0 = skip")
	fs.DurationVar(&o.PGBench, "pgbench", 0, "also measure the Postgres server's single-row ceiling (pgbench: one INSERT per transaction, --clients connections) for this long; 0 = skip")
	fs.Int64Var(&o.BodyBytes, "body-bytes", 10<<20, "memory mode: the size of each body (kapseld's default limit is 10 MiB)")
	fs.IntVar(&o.Rounds, "rounds", 3, "memory mode: bursts of --clients concurrent bodies, one after the other")
	fs.StringVar(&o.Out, "out", "kapsel-bench.json", "where to write the JSON result")
	fs.StringVar(&o.Chart, "chart", "kapsel-bench.svg", "where to write the SVG chart; empty = none")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.KapseldURL != "" {
		// The destination listens on 127.0.0.1 and kapseld must reach it:
		// a running kapseld is measured on this machine, over plain HTTP.
		u, err := url.Parse(o.KapseldURL)
		if err != nil || u.Scheme != "http" || u.Port() == "" || strings.Trim(u.Path, "/") != "" || !loopback(u.Hostname()) {
			return nil, fmt.Errorf("--kapseld-url %q: want http://127.0.0.1:port (a kapseld on this machine)", o.KapseldURL)
		}
		o.KapseldURL = "http://" + u.Host
	}
	if o.KapseldDB != "" && o.KapseldURL == "" {
		return nil, errors.New("--kapseld-database: only with --kapseld-url")
	}
	if !contains(modes, o.Mode) {
		return nil, fmt.Errorf("--mode %q: want one of %s", o.Mode, strings.Join(modes, ", "))
	}
	if o.Store != "postgres" && o.Store != "sqlite" {
		return nil, fmt.Errorf("--store %q: want postgres or sqlite", o.Store)
	}
	switch o.Baseline {
	case "":
	case "river":
		if o.Mode == "drain" || o.Mode == "failing" {
			return nil, fmt.Errorf("--baseline river: modes ingest, sustained and rate only")
		}
	default:
		return nil, fmt.Errorf("--baseline %q: want river", o.Baseline)
	}
	if o.Clients < 1 || o.Clients > 4096 || o.RateConns < 1 || o.RateConns > 4096 {
		return nil, errors.New("--clients and --rate-conns: 1 to 4096")
	}
	if o.Duration <= 0 || o.Duration > time.Hour || o.Wait < 0 || o.Wait > time.Hour {
		return nil, errors.New("--duration: (0, 1h]; --wait: [0, 1h]")
	}
	if o.MaxEvents < 1 || o.MaxEvents > 50_000_000 || o.Events < 1 || o.Events > o.MaxEvents {
		return nil, errors.New("--max-events: 1 to 50,000,000; --events: 1 to --max-events")
	}
	switch {
	case o.Endpoints < 0 || o.Endpoints > 1000:
		return nil, errors.New("--endpoints: 1 to 1000")
	case o.Mode == "failing" && o.Endpoints == 1:
		return nil, errors.New("--endpoints: failing mode needs at least 2")
	case o.Baseline == "river" && o.endpoints() > 1:
		return nil, errors.New("--endpoints: the River baseline delivers each event once; fan-out is measured without it")
	}
	if o.Mode == "memory" {
		switch {
		case o.KapseldURL != "" || o.Baseline != "":
			return nil, errors.New("--mode memory: measures a kapseld it starts (its /proc), without a baseline")
		case o.BodyBytes < 64 || o.BodyBytes > 1<<30 || o.Rounds < 1 || o.Rounds > 100:
			return nil, errors.New("--body-bytes: 64 to 1 GiB; --rounds: 1 to 100")
		}
	} else {
		o.BodyBytes, o.Rounds = 0, 0
	}
	for _, s := range strings.Split(rates, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || r <= 0 || r > 1_000_000 {
			return nil, fmt.Errorf("--rate %q: want positive numbers up to 1,000,000", s)
		}
		o.Rates = append(o.Rates, r)
	}
	if o.Mode != "rate" {
		o.Rates = nil
	}
	o.Endpoints = o.endpoints() // the result records what was measured
	if o.PGBench < 0 || o.PGBench > time.Hour {
		return nil, errors.New("--pgbench: [0, 1h]")
	}
	o.DurationS, o.WaitS, o.CalibrateS, o.PGBenchS = o.Duration.Seconds(), o.Wait.Seconds(), o.Calibrate.Seconds(), o.PGBench.Seconds()
	return o, nil
}

// endpoints is --endpoints, or its default for the mode.
func (o *options) endpoints() int {
	switch {
	case o.Endpoints > 0:
		return o.Endpoints
	case o.Mode == "failing":
		return 10
	}
	return 1
}

func loopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func serveNoop(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve-noop", flag.ContinueOnError)
	addr := fs.String("listen", "127.0.0.1:0", "address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return target.ServeNoop(ctx, *addr)
}

func serveRiver(ctx context.Context, args []string) error {
	var c target.RiverConfig
	fs := flag.NewFlagSet("serve-river", flag.ContinueOnError)
	fs.StringVar(&c.Addr, "listen", "127.0.0.1:0", "address")
	fs.StringVar(&c.DatabaseURL, "database-url", "", "Postgres database for River's tables")
	fs.StringVar(&c.Destination, "destination", "", "URL the worker POSTs each webhook to")
	fs.StringVar(&c.Secret, "secret", "", "GitHub signing secret of the ingest")
	fs.BoolVar(&c.Work, "work", true, "run River workers (false: insert only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return target.ServeRiver(ctx, c)
}
