#!/usr/bin/env bash
# The GPU checks of TLK's CUDA backend, as one script for a lent GPU machine that has CUDA's driver,
# PyTorch (with its cuDNN and cuBLAS wheels) but no package registry and no TLK dependencies.
#
# Here (the build machine, CUDA 13 + cuDNN 9 in /usr/local/cuda):
#   cmake --build build -j2 --target test_cuda unet_step augment
#   bash tools/gpu_check.sh --gather          # runtime .debs of oneDNN, HDF5, fmt, yaml-cpp into .devrt/
# There (carrying .devrt, build/tests/test_cuda, build/bench/unet_step and build/bench/augment):
#   bash tools/gpu_check.sh --run OUTDIR [full|quick|diag|precision|tests|check|layout]
# It runs the CUDA test suite (kernels against the CPU reference), then bench/unet_step on the GPU
# against the same network in that machine's PyTorch (bench/compare_pytorch.py), and writes every
# log under OUTDIR. `quick` skips the PyTorch comparison; `tests` runs the test suite alone, `check` adds one f32 and one bf16 step timing and bench/augment (augmentation on the CPU and the GPU); `full` runs bench/augment too; `layout` times plain against channels-last activations (f32 and bf16, two interleaved rounds, one profiled channels-last bf16 step), then PyTorch's step in both layouts once each. `diag` replaces the three-round comparison
# with one round plus PyTorch's kernel table, and adds a profiled step whose convolutions searched
# every cuDNN engine (--conv-search exhaustive), to find what the heuristics miss. `precision` times
# TLK's step in f32 (TF32), bf16 and f16 interleaved (two rounds of f32 and bf16, one of f16), with
# one profiled bf16 step, and PyTorch's step in f32 and under bf16 autocast once each for reference.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if [[ "${1:-}" == "--gather" ]]; then
  grep -qx '/.devrt/' .git/info/exclude 2>/dev/null || echo '/.devrt/' >> .git/info/exclude
  mkdir -p .devrt && cd .devrt
  # Open MPI's runtime: libtlk links libmpi (tlk/dist), so every TLK binary needs it to load.
  apt-get download libdnnl2 libhdf5-103-1 libsz2 libaec0 libfmt9 libyaml-cpp0.7 libgomp1 libopenmpi3 libhwloc15 \
    libevent-core-2.1-7 libevent-pthreads-2.1-7 libudev1 2>&1 | grep -v '^Get' || true
  ls -1 *.deb
  exit 0
fi
[[ "${1:-}" == "--run" && -n "${2:-}" ]] || { echo "usage: $0 --gather | --run OUTDIR [full|quick|diag|precision|tests|check|layout]" >&2; exit 2; }
out=$2
mode=${3:-full}
mkdir -p "$out" /opt/tlkrt
for f in .devrt/*.deb; do dpkg -x "$f" /opt/tlkrt; done
# cuDNN and cuBLAS come from the PyTorch wheels there (libcudnn.so.9, libcublas.so.13).
libs=/opt/tlkrt/usr/lib/x86_64-linux-gnu
for d in $(python3 - <<'PY'
import importlib, os
for name in ["nvidia.cudnn", "nvidia.cublas", "nvidia.cuda_runtime", "nvidia.cu13", "nvidia.nccl"]:
    try:
        m = importlib.import_module(name)
        for p in m.__path__:
            if os.path.isdir(os.path.join(p, "lib")):
                print(os.path.join(p, "lib"))
    except Exception:
        pass
PY
); do libs="$libs:$d"; done
export LD_LIBRARY_PATH="$libs:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH" | tee "$out/env.txt"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv | tee -a "$out/env.txt"
ldd build/tests/test_cuda | grep -E "not found|cudnn|cublas|dnnl|mpi" | tee -a "$out/env.txt"

export TLK_GOLDEN_DIR="$root/tests/goldens"
status=0
echo "== CUDA test suite"
timeout 180 build/tests/test_cuda 2>&1 | tee "$out/test_cuda.log" | tail -40
[[ ${PIPESTATUS[0]} == 0 ]] || status=1
[[ "$mode" == tests ]] && exit $status

flags="--batch 2 --patch 128,128,128 --base 32 --max-features 320 --levels 5 --classes 2 --iters 10"
if [[ "$mode" == check ]]; then  # the test suite, then one f32 and one bf16 step timing
  for p in f32 bf16; do
    timeout 60 build/bench/unet_step --device cuda --precision $p $flags 2>&1 | tail -1 | sed "s/^/$p /" \
      | tee -a "$out/precision.log" || status=1
  done
fi
if [[ "$mode" == check || "$mode" == full ]]; then
  echo "== bench/augment: one 128^3 sample on 1 CPU thread and on the GPU (interleaved)"
  timeout 90 build/bench/augment --device cuda --patch 128,128,128 --iters 10 2>&1 | tee "$out/augment.log" || status=1
fi
[[ "$mode" == check ]] && exit $status
if [[ "$mode" == layout ]]; then  # plain against channels-last activations, f32 and bf16, interleaved
  echo "== bench/unet_step: plain and channels_last activations, f32 (TF32) and bf16, two rounds"
  for round in 1 2; do
    for p in f32 bf16; do
      for l in plain channels_last; do
        extra=""
        [[ $round == 2 && $p == bf16 && $l == channels_last ]] && extra="--profile"
        line=$(timeout 90 build/bench/unet_step --device cuda --precision $p --layout $l $extra $flags 2>&1 \
          | tee "$out/unet.tmp" | tail -1)
        [[ -n "$extra" ]] && cp "$out/unet.tmp" "$out/unet_channels_last_bf16_profile.log"
        grep "^# activations" "$out/unet.tmp" | sed "s/^/$p $l /" >> "$out/layout.log"
        echo "$p $l $line" | tee -a "$out/layout.log"
      done
    done
  done
  rm -f "$out/unet.tmp"
  echo "== PyTorch in f32 (TF32) and under bf16 autocast, plain and channels_last_3d, once each"
  for p in f32 bf16; do
    for l in plain channels_last; do
      PYTHONUNBUFFERED=1 timeout 60 python3 bench/compare_pytorch.py --worker --device cuda --precision $p --layout $l \
        $flags 2>&1 | tail -1 | sed "s/^/torch-$p $l /" | tee -a "$out/layout.log"
    done
  done
  grep -v "^#   " "$out/unet_channels_last_bf16_profile.log" | tail -24
  exit $status
fi
if [[ "$mode" == precision ]]; then
  echo "== bench/unet_step: f32 (TF32), bf16 and f16 interleaved"
  for p in f32 bf16 f16 f32 bf16; do
    extra=""
    [[ "$p" == bf16 && ! -e "$out/unet_bf16_profile.log" ]] && extra="--profile"
    line=$(timeout 90 build/bench/unet_step --device cuda --precision $p $extra $flags 2>&1 | tee "$out/unet_$p.tmp" | tail -1)
    [[ -n "$extra" ]] && cp "$out/unet_$p.tmp" "$out/unet_bf16_profile.log"
    echo "$p $line" | tee -a "$out/precision.log"
  done
  rm -f "$out"/*.tmp
  echo "== PyTorch in f32 (TF32) and under bf16 autocast, once each"
  for p in f32 bf16; do
    PYTHONUNBUFFERED=1 timeout 60 python3 bench/compare_pytorch.py --worker --device cuda --precision $p $flags 2>&1 \
      | tail -1 | sed "s/^/torch-$p /" | tee -a "$out/precision.log"
  done
  grep -v "^#   " "$out/unet_bf16_profile.log" | tail -22
  exit $status
fi
if [[ "$mode" == full ]]; then
  echo "== bench/unet_step against PyTorch (interleaved rounds, TF32 on in both)"
  PYTHONUNBUFFERED=1 timeout 200 python3 bench/compare_pytorch.py --rounds 3 --tlk build/bench/unet_step -- \
    --device cuda $flags 2>&1 | tee "$out/compare_pytorch.log" || status=1
fi
echo "== bench/unet_step: one profiled step (TF32 on)"
timeout 90 build/bench/unet_step --device cuda --tf32 on --profile $flags 2>&1 | tee -a "$out/unet_step.log" | grep -v "^#   " || status=1
if [[ "$mode" == diag ]]; then
  echo "== one round against PyTorch, with PyTorch's slowest kernels"
  PYTHONUNBUFFERED=1 timeout 120 python3 bench/compare_pytorch.py --rounds 1 --torch-kernels 30 --tlk build/bench/unet_step -- \
    --device cuda $flags 2>&1 | tee "$out/compare_pytorch.log" | tail -45 || status=1
  echo "== bench/unet_step: exhaustive engine search, one profiled step"
  timeout 180 build/bench/unet_step --device cuda --tf32 on --profile --conv-search exhaustive ${flags/--iters 10/--iters 2} \
    > "$out/unet_exhaustive.log" 2>&1 || status=1
  grep -v "^#   " "$out/unet_exhaustive.log" | tail -30
else
  echo "== bench/unet_step: strict fp32 (TF32 off)"
  timeout 60 build/bench/unet_step --device cuda --tf32 off $flags 2>&1 | tee -a "$out/unet_step.log" || status=1
fi
exit $status
