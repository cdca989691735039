#!/usr/bin/env bash
# compare-0.1.sh: the 0.1 data model against this tree's, side by side in
# one run, with the same generator, destination and Postgres.
#
# It builds kapsel-bench (and, through it, kapseld) twice — from OLD_REF in
# a throw-away worktree, and from this checkout — then runs the same phase
# on each in turn, ROUNDS times, interleaved (old, new, old, new…) so that
# a change in the machine's load hits both alike. Every result is kept as
# JSON in OUT_DIR and summarised as one table at the end.
#
#   bench/compare-0.1.sh                      # sustained, 1 source → 1 endpoint
#   MODE=ingest bench/compare-0.1.sh          # ingest only
#   ROUNDS=3 DURATION=20s bench/compare-0.1.sh
#
# OLD_REF defaults to e0e3943, the last commit before fan-out landed: 0.1's
# data model (one endpoint = one inbound URL = one destination) with the
# hardening and front-door work of 0.2 — so the comparison isolates the
# data model. Each old phase uses the old kapsel-bench, which sets up an
# endpoint and ingests at /ingest/ep_…; each new one a source, an endpoint
# subscribed to it, and /ingest/src_….
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
OLD_REF=${OLD_REF:-e0e3943}
MODE=${MODE:-sustained}
ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-15s}
OUT_DIR=${OUT_DIR:-$repo/docs/bench/compare}
mkdir -p "$OUT_DIR"

tmp=$(mktemp -d)
cleanup() {
  git -C "$repo" worktree remove --force "$tmp/old" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

echo "== building kapsel-bench at $OLD_REF (old) and at $(git -C "$repo" rev-parse --short HEAD) (new)"
git -C "$repo" worktree add -q --detach "$tmp/old" "$OLD_REF"
(cd "$tmp/old/bench" && go build -o "$tmp/bench-old" ./cmd/kapsel-bench)
(cd "$repo/bench" && go build -o "$tmp/bench-new" ./cmd/kapsel-bench)

for round in $(seq 1 "$ROUNDS"); do
  for v in old new; do
    if [ "$v" = old ]; then src="$tmp/old"; else src="$repo"; fi
    out="$OUT_DIR/$MODE-$v-$round.json"
    echo "== round $round: $v ($MODE, $DURATION)"
    # Calibration once per round, on the first run: the generator is the
    # same code in both builds.
    cal=0s
    if [ "$v" = old ]; then cal=5s; fi
    (cd "$src/bench" && "$tmp/bench-$v" --repo "$src" --mode "$MODE" --duration "$DURATION" \
      --calibrate "$cal" --out "$out" --chart "")
  done
done

echo
echo "== $MODE, 1 source → 1 endpoint ($ROUNDS rounds, $DURATION each)"
printf '%-6s %-5s %10s %10s %9s %9s %9s %6s %5s\n' build round acks/s deliv/s ack_p99 a2d_p50 a2d_p99 lost dups
for round in $(seq 1 "$ROUNDS"); do
  for v in old new; do
    f="$OUT_DIR/$MODE-$v-$round.json"
    jq -r --arg v "$v" --arg r "$round" '.results[] | select(.target == "kapsel") |
      [$v, $r, (.acks_per_s|floor), (.deliveries_per_s|floor),
       (.ack_latency.p99_ms // 0), (.ack_to_destination.p50_ms // 0), (.ack_to_destination.p99_ms // 0),
       (.lost // 0), .duplicates] | @tsv' "$f" |
      awk -F'\t' '{printf "%-6s %-5s %10s %10s %9.1f %9.1f %9.1f %6s %5s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9}'
  done
done
