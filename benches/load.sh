#!/usr/bin/env bash
# HTTP figures for BENCHMARKS.md, all in one run on loopback:
#  1. ingest: the exporter (parse, verify, dedup, record) against a bare
#     actix-web handler that reads the same body and answers {"code":0},
#     same wrk load, alternating rounds; prints the throughput ratio. Twice:
#     with the servers on CPU 0 and wrk on CPU 1 ("isolated", so the
#     generator does not take the server's core; the servers then run one
#     worker), and with all of them free to share both cores ("shared"),
#     the servers with their default worker per CPU and with one worker.
#     BEFORE_BIN=another build: it is started too and takes its turn in the
#     same rounds (bare, before, exporter), so before and after are
#     measured in one run against the same bare figures.
#  2. (isolated) at 1k, 10k and 100k tracked streams: ingest, /metrics render time and
#     size, resident memory and bytes per stream.
#  3. ingest at 100k streams while /metrics is scraped every second and
#     back to back, with the servers on both cores (as deployed).
# Needs wrk (apt-get install wrk) and curl. Every load phase is bounded by
# DURATION; the whole script takes about 10 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}     # each wrk run
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}         # wrk threads; the servers get the other core(s)
ROUNDS=${ROUNDS:-5}           # alternating bare/exporter rounds for the ratio
PARTS=${PARTS:-123}           # which of the parts below to run (PARTS=1: the ratios only)
BARE_ADDR=127.0.0.1:${BARE_PORT:-19400}
EXPORTER_ADDR=127.0.0.1:${EXPORTER_PORT:-19401}
KEY=bench-key

for tool in wrk curl; do
  command -v "$tool" >/dev/null || { echo "load.sh: $tool is not installed (apt-get install $tool)" >&2; exit 1; }
done
cargo build --release -q --bin css-push-exporter --example bare_handler
BIN=${EXPORTER_BIN:-target/release/css-push-exporter}  # EXPORTER_BIN: another build to compare
BEFORE_BIN=${BEFORE_BIN:-}                               # part 1 only: a third server in the same rounds
BEFORE_ADDR=127.0.0.1:${BEFORE_PORT:-19402}
# READ_FLOOR=1, part 1 only: also the bare handler reading each body as the
# exporter does and nothing more (the floor under the exporter's ingest).
READ_ADDR=127.0.0.1:${READ_PORT:-19403}
BARE=target/release/examples/bare_handler

# Isolation needs two CPUs; PIN=0 turns it off.
if [ "${PIN:-1}" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  SERVER_CPU=(taskset -c 0); WRK_CPU=(taskset -c 1)
else
  SERVER_CPU=(); WRK_CPU=()
fi
ISOLATED=("${SERVER_CPU[@]}"); ISOLATED_WRK=("${WRK_CPU[@]}")

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

export THREADS

wait_up() { for _ in $(seq 100); do curl -sf "http://$1/-/healthy" >/dev/null 2>&1 && return; curl -s -o /dev/null "http://$1/callback" 2>/dev/null && return; sleep 0.1; done; echo "load.sh: nothing listening on $1" >&2; exit 1; }

# start_exporter [BIN ADDR]: sets EXPORTER_PID.
start_exporter() {
  local bin=${1:-$BIN} addr=${2:-$EXPORTER_ADDR}
  "${SERVER_CPU[@]}" "$bin" --listen-address "$addr" --callback-key "$KEY" --max-streams 200000 --log-level error \
    ${WORKERS:+--workers "$WORKERS"} &
  EXPORTER_PID=$!
  PIDS+=("$EXPORTER_PID")
  wait_up "$addr"
}

stop_exporter() { kill "$EXPORTER_PID"; wait "$EXPORTER_PID" 2>/dev/null || true; }

# CPU seconds (user + system) PID has used so far.
cpu_secs() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }

# run_wrk ADDR STREAMS DURATION: prints "rps p50 p99 max wrk-CPU-share"
# (wrk's user + system time over the wall time: near 1.0 per wrk thread, the
# generator and not the server sets the pace); fails on any non-200.
run_wrk() {
  local out T SIGN
  # Signed afresh for each run: a signature is valid for at most
  # --max-signature-validity (14 minutes), less than the whole script.
  T=$(( $(date +%s) + 600 ))
  SIGN=$(printf '%s' "$KEY$T" | md5sum | cut -d' ' -f1)
  export T SIGN
  # Runs are seconds apart and send under 10^7 requests each, so every run's
  # data_time values are new: nothing is a duplicate.
  out=$(STREAMS=$2 OFFSET=$((SECONDS * 10000000)) /usr/bin/time -f 'wrk-cpu %e %U %S' "${WRK_CPU[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$3" --latency -s benches/callback.lua "http://$1/callback" 2>&1)
  # Called in a subshell: stop the whole script, not just this function.
  if grep -q "Non-2xx" <<<"$out"; then echo "$out" >&2; echo "load.sh: non-200 answers from $1" >&2; kill -TERM $$; exit 1; fi
  echo "$(awk '/Requests\/sec/ {print $2}' <<<"$out") $(awk '$1=="50%" {print $2}' <<<"$out") $(awk '$1=="99%" {print $2}' <<<"$out") $(awk '$1=="Latency" {print $4; exit}' <<<"$out") $(awk '$1=="wrk-cpu" {printf "%.2f", ($3+$4)/$2}' <<<"$out")"
}

# cpu_round PID ADDR: one wrk run at ADDR, served by PID; prints "rps p50 p99
# µs-of-server-CPU-per-request wrk-CPU-share" (the CPU figure holds up
# better than req/s when other processes share the cores).
cpu_round() {
  local before after rps p50 p99 wrk_cpu
  before=$(cpu_secs "$1")
  read -r rps p50 p99 _ wrk_cpu < <(run_wrk "$2" 1000 "$DURATION")
  after=$(cpu_secs "$1")
  echo "$rps $p50 $p99 $(awk -v a="$after" -v b="$before" -v r="$rps" -v d="${DURATION%s}" 'BEGIN {printf "%.1f", (a-b)*1e6/(r*d)}') $wrk_cpu"
}

# Posts until every one of N streams has reported (bounded to 60 s).
preload() {
  for _ in $(seq 30); do
    run_wrk "$EXPORTER_ADDR" "$1" 2s >/dev/null
    [ "$(metric css_push_streams)" = "$1" ] && return
  done
  echo "load.sh: preload of $1 streams did not finish" >&2; exit 1
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
metric() { curl -sf "http://$EXPORTER_ADDR/metrics" | awk -v m="$1" '$1==m {print $2}'; }
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$EXPORTER_PID/status"; }

# Times N back-to-back scrapes; prints the median seconds and the size.
scrape_median() {
  for _ in $(seq "$1"); do curl -sf -o /dev/null -w '%{time_total} %{size_download}\n' "http://$EXPORTER_ADDR/metrics"; done \
    | sort -g | awk '{t[NR]=$1; s=$2} END {print t[int((NR+1)/2)], s}'
}

echo "== machine: $(nproc) cores, $(awk '/model name/ {$1=$2=$3=""; print; exit}' /proc/cpuinfo | sed 's/^ *//'); wrk -t$THREADS -c$CONNECTIONS -d$DURATION"

# compare LABEL: alternating rounds, bare vs exporter (and before, with
# BEFORE_BIN); prints the medians and ratios.
compare() {
  "${SERVER_CPU[@]}" "$BARE" "$BARE_ADDR" ${WORKERS:+"$WORKERS"} & BARE_PID=$!; PIDS+=("$BARE_PID")
  local servers=(bare) addrs=("$BARE_ADDR") pids=("$BARE_PID")
  if [ "${READ_FLOOR:-0}" = 1 ]; then
    BARE_PARSE=1 "${SERVER_CPU[@]}" "$BARE" "$READ_ADDR" ${WORKERS:+"$WORKERS"} & PIDS+=($!)
    servers+=(bare+read); addrs+=("$READ_ADDR"); pids+=($!)
    wait_up "$READ_ADDR"
  fi
  if [ -n "$BEFORE_BIN" ]; then
    start_exporter "$BEFORE_BIN" "$BEFORE_ADDR"
    servers+=(before); addrs+=("$BEFORE_ADDR"); pids+=("$EXPORTER_PID")
  fi
  start_exporter
  servers+=(exporter); addrs+=("$EXPORTER_ADDR"); pids+=("$EXPORTER_PID")
  wait_up "$BARE_ADDR"
  local i r rps p50 p99 cpu wrk_cpu
  for i in "${!servers[@]}"; do run_wrk "${addrs[$i]}" 1000 2s >/dev/null; done   # warm-up
  local -A rates=() cpus=() wrks=()
  for r in $(seq "$ROUNDS"); do
    for i in "${!servers[@]}"; do
      read -r rps p50 p99 cpu wrk_cpu < <(cpu_round "${pids[$i]}" "${addrs[$i]}")
      rates[$i]+="$rps "; cpus[$i]+="$cpu "; wrks[$i]+="$wrk_cpu "
      printf '%s round %s %-9s %s req/s  p50 %s  p99 %s  server CPU %s µs/request  wrk CPU %s\n' \
        "$1" "$r" "${servers[$i]}:" "$rps" "$p50" "$p99" "$cpu" "$wrk_cpu"
    done
  done
  local bare_med med
  bare_med=$(tr ' ' '\n' <<<"${rates[0]}" | grep . | median)
  for i in "${!servers[@]}"; do
    med=$(tr ' ' '\n' <<<"${rates[$i]}" | grep . | median)
    printf '%s: %-9s median %s req/s, ratio to bare %s, server CPU %s µs/request, wrk CPU %s (medians)\n' "$1" "${servers[$i]}" "$med" \
      "$(awk -v a="$med" -v b="$bare_med" 'BEGIN {printf "%.2f", a/b}')" \
      "$(tr ' ' '\n' <<<"${cpus[$i]}" | grep . | median)" "$(tr ' ' '\n' <<<"${wrks[$i]}" | grep . | median)"
  done
  echo "$1: (target: exporter ratio >= 0.90)"
  echo "$1: exporter answered $(metric 'css_push_callbacks_total{event_type="321",outcome="accepted"}') accepted, $(metric 'css_push_callbacks_total{event_type="321",outcome="duplicate"}') duplicates"
  for i in "${!servers[@]}"; do kill "${pids[$i]}"; wait "${pids[$i]}" 2>/dev/null || true; done
}

if [[ $PARTS == *1* ]]; then
echo "== 1. ingest, seed callback over 1000 streams: bare actix-web handler vs exporter"
if [ "${#ISOLATED[@]}" -gt 0 ]; then
  compare isolated
  SERVER_CPU=(); WRK_CPU=()
  compare shared
  WORKERS=1 compare "shared, --workers 1"
  SERVER_CPU=("${ISOLATED[@]}"); WRK_CPU=("${ISOLATED_WRK[@]}")
else
  compare shared
fi
fi

if [[ $PARTS == *2* ]]; then
echo "== 2. scaling with tracked streams (fresh exporter each)"
printf '%-8s %-12s %-8s %-8s %-12s %-12s %-10s %-12s %-14s\n' streams ingest_rps p50 p99 scrape_ms scrape_MB rss_MB bytes/stream dedup_entries
for n in 1000 10000 100000; do
  start_exporter
  rss0=$(rss_mb)
  preload "$n"
  rss=$(rss_mb)
  dedup=$(metric css_push_dedup_entries)
  read -r rps p50 p99 _ < <(run_wrk "$EXPORTER_ADDR" "$n" "$DURATION")
  read -r secs bytes < <(scrape_median 5)
  per=$(awk -v a="$rss" -v b="$rss0" -v n="$n" 'BEGIN {printf "%.0f", (a-b)*1048576/n}')
  printf '%-8s %-12s %-8s %-8s %-12s %-12s %-10s %-12s %-14s\n' "$n" "$rps" "$p50" "$p99" \
    "$(awk -v s="$secs" 'BEGIN {printf "%.1f", s*1000}')" "$(awk -v b="$bytes" 'BEGIN {printf "%.1f", b/1048576}')" "$rss" "$per" "$dedup"
  [ "$n" = 100000 ] || stop_exporter
done
echo "(rss_MB, bytes/stream, dedup_entries: right after the preload; bytes/stream is the RSS growth over the idle process divided by streams, dedup entries of the preload's callbacks included)"
stop_exporter
fi

if [[ $PARTS == *3* ]]; then
echo "== 3. ingest at 100000 streams while /metrics is scraped, servers on both cores as deployed"
SERVER_CPU=(); WRK_CPU=()
start_exporter
preload 100000
read -r quiet p50 p99 max _ < <(run_wrk "$EXPORTER_ADDR" 100000 "$DURATION")
echo "no scrapes:           $quiet req/s  p50 $p50  p99 $p99  max $max"
for pause in 1 0; do
  ( end=$((SECONDS + 60)); while [ $SECONDS -lt $end ]; do curl -sf -o /dev/null "http://$EXPORTER_ADDR/metrics" || exit 0; sleep "$pause"; done ) &
  SCRAPER=$!; PIDS+=("$SCRAPER")
  sleep 0.5
  read -r busy p50 p99 max _ < <(run_wrk "$EXPORTER_ADDR" 100000 "$DURATION")
  kill "$SCRAPER" 2>/dev/null || true; wait "$SCRAPER" 2>/dev/null || true
  label="scrape every 1 s:    "; [ "$pause" = 0 ] && label="scrapes back to back:"
  echo "$label $busy req/s  p50 $p50  p99 $p99  max $max  ratio $(awk -v a="$busy" -v b="$quiet" 'BEGIN {printf "%.2f", a/b}')"
done
read -r secs bytes < <(scrape_median 5)
echo "scrape while idle: $(awk -v s="$secs" 'BEGIN {printf "%.1f", s*1000}') ms for $(awk -v b="$bytes" 'BEGIN {printf "%.1f", b/1048576}') MB"
echo "RSS $(rss_mb) MB, peak $(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$EXPORTER_PID/status") MB, dedup entries $(metric css_push_dedup_entries)"
fi
