#include "tlk/kernels/cuda/norm.h"

#include <cmath>
#include <limits>
#include <string>
#include <type_traits>

#include "tlk/kernels/cuda/launch.h"
#include "tlk/kernels/cuda/norm_launch.h"
#include "tlk/kernels/ref/common.h"

namespace tlk::kernels::cuda {

namespace {

using launch::NormGroups;

template <class T>
T* ptr(const Tensor& t) {
  return t.defined() ? static_cast<T*>(t.raw_data()) : nullptr;
}

// The element type of the parameters and statistics that go with inputs of element type T (Note
// [Half precision on the GPU]): float for the 16-bit types, T otherwise.
template <class T>
using param_t = std::conditional_t<std::is_same_v<T, Bf16Bits> || std::is_same_v<T, F16Bits>, float, T>;

DType param_dtype(DType x) { return x == DType::bf16 || x == DType::f16 ? DType::f32 : x; }

// A [C]-like tensor of the parameter dtype that goes with `x`, on x's device.
Tensor empty_params(const Tensor& x, const Shape& shape) {
  return Tensor::empty(shape, TensorOptions{param_dtype(x.dtype()), x.device()});
}

// Checks that `t` is on x's GPU with the parameter dtype that goes with x.
void require_param(const Tensor& t, const Tensor& x, const char* op, const char* what) {
  check(t.device() == x.device() && t.dtype() == param_dtype(x.dtype()),
        "{}: {} is {} on {}, expected {} on {} for an input of {}", op, what, dtype_name(t.dtype()), t.device().str(),
        dtype_name(param_dtype(x.dtype())), x.device().str(), dtype_name(x.dtype()));
}

// The groups of instance norm over `x`, in x's layout (Note [Channels-last normalisation] in
// norm_launch.cu for a channels-last x).
NormGroups instance_groups(const Tensor& x) {
  const ref::ChannelView v = ref::ChannelView::of(x.shape());
  if (is_channels_last(x)) return {v.outer * v.channels, v.channels, 1, v.inner, 0, true};
  return {v.outer * v.channels, v.channels, 1, v.inner, 0};
}

NormGroups batch_groups(const Tensor& x) {
  const ref::ChannelView v = ref::ChannelView::of(x.shape());
  if (is_channels_last(x)) return {v.channels, v.channels, 1, v.outer * v.inner, 0, true};
  return {v.channels, v.channels, v.outer, v.inner, v.channels * v.inner};
}

// `t` densely arranged in `x`'s layout (the saved input of a backward sets the layout of its
// gradient and saved output).
Tensor dense_like(const Tensor& t, const Tensor& x, const char* op) { return dense_as(t, layout_of(x), op); }

// Checks that `t`, when defined, is a [C] tensor on x's device with the parameter dtype of x.
void check_per_channel(const char* op, const Tensor& t, const char* what, const Tensor& x) {
  if (!t.defined()) return;
  require_param(t, x, op, what);
  check(t.shape() == Shape{x.shape()[1]}, "{}: {} has shape {}, expected [{}] (one per channel of input {})", op, what,
        t.shape().str(), x.shape()[1], x.shape().str());
}

// The checks of the reference's check_common, plus: every tensor is on the input's GPU.
void check_common(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias, int min_dim,
                  const char* expected_layout, double eps) {
  require_cuda_floating(x, op, "input");
  check(x.dim() >= min_dim, "{}: expected an input {} (at least {}-D), got {}-D with shape {}", op, expected_layout,
        min_dim, x.dim(), x.shape().str());
  check(x.numel() > 0, "{}: input of shape {} is empty", op, x.shape().str());
  check_per_channel(op, weight, "weight", x);
  check_per_channel(op, bias, "bias", x);
  check(std::isfinite(eps) && eps >= 0.0, "{}: eps must be a finite value >= 0, got {}", op, eps);
}

void check_grid(const char* op, const NormGroups& gr) {
  check(gr.count * launch::norm_parts(gr) <= std::numeric_limits<int>::max(),
        "{}: {} normalisation groups of {} elements are too many for one launch", op, gr.count, gr.size());
}

Tensor optional_contiguous(const Tensor& t) { return t.defined() ? contiguous(t) : Tensor(); }

Tensor scratch(const Tensor& like, std::int64_t n) {
  return Tensor::empty(Shape{n < 1 ? 1 : n}, TensorOptions{DType::f64, like.device()});
}

// The forward shared by both normalisations. Running statistics: when `from_running`, they normalise
// the input; else, when defined, they are updated in place from the batch statistics.
NormForward forward(const char* op, const Tensor& x, const Tensor& w, const Tensor& b, const NormGroups& gr,
                    const Shape& stats_shape, double eps, const Tensor& running_mean, const Tensor& running_var,
                    double momentum, bool from_running, const double* leaky_slope = nullptr) {
  check_grid(op, gr);
  NormForward out{empty_in_layout(x, x.shape(), layout_of(x)), empty_params(x, stats_shape),
                  empty_params(x, stats_shape)};
  Tensor scale_shift = scratch(x, 3 * gr.count);  // {scale, mean, bias} per group
  Tensor partial = from_running ? Tensor() : scratch(x, 2 * gr.count * launch::norm_parts(gr));
  visit_cuda_floating(x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using P = param_t<T>;
    if (from_running) {
      check_status(launch::norm_stats_from_running<P>(ptr<P>(running_mean), ptr<P>(running_var), gr.count, eps,
                                                      ptr<P>(w), ptr<P>(b), ptr<P>(out.mean), ptr<P>(out.inv_std),
                                                      ptr<double>(scale_shift), stream()),
                   op, "statistics kernel launch");
    } else {
      check_status(launch::norm_stats<T, P>(ptr<T>(x), gr, eps, ptr<P>(w), ptr<P>(b), ptr<P>(out.mean),
                                            ptr<P>(out.inv_std), ptr<double>(scale_shift), ptr<P>(running_mean),
                                            ptr<P>(running_var), momentum, ptr<double>(partial), stream()),
                   op, "statistics kernel launch");
    }
    check_status(
        launch::norm_apply<T>(ptr<T>(x), gr, ptr<double>(scale_shift), ptr<T>(out.output), stream(), leaky_slope), op,
        "normalisation kernel launch");
  });
  return out;
}

void check_saved_input(const char* op, const Tensor& x, int min_dim, const char* expected_layout) {
  check(x.defined() && x.dim() >= min_dim, "{}: expected the saved input {} (at least {}-D), got {}", op,
        expected_layout, min_dim,
        x.defined() ? fmt::format("{}-D with shape {}", x.dim(), x.shape().str()) : std::string("an undefined tensor"));
  require_cuda_floating(x, op, "input");
}

NormGrads backward(const char* op, const Tensor& grad_in, const Tensor& x_in, const Tensor& w_in, const Tensor& mean_in,
                   const Tensor& inv_std_in, const NormGroups& gr, bool stats_from_input,
                   const Tensor& activation_output = Tensor(), double leaky_slope = 0.0) {
  check(grad_in.defined() && mean_in.defined() && inv_std_in.defined(),
        "{}: grad_output, mean and inv_std must be defined", op);
  require_same(grad_in, x_in, op, "grad_output");
  require_param(mean_in, x_in, op, "mean");
  require_param(inv_std_in, x_in, op, "inv_std");
  check(grad_in.shape() == x_in.shape(), "{}: grad_output has shape {}, expected the input's shape {}", op,
        grad_in.shape().str(), x_in.shape().str());
  check_per_channel(op, w_in, "weight", x_in);
  check(mean_in.numel() == gr.count && inv_std_in.numel() == gr.count,
        "{}: expected {} saved statistics for input {}, got mean {} and inv_std {}", op, gr.count, x_in.shape().str(),
        mean_in.shape().str(), inv_std_in.shape().str());
  check_grid(op, gr);
  const Tensor x = dense(x_in, op), g = dense_like(grad_in, x, op), w = optional_contiguous(w_in);
  const Tensor mean = contiguous(mean_in), inv_std = contiguous(inv_std_in);
  Tensor act;
  if (activation_output.defined()) {
    require_same(activation_output, x_in, op, "output");
    check(activation_output.shape() == x_in.shape(), "{}: the saved output has shape {}, expected the input's {}", op,
          activation_output.shape().str(), x_in.shape().str());
    act = dense_like(activation_output, x, op);
  }
  const Shape channel_shape{gr.channels};
  NormGrads out{empty_in_layout(x, x.shape(), layout_of(x)), empty_params(x, channel_shape),
                empty_params(x, channel_shape)};
  Tensor partial = scratch(x, 2 * gr.count * launch::norm_parts(gr)), coef = scratch(x, 5 * gr.count);
  visit_cuda_floating(x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using P = param_t<T>;
    check_status(launch::norm_backward<T, P>(ptr<T>(g), ptr<T>(x), gr, ptr<P>(w), ptr<P>(mean), ptr<P>(inv_std),
                                             stats_from_input, ptr<T>(out.input), ptr<P>(out.weight),
                                             ptr<P>(out.bias), ptr<double>(partial), ptr<double>(coef), stream(),
                                             act.defined() ? ptr<T>(act) : nullptr, leaky_slope),
                 op, "kernel launch");
  });
  return out;
}

}  // namespace

NormForward instance_norm_forward(const Tensor& input, const Tensor& weight, const Tensor& bias, double eps) {
  const char* op = "instance_norm";
  check_common(op, input, weight, bias, 3, "[N, C, D, H, W]", eps);
  const Tensor x = dense(input, op);
  return forward(op, x, optional_contiguous(weight), optional_contiguous(bias), instance_groups(x),
                 Shape{x.shape()[0], x.shape()[1]}, eps, Tensor(), Tensor(), 0.0, false);
}

NormGrads instance_norm_backward(const Tensor& grad_output, const Tensor& input, const Tensor& weight,
                                 const Tensor& mean, const Tensor& inv_std) {
  const char* op = "instance_norm backward";
  check_saved_input(op, input, 3, "[N, C, D, H, W]");
  return backward(op, grad_output, input, weight, mean, inv_std, instance_groups(input), true);
}

NormForward instance_norm_leaky_relu_forward(const Tensor& input, const Tensor& weight, const Tensor& bias, double eps,
                                             double negative_slope) {
  const char* op = "instance_norm_leaky_relu";
  check_common(op, input, weight, bias, 3, "[N, C, D, H, W]", eps);
  check(std::isfinite(negative_slope) && negative_slope >= 0.0, "{}: negative_slope must be finite and >= 0, got {}",
        op, negative_slope);
  const Tensor x = dense(input, op);
  return forward(op, x, optional_contiguous(weight), optional_contiguous(bias), instance_groups(x),
                 Shape{x.shape()[0], x.shape()[1]}, eps, Tensor(), Tensor(), 0.0, false, &negative_slope);
}

NormGrads instance_norm_leaky_relu_backward(const Tensor& grad_output, const Tensor& input, const Tensor& weight,
                                            const Tensor& mean, const Tensor& inv_std, const Tensor& output,
                                            double negative_slope) {
  const char* op = "instance_norm_leaky_relu backward";
  check_saved_input(op, input, 3, "[N, C, D, H, W]");
  check(output.defined(), "{}: the forward's output is needed (the activation's derivative comes from it)", op);
  check(std::isfinite(negative_slope) && negative_slope >= 0.0, "{}: negative_slope must be finite and >= 0, got {}",
        op, negative_slope);
  return backward(op, grad_output, input, weight, mean, inv_std, instance_groups(input), true, output,
                  negative_slope);
}

NormForward batch_norm_forward(const Tensor& input, const Tensor& weight, const Tensor& bias,
                               const Tensor& running_mean, const Tensor& running_var, const BatchNormOptions& opt) {
  const char* op = "batch_norm";
  check_common(op, input, weight, bias, 2, "[N, C] or [N, C, D, H, W]", opt.eps);
  check(running_mean.defined() == running_var.defined(),
        "batch_norm: running_mean and running_var must be both defined or both undefined");
  check_per_channel(op, running_mean, "running_mean", input);
  check_per_channel(op, running_var, "running_var", input);
  check(std::isfinite(opt.momentum) && opt.momentum >= 0.0 && opt.momentum <= 1.0,
        "batch_norm: momentum must be in [0, 1], got {}", opt.momentum);
  const NormGroups gr = batch_groups(input);
  check(!opt.training || gr.size() > 1,
        "batch_norm: expected more than 1 value per channel when training, got input shape {}", input.shape().str());
  check(opt.training || running_mean.defined(),
        "batch_norm: evaluation mode normalises with running_mean and running_var, which are undefined");
  // The running statistics are written in place by the kernel, so they must be the caller's own
  // contiguous buffers (a copy would silently drop the update).
  if (opt.training && running_mean.defined())
    check(running_mean.is_contiguous() && running_var.is_contiguous(),
          "batch_norm: running_mean and running_var must be contiguous to be updated in place");
  const Tensor x = dense(input, op);
  const Tensor rm = opt.training ? running_mean : optional_contiguous(running_mean);
  const Tensor rv = opt.training ? running_var : optional_contiguous(running_var);
  NormForward out = forward(op, x, optional_contiguous(weight), optional_contiguous(bias), gr, Shape{gr.channels},
                            opt.eps, rm, rv, opt.momentum, !opt.training);
  // Note [Running statistics] (ref/norm.cpp): the in-place update bumps the buffers' version counters.
  if (opt.training && running_mean.defined()) {
    running_mean.impl().storage->bump_version();
    running_var.impl().storage->bump_version();
  }
  return out;
}

NormGrads batch_norm_backward(const Tensor& grad_output, const Tensor& input, const Tensor& weight, const Tensor& mean,
                              const Tensor& inv_std, bool training) {
  const char* op = "batch_norm backward";
  check_saved_input(op, input, 2, "[N, C] or [N, C, D, H, W]");
  return backward(op, grad_output, input, weight, mean, inv_std, batch_groups(input), training);
}

Tensor channels_last_channel_sum(const Tensor& t, const char* op) {
  require_cuda_floating(t, op, "input");
  check(is_channels_last(t), "{}: expected a dense channels-last 5-D tensor, got shape {} strides {}", op,
        t.shape().str(), t.strides().str());
  const std::int64_t channels = t.size(1), rows = channels > 0 ? t.numel() / channels : 0;
  Tensor out = empty_like_shape(t, Shape{channels});
  if (channels == 0) return out;
  if (rows == 0) return out.fill_(0.0);
  Tensor partial = scratch(t, channels * launch::channel_sum_parts(rows, channels));
  visit_cuda_floating(t.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    check_status(launch::channels_last_channel_sum<T>(ptr<T>(t), rows, channels, ptr<T>(out), ptr<double>(partial),
                                                      stream()),
                 op, "channel sum kernel launch");
  });
  return out;
}

}  // namespace tlk::kernels::cuda
