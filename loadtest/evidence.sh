#!/usr/bin/env bash
# Measures issue 6's targets: a 10 MB upload end to end (MB/s, over fresh files so each
# is hashed and written, not deduplicated); the rise in the server's resident memory
# while 20 clients upload 10 MB each at once; and listing evidence in the large demo
# organisation (50,000 items) at 8 and 32 connections. Bounded: about two minutes.
#
#   cargo build --release && loadtest/evidence.sh [path/to/ruleiq] [sqlite|postgres]
#
# The server runs without its embedded worker, so text extraction (queued per upload)
# does not compete with the uploads being timed. PostgreSQL uses a scratch database
# `ruleiq_load` on 127.0.0.1:5432 (user postgres), dropped and made again. Needs wrk,
# curl and python3 (and psql for PostgreSQL). Rate limits are off: this measures
# capacity.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bin="$(ruleiq_bin "${1:-}")"
engine="${2:-sqlite}"
port="${PORT:-8769}"
seconds="${SECONDS_PER_RUN:-10}"
scratch
export DATA_DIR="$dir/data" LOG_LEVEL=warn RATE_LIMIT_ENABLED=false EMBEDDED_WORKER=false
export MAX_UPLOAD_SIZE=$((20 * 1024 * 1024)) REQUEST_TIMEOUT_SECONDS=120
use_database "$engine" ruleiq_load
base="http://127.0.0.1:$port/api/v1"

"$bin" migrate up >/dev/null
"$bin" seed >/dev/null
echo "== ruleiq demo --size large ($engine)"
echo "$password" | "$bin" demo --size large --email load@example.co.uk --password-stdin | grep 'ready in'

"$bin" serve --port "$port" >/dev/null 2>&1 &
pid=$!
wait_ready
token=$(sign_in load@example.co.uk)
auth="Authorization: Bearer $token"

# Fresh 10 MB text files: each differs, so every upload is hashed and stored.
mkdir -p files
python3 - <<'PY'
import os
line = b"2026-11-26T10:00:00Z firewall accepted tcp 10.0.0.12:443 -> 10.0.1.7:51514\n"
block = line * (10 * 1024 * 1024 // len(line))
for i in range(30):
    with open(f"files/log-{i}.txt", "wb") as f:
        f.write(f"run {i}\n".encode() + block[: 10 * 1024 * 1024 - 8])
PY
upload() {
  curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -H "$auth" \
    -F title="Firewall log" -F evidence_type=log -F "file=@$1;type=text/plain" "$base/evidence"
}

echo "== one 10 MB upload at a time, 10 fresh files"
upload files/log-29.txt >/dev/null # warm
for i in $(seq 0 9); do upload "files/log-$i.txt"; done | python3 -c '
import sys, statistics
rows = [l.split() for l in sys.stdin]
bad = [r for r in rows if r[0] != "201"]
times = sorted(float(r[1]) for r in rows)
mb = 10 * 1024 * 1024 / 1e6
print(f"  status 201: {len(rows) - len(bad)}/{len(rows)}")
print(f"  median {statistics.median(times)*1000:.1f} ms = {mb/statistics.median(times):.0f} MB/s; best {mb/times[0]:.0f} MB/s; worst {mb/times[-1]:.0f} MB/s")
'

echo "== 20 concurrent 10 MB uploads: resident memory"
rss() { awk "/^$1:/ {print \$2}" "/proc/$pid/status"; }
sleep 1
base_rss=$(rss VmRSS)
echo 5 > "/proc/$pid/clear_refs" # resets the peak (VmHWM) to the current RSS
start=$(date +%s.%N)
for i in $(seq 10 29); do upload "files/log-$i.txt" > "up-$i" & done
wait $(jobs -p | grep -v "^$pid$") 2>/dev/null || true
end=$(date +%s.%N)
peak=$(rss VmHWM)
ok=$(cat up-* | grep -c '^201 ' || true)
python3 -c "print(f'  {$ok}/20 stored in {$end-$start:.2f} s; RSS before {$base_rss/1024:.1f} MB, peak {$peak/1024:.1f} MB, rise {($peak-$base_rss)/1024:.1f} MB')"

run() {
  local label="$1" conns="$2"
  shift 2
  echo "== $label, wrk -t2 -c$conns -d${seconds}s"
  wrk -t2 -c"$conns" -d2s -H "$auth" "$@" >/dev/null
  wrk -t2 -c"$conns" -d"${seconds}s" --latency -H "$auth" "$@" \
    | grep -E 'Requests/sec|  50%|  90%|  99%|requests in|Non-2xx'
}
total=$(curl -sf -H "$auth" "$base/evidence/stats" | json 'd["total"]')
echo "== the library holds $total items"
run "GET /evidence?limit=50" 8 "$base/evidence?limit=50"
run "GET /evidence?limit=50" 32 "$base/evidence?limit=50"
run "GET /evidence?status=approved&limit=50" 32 "$base/evidence?status=approved&limit=50"
cursor=$(curl -sf -H "$auth" "$base/evidence?limit=200" | json 'd["next_cursor"]')
run "GET /evidence?limit=50&cursor=(second page)" 32 "$base/evidence?limit=50&cursor=$cursor"
run "GET /evidence/stats" 32 "$base/evidence/stats"
