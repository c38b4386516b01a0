#include "tlk/autograd/ops/view.h"

#include <algorithm>

#include "tlk/autograd/grad_mode.h"
#include "tlk/autograd/ops/op_support.h"
#include "tlk/kernels/cpu/concat.h"
#include "tlk/kernels/ref/elementwise.h"

namespace tlk::ops {

namespace {

Shape infer_shape(const Shape& requested, std::int64_t numel, const Shape& from) {
  Shape shape = requested;
  int unknown = -1;
  std::int64_t known = 1;
  for (int i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      check(unknown < 0, "reshape: more than one -1 in {}", requested.str());
      unknown = i;
    } else {
      check(shape[i] >= 0, "reshape: negative extent in {}", requested.str());
      known *= shape[i];
    }
  }
  if (unknown >= 0) {
    check(known > 0 && numel % known == 0, "reshape: cannot reshape {} ({} elements) to {}", from.str(), numel,
          requested.str());
    shape[unknown] = numel / known;
  }
  check(shape.numel() == numel, "reshape: cannot reshape {} ({} elements) to {} ({} elements)", from.str(), numel,
        shape.str(), shape.numel());
  return shape;
}

}  // namespace

Tensor reshape(const Tensor& x, const Shape& requested) {
  check(x.defined(), "reshape: input is undefined");
  const Shape shape = infer_shape(requested, x.numel(), x.shape());
  Tensor base = x.is_contiguous() ? x : x.detach().contiguous();
  Tensor y = make_view(base, shape, contiguous_strides(shape), base.offset());
  attach("reshape", {x}, {y}, [in = x.shape()](const Grads& g, const Node&) {
    Tensor gc = g[0].contiguous();
    return Grads{make_view(gc, in, contiguous_strides(in), gc.offset())};
  });
  return y;
}

Tensor flatten(const Tensor& x, int start, int end) {
  const int nd = x.dim();
  if (nd == 0) return reshape(x, Shape{1});
  start = normalize_axis(start, nd, "flatten");
  end = normalize_axis(end, nd, "flatten");
  check(start <= end, "flatten: start axis {} is after end axis {}", start, end);
  Shape shape;
  for (int i = 0; i < start; ++i) shape.push_back(x.shape()[i]);
  std::int64_t merged = 1;
  for (int i = start; i <= end; ++i) merged *= x.shape()[i];
  shape.push_back(merged);
  for (int i = end + 1; i < nd; ++i) shape.push_back(x.shape()[i]);
  return reshape(x, shape);
}

Tensor narrow(const Tensor& x, int dim, std::int64_t start, std::int64_t length) {
  check(x.defined(), "narrow: input is undefined");
  dim = normalize_axis(dim, x.dim(), "narrow");
  const std::int64_t extent = x.shape()[dim];
  check(start >= 0 && length >= 0 && start + length <= extent,
        "narrow: range [{}, {}) is outside dimension {} of extent {} (shape {})", start, start + length, dim, extent,
        x.shape().str());
  Tensor base = x.layout() == Layout::blocked ? x.detach().to(Layout::plain) : x;
  Shape shape = base.shape();
  shape[dim] = length;
  Tensor y = make_view(base, shape, base.strides(), base.offset() + start * base.strides()[dim]);
  attach("narrow", {x}, {y}, [in = x.shape(), dim, start](const Grads& g, const Node&) {
    Tensor full = Tensor::zeros(in, TensorOptions{g[0].dtype(), g[0].device()});
    Tensor window = make_view(full, g[0].shape(), full.strides(), start * full.strides()[dim]);
    window.copy_(g[0]);
    return Grads{full};
  });
  return y;
}

Tensor permute(const Tensor& x, const std::vector<int>& order) {
  check(x.defined(), "permute: input is undefined");
  const int nd = x.dim();
  check(static_cast<int>(order.size()) == nd, "permute: order has {} entries for a {}-D tensor", order.size(), nd);
  std::vector<bool> used(static_cast<std::size_t>(nd), false);
  Shape shape;
  Dims strides;
  Tensor base = x.layout() == Layout::blocked ? x.detach().to(Layout::plain) : x;
  std::vector<int> inverse(static_cast<std::size_t>(nd));
  for (int i = 0; i < nd; ++i) {
    const int a = normalize_axis(order[static_cast<std::size_t>(i)], nd, "permute");
    check(!used[static_cast<std::size_t>(a)], "permute: axis {} appears twice", a);
    used[static_cast<std::size_t>(a)] = true;
    shape.push_back(base.shape()[a]);
    strides.push_back(base.strides()[a]);
    inverse[static_cast<std::size_t>(a)] = i;
  }
  Tensor y = make_view(base, shape, strides, base.offset());
  attach("permute", {x}, {y}, [inverse](const Grads& g, const Node&) {
    // Materialise so the leaf's gradient is contiguous.
    NoGradGuard guard;
    return Grads{permute(g[0], inverse).contiguous()};
  });
  return y;
}

std::vector<Tensor> split(const Tensor& x, const std::vector<std::int64_t>& sizes, int dim) {
  check(x.defined(), "split: input is undefined");
  dim = normalize_axis(dim, x.dim(), "split");
  std::int64_t total = 0;
  for (auto s : sizes) {
    check(s >= 0, "split: negative size {} in the sizes", s);
    total += s;
  }
  check(total == x.shape()[dim], "split: sizes add up to {}, but dimension {} of {} has extent {}", total, dim,
        x.shape().str(), x.shape()[dim]);
  Tensor base = x.layout() == Layout::blocked ? x.detach().to(Layout::plain) : x;
  std::vector<Tensor> pieces;
  std::int64_t start = 0;
  for (auto s : sizes) {
    Shape shape = base.shape();
    shape[dim] = s;
    pieces.push_back(make_view(base, shape, base.strides(), base.offset() + start * base.strides()[dim]));
    start += s;
  }
  attach("split", {x}, pieces, [dim](const Grads& g, const Node&) {
    NoGradGuard guard;
    return Grads{cat(g, dim)};
  });
  return pieces;
}

Tensor cat(const std::vector<Tensor>& tensors, int dim) {
  check(!tensors.empty(), "cat: no tensors given");
  for (std::size_t i = 0; i < tensors.size(); ++i) check(tensors[i].defined(), "cat: tensor {} is undefined", i);
  const Tensor& first = tensors.front();
  dim = normalize_axis(dim, first.dim(), "cat");
  Shape shape = first.shape();
  std::int64_t total = 0;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    check(t.dim() == first.dim(), "cat: tensor {} has {} dimensions, tensor 0 has {}", i, t.dim(), first.dim());
    check(t.dtype() == first.dtype() && t.device() == first.device(),
          "cat: tensor {} is {} on {}, tensor 0 is {} on {}", i, dtype_name(t.dtype()), t.device().str(),
          dtype_name(first.dtype()), first.device().str());
    for (int d = 0; d < t.dim(); ++d)
      check(d == dim || t.shape()[d] == first.shape()[d],
            "cat: tensor {} has shape {}, which differs from tensor 0's {} outside dimension {}", i, t.shape().str(),
            first.shape().str(), dim);
    total += t.shape()[dim];
  }
  shape[dim] = total;
  // Note [Concat dispatch]: 5-D f32 CPU tensors joined along channels (the UNet's skip connections)
  // take the fast path, which stays in the channel-blocked layout (kernels/cpu/concat.h); every other
  // case, f64 included, copies through strided views below.
  if (kernels::cpu::concat_supported(tensors, dim)) {
    std::vector<std::int64_t> channels;
    for (const Tensor& t : tensors) channels.push_back(t.shape()[1]);
    Tensor y = kernels::cpu::concat_channels(tensors);
    attach("cat", tensors, {y}, [channels](const Grads& g, const Node& self) {
      Grads out = kernels::cpu::concat_channels_backward(g[0], channels);
      for (std::size_t i = 0; i < out.size(); ++i)
        if (!self.needs_input_grad(static_cast<int>(i))) out[i] = Tensor();
      return out;
    });
    return y;
  }
  Tensor y = Tensor::empty(shape, TensorOptions{first.dtype(), first.device()});
  // Note [Channels-last concat]: GPU tensors that are all channels-last (the UNet's skip connections
  // under Note [Channels-last on the GPU]) are joined into a channels-last result, and the backward
  // hands each its gradient channels-last; the copies below follow any strides.
  const bool channels_last = first.device().is_cuda() && y.dim() == 5 &&
                             std::all_of(tensors.begin(), tensors.end(),
                                         [](const Tensor& t) { return has_channels_last_strides(t); });
  if (channels_last) y.impl().strides = channels_last_strides(shape);
  std::vector<std::int64_t> extents;
  std::int64_t offset = 0;
  for (const Tensor& t : tensors) {
    Shape part = y.shape();
    part[dim] = t.shape()[dim];
    make_view(y, part, y.strides(), offset * y.strides()[dim]).copy_(t);
    extents.push_back(t.shape()[dim]);
    offset += t.shape()[dim];
  }
  attach("cat", tensors, {y}, [dim, extents, channels_last](const Grads& g, const Node& self) {
    Grads out;
    std::int64_t start = 0;
    NoGradGuard guard;
    const Layout layout = channels_last ? Layout::channels_last : Layout::plain;
    for (std::size_t i = 0; i < extents.size(); ++i) {
      if (self.needs_input_grad(static_cast<int>(i)))
        out.push_back(narrow(g[0], dim, start, extents[i]).to(layout));
      else
        out.push_back(Tensor());
      start += extents[i];
    }
    return out;
  });
  return y;
}

}  // namespace tlk::ops

namespace tlk {

Tensor Tensor::reshape(const Shape& shape) const { return ops::reshape(*this, shape); }
Tensor Tensor::flatten(int start, int end) const { return ops::flatten(*this, start, end); }
Tensor Tensor::narrow(int dim, std::int64_t start, std::int64_t length) const {
  return ops::narrow(*this, dim, start, length);
}
Tensor Tensor::permute(const std::vector<int>& order) const { return ops::permute(*this, order); }

}  // namespace tlk
