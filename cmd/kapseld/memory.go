package main

import (
	"context"
	"log/slog"
	"math"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"github.com/kapsel-dev/kapsel/ingest"
	"github.com/kapsel-dev/kapsel/internal/reqbody"
)

// kapseld's memory (SPEC §9: flat under load, a 10 MiB body costs O(body),
// memory comes back after a burst). Two runtime settings of the process,
// made by main only — tests start servers in their own process and keep
// its settings:
//
//   - A soft memory limit, when GOMEMLIMIT is not set: the bodies the
//     ingest reads on the word of Content-Length (reqbody.TrustedBodies ×
//     the largest body: 640 MiB by default) plus memLimitHeadroom. With
//     Go's default GOGC=100 the heap grows to twice what is live before
//     the next collection, so a burst of 64 × 10 MiB bodies peaked at
//     ~1.5 GiB; under the limit the collector runs earlier instead. It is
//     soft: past it the process is not killed, the collector works harder
//     (at most half the CPU). GOMEMLIMIT=off, or any value, overrides it.
//   - A releaser: after a burst, once the process is quiet, the runtime
//     keeps the burst's heap (its goal was set during the burst, and the
//     background scavenger only returns memory above it): 1.1 GiB stayed
//     resident 30 s after. The releaser returns it (debug.FreeOSMemory: a
//     collection, then every free page to the OS) when the heap held from
//     the OS has grown by releaseGrowth since it last did, no body is being
//     read (reqbody.Reading) and the process allocated less than quietBytes
//     in the last period — never during a burst, at most once per
//     releaseEvery. (An earlier rule, less than an eighth of the heap held,
//     fired in the tail of a burst, when a few bodies were still arriving:
//     the release left ~300 MiB held and live then, which became garbage
//     the next releases did not see as growth. Allocation alone reaches the
//     same failure through slow uploads: a declared body is allocated when
//     its read begins and filled without allocating, so 8 × 10 MiB arriving
//     at 1 MB/s allocate almost nothing per period while 80 MiB are live.)

// memLimitHeadroom is the soft memory limit above the bodies in flight.
const memLimitHeadroom = 256 << 20

// releaseEvery is how often the releaser looks; releaseGrowth is how much
// the heap held from the OS must have grown since its last release;
// quietBytes is the most the process may have allocated since the last
// look for it to be quiet (2 MiB/s: the last 10 MiB body of a burst is
// not quiet).
const (
	releaseEvery  = 2 * time.Second
	releaseGrowth = 64 << 20
	quietBytes    = 4 << 20
)

// tuneRuntime is set by main: only a kapseld process sets its runtime's
// memory limit and releases memory (see above).
var tuneRuntime bool

// defaultMemoryLimit is the soft memory limit for bodies of at most
// maxBody bytes (0 = the ingester's default).
func defaultMemoryLimit(maxBody int64) int64 {
	if maxBody <= 0 {
		maxBody = ingest.DefaultMaxBodyBytes
	}
	if maxBody > (math.MaxInt64-memLimitHeadroom)/reqbody.TrustedBodies {
		return math.MaxInt64
	}
	return reqbody.TrustedBodies*maxBody + memLimitHeadroom
}

// tuneMemory sets the soft memory limit unless GOMEMLIMIT is set, and
// starts the releaser, which stops with ctx.
func tuneMemory(ctx context.Context, cfg *config, getenv func(string) string, log *slog.Logger) {
	if getenv("GOMEMLIMIT") == "" {
		limit := defaultMemoryLimit(cfg.MaxBodyBytes)
		debug.SetMemoryLimit(limit)
		log.LogAttrs(ctx, slog.LevelInfo, "memory limit set (GOMEMLIMIT overrides it)", slog.Int64("bytes", limit))
	}
	r := &releaser{read: readMemStats, free: debug.FreeOSMemory, busy: func() bool { return reqbody.Reading() > 0 }}
	go r.run(ctx, releaseEvery)
}

// memStats is what the releaser reads: bytes allocated since the process
// started, and the heap held from the OS (not returned to it).
type memStats struct {
	allocated, held uint64
}

var memSamples = []metrics.Sample{
	{Name: "/gc/heap/allocs:bytes"},
	{Name: "/memory/classes/heap/objects:bytes"},
	{Name: "/memory/classes/heap/unused:bytes"},
	{Name: "/memory/classes/heap/free:bytes"},
}

func readMemStats() memStats {
	s := make([]metrics.Sample, len(memSamples))
	copy(s, memSamples)
	metrics.Read(s)
	v := func(i int) uint64 {
		if s[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return s[i].Value.Uint64()
	}
	return memStats{allocated: v(0), held: v(1) + v(2) + v(3)}
}

// releaser returns a burst's memory to the OS once the burst is over.
type releaser struct {
	read func() memStats
	free func()
	busy func() bool // a body is being read: not quiet, however little was allocated

	last  memStats
	floor uint64 // held right after the last release
}

func (r *releaser) run(ctx context.Context, every time.Duration) {
	r.last = r.read()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.tick()
		}
	}
}

// tick looks once, and releases when the heap held has grown by
// releaseGrowth since the last release, no body is being read and the
// process allocated less than quietBytes since the last tick. It reports
// whether it released.
func (r *releaser) tick() bool {
	now := r.read()
	allocated := now.allocated - r.last.allocated
	r.last = now
	if now.held < r.floor+releaseGrowth || allocated >= quietBytes || r.busy() {
		return false
	}
	r.free()
	r.last = r.read()
	r.floor = r.last.held
	return true
}
