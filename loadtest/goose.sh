#!/usr/bin/env bash
# Runs goose scenarios of `ruleiq-load` (loadtest/goose: the original system's Locust
# users) against a fresh server holding the `large` demo organisation, for a bounded
# time, and prints Goose's summary (requests per second, percentiles per route, errors,
# status codes) and one line of totals. Bounded: the demo's setup plus the run.
#
#   cargo build --release -p ruleiq -p ruleiq-loadtest
#   loadtest/goose.sh [path/to/ruleiq] [sqlite|postgres] [scenario] [users] [seconds]
#
# scenario is a Goose --scenarios list: complianceuser (the default, the measured
# read-only mix), onboardinguser, evidenceuploader, assistantuser, reportuser,
# adminuser, several separated by commas, or '*' for all of them. It builds nothing:
# ruleiq-load is taken from next to ruleiq, or from LOAD_BIN. GOOSE_ARGS adds Goose
# options (such as --no-gzip); REPORT_DIR keeps Goose's report.json and the server log.
# WARMUP_SECONDS (default 5, 0 for none) is an uncounted run of the same scenarios first.
# RULEIQ_LOAD_SHARED_LOGIN=1 has the users share one sign-in made before the run, which
# keeps the sign-ins' deliberately slow password checks out of the measured window.
#
# Capacity runs have rate limits off. OVERLOAD=1 runs 10 x the users with rate limits
# on, at the server's defaults except sign-in's, raised so that every simulated user
# (all from 127.0.0.1) can sign in once; it then counts the 429 and 503 answers and
# every other failure, and checks that the server recovers: /api/v1/health answers at
# once, and a signed-in request succeeds again when the rate-limit window has passed.
# Every simulated user shares one account, so the per-account limit (100 a minute by
# default) refuses nearly everything; RATE_LIMIT_PER_MINUTE=1000000 lifts it, to see
# what ten times the connections do to the server itself.
#
# PostgreSQL uses a scratch database `ruleiq_goose` on 127.0.0.1:5432 (user postgres),
# dropped and made again. Needs curl and python3 (and psql for PostgreSQL).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bin="$(ruleiq_bin "${1:-}")"
engine="${2:-sqlite}"
scenario="${3:-complianceuser}"
users="${4:-32}"
seconds="${5:-20}"
load="$(realpath "${LOAD_BIN:-$(dirname "$bin")/ruleiq-load}")"
port="${PORT:-8791}"
scratch
[ -x "$load" ] || { echo "no ruleiq-load at $load: cargo build --release -p ruleiq-loadtest, or set LOAD_BIN" >&2; exit 2; }

export DATA_DIR="$dir/data" LOG_LEVEL=warn
if [ "${OVERLOAD:-}" = 1 ]; then
  users=$((users * 10))
  export RATE_LIMIT_ENABLED=true AUTH_RATE_LIMIT_PER_MINUTE=$((users * 2 + 10))
else
  export RATE_LIMIT_ENABLED=false
fi
use_database "$engine" ruleiq_goose
base="http://127.0.0.1:$port/api/v1"
email=load@example.co.uk

"$bin" migrate up >/dev/null
"$bin" seed >/dev/null
echo "== ruleiq demo --size large ($engine)"
echo "$password" | "$bin" demo --size large --email "$email" --password-stdin | grep 'ready in'

"$bin" serve --port "$port" >"$dir/server.log" 2>&1 &
pid=$!
wait_ready
wait_idle

# A short run first, not counted: the first readers of a large organisation build the
# server's caches (readiness, dashboard, the search index), which is a cold start, not
# the steady state the measured run is about. Overload runs skip it.
warmup="${WARMUP_SECONDS:-5}"
if [ "${OVERLOAD:-}" != 1 ] && [ "$warmup" != 0 ]; then
  echo "== warm-up: ${warmup} s of the same scenarios, not counted"
  RULEIQ_LOAD_EMAIL="$email" RULEIQ_LOAD_PASSWORD="$password" "$load" \
    --host "http://127.0.0.1:$port" --scenarios "$scenario" --users "$users" \
    --run-time "${warmup}s" --quiet --no-print-metrics >/dev/null 2>&1 || true
fi

echo "== ruleiq-load --scenarios '$scenario' --users $users --run-time ${seconds}s ($engine, rate limits ${RATE_LIMIT_ENABLED/false/off})"
# GOOSE_ARGS is split into words on purpose: it holds options.
# shellcheck disable=SC2086
RULEIQ_LOAD_EMAIL="$email" RULEIQ_LOAD_PASSWORD="$password" "$load" \
  --host "http://127.0.0.1:$port" --scenarios "$scenario" --users "$users" \
  --run-time "${seconds}s" --report-file "$dir/report.json" ${GOOSE_ARGS:-} | tee "$dir/goose.out" \
  || status=$?
# ruleiq-load exits 1 when anything failed: expected under overload, else worth the
# server's own account.
if [ "${status:-0}" != 0 ] && [ "${OVERLOAD:-}" != 1 ]; then
  echo "== ruleiq-load exited ${status}; the server's log ends:"
  tail -20 "$dir/server.log"
fi

if [ "${OVERLOAD:-}" = 1 ]; then
  echo "== recovery"
  curl -s -o "$dir/health.json" -w "GET /api/v1/health right after: %{http_code} in %{time_total} s, " "$base/health"
  python3 -c 'import json,sys; print("status", json.load(open(sys.argv[1]))["status"])' "$dir/health.json"
  token=$(sign_in "$email")
  start=$(date +%s)
  until [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$base/auth/me")" = 200 ]; do
    if [ $(( $(date +%s) - start )) -gt 65 ]; then echo "GET /auth/me still refused after 65 s" >&2; exit 1; fi
    sleep 1
  done
  echo "GET /api/v1/auth/me answers 200 again after $(( $(date +%s) - start )) s"
fi

if [ -n "${REPORT_DIR:-}" ]; then
  mkdir -p "$REPORT_DIR" && cp "$dir/report.json" "$dir/goose.out" "$dir/server.log" "$REPORT_DIR/"
fi
[ "${OVERLOAD:-}" = 1 ] || exit "${status:-0}"
