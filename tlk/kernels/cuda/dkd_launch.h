#pragma once
// Raw-pointer launchers of decoupled KD (dkd_launch.cu); the Tensor API is dkd.h. Logits are
// [outer, channels, inner] (f32 or f64), targets [outer, inner] i64 in [0, channels).
#include <cuda_runtime_api.h>

#include <cstdint>

namespace tlk::kernels::cuda::launch {

/// How many doubles the forward's `partial` scratch holds.
std::int64_t dkd_partials(std::int64_t positions);

/// tckd[0] and nckd[0] (one element each): `scale` times the sums over positions of Note [DKD in one
/// pass]'s TCKD and NCKD (NaN without positions), added in a fixed order.
template <class T>
cudaError_t dkd_forward(const T* student, const T* teacher, const std::int64_t* targets, std::int64_t outer,
                        std::int64_t channels, std::int64_t inner, double inv_t, double scale, T* tckd, T* nckd,
                        double* partial, cudaStream_t stream);

/// The gradient w.r.t. the student logits (kernels/dkd_position.h's write_grad at every position).
template <class T>
cudaError_t dkd_backward(const T* student, const T* teacher, const std::int64_t* targets, std::int64_t outer,
                         std::int64_t channels, std::int64_t inner, double inv_t, double g_tckd, double g_nckd,
                         double scale, T* grad, cudaStream_t stream);

}  // namespace tlk::kernels::cuda::launch
