# What the load scripts share. Sourced by them (`source "$(dirname "$0")/lib.sh"`),
# never run on its own.

# The repository the scripts are in.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The password every demo member is made with.
password="otter lantern quarry velvet"

# The ruleiq binary: the path given, or the release build.
ruleiq_bin() { # [path]
  realpath "${1:-${CARGO_TARGET_DIR:-$here/target}/release/ruleiq}"
}

# Works in a scratch directory, removed on exit with the server (`$pid`) and any mock
# (`$mock`) the script started.
scratch() {
  dir="$(mktemp -d)"
  trap 'kill ${pid:-} ${mock:-} 2>/dev/null || true; rm -rf "$dir"' EXIT
  cd "$dir"
}

# Points DATABASE_URL at an empty database: on PostgreSQL (127.0.0.1:5432, user
# postgres) the scratch database NAME, dropped and made again; on SQLite a file in the
# scratch directory.
use_database() { # engine name
  if [ "$1" = postgres ]; then
    psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $2 WITH (FORCE)" -c "CREATE DATABASE $2"
    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$2"
  else
    export DATABASE_URL="sqlite://$dir/$2.sqlite?mode=rwc"
  fi
}

# Waits until the server at `$base` is ready.
wait_ready() {
  until curl -sf -o /dev/null "$base/health/ready"; do sleep 0.05; done
}

# Prints a Python expression of the JSON on standard input, `d`.
json() { # expression
  python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"
}

# Signs a demo member in and prints the access token.
sign_in() { # email
  curl -sf -X POST "$base/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"$1\",\"password\":\"$password\"}" | json 'd["access_token"]'
}

# Waits (up to two minutes) until no job is queued or running, asking `$bin` against
# the DATABASE_URL in force. A server starting on a
# large organisation queues its daily upkeep (expiry, sweeps, the readiness snapshot),
# which would otherwise run inside the measured window.
wait_idle() {
  sleep 1
  for _ in $(seq 240); do
    # A job is listed with its attempts; an empty list says "no jobs".
    { "$bin" jobs list --status queued --limit 1
      "$bin" jobs list --status running --limit 1; } | grep -q attempts || return 0
    sleep 0.5
  done
  echo "jobs still queued or running after two minutes" >&2
  return 1
}
