#!/usr/bin/env bash
# Measures issue 5's targets on the large demo organisation (every built-in framework
# assessed, 2,000+ answers, 500+ tasks): GET /dashboard and GET /compliance/status at
# 32 connections; saving an answer (PUT, rotating over an assessment's questions and
# responses) at 1, 8 and 32 connections; and completing an assessment of the framework
# with the most questions, timed one request at a time. Bounded: about two minutes.
#
#   cargo build --release && loadtest/dashboard.sh [path/to/ruleiq] [sqlite|postgres]
#
# PostgreSQL uses a scratch database `ruleiq_load` on 127.0.0.1:5432 (user postgres),
# dropped and made again. Needs wrk, curl, python3 (and psql for PostgreSQL). Rate
# limits are off: this measures capacity.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bin="$(ruleiq_bin "${1:-}")"
engine="${2:-sqlite}"
port="${PORT:-8768}"
seconds="${SECONDS_PER_RUN:-10}"
scratch
export DATA_DIR="$dir/data" LOG_LEVEL=warn RATE_LIMIT_ENABLED=false
use_database "$engine" ruleiq_load
base="http://127.0.0.1:$port/api/v1"

"$bin" migrate up >/dev/null
"$bin" seed >/dev/null
echo "== ruleiq demo --size large ($engine)"
echo "$password" | "$bin" demo --size large --email load@example.co.uk --password-stdin | tail -2 | head -1

"$bin" serve --port "$port" >/dev/null 2>&1 &
pid=$!
wait_ready
token=$(sign_in load@example.co.uk)
auth="Authorization: Bearer $token"

run() {
  local label="$1" conns="$2"
  shift 2
  local threads=$(( conns < 2 ? 1 : 2 ))
  echo "== $label, wrk -t$threads -c$conns -d${seconds}s"
  wrk -t"$threads" -c"$conns" -d2s -H "$auth" "$@" >/dev/null
  wrk -t"$threads" -c"$conns" -d"${seconds}s" --latency -H "$auth" "$@" \
    | grep -E 'Requests/sec|  50%|  90%|  99%|requests in|Non-2xx'
}
run "GET /dashboard" 32 "$base/dashboard"
run "GET /compliance/status" 32 "$base/compliance/status"

# The framework with the most questions, and an assessment of it in progress.
slug=$(curl -sf -H "$auth" "$base/assessments" \
  | json 'max(d["items"], key=lambda a: a["progress"]["total"])["framework"]["slug"]')
new_assessment() {
  curl -sf -X POST "$base/assessments" -H "$auth" -H 'content-type: application/json' \
    -d "{\"framework_id\":\"$slug\"}" | json 'd["id"]'
}
assessment=$(new_assessment)
curl -sf -H "$auth" "$base/assessments/$assessment/questions" | json '"\n".join(q["id"] for q in d["items"])' > questions.txt
echo "== $slug: $(wc -l < questions.txt) questions"
python3 - "$assessment" > answer.lua <<'PY'
import sys
ids = [l.strip() for l in open("questions.txt") if l.strip()]
print("local ids = {" + ",".join('"%s"' % i for i in ids) + "}")
print('local responses = {"yes", "partial", "no", "not_applicable", "unknown"}')
print("local n = 0")
print("request = function()")
print("  n = n + 1")
print('  local body = \'{"response":"\' .. responses[(n % 5) + 1] .. \'","notes":"load test"}\'')
# wrk.format replaces wrk.headers when given a table, which would drop the token.
print('  wrk.headers["Content-Type"] = "application/json"')
print('  return wrk.format("PUT", "/api/v1/assessments/%s/answers/" .. ids[(n %% #ids) + 1], nil, body)' % sys.argv[1])
print("end")
PY
run "PUT /assessments/{id}/answers/{question} (rotating)" 1 -s answer.lua "http://127.0.0.1:$port"
run "PUT /assessments/{id}/answers/{question} (rotating)" 8 -s answer.lua "http://127.0.0.1:$port"
run "PUT /assessments/{id}/answers/{question} (rotating)" 32 -s answer.lua "http://127.0.0.1:$port"

echo "== POST /assessments/{id}/complete on $slug, 10 fresh assessments, one at a time"
for _ in $(seq 10); do
  id=$(new_assessment)
  curl -sf -o /dev/null -w '%{time_total}\n' -X POST -H "$auth" "$base/assessments/$id/complete"
done | python3 -c 'import sys; t=sorted(float(l)*1000 for l in sys.stdin); print("  min %.1f ms  median %.1f ms  max %.1f ms" % (t[0], t[len(t)//2], t[-1]))'
