package campaign

import (
	"fmt"
	"math/rand"
	"syscall"
	"testing"
	"time"
)

// TestKillNodes kills -9 one of two nodes at random points while webhooks
// are ingested and delivered, restarts it, and repeats (short profile 2
// times, long 20). Nothing acknowledged may be lost; requests cut between
// send and record by a kill are counted; recovery is the time from a kill
// to the re-attempt of every delivery that was in flight on the killed
// node, read from the destination's log.
func TestKillNodes(t *testing.T) {
	t.Parallel()
	p := currentProfile()
	seed := seed(t, 1)
	r := newRig(t, rigConfig{Nodes: 2, Endpoints: 2, Seed: seed, EndpointTimeout: 2 * time.Second,
		Lease: p.killLease, Plan: faultPlan{Latency: 400 * time.Millisecond}})
	l := r.newLoader(p.rate)
	stop := runLoad(l, 30*time.Second)
	defer stop()
	// The lease decides the recovery; measure the one kapseld really uses
	// (it ignores KAPSEL_LEASE_DURATION when it does not know it).
	lease := r.observeLease(2 * time.Second)
	t.Logf("campaign: lease observed on delivering rows: %s (KAPSEL_LEASE_DURATION %s)", lease.Round(time.Second), knobText(r.leaseKnob))
	if lease > 35*time.Second && !p.long {
		t.Skipf("campaign: kapseld's lease is %s: a killed node's deliveries would wait it out, longer than the short profile's budget; the kill scenario runs in the long profile (KAPSEL_CAMPAIGN=long)", lease.Round(time.Second))
	}
	rng := rand.New(rand.NewSource(seed))
	var kills []killRecord
	for range p.kills {
		sleep(p.killGap[0] + time.Duration(rng.Int63n(int64(p.killGap[1]-p.killGap[0]))))
		victim := r.nodes[rng.Intn(len(r.nodes))]
		kills = append(kills, r.killNode(victim))
		sleep(time.Duration(rng.Int63n(int64(time.Second))))
		victim.start()
	}
	sleep(time.Second)
	stop()
	res := r.check(checkOptions{
		Scenario: fmt.Sprintf("kill -9 of 1 of 2 nodes, restarted (lease %s)", lease.Round(time.Second)),
		Faults:   fmt.Sprintf("%d × kill -9", len(kills)),
		Load:     l, Kills: kills, Quiesce: lease + time.Minute,
	})
	var maxLeft time.Duration
	for _, k := range kills {
		for _, d := range k.Delivering {
			maxLeft = max(maxLeft, d.LeaseLeft)
		}
	}
	res.Notes = append(res.Notes, fmt.Sprintf("longest lease left on a delivering row right after a kill: %s", maxLeft.Round(100*time.Millisecond)))
	if res.RecoveryN == 0 {
		res.violate("no delivery was in flight on a killed node: the scenario measured nothing")
	}
	report(t, res)
}

func knobText(knob bool) string {
	if knob {
		return "honoured"
	}
	return "not known to this kapseld"
}

// killNode freezes the node (SIGSTOP), reads which of the destination's
// connections are its own, kills it (SIGKILL) and reads which deliveries
// the database has delivering.
func (r *rig) killNode(n *node) killRecord {
	r.t.Helper()
	pid := n.pid()
	if err := n.signal(syscall.SIGSTOP); err != nil {
		r.t.Fatalf("campaign: stopping %s: %v", n.name, err)
	}
	k := killRecord{Node: n.name, At: time.Now()}
	ports, err := socketPorts(pid, r.dest.port())
	if err != nil {
		r.t.Logf("campaign: %s's connections unknown (%v): requests cut by its kill are attributed by time", n.name, err)
	} else {
		k.Ports = ports
	}
	n.kill()
	k.Delivering = r.deliveringNow()
	return k
}
