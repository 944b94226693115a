#!/usr/bin/env bash
# Fuzzes the HTTP API from its own OpenAPI document with schemathesis (issue 9, item
# 10): a fresh database, `ruleiq serve`, a registered member whose token goes with every
# request, then schemathesis's coverage, fuzzing and stateful phases for a bounded time.
# Fails on any 5xx answer and on any answer that breaks the document's own schemas.
#
#   scripts/fuzz-api.sh path/to/ruleiq [sqlite|postgres] [seconds] [seed]
#
# Needs schemathesis (`python3 -m pip install schemathesis==4.32.5`), curl and python3
# (and psql for PostgreSQL, which uses a scratch database on 127.0.0.1:5432:
# `ruleiq_fuzz`, or FUZZ_DATABASE). Rate limits are off, so that the run explores
# rather than waits.
# Signing out and changing the password are left out: either would end the session the
# rest of the run uses. One worker: with two, hypothesis (inside schemathesis) now and
# then fails on its own with "AST constructor recursion depth mismatch", CPython's
# parser being entered from two threads at once.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
bin="$(realpath "$1")"
engine="${2:-sqlite}"
seconds="${3:-60}"
seed="${4:-$RANDOM}"
port="${PORT:-8897}"
dir="$(mktemp -d)"
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$dir"' EXIT
cd "$dir"
export DATA_DIR="$dir/data" LOG_LEVEL=warn RATE_LIMIT_ENABLED=false
if [ "$engine" = postgres ]; then
  name="${FUZZ_DATABASE:-ruleiq_fuzz}"
  psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" -c "CREATE DATABASE $name"
  export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$name"
else
  export DATABASE_URL="sqlite://$dir/db.sqlite?mode=rwc"
fi
"$bin" migrate up >/dev/null
"$bin" seed >/dev/null
"$bin" serve --port "$port" >"$dir/serve.log" 2>&1 &
pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 600); do curl -sf -o /dev/null "$base/api/v1/health/ready" && break; sleep 0.1; done
token="$(curl -sf "$base/api/v1/auth/register" -H 'Content-Type: application/json' \
  -d '{"email":"fuzz@example.co.uk","password":"otter lantern quarry velvet","full_name":"Fuzz Tester","organization_name":"Fuzz Ltd"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"
echo "schemathesis on $engine for ${seconds} s, seed $seed"
status=0
st run "$here/docs/openapi.json" --url "$base" \
  -H "Authorization: Bearer $token" \
  --checks not_a_server_error,response_schema_conformance \
  --exclude-path /api/v1/auth/logout --exclude-path /api/v1/auth/change-password \
  --max-time "$seconds" --workers 1 --seed "$seed" --no-color \
  --suppress-health-check all --warnings off || status=$?
if grep -qE 'panicked|ERROR' "$dir/serve.log"; then
  echo "the server logged errors during the run:"
  grep -E 'panicked|ERROR' "$dir/serve.log" | cut -c1-300 | sort | uniq -c | sort -rn | head -20
  status=1
fi
exit "$status"
