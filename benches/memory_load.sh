#!/usr/bin/env bash
# The duplicate memory under HTTP load, full: two builds side by side, each
# pinned to CPU 0 with one worker (wrk on CPU 1), each preloaded with FILL
# new callbacks' identities (the default capacity, 2 000 000: every new one
# then evicts the oldest, two random reads of a 32 MB index), then ROUNDS
# alternating 5 s wrk rounds. Prints req/s and the server's CPU time per
# request (steadier than req/s when others share the cores), and each
# server's AnonHugePages and RSS at the end.
#   BEFORE_BIN=path/to/other/css-push-exporter bash benches/memory_load.sh
# Needs wrk and curl; at most about 4 minutes (each preload bounded to 60
# runs of 3 s).
set -euo pipefail
cd "$(dirname "$0")/.."
KEY=bench-key; FILL=${FILL:-2000000}; ROUNDS=${ROUNDS:-4}
: "${BEFORE_BIN:?BEFORE_BIN: the build to compare against}"
cargo build --release -q --bin css-push-exporter
AFTER_BIN=${EXPORTER_BIN:-target/release/css-push-exporter}
T=$(( $(date +%s) + 900 )); SIGN=$(printf '%s' "$KEY$T" | md5sum | cut -d' ' -f1); export T SIGN THREADS=1
NAMES=(before after); PORTS=(19481 19482); PIDS=()
for i in 0 1; do
  bin=$BEFORE_BIN; [ "$i" = 1 ] && bin=$AFTER_BIN
  taskset -c 0 "$bin" --listen-address "127.0.0.1:${PORTS[$i]}" --callback-key "$KEY" --max-streams 200000 --log-level error --workers 1 &
  PIDS+=($!)
done
trap 'kill "${PIDS[@]}" 2>/dev/null || true' EXIT
sleep 1
entries() { curl -sf "http://127.0.0.1:$1/metrics" | awk '$1=="css_push_dedup_entries" {print $2}'; }
N=0
# load PORT DURATION: prints req/s; each run's data_time values are new.
load() {
  N=$((N + 1))
  STREAMS=1000 OFFSET=$((N * 100000000)) taskset -c 1 wrk -t1 -c32 -d"$2" -s benches/callback.lua "http://127.0.0.1:$1/callback" \
    | awk '/Requests\/sec/ {print $2}'
}
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for i in 0 1; do
  for _ in $(seq 60); do [ "$(entries "${PORTS[$i]}")" -ge "$FILL" ] && break; load "${PORTS[$i]}" 3s >/dev/null; done
  echo "${NAMES[$i]} preloaded: $(entries "${PORTS[$i]}") identities"
done
for r in $(seq "$ROUNDS"); do
  for i in 0 1; do
    b=$(cpu "${PIDS[$i]}"); rps=$(load "${PORTS[$i]}" 5s); a=$(cpu "${PIDS[$i]}")
    echo "round $r ${NAMES[$i]}: $rps req/s, server CPU $(awk -v a="$a" -v b="$b" -v r="$rps" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", (a-b)/hz*1e6/(r*5)}') µs/request, load $(cut -d' ' -f1 /proc/loadavg)"
  done
done
for i in 0 1; do
  echo "${NAMES[$i]}: $(grep AnonHugePages "/proc/${PIDS[$i]}/smaps_rollup" | tr -s ' '), $(entries "${PORTS[$i]}") identities, RSS $(awk '/VmRSS/ {print $2, $3}' "/proc/${PIDS[$i]}/status")"
done
