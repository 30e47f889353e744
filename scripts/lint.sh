#!/usr/bin/env bash
# Style gates that CI enforces (docs/DESIGN.md, STYLE): the formatter's output is what is
# committed; no Swift file under Sources/ over 300 lines; no line over 120 columns; every
# SPEC.md reference points at docs/SPEC.md, which exists.
#   scripts/lint.sh          prints what is wrong; exit 0 only when nothing is
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
problems=0
report() { echo "lint: $*"; problems=$((problems + 1)); }

mapfile -t swift_files < <(git ls-files 'Sources/*.swift' 'Tests/*.swift' 'Package.swift')
if swift format --version >/dev/null 2>&1; then
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    for f in "${swift_files[@]}"; do
        mkdir -p "$scratch/$(dirname "$f")"
        swift format --configuration .swift-format "$f" >"$scratch/$f" 2>/dev/null || { report "$f: swift format failed"; continue; }
        cmp -s "$f" "$scratch/$f" || report "$f: not formatted (run: swift format -i -r Sources Tests Package.swift)"
    done
else
    report "swift format is not available"
fi
for f in "${swift_files[@]}"; do
    [[ $f == Sources/* ]] && (( $(wc -l <"$f") > 300 )) && report "$f: $(wc -l <"$f") lines (at most 300)"
    python3 - "$f" <<'PY' || problems=$((problems + 1))
import sys
bad = [(n, len(l)) for n, l in enumerate(open(sys.argv[1], encoding="utf-8").read().split("\n"), 1) if len(l) > 120]
for n, width in bad:
    print(f"lint: {sys.argv[1]}:{n}: {width} columns (at most 120)")
sys.exit(1 if bad else 0)
PY
done
[[ -f docs/SPEC.md ]] || report "docs/SPEC.md is missing"
if grep -rn "SPEC\.md" Sources Tests docs | grep -v "docs/SPEC\.md"; then report "SPEC.md cited without its docs/ path"; fi
echo "lint: $problems problem(s)"
(( problems == 0 ))
