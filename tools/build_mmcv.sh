#!/usr/bin/env bash
# Builds (once) and caches an mmcv 2.1.0 wheel with its ops for one Python + torch, and prints
# the wheel's path as the last line of stdout (everything else goes to stderr).
#
#   tools/build_mmcv.sh PYTHON [CACHE_DIR]
#   tools/build_mmcv.sh --installed PYTHON   prints "VERSION cuda|cpu" of the installed mmcv
#                                            ("none none" when mmcv or its ops are missing)
#
# mmcv 2.1.0 publishes no wheel for current torch, so `make env` (tools/setup_env.sh) and the
# GPU check (tools/gpu_check.sh) build it from the source release with this one script.
#
# Settings (environment):
#   OVDENSE_MMCV_OPS        auto (default): CUDA ops when torch sees a GPU, else CPU ops;
#                           cuda: CUDA ops (needs nvcc of torch's CUDA major); cpu: CPU ops.
#                           A CUDA-ops wheel also runs every op on the CPU.
#   OVDENSE_CUDA_ARCH_LIST  GPU architectures, e.g. "8.0;9.0". Default: those of the visible
#                           GPUs, or "8.0;9.0+PTX" when none is visible (Ampere and Ada run
#                           the sm_80 code, Hopper sm_90, newer GPUs JIT-compile the PTX).
#   OVDENSE_MMCV_SDIST      a local mmcv-2.1.0.tar.gz (machines without a package index).
#   MAX_JOBS                parallel compile jobs (default: all cores).
#
# What is changed in mmcv 2.1.0's sources or build, and why:
#   1. setup.py's `-std=c++17` (host and nvcc flags) becomes `-std=c++20` for torch >= 2.10,
#      whose headers require C++20.
#   2. CUDA builds: when the CUDA toolkit lacks the cuSPARSE / cuBLAS headers that torch's
#      ATen/cuda headers include (`fatal error: cusparse.h`), the copies that torch's own
#      nvidia-* wheels ship (site-packages/nvidia/*/include) are put on CPATH.
#   3. CPU builds hide the GPUs from the build (CUDA_VISIBLE_DEVICES=""): mmcv's setup.py
#      compiles CUDA sources whenever torch sees a GPU.
#   4. The built ops library loses its debug information (`strip --strip-debug`, when strip is
#      installed): CPU-ops wheel 32 MB -> 1.4 MB, CUDA-ops wheel (sm_90) 36 MB -> 5.9 MB.
set -euo pipefail

MMCV_VERSION=2.1.0

installed_kind() {
  # Read from the ops library's ELF dependencies rather than mmcv.ops'
  # get_compiling_cuda_version(), which crashed (SIGSEGV) in a CUDA 13 build on an H100.
  "$1" - <<'EOF'
import glob, mmap, os
try:
    import mmcv
except ImportError:
    raise SystemExit(print('none none'))
ext = glob.glob(os.path.join(os.path.dirname(mmcv.__file__), '_ext*.so'))
if not ext:
    raise SystemExit(print('none none'))
with open(ext[0], 'rb') as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
    print(mmcv.__version__, 'cuda' if data.find(b'libc10_cuda.so') >= 0 else 'cpu')
EOF
}
if [ "${1:-}" = --installed ]; then installed_kind "${2:?usage: tools/build_mmcv.sh --installed PYTHON}"; exit; fi

PY=${1:?usage: tools/build_mmcv.sh PYTHON [CACHE_DIR]}
PY=$(command -v "$PY") || { echo "[build_mmcv] ERROR: no Python at $1" >&2; exit 1; }
[[ "$PY" = /* ]] || PY="$PWD/$PY"  # the build runs in another folder
CACHE=${2:-${OVDENSE_WHEEL_CACHE:-$HOME/.cache/ovdense/wheels}}
OPS=${OVDENSE_MMCV_OPS:-auto}

say() { printf '[build_mmcv] %s\n' "$*" >&2; }
die() { printf '[build_mmcv] ERROR: %s\n' "$*" >&2; exit 1; }

case "$OPS" in auto|cpu|cuda) ;; *) die "OVDENSE_MMCV_OPS=$OPS: expected auto, cpu or cuda" ;; esac

# torch version, its CUDA version ('' for a CPU build), visible GPU archs, Python tag.
read -r torch_ver torch_cuda gpu_archs py_tag < <("$PY" - <<'EOF'
import sys, torch
cuda = torch.version.cuda or ''
archs = sorted({'%d.%d' % torch.cuda.get_device_capability(i)
                for i in range(torch.cuda.device_count())}) if torch.cuda.is_available() else []
print(torch.__version__.replace('+', '_'), cuda or '-', ';'.join(archs) or '-',
      'cp%d%d' % sys.version_info[:2])
EOF
)
[ "$torch_cuda" = - ] && torch_cuda=
[ "$gpu_archs" = - ] && gpu_archs=

if [ "$OPS" = auto ]; then OPS=$([ -n "$gpu_archs" ] && echo cuda || echo cpu); fi

find_cuda_home() {
  # torch's extension builder takes CUDA_HOME, else the folder above `which nvcc`; a nvcc
  # wrapper in /usr/local/bin would make that /usr/local, which holds no CUDA headers.
  local candidate nvcc
  for candidate in "${CUDA_HOME:-}" "${CUDA_PATH:-}" /usr/local/cuda; do
    [ -n "$candidate" ] && [ -x "$candidate/bin/nvcc" ] && { echo "$candidate"; return; }
  done
  nvcc=$(command -v nvcc || true)
  [ -n "$nvcc" ] && dirname "$(dirname "$(readlink -f "$nvcc")")"
}

arch_list=
if [ "$OPS" = cuda ]; then
  [ -n "$torch_cuda" ] || die "torch ${torch_ver} is a CPU-only build: CUDA ops need a CUDA build \
of torch (set OVDENSE_TORCH_INDEX_URL) or OVDENSE_MMCV_OPS=cpu"
  CUDA_HOME=$(find_cuda_home || true)
  [ -n "$CUDA_HOME" ] || die "no nvcc found (CUDA_HOME, /usr/local/cuda, PATH): install the CUDA \
toolkit ${torch_cuda%%.*}.x that matches torch's CUDA ${torch_cuda}, or set OVDENSE_MMCV_OPS=cpu"
  nvcc_cuda=$("$CUDA_HOME/bin/nvcc" --version | sed -n 's/.*release \([0-9][0-9.]*\).*/\1/p')
  [ "${nvcc_cuda%%.*}" = "${torch_cuda%%.*}" ] || die "nvcc in $CUDA_HOME is CUDA ${nvcc_cuda} \
but torch ${torch_ver} was built with CUDA ${torch_cuda}: install the CUDA ${torch_cuda%%.*}.x \
toolkit (or point CUDA_HOME at it), or set OVDENSE_MMCV_OPS=cpu"
  export CUDA_HOME
  arch_list=${OVDENSE_CUDA_ARCH_LIST:-${gpu_archs:-8.0;9.0+PTX}}
  arch_key=$(echo "$arch_list" | tr -d ' ' | tr ';' '\n' | sed 's/+PTX/-ptx/I; s/\.//' \
             | sed 's/^/sm/' | paste -sd- -)
  key="mmcv-$MMCV_VERSION-torch$torch_ver-$py_tag-cuda$nvcc_cuda-$arch_key"
  kind="CUDA ops (CUDA $nvcc_cuda, archs $arch_list)"
else
  key="mmcv-$MMCV_VERSION-torch$torch_ver-$py_tag"
  kind="CPU ops"
fi
wheel_dir="$CACHE/$key"

cached=$(ls "$wheel_dir"/mmcv-*.whl 2>/dev/null | head -n 1 || true)
if [ -n "$cached" ]; then
  say "cached: mmcv $MMCV_VERSION with $kind"
  echo "$cached"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -n "${OVDENSE_MMCV_SDIST:-}" ]; then
  cp "$OVDENSE_MMCV_SDIST" "$work/" || die "cannot read OVDENSE_MMCV_SDIST=$OVDENSE_MMCV_SDIST"
else
  # --no-build-isolation: reading the sdist's metadata needs setuptools<81 (pkg_resources).
  "$PY" -m pip download -q --no-deps --no-binary :all: --no-build-isolation \
    "mmcv==$MMCV_VERSION" -d "$work" >&2 || die "could not download the mmcv $MMCV_VERSION \
source release (offline? set OVDENSE_MMCV_SDIST=/path/mmcv-$MMCV_VERSION.tar.gz)"
fi
tar -xzf "$work"/mmcv-*.tar.gz -C "$work"
src="$work/mmcv-$MMCV_VERSION"

# Patch 1: C++20 for torch >= 2.10.
if "$PY" -c "import torch,sys; v=tuple(int(x) for x in torch.__version__.split('+')[0].split('.')[:2]); sys.exit(v < (2, 10))"; then
  sed -i 's/c++17/c++20/g' "$src/setup.py"
fi

build_env=(MMCV_WITH_OPS=1 "MAX_JOBS=${MAX_JOBS:-$(nproc)}")
if [ "$OPS" = cuda ]; then
  build_env+=(FORCE_CUDA=1 "TORCH_CUDA_ARCH_LIST=$arch_list")
  # Patch 2: cuSPARSE / cuBLAS headers from torch's nvidia wheels when the toolkit lacks them.
  if [ ! -f "$CUDA_HOME/include/cusparse.h" ]; then
    wheel_includes=$("$PY" - <<'EOF'
import glob, os, site
dirs = [d for p in site.getsitepackages() + [site.getusersitepackages()]
        for d in glob.glob(os.path.join(p, 'nvidia', '*', 'include'))
        if os.path.isfile(os.path.join(d, 'cusparse.h'))]
print(':'.join(dirs))
EOF
)
    [ -n "$wheel_includes" ] || die "$CUDA_HOME/include has no cusparse.h and torch's nvidia \
wheels provide none: install the CUDA toolkit's cuSPARSE and cuBLAS development headers"
    build_env+=("CPATH=$wheel_includes${CPATH:+:$CPATH}")
  fi
else
  build_env+=(CUDA_VISIBLE_DEVICES=)  # Patch 3
fi

strip_debug_info() {
  # Rewrites the wheel with its shared libraries stripped of debug information and a RECORD
  # of the new hashes and sizes.
  command -v strip >/dev/null || { say "strip not found: the wheel keeps its debug information"; return 0; }
  "$PY" - "$1" <<'EOF'
import base64, csv, hashlib, io, os, subprocess, sys, tempfile, zipfile
path = sys.argv[1]
rows = []
with zipfile.ZipFile(path) as src, zipfile.ZipFile(path + '.new', 'w') as dst:
    record = next(n for n in src.namelist() if n.endswith('.dist-info/RECORD'))
    for info in src.infolist():
        if info.filename == record:
            continue
        data = src.read(info)
        if info.filename.endswith('.so'):
            with tempfile.TemporaryDirectory() as tmp:
                lib = os.path.join(tmp, 'lib.so')
                with open(lib, 'wb') as f:
                    f.write(data)
                subprocess.run(['strip', '--strip-debug', lib], check=True)
                with open(lib, 'rb') as f:
                    data = f.read()
        dst.writestr(info, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=')
        rows.append([info.filename, 'sha256=' + digest.decode(), str(len(data))])
    rows.append([record, '', ''])
    text = io.StringIO()
    csv.writer(text, lineterminator='\n').writerows(rows)
    dst.writestr(src.getinfo(record), text.getvalue())
os.replace(path + '.new', path)
EOF
}

say "building mmcv $MMCV_VERSION with $kind against torch $torch_ver ($py_tag); CPU ops take \
about 12 min on 2 cores, CUDA ops about 37 min per architecture"
start=$(date +%s)
log="$work/build.log"
if ! (cd "$src" && env "${build_env[@]}" \
        "$PY" -m pip wheel -v --no-build-isolation --no-deps -w "$work/dist" . >"$log" 2>&1); then
  grep -E 'error|Error' "$log" | head -n 20 >&2 || true
  tail -n 20 "$log" >&2
  die "mmcv build failed (compiler output above); nothing was installed"
fi
whl=$(ls "$work"/dist/mmcv-*.whl)
strip_debug_info "$whl"  # Step 4
mkdir -p "$wheel_dir"
printf '%s\n' "$kind" > "$wheel_dir/KIND"
# Copied under a temporary name, then renamed: a concurrent or interrupted run never sees
# half a wheel.
cp "$whl" "$wheel_dir/.tmp.$$" && mv "$wheel_dir/.tmp.$$" "$wheel_dir/$(basename "$whl")"
say "built mmcv $MMCV_VERSION with $kind in $(( $(date +%s) - start )) s: \
$(du -h "$wheel_dir/$(basename "$whl")" | cut -f1)"
echo "$wheel_dir/$(basename "$whl")"
