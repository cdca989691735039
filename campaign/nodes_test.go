package campaign

import (
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
