package campaign

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Environment variables of the campaign's tests.
const (
	// envProfile = "long" runs the long profile and prints the table.
	envProfile = "KAPSEL_CAMPAIGN"
	// envSeed fixes the seed (printed by every scenario) to replay a run's
	// destination modes and kill times.
	envSeed = "KAPSEL_CAMPAIGN_SEED"
	// envOut, when set, is a file the table is written to.
	envOut = "KAPSEL_CAMPAIGN_OUT"
)

// profile sizes the scenarios.
type profile struct {
	name string
	long bool
	rate float64 // webhooks offered per second
	// Kill scenario.
	kills     int
	killGap   [2]time.Duration // uniform random time between kills
	killLease time.Duration    // KAPSEL_LEASE_DURATION; 0 = kapseld's default
	// Postgres scenario.
	outages []outage
	pgLease time.Duration // KAPSEL_LEASE_DURATION; 0 = kapseld's default
	// Destination-fault and three-node scenarios: how long the load runs.
	faultRun, quietRun time.Duration
}

type outage struct {
	down time.Duration
	mode string // pg_ctl stop mode
}

var (
	short = profile{
		name: "short", rate: 25,
		kills: 2, killGap: [2]time.Duration{2 * time.Second, 4 * time.Second}, killLease: 5 * time.Second,
		outages: []outage{{time.Second, "fast"}}, pgLease: 10 * time.Second,
		faultRun: 8 * time.Second, quietRun: 5 * time.Second,
	}
	long = profile{
		name: "long", long: true, rate: 50,
		kills: 20, killGap: [2]time.Duration{3 * time.Second, 12 * time.Second},
		outages: []outage{{time.Second, "immediate"}, {20 * time.Second, "fast"},
			{time.Second, "fast"}, {20 * time.Second, "immediate"}},
		faultRun: 60 * time.Second, quietRun: 60 * time.Second,
	}
)

func currentProfile() profile {
	if os.Getenv(envProfile) == "long" {
		return long
	}
	return short
}

var (
	seedOnce sync.Once
	seedBase int64
)

// seed returns the run's seed plus offset (one stream per scenario).
func seed(t testing.TB, offset int64) int64 {
	seedOnce.Do(func() {
		seedBase = time.Now().UnixNano() % 1_000_000
		if s, err := strconv.ParseInt(os.Getenv(envSeed), 10, 64); err == nil {
			seedBase = s
		}
	})
	t.Logf("campaign: seed %d (%s=%d replays it)", seedBase+offset, envSeed, seedBase)
	return seedBase + offset
}

func TestMain(m *testing.M) {
	code := m.Run()
	removeBuild()
	removeTemplate()
	resultsMu.Lock()
	rows := results
	resultsMu.Unlock()
	if len(rows) > 0 && (currentProfile().long || os.Getenv(envOut) != "") {
		out := fmt.Sprintf("Fault campaign, %s profile, %s:\n\n%s", currentProfile().name,
			time.Now().UTC().Format("2006-01-02"), table(rows))
		fmt.Println(out)
		if p := os.Getenv(envOut); p != "" {
			_ = os.WriteFile(p, []byte(out), 0o644)
		}
	}
	os.Exit(code)
}

// runLoad starts the loader; stop ends the load and waits for the
// resends (at most grace).
func runLoad(l *loader, grace time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.run(ctx, grace)
	}()
	return func() {
		cancel()
		<-done
	}
}

// report logs the scenario's row, notes and violations, fails t for each
// violation, and keeps the row for the table.
func report(t *testing.T, res *result) {
	t.Helper()
	t.Logf("\n%s", table([]*result{res}))
	t.Logf("ingest: %d answered 503 meanwhile", res.Ingest503)
	for _, n := range res.Notes {
		t.Log(n)
	}
	for _, v := range res.Violations {
		t.Error(v)
	}
	addResult(res)
}

// sleep waits for d; the scenarios' pacing, not a wait for a condition.
func sleep(d time.Duration) { time.Sleep(d) }
