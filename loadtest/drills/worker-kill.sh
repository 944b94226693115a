#!/usr/bin/env bash
# Resilience drill (issue 9, item 7): `kill -9` of a worker in the middle of a job.
# A server without its embedded worker and one `ruleiq worker` on a fresh SQLite (or
# PostgreSQL) database; an audit pack over a few hundred MB of evidence is asked for,
# the worker is killed with SIGKILL while the job runs, a second worker is started, and
# the drill waits for the report to be ready, printing what the job went through.
#
#   loadtest/drills/worker-kill.sh [path/to/ruleiq] [sqlite|postgres]
#
# Bounded: gives up after 5 minutes. Needs curl and python3 (and psql for PostgreSQL).
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$(realpath "${1:-${CARGO_TARGET_DIR:-$here/target}/release/ruleiq}")"
engine="${2:-sqlite}"
port="${PORT:-8791}"
dir="$(mktemp -d)"
trap 'kill "${pid:-}" "${w1:-}" "${w2:-}" 2>/dev/null || true; rm -rf "$dir"' EXIT
cd "$dir"
export DATA_DIR="$dir/data" LOG_LEVEL=warn RATE_LIMIT_ENABLED=false MAX_UPLOAD_SIZE=$((60 * 1024 * 1024)) EMBEDDED_WORKER=false
if [ "$engine" = postgres ]; then
  psql -q -h 127.0.0.1 -U postgres -c 'DROP DATABASE IF EXISTS ruleiq_drill WITH (FORCE)' -c 'CREATE DATABASE ruleiq_drill'
  export DATABASE_URL="postgres://postgres@127.0.0.1:5432/ruleiq_drill"
else
  export DATABASE_URL="sqlite://$dir/db.sqlite?mode=rwc"
fi
base="http://127.0.0.1:$port/api/v1"
password="otter lantern quarry velvet"
"$bin" migrate up >/dev/null
"$bin" seed >/dev/null
echo "$password" | "$bin" demo --size small --email drill@example.co.uk --password-stdin | grep 'ready in'
"$bin" serve --port "$port" >"$dir/serve.log" 2>&1 &
pid=$!
until curl -sf -o /dev/null "$base/health/ready"; do sleep 0.05; done
"$bin" worker --name first >"$dir/w1.log" 2>&1 &
w1=$!

cat > "$dir/drill.py" <<'PY'
import json, os, subprocess, sys, time, urllib.request
base, password, d = os.environ["BASE"], os.environ["PASSWORD"], sys.argv[1]
def call(method, path, token=None, body=None, raw=None, ctype="application/json"):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    h = {"Content-Type": ctype}
    if token: h["Authorization"] = f"Bearer {token}"
    with urllib.request.urlopen(urllib.request.Request(base + path, method=method, data=data, headers=h), timeout=600) as r:
        return json.load(r)
token = call("POST", "/auth/login", body={"email": "drill@example.co.uk", "password": password})["access_token"]
slug = call("GET", "/compliance/status", token)["frameworks"][0]["framework"]["slug"]
control = call("GET", f"/frameworks/{slug}/controls?limit=1", token)["items"][0]["id"]
b = "drillboundary"
for i in range(6):
    head = (f"--{b}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nImage {i}\r\n"
            f"--{b}\r\nContent-Disposition: form-data; name=\"evidence_type\"\r\n\r\nconfiguration\r\n"
            f"--{b}\r\nContent-Disposition: form-data; name=\"control_ids\"\r\n\r\n{control}\r\n"
            f"--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"image-{i}.csv\"\r\n"
            f"Content-Type: text/csv\r\n\r\n").encode()
    body = os.urandom(25 * 1024 * 1024).hex().encode()
    call("POST", "/evidence", token, raw=head + b"a,b\n" + body + f"\r\n--{b}--\r\n".encode(),
         ctype=f"multipart/form-data; boundary={b}")
while any(call("GET", f"/jobs?status={s}&limit=1", token)["items"] for s in ("queued", "running")):
    time.sleep(0.2)
r = call("POST", "/reports", token, {"report_type": "audit_pack", "format": "zip"})
job = r["job_id"]
t0 = time.time()
while call("GET", f"/jobs/{job}", token)["status"] != "running":
    time.sleep(0.02)
    assert time.time() - t0 < 60, "the worker never started the job"
time.sleep(0.3)
print(f"job {job} running after {time.time() - t0:.1f} s: killing the worker with SIGKILL")
open(f"{d}/kill-now", "w").close()
while os.path.exists(f"{d}/kill-now"):
    time.sleep(0.02)
killed = time.time()
j = call("GET", f"/jobs/{job}", token)
print(f"  just after: job {j['status']}, attempts {j['attempts']}; a second worker starts")
open(f"{d}/start-now", "w").close()
last = None
while True:
    j = call("GET", f"/jobs/{job}", token)
    rep = call("GET", f"/reports/{r['report_id']}", token)
    state = (j["status"], j["attempts"], rep["status"])
    if state != last:
        print(f"  +{time.time() - killed:5.1f} s: job {j['status']}, attempts {j['attempts']}, report {rep['status']}")
        last = state
    if rep["status"] in ("ready", "failed") and j["status"] in ("succeeded", "failed"):
        break
    if time.time() - killed > 300:
        print("  gave up after 5 minutes: the job did not run again")
        sys.exit(1)
    time.sleep(0.2)
print(f"report {rep['status']} {time.time() - killed:.1f} s after the kill; job attempts {j['attempts']}")
sys.exit(0 if rep["status"] == "ready" else 1)
PY

# The script asks through files; the shell, which started the workers, acts.
BASE="$base" PASSWORD="$password" python3 "$dir/drill.py" "$dir" &
py=$!
while kill -0 "$py" 2>/dev/null; do
  if [ -e "$dir/kill-now" ]; then
    kill -9 "$w1"; wait "$w1" 2>/dev/null || true
    rm "$dir/kill-now"
  fi
  if [ -e "$dir/start-now" ]; then
    "$bin" worker --name second >"$dir/w2.log" 2>&1 &
    w2=$!
    rm "$dir/start-now"
  fi
  sleep 0.02
done
wait "$py"
