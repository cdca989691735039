package campaign

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestDestinationFaults delivers to a destination that answers 30 % of
// requests with a fault — 5xx, 429 with Retry-After, timeouts, resets,
// half-closed connections, 1 byte/s bodies, huge and chunked bodies,
// invalid bytes in the status line and headers. Every delivery must end
// delivered, and requests must equal attempt records exactly (SPEC I4, I5).
func TestDestinationFaults(t *testing.T) {
	t.Parallel()
	p := currentProfile()
	seed := seed(t, 3)
	r := newRig(t, rigConfig{Nodes: 2, Endpoints: 2, Seed: seed, EndpointTimeout: 2 * time.Second,
		Plan: faultPlan{Rate: 0.3, Modes: allFaults, AttemptTimeout: 2 * time.Second}})
	l := r.newLoader(p.rate)
	stop := runLoad(l, 30*time.Second)
	defer stop()
	sleep(p.faultRun)
	stop()
	res := r.check(checkOptions{
		Scenario: "destination faults at 30 %, 2 nodes",
		Load:     l, Quiesce: 2 * time.Minute,
	})
	byMode := map[mode]int{}
	faults := 0
	reqs := r.dest.requests()
	for _, q := range reqs {
		byMode[q.Mode]++
		if q.Mode.isFault() {
			faults++
		}
	}
	res.Faults = fmt.Sprintf("%d of %d requests (%.0f %%)", faults, len(reqs), 100*float64(faults)/float64(max(1, len(reqs))))
	var modes []string
	for m, n := range byMode {
		modes = append(modes, fmt.Sprintf("%s %d", m, n))
	}
	sort.Strings(modes)
	res.Notes = append(res.Notes, "destination modes: "+strings.Join(modes, ", "))
	for _, m := range allFaults {
		if byMode[m] == 0 && len(reqs) > 300 {
			res.violate("fault %s was never injected in %d requests", m, len(reqs))
		}
	}
	report(t, res)
}
