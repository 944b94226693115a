#!/usr/bin/env bash
# Resilience drill (issue 9, item 7): SIGTERM to `ruleiq serve` under load, with jobs
# in hand.
#
# `ruleiq serve` (embedded worker) on a fresh SQLite (or PostgreSQL) database with the
# small demo organisation and steady load on an authenticated page. At +3 s eight
# executive summaries are asked for; at +4 s the server gets SIGTERM; once it has exited
# it is started again. Prints what the load saw before, during and after, how long the
# server took to stop, and what became of every report and its job.
#
#   loadtest/drills/sigterm.sh [path/to/ruleiq] [sqlite|postgres] [threads]
#
# Expected: no request dropped (every request the server took was answered; new
# connections are refused once it stops listening), every report ready after the
# restart, each job run to completion exactly once (a job the stopping worker had in
# hand finishes; the queued ones wait for the next start).
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$(realpath "${1:-${CARGO_TARGET_DIR:-$here/target}/release/ruleiq}")"
engine="${2:-sqlite}"
threads="${3:-8}"
port="${PORT:-8793}"
dir="$(mktemp -d)"
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$dir"' EXIT
cd "$dir"
export DATA_DIR="$dir/data" LOG_LEVEL=info RATE_LIMIT_ENABLED=false
if [ "$engine" = postgres ]; then
  psql -q -h 127.0.0.1 -U postgres -c 'DROP DATABASE IF EXISTS ruleiq_sigterm WITH (FORCE)' -c 'CREATE DATABASE ruleiq_sigterm'
  export DATABASE_URL="postgres://postgres@127.0.0.1:5432/ruleiq_sigterm"
else
  export DATABASE_URL="sqlite://$dir/db.sqlite?mode=rwc"
fi
password="otter lantern quarry velvet"
"$bin" migrate up >/dev/null
"$bin" seed >/dev/null
echo "$password" | "$bin" demo --size small --email drill@example.co.uk --password-stdin | grep 'ready in'
base="http://127.0.0.1:$port/api/v1"
start_server() {
  "$bin" serve --port "$port" >>"$dir/serve.log" 2>&1 &
  pid=$!
  until curl -sf -o /dev/null "$base/health/ready"; do sleep 0.05; done
}
start_server
token="$(curl -sf "$base/auth/login" -H 'Content-Type: application/json' \
  -d "{\"email\":\"drill@example.co.uk\",\"password\":\"$password\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"

python3 "$here/loadtest/drills/steady_load.py" "$base" /compliance/status "$token" 8 "$threads" "$dir/load.log" &
load=$!
t0=$(date +%s.%N)
since() { python3 -c "print(f'{$(date +%s.%N) - $t0:.2f}')"; }
sleep 3
for _ in 1 2 3 4 5 6 7 8; do
  curl -sf "$base/reports" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d '{"report_type":"executive_summary","format":"pdf"}' >>"$dir/reports.jsonl"
  echo >>"$dir/reports.jsonl"
done
# SIGTERM as soon as the worker has a report in hand (or after 5 s regardless).
for _ in $(seq 1 250); do
  running=$(curl -sf "$base/jobs?status=running" -H "Authorization: Bearer $token" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')
  [ "$running" -gt 0 ] && break
  sleep 0.02
done
term=$(since)
kill -TERM "$pid"
echo "SIGTERM at +$term s with $running job(s) running"
status=0
wait "$pid" || status=$?
stopped=$(since)
echo "serve exited with status $status at +$stopped s"
wait "$load"
python3 "$here/loadtest/drills/summarise.py" "$dir/load.log" "before SIGTERM:0:$term" "while stopping:$term:$stopped" "after it stopped:$stopped:99"

start_server
echo "serve started again; waiting for the reports"
python3 - "$base" "$token" "$dir/reports.jsonl" "$dir/load.log" <<'PY'
import json, sys, time, urllib.request
base, token, reports, load = sys.argv[1:5]
def get(path):
    req = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)
asked = [json.loads(l) for l in open(reports) if l.strip()]
deadline = time.time() + 180
while True:
    states = [(get(f"/reports/{r['report_id']}"), get(f"/jobs/{r['job_id']}")) for r in asked]
    if all(rep["status"] in ("ready", "failed") for rep, _ in states) or time.time() > deadline:
        break
    time.sleep(0.5)
ok = True
for rep, job in states:
    print(f"  report {rep['status']:<6} job {job['status']:<9} attempts {job['attempts']}")
    ok &= rep["status"] == "ready" and job["status"] == "succeeded" and job["attempts"] == 1
dropped = sum(1 for l in open(load) if l.split()[2] == "dropped")
errors = sum(1 for l in open(load) if l.split()[2].startswith("5"))
print(f"  dropped requests: {dropped}; 5xx answers: {errors}")
sys.exit(0 if ok and dropped == 0 and errors == 0 else 1)
PY
echo "the stopping server's own account:"
grep -E 'INFO|WARN|ERROR' "$dir/serve.log" | grep -iE 'shut|stopp|signal|worker|in flight|grace' | sed -E 's/\x1b\[[0-9;]*m//g' | cut -c1-180 | head -12 || true
