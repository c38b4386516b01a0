#include "tlk/kernels/ref/norm.h"

#include <cmath>
#include <string>
#include <vector>

#include "tlk/kernels/ref/common.h"

namespace tlk::kernels::ref {

namespace {

// Note [Normalisation groups]: instance and batch norm differ only in which elements share one
// mean and variance. With S the spatial volume of a contiguous input seen as [N, C, S] (its
// ChannelView), group g holds `segments` runs of `length` = S contiguous elements starting at
// g * S + s * seg_stride, and uses channel g % C's weight and bias. Instance norm: N * C groups of one run each. Batch
// norm: C groups of N runs each, one per sample, seg_stride = C * S. One set of loops serves both.
struct Groups {
  std::int64_t count, channels, segments, length, seg_stride;
  std::int64_t size() const { return segments * length; }
  template <class Fn>
  void for_each(std::int64_t g, Fn&& fn) const {
    for (std::int64_t s = 0; s < segments; ++s) {
      const std::int64_t base = g * length + s * seg_stride;
      for (std::int64_t i = 0; i < length; ++i) fn(base + i);
    }
  }
};

Groups instance_groups(const Shape& x) {
  const ChannelView v = ChannelView::of(x);
  return {v.outer * v.channels, v.channels, 1, v.inner, 0};
}

Groups batch_groups(const Shape& x) {
  const ChannelView v = ChannelView::of(x);
  return {v.channels, v.channels, v.outer, v.inner, v.channels * v.inner};
}

bool parallel_worthwhile(const Groups& gr) { return gr.count > 1 && gr.count * gr.size() > 32768; }

// Checks that `t`, when defined, is [C] for input x [N, C, ...].
void check_per_channel(const char* op, const Tensor& t, const char* what, const Tensor& x) {
  if (!t.defined()) return;
  check(t.shape() == Shape{x.shape()[1]}, "{}: {} has shape {}, expected [{}] (one per channel of input {})", op, what,
        t.shape().str(), x.shape()[1], x.shape().str());
}

// Checks what both normalisations share: rank, an affine [C] weight and bias, dtypes, eps.
void check_common(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias, int min_dim,
                  const char* expected_layout, double eps) {
  check(x.defined(), "{}: input is undefined", op);
  check(x.dim() >= min_dim, "{}: expected an input {} (at least {}-D), got {}-D with shape {}", op, expected_layout,
        min_dim, x.dim(), x.shape().str());
  check(x.numel() > 0, "{}: input of shape {} is empty", op, x.shape().str());
  for (const auto& [t, what] : {std::pair{&weight, "weight"}, std::pair{&bias, "bias"}})
    check_per_channel(op, *t, what, x);
  check_same_dtype(op, {&x, &weight, &bias});
  check(std::isfinite(eps) && eps >= 0.0, "{}: eps must be a finite value >= 0, got {}", op, eps);
}

// Checks that a backward's saved input is defined and has at least `min_dim` axes ([N, C, ...]).
void check_saved_input(const char* op, const Tensor& x, int min_dim, const char* expected_layout) {
  check(x.defined() && x.dim() >= min_dim, "{}: expected the saved input {} (at least {}-D), got {}", op,
        expected_layout, min_dim,
        x.defined() ? fmt::format("{}-D with shape {}", x.dim(), x.shape().str()) : std::string("an undefined tensor"));
}

// cpu_contiguous for the optional tensors (weight, bias): undefined stays undefined.
Tensor optional_contiguous(const Tensor& t, const char* op, const char* what) {
  return t.defined() ? cpu_contiguous(t, op, what) : Tensor();
}

// Two-pass mean and biased variance of every group, in double.
template <class T>
void group_stats(const T* x, const Groups& gr, std::vector<double>& mean, std::vector<double>& var) {
  mean.assign(static_cast<std::size_t>(gr.count), 0.0);
  var.assign(static_cast<std::size_t>(gr.count), 0.0);
  const double m = static_cast<double>(gr.size());
#pragma omp parallel for if (parallel_worthwhile(gr))
  for (std::int64_t g = 0; g < gr.count; ++g) {
    double sum = 0.0;
    gr.for_each(g, [&](std::int64_t i) { sum += static_cast<double>(x[i]); });
    const double mu = sum / m;
    double sq = 0.0;
    gr.for_each(g, [&](std::int64_t i) {
      const double d = static_cast<double>(x[i]) - mu;
      sq += d * d;
    });
    mean[static_cast<std::size_t>(g)] = mu;
    var[static_cast<std::size_t>(g)] = sq / m;
  }
}

// y = (x - mean) * inv_std * weight + bias per group; weight and bias may be null.
template <class T>
void normalize(const T* x, const Groups& gr, const std::vector<double>& mean, const std::vector<double>& inv_std,
               const T* w, const T* b, T* y) {
#pragma omp parallel for if (parallel_worthwhile(gr))
  for (std::int64_t g = 0; g < gr.count; ++g) {
    const std::int64_t c = g % gr.channels;
    const double scale = inv_std[static_cast<std::size_t>(g)] * (w ? static_cast<double>(w[c]) : 1.0);
    const double shift = (b ? static_cast<double>(b[c]) : 0.0) - mean[static_cast<std::size_t>(g)] * scale;
    gr.for_each(g, [&](std::int64_t i) { y[i] = static_cast<T>(static_cast<double>(x[i]) * scale + shift); });
  }
}

// Fills the output and the saved statistics (in the input's dtype) of a forward.
NormForward finish_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Groups& gr,
                           const Shape& stats_shape, const std::vector<double>& mean,
                           const std::vector<double>& inv_std, const char* op) {
  NormForward out{empty_like(x), Tensor::empty(stats_shape, TensorOptions{x.dtype()}),
                  Tensor::empty(stats_shape, TensorOptions{x.dtype()})};
  visit_floating(x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    normalize(x.data<T>(), gr, mean, inv_std, w.defined() ? w.data<T>() : nullptr, b.defined() ? b.data<T>() : nullptr,
              out.output.data<T>());
    for (std::size_t g = 0; g < mean.size(); ++g) {
      out.mean.data<T>()[g] = static_cast<T>(mean[g]);
      out.inv_std.data<T>()[g] = static_cast<T>(inv_std[g]);
    }
  });
  return out;
}

// Note [Normalisation backward]: with x̂ = (x - μ)σ⁻¹ and y = γx̂ + β, a group of M elements whose
// statistics come from the group itself (instance norm; batch norm in training) has
//   dx = γσ⁻¹ (g - mean(g) - x̂ · mean(g x̂)),
// the two means being the gradients that flow through μ and σ. With fixed statistics (batch norm in
// evaluation) the map is affine and dx = γσ⁻¹ g. In both cases dγ = Σ g x̂ and dβ = Σ g per channel.
// `op` names the backward ("instance_norm backward"); the caller has run check_saved_input on x_in.
NormGrads norm_backward(const char* op, const Tensor& grad_in, const Tensor& x_in, const Tensor& w_in,
                        const Tensor& mean_in, const Tensor& inv_std_in, const Groups& gr, bool stats_from_input) {
  check(grad_in.defined() && mean_in.defined() && inv_std_in.defined(),
        "{}: grad_output, mean and inv_std must be defined", op);
  check_same_dtype(op, {&grad_in, &x_in, &w_in, &mean_in, &inv_std_in});
  check(grad_in.shape() == x_in.shape(), "{}: grad_output has shape {}, expected the input's shape {}", op,
        grad_in.shape().str(), x_in.shape().str());
  check_per_channel(op, w_in, "weight", x_in);
  check(mean_in.numel() == gr.count && inv_std_in.numel() == gr.count,
        "{}: expected {} saved statistics for input {}, got mean {} and inv_std {}", op, gr.count, x_in.shape().str(),
        mean_in.shape().str(), inv_std_in.shape().str());
  Tensor g = cpu_contiguous(grad_in, op, "grad_output"), x = cpu_contiguous(x_in, op, "input");
  Tensor w = optional_contiguous(w_in, op, "weight");
  Tensor mean = cpu_contiguous(mean_in, op, "mean"), inv_std = cpu_contiguous(inv_std_in, op, "inv_std");
  const Shape channel_shape{gr.channels};
  NormGrads out{empty_like(x), Tensor::empty(channel_shape, TensorOptions{x.dtype()}),
                Tensor::empty(channel_shape, TensorOptions{x.dtype()})};
  visit_floating(x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T *pg = g.data<T>(), *px = x.data<T>(), *pw = w.defined() ? w.data<T>() : nullptr;
    const T *pm = mean.data<T>(), *pr = inv_std.data<T>();
    T* dx = out.input.data<T>();
    std::vector<double> sum_g(static_cast<std::size_t>(gr.count)), sum_gx(static_cast<std::size_t>(gr.count));
    const double m = static_cast<double>(gr.size());
#pragma omp parallel for if (parallel_worthwhile(gr))
    for (std::int64_t grp = 0; grp < gr.count; ++grp) {
      const double mu = pm[grp], r = pr[grp];
      const double gamma = pw ? static_cast<double>(pw[grp % gr.channels]) : 1.0;
      double sg = 0.0, sgx = 0.0;
      gr.for_each(grp, [&](std::int64_t i) {
        sg += static_cast<double>(pg[i]);
        sgx += static_cast<double>(pg[i]) * (static_cast<double>(px[i]) - mu) * r;
      });
      sum_g[static_cast<std::size_t>(grp)] = sg;
      sum_gx[static_cast<std::size_t>(grp)] = sgx;
      if (stats_from_input) {
        const double mean_g = sg / m, mean_gx = sgx / m;
        gr.for_each(grp, [&](std::int64_t i) {
          const double xhat = (static_cast<double>(px[i]) - mu) * r;
          dx[i] = static_cast<T>(gamma * r * (static_cast<double>(pg[i]) - mean_g - xhat * mean_gx));
        });
      } else {
        gr.for_each(grp, [&](std::int64_t i) { dx[i] = static_cast<T>(gamma * r * static_cast<double>(pg[i])); });
      }
    }
    T *dw = out.weight.data<T>(), *db = out.bias.data<T>();
    for (std::int64_t c = 0; c < gr.channels; ++c) {
      double acc_w = 0.0, acc_b = 0.0;
      for (std::int64_t grp = c; grp < gr.count; grp += gr.channels) {
        acc_w += sum_gx[static_cast<std::size_t>(grp)];
        acc_b += sum_g[static_cast<std::size_t>(grp)];
      }
      dw[c] = static_cast<T>(acc_w);
      db[c] = static_cast<T>(acc_b);
    }
  });
  return out;
}

}  // namespace

NormForward instance_norm_forward(const Tensor& input, const Tensor& weight, const Tensor& bias, double eps) {
  const char* op = "instance_norm";
  check_common(op, input, weight, bias, 3, "[N, C, D, H, W]", eps);
  Tensor x = cpu_contiguous(input, op, "input");
  Tensor w = optional_contiguous(weight, op, "weight"), b = optional_contiguous(bias, op, "bias");
  const Groups gr = instance_groups(x.shape());
  std::vector<double> mean, var;
  visit_floating(x.dtype(), op, [&](auto tag) { group_stats(x.data<typename decltype(tag)::type>(), gr, mean, var); });
  std::vector<double> inv_std(var.size());
  for (std::size_t g = 0; g < var.size(); ++g) inv_std[g] = 1.0 / std::sqrt(var[g] + eps);
  return finish_forward(x, w, b, gr, Shape{x.shape()[0], x.shape()[1]}, mean, inv_std, op);
}

NormGrads instance_norm_backward(const Tensor& grad_output, const Tensor& input, const Tensor& weight,
                                 const Tensor& mean, const Tensor& inv_std) {
  const char* op = "instance_norm backward";
  check_saved_input(op, input, 3, "[N, C, D, H, W]");
  return norm_backward(op, grad_output, input, weight, mean, inv_std, instance_groups(input.shape()), true);
}

NormForward batch_norm_forward(const Tensor& input, const Tensor& weight, const Tensor& bias,
                               const Tensor& running_mean, const Tensor& running_var, const BatchNormOptions& opt) {
  const char* op = "batch_norm";
  check_common(op, input, weight, bias, 2, "[N, C] or [N, C, D, H, W]", opt.eps);
  const std::int64_t c = input.shape()[1];
  check(running_mean.defined() == running_var.defined(),
        "batch_norm: running_mean and running_var must be both defined or both undefined");
  for (const auto& [t, what] : {std::pair{&running_mean, "running_mean"}, std::pair{&running_var, "running_var"}})
    check_per_channel(op, *t, what, input);
  check_same_dtype(op, {&input, &running_mean, &running_var});
  check(std::isfinite(opt.momentum) && opt.momentum >= 0.0 && opt.momentum <= 1.0,
        "batch_norm: momentum must be in [0, 1], got {}", opt.momentum);
  const Groups gr = batch_groups(input.shape());
  check(!opt.training || gr.size() > 1,
        "batch_norm: expected more than 1 value per channel when training, got input shape {}", input.shape().str());
  check(opt.training || running_mean.defined(),
        "batch_norm: evaluation mode normalises with running_mean and running_var, which are undefined");

  Tensor x = cpu_contiguous(input, op, "input");
  Tensor w = optional_contiguous(weight, op, "weight"), b = optional_contiguous(bias, op, "bias");
  std::vector<double> mean, var;
  if (opt.training) {
    visit_floating(x.dtype(), op,
                   [&](auto tag) { group_stats(x.data<typename decltype(tag)::type>(), gr, mean, var); });
  } else {
    mean = cpu_input(running_mean, op, "running_mean").to_doubles();
    var = cpu_input(running_var, op, "running_var").to_doubles();
  }
  std::vector<double> inv_std(var.size());
  for (std::size_t g = 0; g < var.size(); ++g) inv_std[g] = 1.0 / std::sqrt(var[g] + opt.eps);
  NormForward out = finish_forward(x, w, b, gr, Shape{c}, mean, inv_std, op);

  if (opt.training && running_mean.defined())
    update_running_statistics(running_mean, running_var, mean, var, static_cast<double>(gr.size()), opt.momentum);
  return out;
}

void update_running_statistics(const Tensor& running_mean, const Tensor& running_var,
                               const std::vector<double>& batch_mean, const std::vector<double>& batch_biased_var,
                               double count, double momentum) {
  std::vector<double> new_mean = running_mean.to(Device::cpu()).to_doubles();
  std::vector<double> new_var = running_var.to(Device::cpu()).to_doubles();
  check(new_mean.size() == batch_mean.size() && new_var.size() == batch_biased_var.size(),
        "batch_norm: running statistics of {} and {} channels for batch statistics of {}", new_mean.size(),
        new_var.size(), batch_mean.size());
  const double k = momentum;
  for (std::size_t c = 0; c < new_mean.size(); ++c) {
    new_mean[c] = (1.0 - k) * new_mean[c] + k * batch_mean[c];
    new_var[c] = (1.0 - k) * new_var[c] + k * batch_biased_var[c] * count / (count - 1.0);
  }
  // Copies of the handles share the buffers' data, so copy_ through them writes the caller's buffers.
  const Shape shape{static_cast<std::int64_t>(new_mean.size())};
  Tensor rm = running_mean, rv = running_var;
  rm.copy_(Tensor::from_doubles(new_mean, shape, rm.dtype()));
  rv.copy_(Tensor::from_doubles(new_var, shape, rv.dtype()));
}

NormGrads batch_norm_backward(const Tensor& grad_output, const Tensor& input, const Tensor& weight, const Tensor& mean,
                              const Tensor& inv_std, bool training) {
  const char* op = "batch_norm backward";
  check_saved_input(op, input, 2, "[N, C] or [N, C, D, H, W]");
  return norm_backward(op, grad_output, input, weight, mean, inv_std, batch_groups(input.shape()), training);
}

}  // namespace tlk::kernels::ref
