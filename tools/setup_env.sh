#!/usr/bin/env bash
# Creates .venv with the whole ovdense stack. Idempotent: each step checks before it works.
# mmcv 2.1.0 has no wheel for current torch, so its C++ ops are built from the source release
# once and the wheel is cached outside the repo (keyed by mmcv, torch and Python versions).
set -euo pipefail

VENV=${OVDENSE_VENV:-.venv}
TORCH_VERSION=${OVDENSE_TORCH_VERSION:-2.14.1}
TORCHVISION_VERSION=${OVDENSE_TORCHVISION_VERSION:-0.29.1}
# GPU users: OVDENSE_TORCH_INDEX_URL=https://download.pytorch.org/whl/cu124 (for example).
TORCH_INDEX_URL=${OVDENSE_TORCH_INDEX_URL:-}
MMCV_VERSION=2.1.0
EXTRAS=${OVDENSE_EXTRAS:-tests,action}
WHEEL_CACHE=${OVDENSE_WHEEL_CACHE:-$HOME/.cache/ovdense/wheels}

say() { printf '[setup_env] %s\n' "$*"; }
die() { printf '[setup_env] ERROR: %s\n' "$*" >&2; exit 1; }

[ -x "$VENV/bin/python" ] || { say "creating $VENV"; python3 -m venv "$VENV"; }
PY="$(cd "$VENV" && pwd)/bin/python"
PIP=("$PY" -m pip install --disable-pip-version-check --progress-bar off)

"${PIP[@]}" -q "pip>=23" "setuptools<81" wheel ninja

if ! "$PY" -c "import torch, torchvision, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  say "installing torch==$TORCH_VERSION torchvision==$TORCHVISION_VERSION"
  idx=(); [ -n "$TORCH_INDEX_URL" ] && idx=(--index-url "$TORCH_INDEX_URL")
  "${PIP[@]}" "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION" "${idx[@]}"
fi

torch_ver=$("$PY" -c "import torch; print(torch.__version__.replace('+', '_'))")
py_ver=$("$PY" -c "import sys; print(f'cp{sys.version_info[0]}{sys.version_info[1]}')")
wheel_dir="$WHEEL_CACHE/mmcv-$MMCV_VERSION-torch$torch_ver-$py_ver"

build_mmcv() {
  local work; work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  say "building mmcv==$MMCV_VERSION with ops against torch $torch_ver (about 12 min on 2 cores)"
  # mmcv's setup.py imports pkg_resources, which setuptools >= 81 no longer ships.
  "${PIP[@]}" -q "setuptools<81"
  "${PIP[@]}" -q addict "mmengine==0.10.7" numpy packaging Pillow pyyaml yapf opencv-python
  "$PY" -m pip download -q --no-deps --no-binary :all: "mmcv==$MMCV_VERSION" -d "$work" \
    || die "could not download the mmcv $MMCV_VERSION source release"
  tar -xzf "$work"/mmcv-*.tar.gz -C "$work"
  local src="$work/mmcv-$MMCV_VERSION"
  # torch >= 2.10 headers require C++20; mmcv 2.1.0 hard-codes -std=c++17.
  if "$PY" -c "import torch,sys; v=tuple(int(x) for x in torch.__version__.split('+')[0].split('.')[:2]); sys.exit(v < (2, 10))"; then
    sed -i 's/c++17/c++20/g' "$src/setup.py"
  fi
  (cd "$src" && MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
     "$PY" -m pip wheel -q --no-build-isolation --no-deps -w "$work/dist" . ) 2>&1 \
     | tail -n 40 || true
  ls "$work"/dist/mmcv-*.whl >/dev/null 2>&1 || die "mmcv build failed (see the compiler output above); nothing was installed"
  mkdir -p "$wheel_dir"
  # Move into place atomically so a concurrent or interrupted run never sees half a wheel.
  local whl; whl=$(ls "$work"/dist/mmcv-*.whl)
  cp "$whl" "$wheel_dir/.tmp.$$" && mv "$wheel_dir/.tmp.$$" "$wheel_dir/$(basename "$whl")"
}

if ! "$PY" -c "import mmcv, sys; from mmcv.ops import nms; sys.exit(mmcv.__version__ != '$MMCV_VERSION')" 2>/dev/null; then
  ls "$wheel_dir"/mmcv-*.whl >/dev/null 2>&1 || build_mmcv
  say "installing cached mmcv wheel from $wheel_dir"
  "${PIP[@]}" -q "$wheel_dir"/mmcv-*.whl
fi

say "installing ovdense[$EXTRAS] and the OpenMMLab stack"
# setuptools<81 again: torch may have upgraded it, and mmengine needs pkg_resources at run time.
"${PIP[@]}" -q -e ".[$EXTRAS]" "setuptools<81"
"$PY" -c "import pkg_resources, mmcv.ops, mmdet, mmseg, open_clip, lvis, ovdense" \
  || die "import check failed"
say "environment ready: $VENV"
