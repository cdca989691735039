#!/usr/bin/env bash
# results.sh: every SPEC §9 figure on this machine, in one run — the
# numbers of docs/benchmarks.md's results table. kapsel-bench builds and
# starts kapseld (Postgres in throw-away databases on DATABASE_URL), runs
# one phase per mode in turn, and writes a JSON result and an SVG chart per
# phase into OUT_DIR. About 8 minutes on the 2-core machine.
#
#   bench/results.sh
#   DURATION=30s OUT_DIR=/tmp/results bench/results.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
DURATION=${DURATION:-15s}
OUT_DIR=${OUT_DIR:-$here/../docs/bench/0.2}
DATABASE_URL=${DATABASE_URL:-postgres://root@127.0.0.1:5432/postgres?sslmode=disable}
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
cd "$here"
go build -o "$OUT_DIR/.kapsel-bench" ./cmd/kapsel-bench
trap 'rm -f "$OUT_DIR/.kapsel-bench"' EXIT

run() { # name, flags…
  local name=$1
  shift
  echo "== $name: $(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg)"
  "$OUT_DIR/.kapsel-bench" --database-url "$DATABASE_URL" --duration "$DURATION" \
    --out "$OUT_DIR/$name.json" --chart "$OUT_DIR/$name.svg" "$@" | grep -v '^result:'
}

# Calibration and the Postgres single-row ceiling once, with the River
# baseline beside Kapsel's sustained run.
run sustained --mode sustained --baseline river --pgbench 10s
run ingest --mode ingest --calibrate 0s
run rate --mode rate --rate 1000,3000 --calibrate 0s
run drain --mode drain --events 100000 --calibrate 0s
run fanout-10 --mode sustained --endpoints 10 --calibrate 0s
run failing --mode failing --endpoints 10 --calibrate 0s
