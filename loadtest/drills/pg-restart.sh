#!/usr/bin/env bash
# Resilience drill (issue 9, item 7): PostgreSQL restarted under load.
#
# A PostgreSQL cluster of the drill's own (initdb in a temporary directory, its own
# port: the shared server at 5432 is never touched), `ruleiq serve` on it with the small
# demo organisation, and steady load on an authenticated page of data. After 5 s the
# cluster is stopped (`pg_ctl stop -m fast`: every connection is closed), 5 s later it is
# started again, and the load runs 10 s more. Prints each phase's outcomes and how long
# after PostgreSQL came back the first request was served.
#
#   loadtest/drills/pg-restart.sh [path/to/ruleiq] [threads]
#
# Expected: while PostgreSQL is down, 503 answers in milliseconds (no 500s, no dropped
# requests); served again within a second of its return, with no restart of ruleIQ.
# Needs PostgreSQL's server binaries (postgresql-15), curl and python3; runs as root
# (the cluster is run by the `postgres` user) or as an ordinary user.
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$(realpath "${1:-${CARGO_TARGET_DIR:-$here/target}/release/ruleiq}")"
threads="${2:-8}"
port="${PORT:-8792}"
pgport="${PGDRILL_PORT:-5499}"
pgbin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
dir="$(mktemp -d)"
chmod 755 "$dir"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  kill "${pid:-}" 2>/dev/null || true
  as_pg "$pgbin/pg_ctl" -D "$dir/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
mkdir "$dir/pg"
[ "$(id -u)" = 0 ] && chown postgres "$dir/pg"
as_pg "$pgbin/initdb" -D "$dir/pg" -U postgres --auth=trust >/dev/null
pg_start() { as_pg "$pgbin/pg_ctl" -D "$dir/pg" -o "-p $pgport -k $dir/pg -c listen_addresses=127.0.0.1" -l "$dir/pg/log" -w start >/dev/null; }
pg_start
psql -q -h 127.0.0.1 -p "$pgport" -U postgres -c 'CREATE DATABASE ruleiq'

cd "$dir"
export DATABASE_URL="postgres://postgres@127.0.0.1:$pgport/ruleiq" DATA_DIR="$dir/data" \
  LOG_LEVEL=warn RATE_LIMIT_ENABLED=false
password="otter lantern quarry velvet"
"$bin" migrate up >/dev/null
"$bin" seed >/dev/null
echo "$password" | "$bin" demo --size small --email drill@example.co.uk --password-stdin | grep 'ready in'
"$bin" serve --port "$port" >"$dir/serve.log" 2>&1 &
pid=$!
base="http://127.0.0.1:$port/api/v1"
until curl -sf -o /dev/null "$base/health/ready"; do sleep 0.05; done
token="$(curl -sf "$base/auth/login" -H 'Content-Type: application/json' \
  -d "{\"email\":\"drill@example.co.uk\",\"password\":\"$password\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"

python3 "$here/loadtest/drills/steady_load.py" "$base" /compliance/status "$token" 20 "$threads" "$dir/load.log" &
load=$!
t0=$(date +%s.%N)
sleep 5
down=$(python3 -c "print(f'{$(date +%s.%N) - $t0:.2f}')")
as_pg "$pgbin/pg_ctl" -D "$dir/pg" -m fast -w stop >/dev/null
echo "PostgreSQL told to stop at +$down s (stopped at +$(python3 -c "print(f'{$(date +%s.%N) - $t0:.2f}')") s)"
sleep 5
pg_start
up=$(python3 -c "print(f'{$(date +%s.%N) - $t0:.2f}')")
echo "PostgreSQL started again at +$up s (ruleIQ not restarted)"
wait "$load"
kill -0 "$pid" || { echo "ruleiq serve died"; tail -20 "$dir/serve.log"; exit 1; }

python3 "$here/loadtest/drills/summarise.py" "$dir/load.log" "before:0:$down" "PostgreSQL down:$down:$up" "after it is back:$up:99"
python3 - "$dir/load.log" "$up" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
up = float(sys.argv[2])
served = [float(s) + float(d) for s, d, o in rows if o == "200" and float(s) >= up]
print(f"  first 200 after PostgreSQL's return: +{min(served) - up:.2f} s" if served else "  never served again")
bad = [o for _, _, o in rows if o not in ("200", "503")]
print(f"  anything but 200 and 503: {len(bad)}")
sys.exit(0 if served and not bad else 1)
PY
echo "ruleIQ's own account (its log, less the per-request lines):"
grep -iE 'database|answer' "$dir/serve.log" | grep -v 'response failed' | sed -E 's/\x1b\[[0-9;]*m//g' | cut -c1-200 | head -8 || true
