#include "tlk/autograd/ops/sync_batch_norm.h"

#include <cmath>
#include <vector>

#include "tlk/autograd/ops/arith.h"
#include "tlk/autograd/ops/norm.h"
#include "tlk/autograd/ops/op_support.h"
#include "tlk/autograd/ops/reduce.h"
#include "tlk/kernels/ref/norm.h"
#include "tlk/tensor/error.h"

namespace tlk::ops {

Tensor cross_process_sum(const Tensor& x, const CrossProcessSum& sum) {
  check(static_cast<bool>(sum), "cross_process_sum: no cross-process sum was given");
  Tensor y = sum(x.detach());
  check(y.defined() && y.shape() == x.shape(), "cross_process_sum: the sum of {} came back as {}", x.shape().str(),
        y.defined() ? y.shape().str() : std::string("an undefined tensor"));
  attach("cross_process_sum", {x}, {y},
         [sum](const std::vector<Tensor>& g, const Node&) { return std::vector<Tensor>{sum(g[0])}; });
  return y;
}

Tensor sync_batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                       const Tensor& running_var, const BatchNormOptions& options, const CrossProcessSum& sum) {
  if (!options.training) return batch_norm(x, weight, bias, running_mean, running_var, options);
  check(x.defined() && (x.dim() == 2 || x.dim() == 5),
        "sync_batch_norm: expected an input [N, C] or [N, C, D, H, W], "
        "got {}",
        x.defined() ? x.shape().str() : std::string("an undefined tensor"));
  const std::int64_t C = x.size(1);
  for (const Tensor* t : {&weight, &bias, &running_mean, &running_var})
    if (t->defined())
      check(t->shape() == Shape{C}, "sync_batch_norm: expected parameters and buffers of shape [{}], got {}", C,
            t->shape().str());
  std::vector<int> axes{0};
  Shape channel_shape{1, C};
  for (int d = 2; d < x.dim(); ++d) {
    axes.push_back(d);
    channel_shape.push_back(1);
  }
  const double local_count = static_cast<double>(x.numel() / C);
  const double count =
      sum(Tensor::from_doubles({local_count}, Shape{1}, DType::f64).to(x.device())).to(Device::cpu()).to_doubles()[0];
  check(count > 1, "sync_batch_norm: expected more than 1 value per channel over all processes when training, got {}",
        count);
  const Tensor mean = mul(cross_process_sum(ops::sum(x, axes, true), sum), 1.0 / count);
  const Tensor centred = sub(x, mean);
  const Tensor var = mul(cross_process_sum(ops::sum(square(centred), axes, true), sum), 1.0 / count);
  Tensor y = mul(centred, rdiv(1.0, sqrt(add(var, options.eps))));
  if (weight.defined()) y = mul(y, weight.reshape(channel_shape));
  if (bias.defined()) y = add(y, bias.reshape(channel_shape));

  if (running_mean.defined())  // Note [Running statistics], over the global count
    kernels::ref::update_running_statistics(running_mean, running_var, mean.detach().to(Device::cpu()).to_doubles(),
                                            var.detach().to(Device::cpu()).to_doubles(), count, options.momentum);
  return y;
}

}  // namespace tlk::ops
