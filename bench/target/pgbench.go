package target

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

// PGBenchResult is the Postgres server's single-row ceiling: one INSERT of
// one row per transaction (commit = WAL flush), from clients connections.
type PGBenchResult struct {
	Clients   int     `json:"clients"`
	DurationS float64 `json:"duration_s"`
	TPS       float64 `json:"tps"`
	LatencyMS float64 `json:"latency_avg_ms"`
}

var (
	tpsRE     = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)
	latencyRE = regexp.MustCompile(`latency average = ([0-9.]+) ms`)
)

// PGBench runs pgbench (from PATH) against d for duration: clients
// connections each inserting one row per transaction into a table of its
// own making — what SPEC §9's "one row per transaction tops out near 3,000
// rows/s" refers to, measured in the same run as the rest.
func PGBench(ctx context.Context, d *Database, clients int, duration time.Duration) (*PGBenchResult, error) {
	bin, err := exec.LookPath("pgbench")
	if err != nil {
		return nil, fmt.Errorf("pgbench: %w", err)
	}
	dir, err := os.MkdirTemp("", "kapsel-pgbench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := adminExec(ctx, d.URL, `CREATE TABLE single_row (id bigserial PRIMARY KEY, v integer NOT NULL, at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, fmt.Errorf("pgbench table: %w", err)
	}
	script := filepath.Join(dir, "insert.sql")
	if err := os.WriteFile(script, []byte("\\set v random(1, 1000000)\nINSERT INTO single_row (v) VALUES (:v);\n"), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "--no-vacuum", "--protocol=prepared", "-f", script,
		"-c", strconv.Itoa(clients), "-j", "2", "-T", strconv.Itoa(max(1, int(duration.Seconds()))), d.URL)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("pgbench: %w\n%s", err, out)
	}
	return parsePGBench(out, clients, duration)
}

func parsePGBench(out []byte, clients int, duration time.Duration) (*PGBenchResult, error) {
	m := tpsRE.FindSubmatch(out)
	if m == nil {
		return nil, fmt.Errorf("pgbench: no tps in its output:\n%s", out)
	}
	r := &PGBenchResult{Clients: clients, DurationS: duration.Seconds()}
	r.TPS, _ = strconv.ParseFloat(string(m[1]), 64)
	if m := latencyRE.FindSubmatch(out); m != nil {
		r.LatencyMS, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	return r, nil
}
