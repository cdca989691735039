package main

import (
	"math"
	"testing"
)

const mib = 1 << 20

// The releaser returns memory once a burst is over — not during it, not
// at rest, and not twice for the same burst.
func TestReleaserReleasesAfterABurst(t *testing.T) {
	t.Parallel()
	var now memStats
	frees := 0
	busy := false
	r := &releaser{
		read: func() memStats { return now },
		free: func() { frees++; now.held = 40 * mib }, // what a collection leaves
		busy: func() bool { return busy },
	}
	steps := []struct {
		name           string
		allocated      uint64 // since the last tick
		held           uint64
		busy           bool // bodies being read
		wantRelease    bool
		wantTotalFrees int
	}{
		{"at rest, small", 1 * mib, 30 * mib, false, false, 0},
		{"burst under way", 900 * mib, 1400 * mib, true, false, 0},
		{"burst still under way", 700 * mib, 1500 * mib, true, false, 0},
		{"the burst's last bodies", 20 * mib, 1500 * mib, true, false, 0},
		{"quiet after the burst", 2 * mib, 1500 * mib, false, true, 1},
		{"quiet, already released", 1 * mib, 40 * mib, false, false, 1},
		{"grown, but less than releaseGrowth", 1 * mib, 40*mib + releaseGrowth - 1, false, false, 1},
		{"steady load", 60 * mib, 300 * mib, true, false, 1},
		{"light load", quietBytes, 300 * mib, false, false, 1},
		// Declared bodies are allocated when their reads begin, then
		// filled without allocating: a burst of slow uploads grows the
		// heap held while it allocates little.
		{"slow uploads under way", 3 * mib, 400 * mib, true, false, 1},
		{"slow uploads still under way", 1 * mib, 400 * mib, true, false, 1},
		{"quiet after the second burst", 3 * mib, 400 * mib, false, true, 2},
	}
	for _, s := range steps {
		now.allocated += s.allocated
		now.held = s.held
		busy = s.busy
		if got := r.tick(); got != s.wantRelease {
			t.Fatalf("%s: released = %v, want %v", s.name, got, s.wantRelease)
		}
		if frees != s.wantTotalFrees {
			t.Fatalf("%s: %d releases, want %d", s.name, frees, s.wantTotalFrees)
		}
	}
}

func TestDefaultMemoryLimit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		maxBody int64
		want    int64
	}{
		{0, 64*10*mib + 256*mib}, // the ingester's default 10 MiB
		{1 * mib, 64*mib + 256*mib},
		{math.MaxInt64 / 2, math.MaxInt64},
	} {
		if got := defaultMemoryLimit(tc.maxBody); got != tc.want {
			t.Errorf("defaultMemoryLimit(%d) = %d, want %d", tc.maxBody, got, tc.want)
		}
	}
}

// readMemStats reads every metric it asks for (a renamed metric would
// read as 0 and switch the releaser off).
func TestReadMemStats(t *testing.T) {
	t.Parallel()
	s := readMemStats()
	if s.allocated == 0 || s.held == 0 {
		t.Fatalf("readMemStats() = %+v: a metric is missing", s)
	}
}
