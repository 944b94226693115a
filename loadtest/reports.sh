#!/usr/bin/env bash
# Measures issue 8's targets on a release build:
#  1. the executive summary PDF and the statement of applicability XLSX of the `large`
#     demo organisation, five of each one after another, timed as the job's own run
#     (started → finished) and end to end (request → ready);
#  2. an audit pack over 1 GB of evidence: a second organisation (the `small` demo)
#     is given 21 files of 50 MiB of random bytes, then the pack is built while the
#     server's resident memory is sampled every 100 ms.
# Bounded: a few minutes (most of it uploading the gigabyte).
#
#   cargo build --release && loadtest/reports.sh [path/to/ruleiq] [sqlite|postgres]
#   PACK_ONLY=1 loadtest/reports.sh …    # only the audit pack, with its memory by stage
#   PACK_WORKER=1 …                        # the pack built by a separate `ruleiq worker`
#
# PostgreSQL uses a scratch database `ruleiq_load` on 127.0.0.1:5432 (user postgres),
# dropped and made again. Needs curl and python3 (and psql for PostgreSQL).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bin="$(ruleiq_bin "${1:-}")"
engine="${2:-sqlite}"
port="${PORT:-8781}"
files="${PACK_FILES:-21}"
scratch
export DATA_DIR="$dir/data" LOG_LEVEL=warn RATE_LIMIT_ENABLED=false MAX_UPLOAD_SIZE=$((60 * 1024 * 1024))
use_database "$engine" ruleiq_load
base="http://127.0.0.1:$port/api/v1"

"$bin" migrate up >/dev/null
"$bin" seed >/dev/null
echo "== ruleiq demo --size large ($engine), and a small one for the pack"
echo "$password" | "$bin" demo --size large --email load@example.co.uk --password-stdin | grep 'ready in'
echo "$password" | "$bin" demo --size small --email pack@example.co.uk --password-stdin | grep 'ready in'

start_server() {
  "$bin" serve --port "$port" >/dev/null 2>&1 &
  pid=$!
  wait_ready
}

cat > "$dir/measure.py" <<'PY'
import json, os, time, urllib.request, uuid
from datetime import datetime
base, password, pid = os.environ["BASE"], os.environ["PASSWORD"], int(os.environ["PID"])

def call(method, path, token, body=None, raw=None, ctype="application/json"):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(base + path, method=method, data=data,
        headers={"Authorization": f"Bearer {token}", "Content-Type": ctype})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.load(r)

def login(email):
    req = urllib.request.Request(base + "/auth/login", method="POST",
        data=json.dumps({"email": email, "password": password}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)["access_token"]

def rss_mb(field="VmRSS"):
    # VmRSS = RssAnon (the heap and stacks) + RssFile (pages of the executable and
    # other mapped files, such as the fonts compiled into it) + RssShmem.
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0

ts = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))

def build(token, body, sample=False):
    t0 = time.perf_counter()
    r = call("POST", "/reports", token, body)
    peak = rss_mb()
    anon_peak = rss_mb("RssAnon")
    stages = {}
    while True:
        rep = call("GET", f"/reports/{r['report_id']}", token)
        if sample:
            now = rss_mb()
            peak = max(peak, now)
            anon_peak = max(anon_peak, rss_mb("RssAnon"))
            # The peak by what the job said it was doing, to see which stage costs.
            stage = (rep.get("progress_note") or "").split(" of ")[0].rstrip("0123456789 ")
            was = stages.get(stage, (0.0, 0.0, 0.0))
            stages[stage] = (max(was[0], now), max(was[1], rss_mb("RssAnon")), max(was[2], rss_mb("RssFile")))
        if rep["status"] not in ("queued", "running"):
            break
        time.sleep(0.1 if sample else 0.005)
    end = (time.perf_counter() - t0) * 1000
    assert rep["status"] == "ready", rep
    run = (ts(rep["finished_at"]) - ts(call("GET", f"/jobs/{r['job_id']}", token)["started_at"])).total_seconds() * 1000
    if sample:
        for stage, (mb, anon, file) in stages.items():
            print(f"  peak while {stage or 'queued'}: RSS {mb:.0f} MB (anonymous {anon:.0f} MB, file-backed {file:.0f} MB)")
        print(f"  anonymous memory (the heap): peak {anon_peak:.0f} MB")
    return run, end, rep, peak

if os.environ["PHASE"] == "documents":
  token = login("load@example.co.uk")
  for body, label in [
      ({"report_type": "executive_summary", "format": "pdf"}, "executive summary PDF"),
      ({"report_type": "statement_of_applicability", "format": "xlsx"}, "statement of applicability XLSX"),
      ({"report_type": "gap_analysis", "format": "xlsx"}, "gap analysis XLSX"),
      ({"report_type": "evidence_register", "format": "csv"}, "evidence register CSV"),
  ]:
      runs, ends = [], []
      for _ in range(5):
          run, end, rep, _ = build(token, body)
          runs.append(run); ends.append(end)
      runs.sort(); ends.sort()
      print(f"{label:32} job median {runs[2]:7.1f} ms, max {runs[-1]:7.1f} ms; "
            f"end to end median {ends[2]:7.1f} ms ({rep['size_bytes']} bytes)")

# The pack: 1 GB of incompressible evidence in the small organisation, on a server
# started afresh, so that its resident memory is the pack's and the server's own, not
# what the large organisation's documents left in the allocator.
if os.environ["PHASE"] not in ("upload", "pack"):
    raise SystemExit
token = login("pack@example.co.uk")
frameworks = call("GET", "/compliance/status", token)["frameworks"]
slug = frameworks[0]["framework"]["slug"]
control = call("GET", f"/frameworks/{slug}/controls?limit=1", token)["items"][0]["id"]
boundary = "ruleiqloadboundary"
size = 50 * 1024 * 1024
t0 = time.perf_counter()
for i in range(int(os.environ["FILES"]) if os.environ["PHASE"] == "upload" else 0):
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nBackup image {i}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"evidence_type\"\r\n\r\nconfiguration\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"control_ids\"\r\n\r\n{control}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"backup-{i}.csv\"\r\n"
            f"Content-Type: text/csv\r\n\r\n").encode()
    # Printable random bytes: a CSV the sniffer accepts that no compressor shrinks much.
    body = os.urandom(size).hex().encode()[:size]
    call("POST", "/evidence", token, raw=head + b"a,b\n" + body + f"\r\n--{boundary}--\r\n".encode(),
         ctype=f"multipart/form-data; boundary={boundary}")
if os.environ["PHASE"] == "upload":
    print(f"uploaded {os.environ['FILES']} x 50 MiB in {time.perf_counter() - t0:.0f} s")
    # Text extraction of the uploads runs as jobs: let it finish so it is not measured.
    while any(call("GET", f"/jobs?status={s}&limit=1", token)["items"] for s in ("queued", "running")):
        time.sleep(0.5)
    print(f"server RSS after the uploads and their text extraction: {rss_mb():.0f} MB "
          f"(anonymous {rss_mb('RssAnon'):.0f} MB)")
    raise SystemExit

def by_mapping():
    # Resident memory per mapped file (or [heap], anonymous), largest first: which
    # part of the executable, which data file, or the heap, the pages belong to.
    sizes, name = {}, None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if "-" in parts[0] and len(parts) >= 5 and not parts[0].endswith(":"):
                name = parts[5] if len(parts) > 5 else "[anonymous]"
            elif parts[0] == "Rss:":
                sizes[name] = sizes.get(name, 0) + int(parts[1])
    return sorted(sizes.items(), key=lambda kv: -kv[1])[:6]

# The restarted server's daily upkeep (expiry, sweeps, the readiness snapshot) belongs
# to no organisation, so this member does not see it: the script's `wait_idle` has let
# it finish. What the member's organisation still has queued or running finishes here,
# so the pack is measured on its own.
while any(call("GET", f"/jobs?status={s}&limit=1", token)["items"] for s in ("queued", "running")):
    time.sleep(0.5)
time.sleep(2)
before = rss_mb()
run, end, rep, peak = build(token, {"report_type": "audit_pack", "format": "zip"}, sample=True)
print(f"audit pack: {rep['size_bytes'] / 1e9:.2f} GB in {run / 1000:.1f} s (job), "
      f"server RSS before {before:.0f} MB, peak while building {peak:.0f} MB")
for name, kb in by_mapping():
    print(f"  resident after: {kb / 1024:6.1f} MB  {name}")
PY

if [ "${PACK_ONLY:-}" != 1 ]; then
  start_server
  BASE="$base" PASSWORD="$password" PID="$pid" FILES="$files" PHASE=documents python3 "$dir/measure.py"
  kill "$pid"; wait "$pid" 2>/dev/null || true
fi
start_server
BASE="$base" PASSWORD="$password" PID="$pid" FILES="$files" PHASE=upload python3 "$dir/measure.py"
# The pack on a server started afresh (as after a deploy, or in `ruleiq worker`): its
# resident memory is then the server's own and the pack's, not what a gigabyte of
# uploads and their text extraction left behind in the allocator.
kill "$pid"; wait "$pid" 2>/dev/null || true
if [ "${PACK_WORKER:-}" = 1 ]; then
  # As deployed with containers: the API without its embedded worker, and a separate
  # `ruleiq worker` that builds the pack; the worker's memory is measured.
  EMBEDDED_WORKER=false start_server
  "$bin" worker >/dev/null 2>&1 &
  wpid=$!
  wait_idle
  trap 'kill "${pid:-}" "${wpid:-}" 2>/dev/null || true; rm -rf "$dir"' EXIT
  echo "== the pack in a separate ruleiq worker"
  BASE="$base" PASSWORD="$password" PID="$wpid" FILES=0 PHASE=pack python3 "$dir/measure.py"
else
  start_server
  wait_idle
  echo "== the pack in ruleiq serve's embedded worker"
  BASE="$base" PASSWORD="$password" PID="$pid" FILES=0 PHASE=pack python3 "$dir/measure.py"
fi
