#!/usr/bin/env bash
# Measures the identity targets on loopback: GET /api/v1/auth/me with a valid token
# (64 connections), and sign-in throughput with Argon2id while another client checks
# that the server still answers other requests. Bounded: about a minute.
#
#   cargo build --release && loadtest/auth.sh [path/to/ruleiq]
#
# Needs wrk, curl and python3. Rate limits are turned off: the point is the server's
# capacity, not the budgets.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bin="$(ruleiq_bin "${1:-}")"
port="${PORT:-8766}"
seconds="${SECONDS_PER_RUN:-15}"
scratch
export DATA_DIR="$dir/data" LOG_LEVEL=warn RATE_LIMIT_ENABLED=false
base="http://127.0.0.1:$port/api/v1"

"$bin" serve --port "$port" >/dev/null 2>&1 &
pid=$!
wait_ready

token=$(curl -sf -X POST "$base/auth/register" -H 'content-type: application/json' \
  -d "{\"email\":\"load@example.co.uk\",\"password\":\"$password\",\"full_name\":\"Load Test\",\"organization_name\":\"Load Ltd\"}" \
  | json 'd["access_token"]')

echo "== GET /auth/me, wrk -t2 -c64 -d${seconds}s"
wrk -t2 -c64 -d"${seconds}s" --latency -H "Authorization: Bearer $token" "$base/auth/me" \
  | grep -E 'Requests/sec|  50%|  90%|  99%|requests in|Non-2xx'

cat > login.lua <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"load@example.co.uk","password":"otter lantern quarry velvet"}'
LUA
echo "== POST /auth/login (Argon2id m=19456 KiB, t=2, p=1), wrk -t2 -c8 -d${seconds}s,"
echo "   with GET /health/live at 4 connections alongside"
wrk -t1 -c4 -d"${seconds}s" --latency "$base/health/live" > live.txt &
live=$!
wrk -t2 -c8 -d"${seconds}s" --latency -s login.lua "$base/auth/login" \
  | grep -E 'Requests/sec|  50%|  90%|  99%|requests in|Non-2xx'
wait "$live"
echo "-- /health/live meanwhile:"
grep -E 'Requests/sec|  50%|  99%' live.txt
