#include "tlk/autograd/ops/pool3d.h"

#include "tlk/autograd/autocast.h"
#include "tlk/autograd/ops/op_support.h"
#include "tlk/kernels/cpu/pool3d.h"
#include "tlk/kernels/ref/pool3d.h"

namespace tlk::ops {

// Note [Pool3d dispatch]: f32 on the CPU takes the fast path (kernels/cpu/pool3d.h: oneDNN pooling in
// the input's layout, global average pooling as one whole-volume window), f64 and adaptive pooling
// to other sizes the reference kernels, as in Note [Conv3d dispatch]. The fast max-pool backward
// reads oneDNN's workspace, saved like any other tensor (SavedTensor). A plain row-major input stays on
// the reference kernels: oneDNN 2.6 pools ncdhw with its generic code, slower than ours (max pooling
// [2, 32, 64, 64, 64] 2x2x2: 320 ms vs 144 ms; blocked 17 ms, channels-last 16 ms).
namespace {
bool fast_path(const Tensor& x) {
  return kernels::cpu::pool3d_supported(x) && (x.layout() == Layout::blocked || x.layout() == Layout::channels_last);
}
}  // namespace

Tensor max_pool3d(const Tensor& x_in, const Pool3dOptions& opt) {
  const Tensor x = autograd::widen_half(x_in);  // Note [Autocast]: f32/f64 kernels only
  namespace cpu = kernels::cpu;
  if (fast_path(x)) {
    auto [y, ws] = cpu::max_pool3d_forward(x, opt);
    attach("max_pool3d", {x}, {y},
           [xs = SavedTensor(x, "max_pool3d"), wss = SavedTensor(ws, "max_pool3d"), opt](const Grads& g, const Node&) {
             return Grads{cpu::max_pool3d_backward(g[0], wss.unpack(), xs.unpack(), opt)};
           });
    return y;
  }
  auto [y, indices] = k::max_pool3d_forward(x, opt);
  attach("max_pool3d", {x}, {y},
         [idx = SavedTensor(indices, "max_pool3d"), shape = x.shape()](const Grads& g, const Node&) {
           return Grads{k::max_pool3d_backward(g[0], idx.unpack(), shape)};
         });
  return y;
}

Tensor avg_pool3d(const Tensor& x_in, const Pool3dOptions& opt) {
  const Tensor x = autograd::widen_half(x_in);  // Note [Autocast]: f32/f64 kernels only
  namespace cpu = kernels::cpu;
  if (fast_path(x)) {
    Tensor y = cpu::avg_pool3d_forward(x, opt);
    attach("avg_pool3d", {x}, {y}, [xs = SavedTensor(x, "avg_pool3d"), opt](const Grads& g, const Node&) {
      return Grads{cpu::avg_pool3d_backward(g[0], xs.unpack(), opt)};
    });
    return y;
  }
  Tensor y = k::avg_pool3d_forward(x, opt);
  attach("avg_pool3d", {x}, {y}, [shape = x.shape(), opt](const Grads& g, const Node&) {
    return Grads{k::avg_pool3d_backward(g[0], shape, opt)};
  });
  return y;
}

Tensor adaptive_avg_pool3d(const Tensor& x_in, Int3 output_size) {
  const Tensor x = autograd::widen_half(x_in);  // Note [Autocast]: f32/f64 kernels only
  namespace cpu = kernels::cpu;
  if (fast_path(x) && output_size == Int3{1, 1, 1}) {
    Tensor y = cpu::global_avg_pool3d_forward(x);
    attach("adaptive_avg_pool3d", {x}, {y}, [xs = SavedTensor(x, "adaptive_avg_pool3d")](const Grads& g, const Node&) {
      return Grads{cpu::global_avg_pool3d_backward(g[0], xs.unpack())};
    });
    return y;
  }
  Tensor y = k::adaptive_avg_pool3d_forward(x, output_size);
  attach("adaptive_avg_pool3d", {x}, {y}, [shape = x.shape()](const Grads& g, const Node&) {
    return Grads{k::adaptive_avg_pool3d_backward(g[0], shape)};
  });
  return y;
}

Tensor global_avg_pool3d(const Tensor& x) { return adaptive_avg_pool3d(x, {1, 1, 1}); }

}  // namespace tlk::ops
