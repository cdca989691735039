package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/kapsel-dev/kapsel/bench/load"
	"github.com/kapsel-dev/kapsel/bench/target"
)

// secret signs every generated webhook; the targets check it.
const secret = "kapsel-bench-secret"

// bench runs calibration, then every phase against Kapsel, then against the
// baseline, and writes the report.
func bench(ctx context.Context, o *options, stdout, stderr io.Writer) (err error) {
	if o.Mode == "memory" {
		return memoryBench(ctx, o, stdout, stderr)
	}
	rep := newReport(o)
	progress := newProgress(stderr)
	var cleanups []func() error
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			if cerr := cleanups[i](); cerr != nil {
				fmt.Fprintln(stderr, "kapsel-bench: cleaning up:", cerr)
			}
		}
	}()

	if o.Calibrate > 0 {
		noop, err := target.StartSelf(ctx, "noop", "serve-noop")
		if err != nil {
			return err
		}
		cleanups = append(cleanups, noop.Stop)
		res, err := calibrate(ctx, o, noop, progress)
		if err != nil {
			return err
		}
		rep.Calibration = res
		_ = noop.Stop()
		fmt.Fprintf(stdout, "calibration: the generator reached %.0f requests/s against a no-op handler (%d connections, ack p50 %.2f ms, p99 %.2f ms; generator %.2f cores; load %s)\n",
			res.AcksPerS, o.Clients, res.AckLatency.P50, res.AckLatency.P99, res.BenchCores, fmtLoad(res.LoadAfter))
	}

	createDB := func(suffix string) (*target.Database, error) {
		db, err := target.CreateDatabase(ctx, o.DatabaseURL, suffix)
		if err == nil {
			cleanups = append(cleanups, func() error { return db.Drop(context.Background()) })
		}
		return db, err
	}
	if o.PGBench > 0 {
		db, err := createDB("pgbench")
		if err != nil {
			return err
		}
		pg, err := target.PGBench(ctx, db, o.Clients, o.PGBench)
		if err != nil {
			return err
		}
		rep.PGBench = pg
		fmt.Fprintf(stdout, "pgbench: the Postgres server's single-row ceiling is %.0f transactions/s (one INSERT per commit, %d connections, latency avg %.1f ms; load %s)\n",
			pg.TPS, pg.Clients, pg.LatencyMS, fmtLoad(loadAvg()))
	}
	var kapselDB, riverDB *target.Database
	if o.KapseldDB != "" {
		if kapselDB, err = target.ExistingDatabase(o.DatabaseURL, o.KapseldDB); err != nil {
			return err
		}
	}
	if o.Store == "postgres" && o.KapseldURL == "" {
		if kapselDB, err = createDB("kapsel"); err != nil {
			return err
		}
	}
	if o.Baseline == "river" {
		if riverDB, err = createDB("river"); err != nil {
			return err
		}
	}

	// Kapsel.
	k, stopK, err := startKapsel(ctx, o, kapselDB)
	if err != nil {
		return err
	}
	cleanups = append(cleanups, stopK)
	for _, rate := range phaseRates(o) {
		res, err := kapselPhase(ctx, o, k, rate, progress)
		if err != nil {
			return err
		}
		rep.add(res)
		fmt.Fprintln(stdout, res.line())
	}
	if err := stopK(); err != nil {
		fmt.Fprintln(stderr, "kapsel-bench: stopping kapseld:", err)
	}

	// The River baseline: same generator, destination and Postgres.
	if o.Baseline == "river" {
		for _, rate := range phaseRates(o) {
			res, err := riverPhase(ctx, o, riverDB, rate, progress)
			if err != nil {
				return err
			}
			rep.add(res)
			fmt.Fprintln(stdout, res.line())
		}
	}
	return rep.write(o, stdout)
}

// phaseRates is one phase per rate in rate mode, one closed-loop phase
// (rate 0) otherwise.
func phaseRates(o *options) []float64 {
	if o.Mode == "rate" {
		return o.Rates
	}
	return []float64{0}
}

// kapsel is the kapseld under test: started here or running already.
type kapsel struct {
	api    *target.API
	proc   *target.Process // nil when --kapseld-url
	apiKey string
	store  string
	db     *target.Database // nil for SQLite and --kapseld-url
}

func startKapsel(ctx context.Context, o *options, db *target.Database) (*kapsel, func() error, error) {
	token := os.Getenv("KAPSEL_ADMIN_TOKEN")
	k := &kapsel{store: o.Store, db: db}
	stop := func() error { return nil }
	if o.KapseldURL != "" {
		if token == "" {
			return nil, nil, errors.New("--kapseld-url: set KAPSEL_ADMIN_TOKEN to the server's admin token")
		}
		k.api = &target.API{Base: o.KapseldURL, AdminToken: token} // http://host:port (parseFlags)
		k.store = "external"
	} else {
		if token == "" {
			token = fmt.Sprintf("bench-%d", time.Now().UnixNano())
		}
		repo := o.Repo
		if repo == "" {
			var err error
			if repo, err = target.FindRepo("."); err != nil {
				return nil, nil, err
			}
		}
		tmp, err := os.MkdirTemp("", "kapsel-bench-")
		if err != nil {
			return nil, nil, err
		}
		bin, err := target.BuildKapseld(ctx, repo, tmp)
		if err != nil {
			os.RemoveAll(tmp)
			return nil, nil, err
		}
		cfg := target.KapseldConfig{Bin: bin, AdminToken: token, DataDir: tmp}
		if db != nil {
			cfg.DatabaseURL = db.URL
		}
		p, err := target.StartKapseld(ctx, cfg)
		if err != nil {
			os.RemoveAll(tmp)
			return nil, nil, err
		}
		k.proc = p
		k.api = &target.API{Base: "http://" + p.Addr, AdminToken: token}
		stop = func() error {
			err := p.Stop()
			os.RemoveAll(tmp)
			return err
		}
	}
	key, err := k.api.CreateTenant(ctx, fmt.Sprintf("kapsel-bench %s", time.Now().Format(time.RFC3339)))
	if err != nil {
		_ = stop()
		return nil, nil, err
	}
	k.apiKey = key
	return k, stop, nil
}

func calibrate(ctx context.Context, o *options, noop *target.Process, pr *progress) (*result, error) {
	dest, err := load.NewDestination(1, 1)
	if err != nil {
		return nil, err
	}
	defer dest.Close()
	ph := &phase{
		target: "noop", mode: "calibration", pid: noop.Pid(), dest: dest,
		tgt:  load.Target{Addr: noop.Addr, Paths: []string{"/ingest/noop"}, Secret: secret},
		plan: load.Plan{Clients: o.Clients, Duration: o.Calibrate, Max: o.MaxEvents},
	}
	return ph.run(ctx, o, pr, nil)
}
