#include "tlk/data/crop.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "tlk/tensor/error.h"
#include "tlk/tensor/strided_copy.h"

namespace tlk::data {

namespace {

int leading_axes(const Tensor& t, const char* op) {
  check(t.dim() == 3 || t.dim() == 4, "{}: expected a [D, H, W] or [C, D, H, W] volume, got shape {}", op,
        t.shape().str());
  check(t.device().is_cpu(), "{}: expected a CPU tensor, got one on {}", op, t.device().str());
  return t.dim() - 3;
}

void check_box(const BoundingBox& box, const std::array<std::int64_t, 3>& shape, const char* op) {
  for (std::size_t a = 0; a < 3; ++a)
    check(box.begin[a] >= 0 && box.begin[a] <= box.end[a] && box.end[a] <= shape[a],
          "{}: box {} does not fit a volume of spatial shape [{}, {}, {}]", op, box.str(), shape[0], shape[1],
          shape[2]);
}

template <class T>
bool nonzero(T v) {
  return v != T(0);  // true for NaN as well
}

}  // namespace

std::string BoundingBox::str() const {
  return fmt::format("[{}:{}, {}:{}, {}:{}]", begin[0], end[0], begin[1], end[1], begin[2], end[2]);
}

BoundingBox nonzero_bounding_box(const Tensor& volume) {
  const int lead = leading_axes(volume, "nonzero_bounding_box");
  const Tensor v = volume.to(Layout::plain).contiguous();
  const std::int64_t C = lead ? v.shape()[0] : 1, D = v.shape()[lead], H = v.shape()[lead + 1], W = v.shape()[lead + 2];
  BoundingBox whole{{0, 0, 0}, {D, H, W}};
  // Per slice z: the y and x range of nonzero voxels over all channels (empty: lo > hi).
  constexpr std::int64_t kNone = std::numeric_limits<std::int64_t>::max();
  std::vector<std::array<std::int64_t, 4>> slice(static_cast<std::size_t>(D), {kNone, -1, kNone, -1});
  visit_cpu_dtype(v.dtype(), "nonzero_bounding_box", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* p = v.data<T>();
#pragma omp parallel for schedule(static) if (C * D * H * W > (1 << 16))
    for (std::int64_t z = 0; z < D; ++z) {
      auto& r = slice[static_cast<std::size_t>(z)];
      for (std::int64_t c = 0; c < C; ++c)
        for (std::int64_t y = 0; y < H; ++y) {
          const T* row = p + ((c * D + z) * H + y) * W;
          std::int64_t x0 = 0;
          while (x0 < W && !nonzero(row[x0])) ++x0;
          if (x0 == W) continue;
          std::int64_t x1 = W - 1;
          while (!nonzero(row[x1])) --x1;
          r[0] = std::min(r[0], y);
          r[1] = std::max(r[1], y);
          r[2] = std::min(r[2], x0);
          r[3] = std::max(r[3], x1);
        }
    }
  });
  BoundingBox box{{kNone, kNone, kNone}, {-1, -1, -1}};
  for (std::int64_t z = 0; z < D; ++z) {
    const auto& r = slice[static_cast<std::size_t>(z)];
    if (r[1] < 0) continue;
    box.begin[0] = std::min(box.begin[0], z);
    box.end[0] = z + 1;
    box.begin[1] = std::min(box.begin[1], r[0]);
    box.end[1] = std::max(box.end[1], r[1] + 1);
    box.begin[2] = std::min(box.begin[2], r[2]);
    box.end[2] = std::max(box.end[2], r[3] + 1);
  }
  return box.end[0] < 0 ? whole : box;
}

Tensor crop(const Tensor& volume, const BoundingBox& box) {
  const int lead = leading_axes(volume, "crop");
  check_box(box, {volume.shape()[lead], volume.shape()[lead + 1], volume.shape()[lead + 2]}, "crop");
  Tensor v = volume.detach().layout() == Layout::blocked ? volume.detach().to(Layout::plain) : volume.detach();
  for (int a = 0; a < 3; ++a)
    v = v.narrow(lead + a, box.begin[static_cast<std::size_t>(a)], box.shape()[static_cast<std::size_t>(a)]);
  Tensor out = Tensor::empty(v.shape(), TensorOptions{volume.dtype(), volume.device()});
  if (out.numel() > 0) detail::copy_strided(out, v);
  return out;
}

Tensor uncrop(const Tensor& cropped, const BoundingBox& box, const std::array<std::int64_t, 3>& full_shape,
              double fill) {
  const int lead = leading_axes(cropped, "uncrop");
  check_box(box, full_shape, "uncrop");
  for (int a = 0; a < 3; ++a)
    check(cropped.shape()[lead + a] == box.shape()[static_cast<std::size_t>(a)],
          "uncrop: cropped volume of shape {} does not have the box {}'s shape", cropped.shape().str(), box.str());
  Shape shape = cropped.shape();
  for (int a = 0; a < 3; ++a) shape[lead + a] = full_shape[static_cast<std::size_t>(a)];
  Tensor out = Tensor::full(shape, fill, TensorOptions{cropped.dtype(), cropped.device()});
  Tensor inside = out;
  for (int a = 0; a < 3; ++a)
    inside = inside.narrow(lead + a, box.begin[static_cast<std::size_t>(a)], box.shape()[static_cast<std::size_t>(a)]);
  const Tensor src =
      cropped.detach().layout() == Layout::blocked ? cropped.detach().to(Layout::plain) : cropped.detach();
  if (inside.numel() > 0) detail::copy_strided(inside, src);
  return out;
}

}  // namespace tlk::data
