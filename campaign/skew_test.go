package campaign

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/delivery"
	"github.com/kapsel-dev/kapsel/service"
	"github.com/kapsel-dev/kapsel/store/pgstore"
)

// skewedClock is the system clock moved by a fixed offset: a node whose
// clock is wrong. Timers are durations, unaffected.
type skewedClock struct {
	kapsel.Clock
	offset time.Duration
}

func (c skewedClock) Now() time.Time { return c.Clock.Now().Add(c.offset) }

// TestClockSkew runs nodes with skewed clocks on one Postgres, under load
// to a destination slow enough (up to 1.5 s) that attempts overlap the
// claims of other nodes. kapseld has no clock setting, and libfaketime does
// not reach Go binaries (they read the time through the vDSO, not libc), so
// the nodes are in-process front doors (service.Service: ingest, the
// management API and the dispatcher, the same code kapseld runs) each with
// its own service.Config.Clock, each on its own pgstore pool on the private
// cluster.
//
// What the clocks decide (read in store/pgstore): every time pgstore
// compares or writes — due, lease expiry, lease renewal, created_at — is
// the caller's, passed as params.Now. With clock sync on (kapseld's
// default: the system clock on pgstore; forced here, the clocks being
// injected) that time is the node's clock anchored to the database's
// (delivery.ClockSync, docs/delivery.md "Time"), so the nodes' own clocks
// no longer matter:
//
//   - all nodes +30 s against the database: exact (I1–I5, zero overlaps);
//   - nodes ±10 s against each other: exact;
//   - nodes ±30 s against each other (60 s apart, over the 25 s lease):
//     exact — no delivery attempted twice at once, requests = records.
//
// And one case with clock sync off, labelled so, shows what it prevents:
// nodes ±30 s apart on their own clocks. A node ahead by more than the
// lease sees the others' leases as expired the moment they are taken;
// fencing (I6) must still hold — no acknowledged event lost, every delivery
// ends, the attempts counted on each delivery equal its records — while the
// attempts made twice at once, and the losers' requests without a record,
// are counted and reported, not failed.
func TestClockSkew(t *testing.T) {
	t.Parallel()
	p := currentProfile()
	base := seed(t, 9)
	for i, sc := range []struct {
		name  string
		skews []time.Duration
		sync  delivery.ClockSync
	}{
		{"nodes +30 s against the database", []time.Duration{30 * time.Second, 30 * time.Second}, delivery.ClockSyncOn},
		{"nodes ±10 s against each other", []time.Duration{-10 * time.Second, 0, 10 * time.Second}, delivery.ClockSyncOn},
		{"nodes ±30 s against each other", []time.Duration{-30 * time.Second, 0, 30 * time.Second}, delivery.ClockSyncOn},
		{"nodes ±30 s against each other, clock sync off (counted)", []time.Duration{-30 * time.Second, 0, 30 * time.Second}, delivery.ClockSyncOff},
	} {
		exact := sc.sync != delivery.ClockSyncOff
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			r := newSkewRig(t, base+int64(i)*100, sc.skews, sc.sync)
			l := r.newLoader(p.rate)
			stop := runLoad(l, 30*time.Second)
			defer stop()
			sleep(p.quietRun)
			stop()
			res := r.check(checkOptions{Scenario: "clock skew: " + sc.name, Faults: fmt.Sprintf("node clocks %v", sc.skews),
				Load: l, Quiesce: time.Minute, Uncapped: !exact})
			reqs := r.dest.requests()
			over := overlapping(reqs)
			res.Notes = append(res.Notes, fmt.Sprintf("deliveries attempted twice at once: %d", over))
			if exact {
				if over > 0 {
					res.violate("I4/I6: %d requests arrived while an earlier request of the same delivery was still being answered", over)
				}
			} else {
				// Clock sync off, over the lease: the skew's cost is
				// counted, not failed:
				// keep only the violations fencing forbids.
				var kept, costs []string
				for _, v := range res.Violations {
					if strings.HasPrefix(v, "I5: ") && strings.Contains(v, "without an attempt record") ||
						strings.HasPrefix(v, "I4: ") && strings.Contains(v, "then sent again") {
						costs = append(costs, v)
						continue
					}
					kept = append(kept, v)
				}
				res.Violations = kept
				if len(kept) > 40 {
					res.Violations = append(kept[:40], fmt.Sprintf("… %d more", len(kept)-40))
				}
				res.Notes = append(res.Notes, fmt.Sprintf("skew over the lease: %d requests without an attempt record (fenced losers: requests %d, records %d), %d deliveries answered 2xx then sent again; %d duplicates",
					res.Requests-res.Records, res.Requests, res.Records, len(costs), res.Duplicates))
				if over == 0 {
					res.Notes = append(res.Notes, "no attempt made twice at once was seen in this run")
				}
			}
			r.checkFencing(res)
			report(t, res)
		})
	}
}

// newSkewRig starts one in-process front door per skew, with clock sync
// sync, on one private cluster, and the rig's tenant, source and two
// endpoints through the first.
func newSkewRig(t *testing.T, seed int64, skews []time.Duration, sync delivery.ClockSync) *rig {
	t.Helper()
	// A 5 s timeout over the destination's 1.5 s: a loaded machine (the
	// race detector, other suites) must not turn a 2xx into a timeout and a
	// retry, which the checker counts as a duplicate (it did at 2 s).
	r := &rig{t: t, cfg: rigConfig{Nodes: len(skews), Endpoints: 2, Seed: seed, EndpointTimeout: 5 * time.Second,
		Plan: faultPlan{Latency: 1500 * time.Millisecond}}, admin: "kadm_campaign_" + randHex(16)}
	r.dir = t.TempDir()
	r.pg = newCluster(t)
	r.dest = newDestination(t, seed, r.cfg.Plan)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i, skew := range skews {
		st, err := pgstore.Open(ctx, r.pg.url(), &pgstore.Config{})
		if err != nil {
			t.Fatalf("campaign: %v", err)
		}
		t.Cleanup(st.Close)
		if i == 0 {
			if err := st.Migrate(ctx); err != nil {
				t.Fatalf("campaign: %v", err)
			}
		}
		n := &node{t: t, name: fmt.Sprintf("node%d (clock %+v)", i+1, skew), logPath: filepath.Join(r.dir, fmt.Sprintf("node%d.log", i+1))}
		f, err := os.Create(n.logPath)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		svc, err := service.New(st, &service.Config{
			AdminToken:               r.admin,
			Clock:                    skewedClock{kapsel.SystemClock(), skew},
			Logger:                   slog.New(slog.NewJSONHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug})),
			AllowPrivateDestinations: true,
			Delivery:                 delivery.Config{ClockSync: sync},
		})
		if err != nil {
			t.Fatalf("campaign: %v", err)
		}
		if err := svc.Start(context.Background()); err != nil {
			t.Fatalf("campaign: %v", err)
		}
		front := httptest.NewServer(svc.Handler())
		t.Cleanup(func() {
			front.Close()
			sctx, c := context.WithTimeout(context.Background(), 10*time.Second)
			defer c()
			_ = svc.Stop(sctx)
		})
		r.fronts = append(r.fronts, front.URL)
		r.nodes = append(r.nodes, n) // for the secret scan of its log
	}
	r.api = newAPI(t, r.anyNode)
	r.setup()
	return r
}

// checkFencing reads the database: each delivery's attempt count equals its
// attempt records, numbered 1…n without a gap (I5, I6: a fenced loser
// changes nothing and records nothing).
func (r *rig) checkFencing(res *result) {
	r.withDatabase(res, func(ctx context.Context, conn *pgx.Conn) {
		r.checkAttemptCounts(ctx, conn, res)
	})
}

// checkAttemptCounts is checkFencing's reading.
func (r *rig) checkAttemptCounts(ctx context.Context, conn *pgx.Conn, res *result) {
	var bad int
	var example string
	err := conn.QueryRow(ctx, `
		SELECT count(*), coalesce(min(d.id), '') FROM deliveries d
		LEFT JOIN LATERAL (SELECT count(*) AS n, coalesce(max(number), 0) AS top FROM attempts a
			WHERE a.delivery_id = d.id) a ON true
		WHERE d.tenant_id = $1 AND (d.attempts <> a.n OR a.top <> a.n)`, r.tenant.ID).Scan(&bad, &example)
	if err != nil {
		res.violate("database: %v", err)
		return
	}
	if bad > 0 {
		res.violate("I6: %d deliveries whose attempt count disagrees with their records (first %s)", bad, example)
	}
}
