#!/usr/bin/env bash
# GPU check: on a CUDA machine, installs the wheels it is given (the mmcv CUDA-ops wheel that
# tools/build_mmcv.sh made, and on a machine without a package index the other missing
# packages), then runs tools/gpu_check.py, which writes one JSON report.
#
#   tools/gpu_check.sh [--out REPORT.json] [WHEEL ...] [-- tools/gpu_check.py options]
#
# PYTHON picks the interpreter (default: .venv/bin/python when present, else python3).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$([ -x "$REPO/.venv/bin/python" ] && echo "$REPO/.venv/bin/python" || echo python3)}
out=$REPO/work_dirs/gpu_check/report.json
wheels=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --) shift; break ;;
    *) wheels+=("$1"); shift ;;
  esac
done
if [ ${#wheels[@]} -gt 0 ]; then
  "$PY" -m pip install -q --disable-pip-version-check --no-deps --no-index --force-reinstall \
    "${wheels[@]}"
fi
"$PY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())" \
  || { echo "[gpu_check] ERROR: torch ($PY) sees no CUDA device" >&2; exit 2; }
mkdir -p "$(dirname "$out")"
cd "$REPO"
PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" exec "$PY" tools/gpu_check.py --out "$out" "$@"
