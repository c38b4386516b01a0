#include "tlk/task/slice_figure.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "tlk/tensor/error.h"

namespace tlk::task {

namespace {
constexpr std::array<std::array<int, 3>, 6> kColours{{{230, 40, 40}, {40, 200, 60}, {50, 90, 240},
                                                       {240, 200, 30}, {200, 60, 220}, {40, 210, 220}}};
}  // namespace

Tensor render_slices(const Tensor& ct_slice, const std::vector<SlicePanel>& panels, int zoom) {
  check(zoom >= 1 && zoom <= 16, "render_slices: zoom must be in [1, 16], got {}", zoom);
  check(ct_slice.dim() == 2, "render_slices: expected a 2-D slice, got {}", ct_slice.shape().str());
  check(!panels.empty(), "render_slices: no panels");
  const Tensor ct = ct_slice.to(DType::f32).contiguous();
  const std::int64_t H = ct.size(0), W = ct.size(1), P = static_cast<std::int64_t>(panels.size());
  const std::int64_t Z = zoom, row = W * P * Z * 3;
  Tensor out = Tensor::empty({H * Z, W * P * Z, 3}, TensorOptions{}.with(DType::u8));
  std::uint8_t* o = out.data<std::uint8_t>();
  for (std::int64_t p = 0; p < P; ++p) {
    const Tensor labels = panels[p].labels.defined() ? panels[p].labels.to(DType::u8).contiguous() : Tensor();
    check(!labels.defined() || labels.shape() == ct.shape(), "render_slices: panel '{}' labels {} differ from the "
          "slice {}", panels[p].title, labels.defined() ? labels.shape().str() : "", ct.shape().str());
    for (std::int64_t y = 0; y < H; ++y)
      for (std::int64_t x = 0; x < W; ++x) {
        // Canonical y grows towards anterior; images show anterior at the top.
        const std::int64_t src = (H - 1 - y) * W + x;
        const float hu = ct.data<float>()[src];
        const auto grey = static_cast<int>(std::clamp((hu + 160.0f) / 400.0f, 0.0f, 1.0f) * 255.0f);
        std::array<int, 3> rgb{grey, grey, grey};
        const int label = labels.defined() ? labels.data<std::uint8_t>()[src] : 0;
        if (label > 0) {
          const auto& c = kColours[(label - 1) % kColours.size()];
          for (int k = 0; k < 3; ++k) rgb[k] = (rgb[k] * 2 + c[k] * 3) / 5;
        }
        for (std::int64_t dy = 0; dy < Z; ++dy)
          for (std::int64_t dx = 0; dx < Z; ++dx) {
            std::uint8_t* px = o + (y * Z + dy) * row + ((p * W + x) * Z + dx) * 3;
            for (int k = 0; k < 3; ++k) px[k] = static_cast<std::uint8_t>(rgb[k]);
          }
      }
  }
  return out;
}

std::int64_t busiest_slice(const Tensor& labels_in) {
  check(labels_in.dim() == 3, "busiest_slice: expected [D, H, W], got {}", labels_in.shape().str());
  const Tensor labels = labels_in.to(DType::u8).contiguous();
  const std::int64_t D = labels.size(0), plane = labels.size(1) * labels.size(2);
  std::int64_t best = D / 2, best_count = 0;
  for (std::int64_t z = 0; z < D; ++z) {
    const std::uint8_t* s = labels.data<std::uint8_t>() + z * plane;
    const auto count = static_cast<std::int64_t>(std::count_if(s, s + plane, [](std::uint8_t v) { return v > 0; }));
    if (count > best_count) best = z, best_count = count;
  }
  return best;
}

Tensor axial_slice(const Tensor& volume_in, std::int64_t z) {
  check(volume_in.dim() == 3 && z >= 0 && z < volume_in.size(0), "axial_slice: slice {} of a volume {}", z,
        volume_in.shape().str());
  const Tensor volume = volume_in.contiguous();
  const std::int64_t H = volume.size(1), W = volume.size(2);
  Tensor out = Tensor::empty({H, W}, TensorOptions{}.with(volume.dtype()));
  const std::size_t bytes = element_size(volume.dtype()) * static_cast<std::size_t>(H * W);
  std::memcpy(out.raw_data(), static_cast<const char*>(volume.raw_data()) + bytes * z, bytes);
  return out;
}

}  // namespace tlk::task
