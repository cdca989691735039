package campaign

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestPostgresRestart stops the private Postgres under load and starts it
// again (short profile: once for 1 s; long: 1 s and 20 s, crash and clean
// stops). Meanwhile ingest must answer 503 with Retry-After, never 2xx
// without a commit; afterwards nothing acknowledged is lost and every
// request the destination received has its attempt record (SPEC I1, I5: an
// outage shorter than the lease must not make Kapsel forget a request).
func TestPostgresRestart(t *testing.T) {
	t.Parallel()
	p := currentProfile()
	seed := seed(t, 2)
	r := newRig(t, rigConfig{Nodes: 2, Endpoints: 2, Seed: seed, EndpointTimeout: 2 * time.Second,
		Lease: p.pgLease, Plan: faultPlan{Latency: 100 * time.Millisecond}})
	l := r.newLoader(p.rate)
	stop := runLoad(l, time.Minute)
	defer stop()
	lease := r.observeLease(3 * time.Second)
	var what []string
	for i, o := range p.outages {
		if i > 0 {
			sleep(3 * time.Second)
		}
		if err := r.pg.stop(o.mode); err != nil {
			t.Fatalf("campaign: %v", err)
		}
		sleep(o.down)
		if err := r.pg.start(); err != nil {
			t.Fatalf("campaign: %v", err)
		}
		what = append(what, fmt.Sprintf("%s (%s)", o.down, o.mode))
	}
	sleep(3 * time.Second)
	stop()
	res := r.check(checkOptions{
		Scenario: "Postgres stopped and started under load, 2 nodes",
		Faults:   fmt.Sprintf("%d × Postgres down: %s", len(what), strings.Join(what, ", ")),
		Load:     l, Quiesce: lease + time.Minute,
	})
	if res.Ingest503 == 0 {
		res.violate("ingest never answered 503: the outage was not felt, the scenario measured nothing")
	}
	res.Notes = append(res.Notes, fmt.Sprintf("lease observed: %s (KAPSEL_LEASE_DURATION %s)", lease.Round(time.Second), knobText(r.leaseKnob)))
	report(t, res)
}
