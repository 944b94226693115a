#!/usr/bin/env bash
# Measures the skeleton's targets on loopback: start-up time on an existing SQLite
# database, GET /api/v1/health throughput and latency at 64 connections (wrk), and
# resident memory idle and under that load. Bounded: about a minute in all.
#
#   cargo build --release && loadtest/health.sh [path/to/ruleiq]
#
# Needs wrk and curl (Debian: apt-get install wrk curl).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bin="$(ruleiq_bin "${1:-}")"
port="${PORT:-8765}"
seconds="${SECONDS_PER_RUN:-15}"
scratch
export DATA_DIR="$dir/data" LOG_LEVEL=warn RATE_LIMIT_ENABLED=false

"$bin" migrate up >/dev/null
"$bin" seed >/dev/null

echo "== start-up to a ready answer, existing SQLite database (5 runs)"
for i in 1 2 3 4 5; do
  start=$(date +%s%N)
  "$bin" serve --port "$port" >/dev/null 2>&1 &
  pid=$!
  until curl -sf -o /dev/null "http://127.0.0.1:$port/api/v1/health/ready"; do sleep 0.001; done
  end=$(date +%s%N)
  echo "run $i: $(( (end - start) / 1000000 )) ms"
  kill -TERM "$pid"; wait "$pid" || true
done

echo "== GET /api/v1/health, wrk -t2 -c64 -d${seconds}s"
"$bin" serve --port "$port" >/dev/null 2>&1 &
pid=$!
until curl -sf -o /dev/null "http://127.0.0.1:$port/api/v1/health/ready"; do sleep 0.01; done
sleep 1
echo "idle RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
wrk -t2 -c64 -d"${seconds}s" --latency "http://127.0.0.1:$port/api/v1/health" \
  | grep -E 'Requests/sec|Latency Distribution|  50%|  75%|  90%|  99%|requests in|Non-2xx'
echo "peak RSS under load: $(awk '/VmHWM/ {print $2, $3}' /proc/$pid/status)"
kill -TERM "$pid"; wait "$pid" || true
