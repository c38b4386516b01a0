#pragma once
#include <immintrin.h>

namespace tlk::kernels::cpu {

/// R x C AVX2 registers of sums, for the backward-weights kernels' position walks, which take and
/// return them by value (Note [Accumulators by value] in conv3d_backward_weights_avx2.cpp).
template <int R, int C>
struct Avx2Sums {
  __m256 acc[R][C];
};

/// Note [No lone vector by value]: a struct holding a single __m256 is returned in ymm0, and GCC 12 puts
/// a vzeroupper before the return of such a target("avx2") function, which clears the upper four lanes
/// of the result (a 1x1x1 kernel with one tile of output channels lost half its weight gradient). A
/// spare member makes the one-register struct travel in memory like the others. Only there: a spare in
/// the twelve-register struct made GCC copy it through memory at every position.
template <>
struct Avx2Sums<1, 1> {
  __m256 acc[1][1];
  __m256 spare;  // never read
};

}  // namespace tlk::kernels::cpu
