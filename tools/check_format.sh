#!/usr/bin/env bash
# Fails when a tracked C++/CUDA source differs from what .clang-format makes of it (run by ctest as
# format_check; `tools/check_format.sh --fix` rewrites the files instead). Exit 77 (skipped) without clang-format.
set -euo pipefail
cd "$(dirname "$0")/.."
cf=$(command -v clang-format-14 || command -v clang-format || true)
if [ -z "$cf" ]; then echo "clang-format not found: format check skipped"; exit 77; fi
mapfile -t files < <(git ls-files '*.cpp' '*.h' '*.cu' '*.cuh')
if [ "${1:-}" = "--fix" ]; then "$cf" -i "${files[@]}"; exit 0; fi
"$cf" --dry-run --Werror "${files[@]}"
echo "format ok: ${#files[@]} files"
