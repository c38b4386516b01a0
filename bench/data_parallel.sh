#!/usr/bin/env bash
# Data-parallel scaling on this machine: bench/data_parallel with 1 rank and with 2 ranks (one
# OpenMP thread each), and 1 rank with 2 threads for comparison, interleaved for ROUNDS rounds.
# Prints the median patches/s of each and the scaling efficiency (2-rank throughput over twice the
# 1-rank one at the same threads per rank).
#
#   bench/data_parallel.sh [ROUNDS] [extra data_parallel options, e.g. --patch 64,64,64]
set -euo pipefail
build=${TLK_BUILD_DIR:-build}
rounds=${1:-3}
shift || true
bin="$build/bench/data_parallel"
mpi=(mpirun --allow-run-as-root --oversubscribe --bind-to none)
declare -A runs
for ((r = 1; r <= rounds; r++)); do
  for config in "1 1" "2 1" "1 2"; do
    set -- $config "$@"
    ranks=$1 threads=$2
    shift 2
    line=$(OMP_NUM_THREADS=$threads "${mpi[@]}" -np "$ranks" "$bin" --threads "$threads" "$@")
    echo "round $r: $line"
    value=$(sed -n 's/.*patches_per_s=\([0-9.]*\).*/\1/p' <<<"$line")
    runs["$ranks x $threads"]+="$value "
  done
done
median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
one=$(median "${runs[1 x 1]}")
two=$(median "${runs[2 x 1]}")
wide=$(median "${runs[1 x 2]}")
echo "median patches/s: 1 rank x 1 thread $one, 2 ranks x 1 thread $two, 1 rank x 2 threads $wide"
awk -v a="$one" -v b="$two" -v c="$wide" 'BEGIN {
  printf "scaling efficiency (2 ranks / (2 x 1 rank)): %.2f; 2 ranks / 1 rank with 2 threads: %.2f\n", b / (2 * a), b / c }'
