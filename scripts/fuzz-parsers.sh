#!/usr/bin/env bash
# Runs the cargo-fuzz targets (fuzz/) for a bounded time each: upload sniffing, text
# extraction and OSCAL import. Seeds each corpus with small valid files (made here, so
# nothing is downloaded) and the OSCAL fixture catalog, then prints libFuzzer's last
# line per target. Fails if any target finds a crash; the input is left in
# fuzz/artifacts/TARGET/.
#
#   scripts/fuzz-parsers.sh [seconds per target] [target ...]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). The toolchain here is stable, so the
# nightly-only flags cargo-fuzz passes are allowed with RUSTC_BOOTSTRAP=1; no sanitizer
# is used (the code under test is safe Rust), only libFuzzer's coverage guidance.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(upload_sniff text_extraction oscal_import)
cd "$here/fuzz"
export RUSTC_BOOTSTRAP=1
# The fuzz workspace keeps its own build: its instrumentation flags differ from the
# main workspace's, so sharing a target directory would only rebuild both.
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$here/fuzz/target}"

mkdir -p corpus/upload_sniff corpus/text_extraction corpus/oscal_import
python3 - "$here" <<'PY'
import io, os, sys, zipfile
here = sys.argv[1]
c = os.path.join(here, "fuzz", "corpus")
pdf = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
       b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
       b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]/Contents 4 0 R"
       b"/Resources<</Font<</F1 5 0 R>>>>>>endobj\n"
       b"4 0 obj<</Length 44>>stream\nBT /F1 12 Tf 20 100 Td (Backups tested) Tj ET\nendstream endobj\n"
       b"5 0 obj<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>endobj\n"
       b"trailer<</Root 1 0 R>>\n%%EOF\n")
def package(parts):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, body in parts.items():
            z.writestr(name, body)
    return out.getvalue()
types = ('<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
         '<Default Extension="xml" ContentType="application/xml"/></Types>')
docx = package({"[Content_Types].xml": types, "word/document.xml":
    '<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
    '<w:body><w:p><w:r><w:t>Access is reviewed quarterly.</w:t></w:r></w:p></w:body></w:document>'})
xlsx = package({"[Content_Types].xml": types,
    "xl/workbook.xml": '<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>'
        '<sheet name="Assets" sheetId="1" r:id="rId1"/></sheets></workbook>',
    "xl/_rels/workbook.xml.rels": '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
    "xl/worksheets/sheet1.xml": '<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        '<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>Laptop</t></is></c><c r="B1"><v>42</v></c></row></sheetData></worksheet>'})
csv = b"asset,owner\nlaptop,ann\n"
txt = "Firewall rules reviewed — 2026.\n".encode()
# text_extraction: first byte picks the format (pdf, docx, xlsx, csv, txt).
for i, body in enumerate([pdf, docx, xlsx, csv, txt]):
    open(os.path.join(c, "text_extraction", f"seed-{i}"), "wb").write(bytes([i]) + body)
# upload_sniff: first byte picks the extension (pdf, doc, docx, txt, csv, xlsx, png,
# jpg), the second the chunk size.
for i, body in [(0, pdf), (2, docx), (3, txt), (4, csv), (5, xlsx),
                (6, b"\x89PNG\r\n\x1a\n" + bytes(32)), (7, b"\xff\xd8\xff\xe0" + bytes(32))]:
    open(os.path.join(c, "upload_sniff", f"seed-{i}"), "wb").write(bytes([i, 7]) + body)
PY
cp "$here/../shared/fixtures/oscal/basic-catalog.json" corpus/oscal_import/seed-basic 2>/dev/null ||
  echo '{"catalog":{"uuid":"5b3f3bde-2a6e-4f5c-9d55-0c5f6a0b8e11","metadata":{"title":"T","last-modified":"2024-01-01T00:00:00Z","version":"1","oscal-version":"1.1.2"},"groups":[{"id":"g","title":"G","controls":[{"id":"c-1","title":"C"}]}]}}' > corpus/oscal_import/seed-tiny

status=0
for target in "${targets[@]}"; do
  echo "== $target, ${seconds} s"
  cargo fuzz build --sanitizer none "$target" 2>&1 | grep -E '^(error|warning: unused)' || true
  if cargo fuzz run --sanitizer none "$target" "corpus/$target" -- \
      -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 >"/tmp/fuzz-$target.log" 2>&1; then
    grep -E '^#[0-9]+\s+DONE' "/tmp/fuzz-$target.log" | tail -1
    grep -E 'stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added' "/tmp/fuzz-$target.log"
  else
    status=1
    echo "$target FAILED:"
    grep -E 'panicked|ERROR|SUMMARY|Test unit written|timeout' "/tmp/fuzz-$target.log" | head -10
  fi
done
exit "$status"
