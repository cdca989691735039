package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for kapsel-bench when it starts
// itself as a service (serve-noop, serve-river).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && (os.Args[1] == "serve-noop" || os.Args[1] == "serve-river") {
		if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSustainedSQLite runs the sustained mode for 2 s against kapseld on
// its embedded store, calibration included: nothing lost, every
// acknowledged event delivered, the JSON result and the chart written.
func TestSustainedSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs kapseld: skipped under -short")
	}
	dir := t.TempDir()
	out, svg := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.svg")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"--store", "sqlite", "--mode", "sustained", "--duration", "2s", "--clients", "16",
		"--calibrate", "500ms", "--wait", "60s", "--out", out, "--chart", svg}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("kapsel-bench: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Calibration == nil || rep.Calibration.AcksPerS <= 0 {
		t.Fatalf("no calibration in the result: %s", raw)
	}
	if len(rep.Results) != 1 {
		t.Fatalf("%d results, want 1: %s", len(rep.Results), raw)
	}
	res := rep.Results[0]
	if res.Acked == 0 || res.Lost == nil {
		t.Fatalf("nothing acknowledged or no delivery measured: %s", raw)
	}
	if *res.Lost != 0 || res.Delivered != res.Acked || res.Duplicates != 0 || res.Foreign != 0 {
		t.Fatalf("acked %d, delivered %d, lost %d, duplicates %d, foreign %d; want all delivered once, unaltered",
			res.Acked, res.Delivered, *res.Lost, res.Duplicates, res.Foreign)
	}
	if res.AckToDest.Count != uint64(res.Acked) {
		t.Fatalf("ack → destination latency of %d events, want %d", res.AckToDest.Count, res.Acked)
	}
	if st, err := os.Stat(svg); err != nil || st.Size() == 0 {
		t.Fatalf("no chart written: %v", err)
	}
}

// TestFanoutSQLite runs the sustained mode for 2 s with three endpoints
// subscribed to the source: every acknowledged event reaches all three,
// once each, and deliveries are counted per endpoint.
func TestFanoutSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs kapseld: skipped under -short")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "r.json")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"--store", "sqlite", "--mode", "sustained", "--endpoints", "3", "--duration", "2s",
		"--clients", "16", "--calibrate", "0", "--wait", "60s", "--out", out, "--chart", ""}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("kapsel-bench: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(raw, &rep); err != nil || len(rep.Results) != 1 {
		t.Fatalf("result %s: %v", raw, err)
	}
	res := rep.Results[0]
	if res.Acked == 0 || res.Lost == nil || res.Fanout != 3 || rep.Options.Endpoints != 3 {
		t.Fatalf("acked %d, fanout %d: %s", res.Acked, res.Fanout, raw)
	}
	if *res.Lost != 0 || res.Delivered != 3*res.Acked || res.Duplicates != 0 || res.DuplicateIDs != 0 || res.Foreign != 0 {
		t.Fatalf("acked %d, delivered %d, lost %d, duplicates %d (ids %d), foreign %d; want every event at 3 endpoints once",
			res.Acked, res.Delivered, *res.Lost, res.Duplicates, res.DuplicateIDs, res.Foreign)
	}
	if res.DeliveriesPerS <= 0 || res.AckToDest.Count != uint64(res.Delivered) {
		t.Fatalf("deliveries/s %v, ack → destination of %d deliveries, want %d", res.DeliveriesPerS, res.AckToDest.Count, res.Delivered)
	}
	t.Logf("%s", res.line())
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		ok   bool
	}{
		{nil, true},
		{[]string{"--mode", "rate", "--rate", "500,1000"}, true},
		{[]string{"--mode", "bogus"}, false},
		{[]string{"--mode", "drain", "--baseline", "river"}, false},
		{[]string{"--baseline", "sidekiq"}, false},
		{[]string{"--mode", "rate", "--rate", "-1"}, false},
		{[]string{"--clients", "0"}, false},
		{[]string{"--events", "10", "--max-events", "5"}, false},
		{[]string{"--kapseld-url", "http://127.0.0.1:8080/"}, true},
		{[]string{"--kapseld-url", "http://127.0.0.1:8080", "--kapseld-database", "kapsel"}, true},
		{[]string{"--kapseld-database", "kapsel"}, false},
		{[]string{"--kapseld-url", "http://[::1]:8080"}, true},
		{[]string{"--kapseld-url", "http://10.0.0.5:8080"}, false},
		{[]string{"--kapseld-url", "https://127.0.0.1:8443"}, false},
		{[]string{"--kapseld-url", "http://127.0.0.1"}, false},
		{[]string{"--kapseld-url", "http://127.0.0.1:8080/api"}, false},
		{[]string{"--endpoints", "10"}, true},
		{[]string{"--mode", "failing", "--endpoints", "1"}, false},
		{[]string{"--endpoints", "1001"}, false},
		{[]string{"--endpoints", "-1"}, false},
		{[]string{"--baseline", "river", "--endpoints", "2"}, false},
		{[]string{"--baseline", "river", "--endpoints", "1"}, true},
		{[]string{"--mode", "memory", "--rounds", "2", "--body-bytes", "1048576"}, true},
		{[]string{"--mode", "memory", "--baseline", "river"}, false},
		{[]string{"--mode", "memory", "--kapseld-url", "http://127.0.0.1:8080"}, false},
		{[]string{"--mode", "memory", "--rounds", "0"}, false},
		{[]string{"--mode", "memory", "--body-bytes", "10"}, false},
	}
	for _, tt := range tests {
		_, err := parseFlags(tt.args, &bytes.Buffer{})
		if (err == nil) != tt.ok {
			t.Errorf("parseFlags(%q): error %v, want ok=%v", tt.args, err, tt.ok)
		}
	}
	for mode, want := range map[string]int{"sustained": 1, "drain": 1, "failing": 10} {
		o, err := parseFlags([]string{"--mode", mode}, &bytes.Buffer{})
		if err != nil || o.Endpoints != want {
			t.Errorf("--mode %s: endpoints %v (%v), want the default %d", mode, o, err, want)
		}
	}
}

// procMemory reads this process's VmRSS and VmHWM: the memory mode's
// sampler.
func TestProcMemory(t *testing.T) {
	t.Parallel()
	rss, hwm, err := procMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if rss <= 0 || hwm < rss {
		t.Fatalf("VmRSS %d kB, VmHWM %d kB: want 0 < RSS <= HWM", rss, hwm)
	}
	if _, _, err := procMemory(-1); err == nil {
		t.Fatal("no error for a process that does not exist")
	}
}
