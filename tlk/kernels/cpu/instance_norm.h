#pragma once
#include <optional>

#include "tlk/kernels/ref/norm.h"
#include "tlk/tensor/tensor.h"

/// The CPU fast path of instance normalisation (oneDNN 2.6 has no instance-norm primitive): OpenMP
/// loops over f32 tensors [N, C, ...] in the layout they come in, plain, channels-last or blocked
/// (nCdhw8c / nCdhw16c and their 3-D and 4-D kin), with the output and the input gradient in that same
/// layout (Note [Stay blocked] in conv3d.h). Other blocked formats are reordered (and counted).
namespace tlk::kernels::cpu {

/// How the fast instance norm runs. Example: `InstanceNormOptions{}.with_leaky_relu(0.01)`.
struct InstanceNormOptions {
  double eps = 1e-5;  ///< added to the biased variance before the square root; >= 0
  /// When set, a leaky ReLU with this negative slope (>= 0; 0 is ReLU) is applied to the normalised
  /// output in the same pass (Note [Instance norm + leaky ReLU fusion]).
  std::optional<double> negative_slope;

  InstanceNormOptions with_eps(double e) const {
    auto o = *this;
    o.eps = e;
    return o;
  }
  InstanceNormOptions with_leaky_relu(double slope) const {
    auto o = *this;
    o.negative_slope = slope;
    return o;
  }
};

/// True when the fast path takes these arguments: an f32 CPU input of rank >= 3 with elements, and a
/// weight and bias that are undefined or f32 CPU tensors [C]. Anything else belongs to the reference
/// kernels (which also give the error messages for bad arguments).
bool instance_norm_supported(const Tensor& input, const Tensor& weight, const Tensor& bias);

/// Instance norm (then the fused leaky ReLU when opt.negative_slope is set) of `input`, as
/// ref::instance_norm_forward: statistics per (n, c), biased variance; mean and inv_std [N, C] plain.
/// The output has the input's layout (a strided view that is neither row-major nor channels-last is
/// read through a row-major copy).
/// Example: `auto f = cpu::instance_norm_forward(x, gamma, beta, InstanceNormOptions{}.with_leaky_relu(0.01));`
ref::NormForward instance_norm_forward(const Tensor& input, const Tensor& weight, const Tensor& bias,
                                       const InstanceNormOptions& opt = {});

/// Gradients of instance_norm_forward w.r.t. input (in the input's layout), weight and bias ([C], always
/// computed). When opt.negative_slope is set the forward was fused and `output` must be its output:
/// the activation's derivative is read from the output's sign.
ref::NormGrads instance_norm_backward(const Tensor& grad_output, const Tensor& input, const Tensor& weight,
                                      const Tensor& mean, const Tensor& inv_std, const InstanceNormOptions& opt = {},
                                      const Tensor& output = {});

}  // namespace tlk::kernels::cpu
