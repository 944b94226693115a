#!/usr/bin/env bash
# Measures the framework-library targets on loopback: listing ISO 27001's controls
# (the default page of 50, and all 123 at once) and a search across every control
# (queries rotated so no single word is favoured), 64 connections each; then seeding
# the whole library into an empty SQLite database and importing the NIST SP 800-53
# LOW catalog, timed with hyperfine. Bounded: about two minutes.
#
#   cargo build --release && loadtest/frameworks.sh [path/to/ruleiq]
#
# Needs wrk, hyperfine, curl and python3. Rate limits are off: this measures capacity.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bin="$(ruleiq_bin "${1:-}")"
port="${PORT:-8767}"
seconds="${SECONDS_PER_RUN:-15}"
nist="$here/crates/server/tests/fixtures/oscal/NIST_SP-800-53_rev5_LOW-baseline-resolved-profile_catalog.json"
scratch
export DATA_DIR="$dir/data" LOG_LEVEL=warn RATE_LIMIT_ENABLED=false
base="http://127.0.0.1:$port/api/v1"

"$bin" serve --port "$port" >/dev/null 2>&1 &
pid=$!
wait_ready
token=$(curl -sf -X POST "$base/auth/register" -H 'content-type: application/json' \
  -d "{\"email\":\"load@example.co.uk\",\"password\":\"$password\",\"full_name\":\"Load Test\",\"organization_name\":\"Load Ltd\"}" \
  | json 'd["access_token"]')
auth="Authorization: Bearer $token"

# Each run is preceded by a short unreported one, so what is measured is the steady
# state (the first request after a change renders the answer; the rest are served it).
run() {
  echo "== $1, wrk -t2 -c64 -d${seconds}s"
  shift
  wrk -t2 -c64 -d2s -H "$auth" "$@" >/dev/null
  wrk -t2 -c64 -d"${seconds}s" --latency -H "$auth" "$@" \
    | grep -E 'Requests/sec|Transfer/sec|  50%|  90%|  99%|requests in|Non-2xx'
}
run "GET /frameworks/iso27001-2022/controls (50 per page)" "$base/frameworks/iso27001-2022/controls"
run "the same, Accept-Encoding: gzip" -H "Accept-Encoding: gzip" "$base/frameworks/iso27001-2022/controls"
run "GET /frameworks/iso27001-2022/controls?limit=200 (all 123)" "$base/frameworks/iso27001-2022/controls?limit=200"
run "the same, Accept-Encoding: gzip" -H "Accept-Encoding: gzip" "$base/frameworks/iso27001-2022/controls?limit=200"

cat > search.lua <<'LUA'
local queries = {"backup", "multi-factor", "incident", "supplier", "encryption",
  "password", "risk assessment", "access", "training", "logging", "A.8.5", "personal data"}
local n = 0
request = function()
  n = n + 1
  local q = queries[(n % #queries) + 1]:gsub(" ", "%%20")
  return wrk.format("GET", "/api/v1/search?q=" .. q)
end
LUA
run "GET /search?q=… (12 queries rotated, all frameworks)" -s search.lua "http://127.0.0.1:$port"
kill "$pid"; wait "$pid" 2>/dev/null || true

echo "== seeding the whole library into an empty SQLite database (ruleiq seed after migrate)"
cat > prepare-seed.sh <<SH
#!/bin/sh
rm -rf "$dir/seed" && mkdir -p "$dir/seed"
DATA_DIR="$dir/seed" DATABASE_URL="sqlite://$dir/seed/db.sqlite" "$bin" migrate up >/dev/null
SH
cat > seed.sh <<SH
#!/bin/sh
DATA_DIR="$dir/seed" DATABASE_URL="sqlite://$dir/seed/db.sqlite" exec "$bin" seed
SH
cat > prepare-import.sh <<SH
#!/bin/sh
rm -rf "$dir/imp" && cp -r "$dir/seeded" "$dir/imp"
SH
cat > import.sh <<SH
#!/bin/sh
DATA_DIR="$dir/imp" DATABASE_URL="sqlite://$dir/imp/db.sqlite" exec "$bin" frameworks import "$nist"
SH
chmod +x ./*.sh
hyperfine --warmup 1 --runs 10 -N --prepare "$dir/prepare-seed.sh" "$dir/seed.sh" 2>&1 | grep -E 'Time|Range'

echo "== importing the NIST SP 800-53 LOW catalog (149 controls) into a seeded database"
# The database files (with their write-ahead log) of a migrated, seeded installation.
mkdir -p "$dir/seeded"
DATA_DIR="$dir/seeded" DATABASE_URL="sqlite://$dir/seeded/db.sqlite" "$bin" migrate up >/dev/null
DATA_DIR="$dir/seeded" DATABASE_URL="sqlite://$dir/seeded/db.sqlite" "$bin" seed >/dev/null
hyperfine --warmup 1 --runs 10 -N --prepare "$dir/prepare-import.sh" "$dir/import.sh" 2>&1 | grep -E 'Time|Range'
