package campaign

import (
	"math/rand"
	"testing"
	"time"
)

// TestThreeNodesNoDuplicates runs three nodes on one Postgres with nothing
// killed: every delivery is made exactly once (zero duplicates, SPEC I4)
// and records equal requests (I5).
func TestThreeNodesNoDuplicates(t *testing.T) {
	t.Parallel()
	p := currentProfile()
	seed := seed(t, 4)
	r := newRig(t, rigConfig{Nodes: 3, Endpoints: 2, Seed: seed, EndpointTimeout: 2 * time.Second,
		Plan: faultPlan{Latency: 20 * time.Millisecond}})
	l := r.newLoader(p.rate)
	stop := runLoad(l, 30*time.Second)
	defer stop()
	sleep(p.quietRun)
	stop()
	res := r.check(checkOptions{
		Scenario: "3 nodes, nothing killed",
		Faults:   "none",
		Load:     l, Quiesce: time.Minute,
	})
	if res.Duplicates != 0 {
		res.violate("I4: %d duplicates with nothing killed", res.Duplicates)
	}
	report(t, res)
}

// TestThreeNodesOneKilled runs three nodes on one Postgres and kills -9 one
// of them midway through the load, for good (not restarted): the two
// survivors must take over its in-flight deliveries once their lease ends
// (recovery measured from the destination's log) and lose nothing; requests
// it sent without a record are counted as cut by the kill (SPEC I1, I4, I5).
func TestThreeNodesOneKilled(t *testing.T) {
	t.Parallel()
	p := currentProfile()
	seed := seed(t, 8)
	r := newRig(t, rigConfig{Nodes: 3, Endpoints: 2, Seed: seed, EndpointTimeout: 2 * time.Second,
		Lease: p.killLease, Plan: faultPlan{Latency: 400 * time.Millisecond}})
	l := r.newLoader(p.rate)
	stop := runLoad(l, 30*time.Second)
	defer stop()
	sleep(p.quietRun / 2)
	victim := r.nodes[rand.New(rand.NewSource(seed)).Intn(len(r.nodes))]
	kills := []killRecord{r.killNode(victim)}
	sleep(p.quietRun / 2)
	stop()
	lease := p.killLease
	if lease == 0 {
		lease = 25 * time.Second
	}
	res := r.check(checkOptions{
		Scenario: "3 nodes, 1 killed -9 midway, not restarted",
		Faults:   "1 × kill -9 (" + victim.name + ")",
		Load:     l, Kills: kills, Quiesce: lease + time.Minute,
	})
	if res.RecoveryN == 0 {
		res.violate("no delivery was in flight on the killed node: the scenario measured nothing")
	}
	if res.Recovery > lease+5*time.Second {
		res.violate("recovery %s, over the lease (%s) plus 5 s", res.Recovery.Round(100*time.Millisecond), lease)
	}
	report(t, res)
}
