#!/usr/bin/env bash
# Exports every library framework as OSCAL, plus the NIST SP 800-53 fixture after a
# round trip through ruleIQ, and loads each with compliance-trestle (from PyPI) to
# show that standard OSCAL tooling reads what we write.
#
#   scripts/check-oscal-exports.sh [path/to/ruleiq]
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-${CARGO_TARGET_DIR:-target}/debug/ruleiq}"
python3 -c 'import trestle' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check compliance-trestle
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export DATA_DIR="$work/data" DATABASE_URL="sqlite://$work/ruleiq.db" LOG_LEVEL=warn
"$bin" migrate up >/dev/null
"$bin" seed >/dev/null
"$bin" frameworks import crates/server/tests/fixtures/oscal/NIST_SP-800-53_rev5_LOW-baseline-resolved-profile_catalog.json >/dev/null
files=()
while read -r slug _; do
  "$bin" frameworks export "$slug" -o "$work/$slug.json" 2>/dev/null
  files+=("$work/$slug.json")
done < <("$bin" frameworks list)
python3 scripts/oscal_trestle_check.py "${files[@]}"
