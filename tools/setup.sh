#!/usr/bin/env bash
# TLK's one-step setup for a fresh Debian machine: installs the missing Debian packages, configures
# and builds a Release tree in build/, then runs the main job or the test suite.
#
#   bash tools/setup.sh demo          # build, then run the main job (tlk demo, into tlk_demo/)
#   bash tools/setup.sh test          # build, then run the whole test suite
#   bash tools/setup.sh test-fast     # build, then run the suite without the tests labelled slow
#   bash tools/setup.sh asan          # build build-asan/ with ASan+UBSan and run the suite there
#
# Environment: TLK_BUILD_DIR (default build), TLK_JOBS (default: number of cores).
set -euo pipefail

mode=${1:-demo}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
jobs=${TLK_JOBS:-$(nproc)}

# ---- Debian packages --------------------------------------------------------------------------------
# ocl-icd-opencl-dev: Debian's oneDNN CMake config asks for OpenCL (its GPU runtime), which libdnnl-dev
# only recommends; without it find_package(dnnl) fails on a machine that skips recommends.
packages=(g++ cmake make libdnnl-dev ocl-icd-opencl-dev libhdf5-dev libfmt-dev doctest-dev zlib1g-dev libyaml-cpp-dev nlohmann-json3-dev
          openmpi-bin libopenmpi-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# ---- Configure and build ----------------------------------------------------------------------------
build_dir=${TLK_BUILD_DIR:-build}
extra=()
if [ "$mode" = asan ]; then
  build_dir=${TLK_BUILD_DIR:-build-asan}
  extra=(-DTLK_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTLK_BUILD_BENCH=OFF)
fi
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release "${extra[@]}" >/dev/null
cmake --build "$build_dir" -j"$jobs"

# ---- Run --------------------------------------------------------------------------------------------
case "$mode" in
  demo)
    "$build_dir/tlk" --version
    "$build_dir/tlk" demo --out tlk_demo
    ;;
  test) ctest --test-dir "$build_dir" --output-on-failure -j"$jobs" ;;
  test-fast) ctest --test-dir "$build_dir" --output-on-failure -j"$jobs" -LE slow ;;
  asan)
    # OpenMP's runtime keeps thread state alive at exit, which LeakSanitizer would report.
    ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 \
      ctest --test-dir "$build_dir" --output-on-failure -j"$jobs" -LE install ;;
  *) echo "setup: unknown mode '$mode' (expected demo, test, test-fast or asan)" >&2; exit 2 ;;
esac
