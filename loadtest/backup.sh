#!/usr/bin/env bash
# Measures issue 9's backup targets on a release build: `ruleiq backup` of the `large`
# demo organisation under 10 s, and `ruleiq restore` of that archive into an empty
# database under 20 s. Each is timed once, end to end, as an operator runs it.
#
#   cargo build --release && loadtest/backup.sh [path/to/ruleiq] [sqlite|postgres] [sqlite|postgres]
#
# The second engine is the source, the third the restore target (default: the same as
# the source), so `… sqlite postgres` times the move from SQLite to PostgreSQL.
# PostgreSQL uses scratch databases `ruleiq_backup_source` and `ruleiq_backup_restore` on
# 127.0.0.1:5432 (user postgres), dropped and made again. Needs psql for PostgreSQL.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bin="$(ruleiq_bin "${1:-}")"
engine="${2:-sqlite}"
target="${3:-$engine}"
scratch
export LOG_LEVEL=warn PGOPTIONS="-c client_min_messages=warning"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

use_database "$engine" ruleiq_backup_source
source_url="$DATABASE_URL"
use_database "$target" ruleiq_backup_restore
restore_url="$DATABASE_URL"
unset DATABASE_URL

echo "== ruleiq demo --size large ($engine)"
DATABASE_URL="$source_url" DATA_DIR="$dir/source" "$bin" migrate up >/dev/null
DATABASE_URL="$source_url" DATA_DIR="$dir/source" "$bin" seed >/dev/null
echo "$password" | DATABASE_URL="$source_url" DATA_DIR="$dir/source" \
  "$bin" demo --size large --email load@example.co.uk --password-stdin | grep 'ready in'

echo "== ruleiq backup ($engine)"
t0="$(now)"
DATABASE_URL="$source_url" DATA_DIR="$dir/source" "$bin" backup --output "$dir/large.tar.gz" 2>"$dir/backup.log"
t1="$(now)"
backup_s="$(elapsed "$t0" "$t1")"
ls -l "$dir/large.tar.gz" | awk '{printf "archive: %.1f MB\n", $5 / 1e6}'

echo "== ruleiq restore ($engine → $target)"
t0="$(now)"
DATABASE_URL="$restore_url" DATA_DIR="$dir/restored" "$bin" restore "$dir/large.tar.gz" 2>"$dir/restore.log"
t1="$(now)"
restore_s="$(elapsed "$t0" "$t1")"

# The restored database must be current and its files whole.
DATABASE_URL="$restore_url" DATA_DIR="$dir/restored" "$bin" evidence verify | tail -n 1

verdict() { awk -v t="$1" -v max="$2" 'BEGIN { print (t < max ? "met" : "MISSED") }'; }
echo "backup:  ${backup_s} s (target < 10 s: $(verdict "$backup_s" 10))"
echo "restore: ${restore_s} s (target < 20 s: $(verdict "$restore_s" 20))"

if [ "$engine" = postgres ]; then
  psql -q -h 127.0.0.1 -U postgres -c 'DROP DATABASE IF EXISTS ruleiq_backup_source WITH (FORCE)'
fi
if [ "$target" = postgres ]; then
  psql -q -h 127.0.0.1 -U postgres -c 'DROP DATABASE IF EXISTS ruleiq_backup_restore WITH (FORCE)'
fi
