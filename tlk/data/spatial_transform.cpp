#include "tlk/data/spatial_transform.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>

#include "tlk/kernels/augment_voxel.h"
#include "tlk/tensor/error.h"

namespace tlk::data {
namespace {

/// A checked CPU patch: contiguous f32 image and (optional) contiguous u8 labels of the same extent.
struct PatchView {
  Tensor image;
  Tensor labels;
  std::int64_t channels = 0;
  Extent3 extent{};
};

PatchView check_patch(const char* op, const Tensor& image, const Tensor& labels) {
  check(image.defined(), "{}: the image is undefined", op);
  check(image.dim() == 4, "{}: expected an image [C, D, H, W], got shape {}", op, image.shape().str());
  check(image.device().is_cpu(), "{}: expected a CPU image, got one on {}", op, image.device().str());
  PatchView v;
  v.image = image.to(Layout::plain).to(DType::f32).contiguous();
  v.channels = image.size(0);
  v.extent = {image.size(1), image.size(2), image.size(3)};
  check(v.channels > 0 && v.extent[0] > 0 && v.extent[1] > 0 && v.extent[2] > 0, "{}: the image {} is empty", op,
        image.shape().str());
  if (labels.defined()) {
    check(labels.dim() == 3 && labels.size(0) == v.extent[0] && labels.size(1) == v.extent[1] &&
              labels.size(2) == v.extent[2],
          "{}: labels {} do not match the image {} (expected [D, H, W] = [{}, {}, {}])", op, labels.shape().str(),
          image.shape().str(), v.extent[0], v.extent[1], v.extent[2]);
    check(labels.dtype() == DType::u8, "{}: expected u8 labels, got {}", op, dtype_name(labels.dtype()));
    check(labels.device().is_cpu(), "{}: expected CPU labels, got them on {}", op, labels.device().str());
    v.labels = labels.contiguous();
  }
  return v;
}

void check_extent(const char* op, const Extent3& out) {
  check(out[0] > 0 && out[1] > 0 && out[2] > 0, "{}: the output extent must be positive, got [{}, {}, {}]", op, out[0],
        out[1], out[2]);
}

int thread_count(int requested) { return requested > 0 ? requested : omp_get_max_threads(); }

Matrix3 multiply(const Matrix3& a, const Matrix3& b) {
  Matrix3 r{};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) r[i][j] = a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j];
  return r;
}

}  // namespace

std::int64_t centre_crop_start(std::int64_t in, std::int64_t out) {
  const std::int64_t diff = in - out;
  return diff >= 0 ? diff / 2 : -((-diff + 1) / 2);
}

Matrix3 rotation_scale_matrix(std::array<double, 3> angles_rad, std::array<double, 3> scales) {
  const double c0 = std::cos(angles_rad[0]), s0 = std::sin(angles_rad[0]);
  const double c1 = std::cos(angles_rad[1]), s1 = std::sin(angles_rad[1]);
  const double c2 = std::cos(angles_rad[2]), s2 = std::sin(angles_rad[2]);
  const Matrix3 r0{{{1, 0, 0}, {0, c0, -s0}, {0, s0, c0}}};
  const Matrix3 r1{{{c1, 0, s1}, {0, 1, 0}, {-s1, 0, c1}}};
  const Matrix3 r2{{{c2, -s2, 0}, {s2, c2, 0}, {0, 0, 1}}};
  const Matrix3 s{{{scales[0], 0, 0}, {0, scales[1], 0}, {0, 0, scales[2]}}};
  return multiply(multiply(multiply(r0, r1), r2), s);
}

SpatialDraw draw_spatial(const RotationOptions& rotation, const ScalingOptions& scaling, Generator& gen) {
  SpatialDraw d;
  const bool rotate = gen.uniform() < rotation.probability;
  const bool scale = gen.uniform() < scaling.probability;
  if (rotate) {
    for (int a = 0; a < 3; ++a) {
      if (gen.uniform() < rotation.probability_per_axis) {
        const auto& r = rotation.angle_range_deg[static_cast<std::size_t>(a)];
        d.angles_rad[static_cast<std::size_t>(a)] = gen.uniform(r[0], r[1]) * std::numbers::pi / 180.0;
      }
    }
  }
  if (scale) d.scale = gen.uniform(scaling.range[0], scaling.range[1]);
  d.transformed = rotate || scale;
  const double s0 = scaling.scale_axis0 ? d.scale : 1.0;
  d.matrix = rotation_scale_matrix(d.angles_rad, {s0, d.scale, d.scale});
  return d;
}

AugmentedPatch centre_crop(const Tensor& image, const Tensor& labels, Extent3 out) {
  const PatchView v = check_patch("data::centre_crop", image, labels);
  check_extent("data::centre_crop", out);
  const Extent3& in = v.extent;
  const Extent3 start{centre_crop_start(in[0], out[0]), centre_crop_start(in[1], out[1]),
                      centre_crop_start(in[2], out[2])};
  AugmentedPatch p;
  const bool pads = start[0] < 0 || start[1] < 0 || start[2] < 0 || start[0] + out[0] > in[0] ||
                    start[1] + out[1] > in[1] || start[2] + out[2] > in[2];
  p.image =
      pads ? Tensor::zeros({v.channels, out[0], out[1], out[2]}) : Tensor::empty({v.channels, out[0], out[1], out[2]});
  if (v.labels.defined())
    p.labels = pads ? Tensor::zeros({out[0], out[1], out[2]}, TensorOptions{}.with(DType::u8))
                    : Tensor::empty({out[0], out[1], out[2]}, TensorOptions{}.with(DType::u8));
  // The overlap of the crop window with the input, in output coordinates.
  Extent3 lo{}, hi{};
  for (int a = 0; a < 3; ++a) {
    lo[a] = std::max<std::int64_t>(0, -start[a]);
    hi[a] = std::min<std::int64_t>(out[a], in[a] - start[a]);
  }
  if (lo[0] >= hi[0] || lo[1] >= hi[1] || lo[2] >= hi[2]) return p;
  const float* src = v.image.data<float>();
  float* dst = p.image.data<float>();
  const std::uint8_t* lsrc = v.labels.defined() ? v.labels.data<std::uint8_t>() : nullptr;
  std::uint8_t* ldst = p.labels.defined() ? p.labels.data<std::uint8_t>() : nullptr;
  const std::int64_t row = hi[2] - lo[2];
  for (std::int64_t c = 0; c < v.channels; ++c) {
    for (std::int64_t z = lo[0]; z < hi[0]; ++z) {
      for (std::int64_t y = lo[1]; y < hi[1]; ++y) {
        const std::int64_t si = ((c * in[0] + z + start[0]) * in[1] + y + start[1]) * in[2] + lo[2] + start[2];
        const std::int64_t di = ((c * out[0] + z) * out[1] + y) * out[2] + lo[2];
        std::memcpy(dst + di, src + si, static_cast<std::size_t>(row) * sizeof(float));
      }
    }
  }
  if (ldst) {
    for (std::int64_t z = lo[0]; z < hi[0]; ++z) {
      for (std::int64_t y = lo[1]; y < hi[1]; ++y) {
        const std::int64_t si = ((z + start[0]) * in[1] + y + start[1]) * in[2] + lo[2] + start[2];
        const std::int64_t di = (z * out[1] + y) * out[2] + lo[2];
        std::memcpy(ldst + di, lsrc + si, static_cast<std::size_t>(row));
      }
    }
  }
  return p;
}

namespace {

/// One resampling's buffers and geometry. The voxel loop copies it into local scalars: the u8 label
/// stores may alias anything the compiler reads through memory, which would force reloads per voxel.
struct Sampler {
  const float* src = nullptr;
  float* dst = nullptr;
  const std::uint8_t* lsrc = nullptr;
  std::uint8_t* ldst = nullptr;
  std::int64_t channels = 0, in0 = 0, in1 = 0, in2 = 0, out_volume = 0;
  double step_z = 0, step_y = 0, step_x = 0;  ///< input displacement per output x step (column 2 of m)
};

/// Samples `count` output voxels from linear index `out_index`, the first reading input (bz, by, bx).
void sample_span(const Sampler& g, std::int64_t out_index, double bz, double by, double bx, std::int64_t count) {
  const float* const src = g.src;
  float* const dst = g.dst;
  const std::uint8_t* const lsrc = g.lsrc;
  std::uint8_t* const ldst = g.ldst;
  const std::int64_t channels = g.channels, in0 = g.in0, in1 = g.in1, in2 = g.in2, out_volume = g.out_volume;
  const double sz = g.step_z, sy = g.step_y, sx = g.step_x;
  for (std::int64_t i = 0; i < count; ++i) {
    const double t = static_cast<double>(i);
    kernels::augment::sample_voxel(src, dst, lsrc, ldst, channels, in0, in1, in2, out_volume, out_index + i,
                                   bz + sz * t, by + sy * t, bx + sx * t);
  }
}

}  // namespace

AugmentedPatch resample_patch(const Tensor& image, const Tensor& labels, Extent3 out, const Matrix3& m,
                              int num_threads) {
  const PatchView v = check_patch("data::resample_patch", image, labels);
  check_extent("data::resample_patch", out);
  const Extent3 in = v.extent;
  AugmentedPatch p;
  p.image = Tensor::empty({v.channels, out[0], out[1], out[2]});
  if (v.labels.defined()) p.labels = Tensor::empty({out[0], out[1], out[2]}, TensorOptions{}.with(DType::u8));
  Sampler g;
  g.src = v.image.data<float>();
  g.dst = p.image.data<float>();
  g.lsrc = v.labels.defined() ? v.labels.data<std::uint8_t>() : nullptr;
  g.ldst = p.labels.defined() ? p.labels.data<std::uint8_t>() : nullptr;
  g.channels = v.channels;
  g.in0 = in[0];
  g.in1 = in[1];
  g.in2 = in[2];
  g.out_volume = out[0] * out[1] * out[2];
  g.step_z = m[0][2];
  g.step_y = m[1][2];
  g.step_x = m[2][2];
  const Matrix3 mat = m;
  std::array<double, 3> c_out{}, c_in{};
  for (int a = 0; a < 3; ++a) {
    c_out[a] = static_cast<double>(out[a] - 1) / 2.0;
    c_in[a] = static_cast<double>(centre_crop_start(in[a], out[a])) + c_out[a];
  }
  // Note [Tiled sampling]: a rotated output row walks diagonally through the input, so the output is
  // sampled in 16^3 tiles whose input footprint (about 40^3 floats at scale 1.4) stays in cache. The
  // GPU kernel starts its position sums from the same tile origins (kernels/augment_voxel.h).
  constexpr std::int64_t kTile = kernels::augment::kResampleTile;
  const std::int64_t tiles_z = (out[0] + kTile - 1) / kTile, tiles_y = (out[1] + kTile - 1) / kTile,
                     tiles_x = (out[2] + kTile - 1) / kTile;
#pragma omp parallel for collapse(3) schedule(static) num_threads(thread_count(num_threads))
  for (std::int64_t tz = 0; tz < tiles_z; ++tz) {
    for (std::int64_t ty = 0; ty < tiles_y; ++ty) {
      for (std::int64_t tx = 0; tx < tiles_x; ++tx) {
        const std::int64_t x0 = tx * kTile, x1 = std::min(out[2], x0 + kTile);
        for (std::int64_t z = tz * kTile; z < std::min(out[0], (tz + 1) * kTile); ++z) {
          for (std::int64_t y = ty * kTile; y < std::min(out[1], (ty + 1) * kTile); ++y) {
            const double qz = static_cast<double>(z) - c_out[0], qy = static_cast<double>(y) - c_out[1];
            const double qx = static_cast<double>(x0) - c_out[2];
            std::array<double, 3> b{};
            for (std::size_t a = 0; a < 3; ++a) b[a] = c_in[a] + mat[a][0] * qz + mat[a][1] * qy + mat[a][2] * qx;
            sample_span(g, (z * out[1] + y) * out[2] + x0, b[0], b[1], b[2], x1 - x0);
          }
        }
      }
    }
  }
  return p;
}

std::array<bool, 3> draw_mirror(const MirrorOptions& options, Generator& gen) {
  std::array<bool, 3> axes{};
  for (std::size_t a = 0; a < 3; ++a) axes[a] = gen.uniform() < options.probability_per_axis[a];
  return axes;
}

void mirror_(AugmentedPatch& patch, std::array<bool, 3> axes, int num_threads) {
  if (!axes[0] && !axes[1] && !axes[2]) return;
  const PatchView v = check_patch("data::mirror_", patch.image, patch.labels);
  const Extent3& e = v.extent;
  const std::int64_t channels = v.channels;
  Tensor image = Tensor::empty(v.image.shape());
  Tensor labels = v.labels.defined() ? empty_like(v.labels) : Tensor();
  const float* src = v.image.data<float>();
  float* dst = image.data<float>();
  const std::uint8_t* lsrc = labels.defined() ? v.labels.data<std::uint8_t>() : nullptr;
  std::uint8_t* ldst = labels.defined() ? labels.data<std::uint8_t>() : nullptr;
  const std::int64_t rows = channels * e[0] * e[1];
#pragma omp parallel for schedule(static) num_threads(thread_count(num_threads))
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t c = r / (e[0] * e[1]), z = (r / e[1]) % e[0], y = r % e[1];
    const std::int64_t sz = axes[0] ? e[0] - 1 - z : z, sy = axes[1] ? e[1] - 1 - y : y;
    const std::int64_t src_row = ((c * e[0] + sz) * e[1] + sy) * e[2];
    const float* s = src + src_row;
    float* d = dst + r * e[2];
    if (axes[2]) {
      for (std::int64_t x = 0; x < e[2]; ++x) d[x] = s[e[2] - 1 - x];
    } else {
      std::memcpy(d, s, static_cast<std::size_t>(e[2]) * sizeof(float));
    }
    if (ldst && c == 0) {
      const std::uint8_t* ls = lsrc + (sz * e[1] + sy) * e[2];
      std::uint8_t* ld = ldst + (z * e[1] + y) * e[2];
      if (axes[2]) {
        for (std::int64_t x = 0; x < e[2]; ++x) ld[x] = ls[e[2] - 1 - x];
      } else {
        std::memcpy(ld, ls, static_cast<std::size_t>(e[2]));
      }
    }
  }
  patch.image = image;
  patch.labels = labels;
}

Extent3 enlarged_patch_size(Extent3 patch, const RotationOptions& rotation, const ScalingOptions& scaling) {
  check_extent("data::enlarged_patch_size", patch);
  const bool rotates = rotation.probability > 0 && rotation.probability_per_axis > 0;
  std::array<double, 3> angle{};
  for (std::size_t a = 0; a < 3; ++a) {
    const auto& r = rotation.angle_range_deg[a];
    const double deg = rotates ? std::min(90.0, std::max(std::abs(r[0]), std::abs(r[1]))) : 0.0;
    angle[a] = deg * std::numbers::pi / 180.0;
  }
  const double d = static_cast<double>(patch[0]), h = static_cast<double>(patch[1]), w = static_cast<double>(patch[2]);
  std::array<double, 3> size{d, h, w};
  // The corner (d, h, w) as a row vector times rotate_coords_3d's matrix for one axis (Note [Enlarged
  // patch size]); every component is kept by absolute value.
  const auto keep = [&size](double z, double y, double x) {
    size[0] = std::max(size[0], std::abs(z));
    size[1] = std::max(size[1], std::abs(y));
    size[2] = std::max(size[2], std::abs(x));
  };
  {
    const double c = std::cos(angle[0]), s = std::sin(angle[0]);
    keep(d, h * c + w * s, w * c - h * s);
  }
  {
    const double c = std::cos(angle[1]), s = std::sin(angle[1]);
    keep(d * c - w * s, h, d * s + w * c);
  }
  {
    const double c = std::cos(angle[2]), s = std::sin(angle[2]);
    keep(d * c + h * s, h * c - d * s, w);
  }
  if (scaling.probability > 0) {
    const double min_scale = std::min(scaling.range[0], scaling.range[1]);
    check(min_scale > 0, "data::enlarged_patch_size: scaling range must be positive, got [{}, {}]", scaling.range[0],
          scaling.range[1]);
    for (int a = scaling.scale_axis0 ? 0 : 1; a < 3; ++a) size[static_cast<std::size_t>(a)] /= min_scale;
  }
  Extent3 result{};
  for (std::size_t a = 0; a < 3; ++a) result[a] = std::max(patch[a], static_cast<std::int64_t>(size[a]));
  return result;
}

}  // namespace tlk::data
