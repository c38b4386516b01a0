#include "tlk/autograd/ops/upsample3d.h"

#include "tlk/autograd/autocast.h"
#include "tlk/autograd/ops/op_support.h"
#include "tlk/kernels/cpu/upsample3d.h"
#include "tlk/kernels/ref/upsample3d.h"

namespace tlk::ops {

// Note [Upsample3d dispatch]: f32 on the CPU takes the fast path (kernels/cpu/upsample3d.h, oneDNN
// resampling in the input's layout) in the cases where oneDNN's index math equals PyTorch's (Note
// [oneDNN resampling vs PyTorch]: nearest with integer factors, trilinear without align_corners at an
// exact in / out scale) and a blocked or channels-last input; everything else, and f64, takes the
// reference kernels. A plain row-major input stays there too: oneDNN 2.6 resamples ncdhw with generic
// code, slower than ours (trilinear x2 of [2, 32, 32, 32, 32]: 439 ms vs 343 ms; blocked 39 ms).
Tensor upsample3d(const Tensor& x_in, const Upsample3dOptions& opt) {
  const Tensor x = autograd::widen_half(x_in);  // Note [Autocast]: f32/f64 kernels only
  namespace cpu = kernels::cpu;
  if (cpu::upsample3d_supported(x, opt) && (x.layout() == Layout::blocked || x.layout() == Layout::channels_last)) {
    Tensor y = cpu::upsample3d_forward(x, opt);
    attach("upsample3d", {x}, {y}, [xs = SavedTensor(x, "upsample3d"), opt](const Grads& g, const Node&) {
      return Grads{cpu::upsample3d_backward(g[0], xs.unpack(), opt)};
    });
    return y;
  }
  Tensor y = k::upsample3d_forward(x, opt);
  attach("upsample3d", {x}, {y}, [shape = x.shape(), opt](const Grads& g, const Node&) {
    return Grads{k::upsample3d_backward(g[0], shape, opt)};
  });
  return y;
}

}  // namespace tlk::ops
