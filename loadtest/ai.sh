#!/usr/bin/env bash
# Measures issue 7's targets on a release build:
#  1. offline policy generation: each of the 14 policy types generated in turn, timed
#     as the job's own run (started → finished) and end to end (request → text ready);
#  2. an offline assistant answer: wrk posting questions to one conversation, p50/p99;
#  3. our overhead on a streamed remote answer: a local server speaking OpenAI's SSE
#     format sends its first token 200 ms after the request; the client notes when
#     that token reaches it. Overhead = client receipt − mock send (one clock).
# Bounded: about two minutes.
#
#   cargo build --release && [CONNECTIONS=4] loadtest/ai.sh [path/to/ruleiq] [sqlite|postgres]
#
# Rate limits are off: this measures capacity. PostgreSQL uses a scratch database
# `ruleiq_load` on 127.0.0.1:5432 (user postgres), dropped and made again. Needs wrk,
# curl and python3 (and psql for PostgreSQL).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bin="$(ruleiq_bin "${1:-}")"
engine="${2:-sqlite}"
port="${PORT:-8771}"
seconds="${SECONDS_PER_RUN:-10}"
scratch
export DATA_DIR="$dir/data" LOG_LEVEL=warn RATE_LIMIT_ENABLED=false
use_database "$engine" ruleiq_load
base="http://127.0.0.1:$port/api/v1"

"$bin" migrate up >/dev/null
"$bin" seed >/dev/null
echo "== ruleiq demo --size large ($engine)"
echo "$password" | "$bin" demo --size large --email load@example.co.uk --password-stdin | grep 'ready in'

start_server() {
  "$bin" serve --port "$port" >/dev/null 2>&1 &
  pid=$!
  wait_ready
  wait_idle
  token=$(sign_in load@example.co.uk)
}
start_server

echo "== offline policy generation, 14 types one after another"
BASE="$base" TOKEN="$token" python3 - <<'PY'
import json, os, time, urllib.request
from datetime import datetime
base, token = os.environ["BASE"], os.environ["TOKEN"]
def call(method, path, body=None):
    req = urllib.request.Request(base + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)
types = [t["policy_type"] for t in call("GET", "/policies/templates")]
runs, ends = [], []
for t in types:
    t0 = time.perf_counter()
    g = call("POST", "/policies/generate", {"policy_type": t})
    while True:
        p = call("GET", f"/policies/{g['policy_id']}")
        if p["generation"] != "pending":
            break
        time.sleep(0.002)
    ends.append((time.perf_counter() - t0) * 1000)
    while True:
        job = call("GET", f"/jobs/{g['job_id']}")
        if job["finished_at"]:
            break
        time.sleep(0.002)
    ts = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
    runs.append((ts(job["finished_at"]) - ts(job["started_at"])).total_seconds() * 1000)
    assert p["generation"] == "ready", p
runs.sort(); ends.sort()
print(f"job run:     median {runs[len(runs)//2]:.1f} ms, max {runs[-1]:.1f} ms ({len(runs)} policies)")
print(f"end to end:  median {ends[len(ends)//2]:.1f} ms, max {ends[-1]:.1f} ms (request → text ready, incl. queue and polling)")
PY

# Whatever the generations left queued or running stays out of the wrk run.
wait_idle

connections="${CONNECTIONS:-4}"
echo "== offline assistant answers, ${seconds}s at $connections connections"
conv=$(curl -sf -X POST "$base/chat/conversations" -H "Authorization: Bearer $token" \
  -H 'content-type: application/json' -d '{}' | json 'd["id"]')
cat > ask.lua <<LUA
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $token"
wrk.headers["Content-Type"] = "application/json"
local questions = {
  "How often should we test restoring our backups?",
  "Do we need multi-factor authentication for cloud accounts?",
  "How quickly must we report a personal data breach?",
  "What should our supplier security checks cover?",
}
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, '{"content": "' .. questions[(n % #questions) + 1] .. '"}')
end
LUA
# The first question builds the organisation's search scope in memory (50,000 evidence
# items here): timed on its own, then the steady state.
curl -s -o /dev/null -w 'first question (builds the scope): %{time_total} s\n' -X POST \
  "$base/chat/conversations/$conv/messages" -H "Authorization: Bearer $token" \
  -H 'content-type: application/json' -d '{"content": "How often should we test restoring our backups?"}'
wrk -t"$(( connections < 2 ? 1 : 2 ))" -c"$connections" -d"${seconds}s" --latency -s ask.lua "$base/chat/conversations/$conv/messages" \
  | grep -E 'Requests/sec|Latency|50%|90%|99%|Non-2xx'
kill "$pid"; wait "$pid" 2>/dev/null || true

echo "== streamed remote answer: our overhead on the first token"
mock_port=$((port + 1))
cat > mock.py <<'PY'
import http.server, json, sys, time
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        def send(obj):
            data = f"data: {json.dumps(obj)}\n\n".encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        time.sleep(0.2)
        sent = time.time_ns()
        send({"choices": [{"index": 0, "delta": {"content": f"T{sent} "}, "finish_reason": None}]})
        for w in ["rest ", "of ", "the ", "answer"]:
            send({"choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}]})
        send({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 10, "completion_tokens": 5}})
        data = b"data: [DONE]\n\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n\r\n")
        self.wfile.flush()
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
python3 mock.py "$mock_port" &
mock=$!
export OPENAI_API_KEY=sk-load OPENAI_BASE_URL="http://127.0.0.1:$mock_port/v1" AI_MAX_RETRIES=0
start_server
conv=$(curl -sf -X POST "$base/chat/conversations" -H "Authorization: Bearer $token" \
  -H 'content-type: application/json' -d '{}' | json 'd["id"]')
BASE="$base" TOKEN="$token" CONV="$conv" python3 - <<'PY'
import http.client, json, os, time, urllib.parse
u = urllib.parse.urlparse(os.environ["BASE"])
gaps = []
for i in range(40):
    c = http.client.HTTPConnection(u.hostname, u.port)
    c.request("POST", f"{u.path}/chat/conversations/{os.environ['CONV']}/messages",
        body=json.dumps({"content": f"Question {i} about multi-factor authentication?"}),
        headers={"Authorization": f"Bearer {os.environ['TOKEN']}", "Content-Type": "application/json",
                 "Accept": "text/event-stream"})
    r = c.getresponse()
    assert r.status == 200, r.status
    buf = b""
    while b"event: token" not in buf or b"\n\n" not in buf.split(b"event: token", 1)[1]:
        chunk = r.read1(65536)
        if not chunk:
            break
        buf += chunk
    got = time.time_ns()
    data = buf.split(b"event: token", 1)[1].split(b"data:", 1)[1].split(b"\n", 1)[0]
    sent = int(json.loads(data)["text"].split()[0][1:])
    gaps.append((got - sent) / 1e6)
    r.read(); c.close()
gaps.sort()
print(f"first token, mock send → client receipt: median {gaps[len(gaps)//2]:.2f} ms, "
      f"p95 {gaps[int(len(gaps)*0.95)]:.2f} ms, max {gaps[-1]:.2f} ms ({len(gaps)} streams)")
PY
