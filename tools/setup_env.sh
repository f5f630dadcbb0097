#!/usr/bin/env bash
# Creates .venv with the whole ovdense stack. Idempotent: each step checks before it works.
# mmcv 2.1.0 has no wheel for current torch, so its ops are built from the source release once
# (tools/build_mmcv.sh: CPU ops, or CUDA ops on GPU machines) and the wheel is cached outside
# the repo, keyed by mmcv, torch and Python versions (and CUDA version + archs).
set -euo pipefail

VENV=${OVDENSE_VENV:-.venv}
TORCH_VERSION=${OVDENSE_TORCH_VERSION:-2.14.1}
TORCHVISION_VERSION=${OVDENSE_TORCHVISION_VERSION:-0.29.1}
# GPU users: OVDENSE_TORCH_INDEX_URL=https://download.pytorch.org/whl/cu124 (for example).
TORCH_INDEX_URL=${OVDENSE_TORCH_INDEX_URL:-}
MMCV_VERSION=2.1.0
EXTRAS=${OVDENSE_EXTRAS:-tests,action}
# setuptools 81 and newer lack pkg_resources, which mmcv's sdist (build_mmcv.sh) and mmengine
# need; torch asks for setuptools>=77 and pip would take the newest: every install holds the cap
SETUPTOOLS='setuptools<81'
WHEEL_CACHE=${OVDENSE_WHEEL_CACHE:-$HOME/.cache/ovdense/wheels}

say() { printf '[setup_env] %s\n' "$*"; }
die() { printf '[setup_env] ERROR: %s\n' "$*" >&2; exit 1; }

[ -x "$VENV/bin/python" ] || { say "creating $VENV"; python3 -m venv "$VENV"; }
PY="$(cd "$VENV" && pwd)/bin/python"
PIP=("$PY" -m pip install --disable-pip-version-check --progress-bar off)

"${PIP[@]}" -q "pip>=23" "$SETUPTOOLS" wheel ninja

if ! "$PY" -c "import torch, torchvision, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  # The index's torch is a CUDA build: about 5.6 GB in the venv. Say so before pip fills the disk.
  free_mb=$(df -Pm "$VENV" | awk 'NR == 2 {print $4}')
  need_mb=${OVDENSE_MIN_FREE_MB:-7000}
  [ "${free_mb:-0}" -ge "$need_mb" ] || die "only ${free_mb} MB free under $VENV; \
torch==$TORCH_VERSION and the build need about $need_mb MB (OVDENSE_MIN_FREE_MB overrides)"
  say "installing torch==$TORCH_VERSION torchvision==$TORCHVISION_VERSION"
  idx=(); [ -n "$TORCH_INDEX_URL" ] && idx=(--index-url "$TORCH_INDEX_URL")
  "${PIP[@]}" "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION" "$SETUPTOOLS" \
    "${idx[@]}"
fi

# mmcv with its ops, built once per (torch, Python, ops kind) by tools/build_mmcv.sh:
# CUDA ops when torch sees a GPU (or OVDENSE_MMCV_OPS=cuda), CPU ops otherwise.
mmcv_state=$(bash "$(dirname "$0")/build_mmcv.sh" --installed "$PY")
want_cuda=$("$PY" -c "import os, torch; ops = os.environ.get('OVDENSE_MMCV_OPS', 'auto'); \
print(int(ops == 'cuda' or (ops == 'auto' and torch.cuda.is_available())))")
if [ "${mmcv_state%% *}" != "$MMCV_VERSION" ] \
    || { [ "$want_cuda" = 1 ] && [ "${mmcv_state#* }" != cuda ]; }; then
  "${PIP[@]}" -q "$SETUPTOOLS" addict "mmengine==0.10.7" numpy packaging Pillow pyyaml yapf opencv-python
  wheel=$(bash "$(dirname "$0")/build_mmcv.sh" "$PY" "$WHEEL_CACHE" | tail -n 1)
  say "installing $wheel"
  "${PIP[@]}" -q --force-reinstall --no-deps "$wheel"
  mmcv_state=$(bash "$(dirname "$0")/build_mmcv.sh" --installed "$PY")
fi
case "${mmcv_state#* }" in
  cuda) say "mmcv ${mmcv_state%% *}: CUDA ops (for torch's CUDA $("$PY" -c \
'import torch; print(torch.version.cuda)')) and CPU ops" ;;
  *) say "mmcv ${mmcv_state%% *}: CPU ops only (OVDENSE_MMCV_OPS=cuda builds CUDA ops)" ;;
esac

# The editable install, skipped when this checkout is already installed with the same setup.py
# and extras (a reinstall would briefly leave ovdense unimportable for running processes).
INSTALLED_STAMP="$VENV/.ovdense-installed"
install_key="$(sha256sum setup.py | cut -c1-16) [$EXTRAS] $(pwd)"
if [ "$(cat "$INSTALLED_STAMP" 2>/dev/null)" = "$install_key" ]; then
  say "ovdense[$EXTRAS] already installed from this checkout"
else
  say "installing ovdense[$EXTRAS] and the OpenMMLab stack"
  rm -f "$INSTALLED_STAMP"
  "${PIP[@]}" -q -e ".[$EXTRAS]" "$SETUPTOOLS"
fi
"$PY" -c "import pkg_resources, mmcv.ops, mmdet, mmseg, open_clip, lvis, ovdense" \
  || die "import check failed"
printf '%s\n' "$install_key" > "$INSTALLED_STAMP"
say "environment ready: $VENV"
