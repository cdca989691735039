#!/bin/bash
# One retention benchmark run (docs/benchmarks.md, "Retention"): a fresh
# copy of the seeded database (seed.sql: 1 M delivered events 100 days
# old, made once into the template database kapsel_ret_seed), kapseld on
# it with retention on or off, kapsel-bench --mode rate against it, then
# the retention series from /metrics and the old events left.
# The copy is made with STRATEGY FILE_COPY and followed by a CHECKPOINT:
# Postgres 15's default copy writes the whole 1.7 GB database to WAL, and
# the checkpoints that forced (every ~3 s) ran into the measured window.
#
#   psql -h 127.0.0.1 -U root -d postgres -c "CREATE DATABASE kapsel_ret_seed"
#   KAPSEL_DATABASE_URL=postgres://root@127.0.0.1:5432/kapsel_ret_seed?sslmode=disable kapseld migrate up
#   psql -h 127.0.0.1 -U root -d kapsel_ret_seed -f seed.sql
#   ./run.sh A1 false 300 20s; ./run.sh C1 true 300 20s   # interleaved, in turn
#
# Usage: run.sh LABEL RETENTION(true|false) RATE DURATION, with kapseld and
# kapsel-bench built into the working directory.
set -u
label=$1 ret=$2 rate=$3 dur=$4
psql -h 127.0.0.1 -U root -d postgres -qc "DROP DATABASE IF EXISTS kapsel_ret_run" \
  -c "CREATE DATABASE kapsel_ret_run TEMPLATE kapsel_ret_seed STRATEGY FILE_COPY" -c "CHECKPOINT" >/dev/null 2>&1
export KAPSEL_ADMIN_TOKEN=bench-admin-token
KAPSEL_DATABASE_URL='postgres://root@127.0.0.1:5432/kapsel_ret_run?sslmode=disable' KAPSEL_LISTEN=127.0.0.1:18080 \
  KAPSEL_ALLOW_PRIVATE_DESTINATIONS=true KAPSEL_LOG_LEVEL=info KAPSEL_RETENTION=$ret ./kapseld > "kapseld-$label.log" 2>&1 &
kpid=$!
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:18080/readyz >/dev/null && break; sleep 0.1; done
echo "== $label retention=$ret rate=$rate $(date -u +%H:%M:%S) $(uptime | sed 's/.*load/load/')"
timeout 300 ./kapsel-bench --mode rate --rate "$rate" --duration "$dur" --calibrate 2s \
  --kapseld-url http://127.0.0.1:18080 --out "result-$label.json" --chart "" > "bench-$label.log" 2>&1
echo "bench exit $?; $(uptime | sed 's/.*load/load/')"
grep -E "deliver|p99|ack" "bench-$label.log" | tail -8
curl -s http://127.0.0.1:18080/metrics | grep -E "^kapsel_retention_(rows_removed_total|batch_duration_seconds_(sum|count|bucket))"
kill -TERM $kpid; wait $kpid
psql -h 127.0.0.1 -U root -d kapsel_ret_run -Atc "SELECT 'old events left', count(*) FROM events WHERE id < 'evt_01'"
