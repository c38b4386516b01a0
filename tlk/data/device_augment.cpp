#include "tlk/data/device_augment.h"

#include "tlk/tensor/cuda_runtime.h"
#include "tlk/tensor/error.h"

#ifdef TLK_HAVE_CUDA
#include <algorithm>
#include <vector>

#include "tlk/kernels/augment_voxel.h"
#include "tlk/kernels/cuda/augment_launch.h"
#include "tlk/kernels/cuda/launch.h"
#endif

namespace tlk::data {

#ifdef TLK_HAVE_CUDA
namespace {

namespace launch = kernels::cuda::launch;
constexpr const char* kOp = "data::apply_augmentation_cuda";

void check_launched(cudaError_t status, const char* kernel) { kernels::cuda::check_status(status, kOp, kernel); }

/// A contiguous f32 image [C, D, H, W] on one GPU.
struct DeviceImage {
  Tensor tensor;
  std::int64_t channels = 0;
  std::int64_t extent[3] = {};
  std::int64_t voxels() const { return extent[0] * extent[1] * extent[2]; }
  float* channel(std::int64_t c) const { return static_cast<float*>(tensor.raw_data()) + c * voxels(); }
  Device device() const { return tensor.device(); }
};

DeviceImage view_of(Tensor image) {
  DeviceImage v;
  v.tensor = std::move(image);
  v.channels = v.tensor.size(0);
  for (int a = 0; a < 3; ++a) v.extent[a] = v.tensor.size(a + 1);
  return v;
}

Tensor device_empty(const Shape& shape, DType dtype, Device device) {
  return Tensor::empty(shape, TensorOptions{}.with(dtype).with(device));
}

/// Note [Deterministic reductions], with the slices' partials made on the GPU and combined here.
ChannelStats channel_stats(const DeviceImage& v, const float* x, bool with_stddev) {
  const std::int64_t slices = v.extent[0], plane = v.extent[1] * v.extent[2];
  const Tensor sums = device_empty({slices}, DType::f64, v.device());
  const Tensor mins = device_empty({slices}, DType::f32, v.device()),
               maxs = device_empty({slices}, DType::f32, v.device());
  check_launched(launch::augment_slice_stats(x, slices, plane, static_cast<double*>(sums.raw_data()),
                                             static_cast<float*>(mins.raw_data()), static_cast<float*>(maxs.raw_data()),
                                             kernels::cuda::stream()),
                 "slice statistics");
  const auto host_doubles = [](const Tensor& t) {
    const Tensor h = t.to(Device::cpu());
    return std::vector<double>(h.data<double>(), h.data<double>() + h.numel());
  };
  const auto host_floats = [](const Tensor& t) {
    const Tensor h = t.to(Device::cpu());
    return std::vector<float>(h.data<float>(), h.data<float>() + h.numel());
  };
  ChannelStats st = combine_slice_partials({host_doubles(sums), host_floats(mins), host_floats(maxs)}, v.voxels());
  if (with_stddev) {
    check_launched(launch::augment_slice_squares(x, slices, plane, st.mean, static_cast<double*>(sums.raw_data()),
                                                 kernels::cuda::stream()),
                   "slice squares");
    st.stddev = combine_slice_squares(host_doubles(sums), v.voxels());
  }
  return st;
}

void affine(const DeviceImage& v, float* x, float a, float b) {
  check_launched(launch::augment_affine(x, v.voxels(), a, b, kernels::cuda::stream()), "affine");
}

/// The centre crop (no interpolation) by strided copies; padding reads 0 as on the CPU.
AugmentedPatch centre_crop_cuda(const Tensor& image, const Tensor& labels, Extent3 out) {
  const std::int64_t channels = image.size(0);
  AugmentedPatch p;
  p.image = Tensor::zeros({channels, out[0], out[1], out[2]}, TensorOptions{}.with(image.device()));
  if (labels.defined())
    p.labels = Tensor::zeros({out[0], out[1], out[2]}, TensorOptions{}.with(DType::u8).with(labels.device()));
  Tensor src = image, dst = p.image, lsrc = labels, ldst = p.labels;
  for (int a = 0; a < 3; ++a) {
    const std::int64_t in = image.size(a + 1), start = centre_crop_start(in, out[static_cast<std::size_t>(a)]);
    const std::int64_t lo = std::max<std::int64_t>(0, -start);
    const std::int64_t hi = std::min<std::int64_t>(out[static_cast<std::size_t>(a)], in - start);
    if (lo >= hi) return p;
    src = src.narrow(a + 1, lo + start, hi - lo);
    dst = dst.narrow(a + 1, lo, hi - lo);
    if (labels.defined()) {
      lsrc = lsrc.narrow(a, lo + start, hi - lo);
      ldst = ldst.narrow(a, lo, hi - lo);
    }
  }
  dst.copy_(src);
  if (labels.defined()) ldst.copy_(lsrc);
  return p;
}

AugmentedPatch resample_cuda(const Tensor& image, const Tensor& labels, Extent3 out, const Matrix3& m) {
  const std::int64_t channels = image.size(0);
  AugmentedPatch p;
  p.image = device_empty({channels, out[0], out[1], out[2]}, DType::f32, image.device());
  if (labels.defined()) p.labels = device_empty({out[0], out[1], out[2]}, DType::u8, labels.device());
  kernels::augment::ResampleBuffers b;
  b.src = static_cast<const float*>(image.raw_data());
  b.dst = static_cast<float*>(p.image.raw_data());
  b.lsrc = labels.defined() ? static_cast<const std::uint8_t*>(labels.raw_data()) : nullptr;
  b.ldst = labels.defined() ? static_cast<std::uint8_t*>(p.labels.raw_data()) : nullptr;
  b.channels = channels;
  kernels::augment::ResampleGeometry g;
  for (std::size_t a = 0; a < 3; ++a) {
    b.in[a] = image.size(static_cast<int>(a) + 1);
    b.out[a] = out[a];
    for (std::size_t j = 0; j < 3; ++j) g.m[a][j] = m[a][j];
    g.c_out[a] = static_cast<double>(out[a] - 1) / 2.0;
    g.c_in[a] = static_cast<double>(centre_crop_start(b.in[a], out[a])) + g.c_out[a];
  }
  check_launched(launch::augment_resample(b, g, kernels::cuda::stream()), "resample");
  return p;
}

void noise(const DeviceImage& v, const NoiseDraw& d) {
  for (std::int64_t c = 0; c < v.channels; ++c)
    check_launched(launch::augment_add_noise(v.channel(c), v.voxels(), d.channel_seeds[static_cast<std::size_t>(c)],
                                             d.sigma, kernels::cuda::stream()),
                   "noise");
}

void blur(const DeviceImage& v, const BlurDraw& d) {
  Tensor tmp;
  for (std::int64_t c = 0; c < v.channels; ++c) {
    const auto& sigma = d.channel_sigmas[static_cast<std::size_t>(c)];
    if (!sigma) continue;
    if (!tmp.defined()) tmp = device_empty({v.voxels()}, DType::f32, v.device());
    float* x = v.channel(c);
    float* t = static_cast<float*>(tmp.raw_data());
    for (int a = 0; a < 3; ++a) {
      const double s = (*sigma)[static_cast<std::size_t>(a)];
      if (!(s > 0.0)) continue;
      const std::vector<float> taps = gaussian_kernel(s);
      check(static_cast<int>(taps.size()) <= launch::kMaxBlurTaps,
            "{}: a blur sigma of {} needs {} taps; the GPU blur takes at most {} (sigma up to 21)", kOp, s, taps.size(),
            launch::kMaxBlurTaps);
      check_launched(launch::augment_blur_axis(t, x, v.extent, a, taps.data(), static_cast<int>(taps.size()),
                                               kernels::cuda::stream()),
                     "blur");
      kernels::cuda::check_status(cudaMemcpyAsync(x, t, static_cast<std::size_t>(v.voxels()) * sizeof(float),
                                                  cudaMemcpyDeviceToDevice, kernels::cuda::stream()),
                                  kOp, "blur copy");
    }
  }
}

void contrast(const DeviceImage& v, const ContrastDraw& d) {
  for (std::int64_t c = 0; c < v.channels; ++c) {
    float* x = v.channel(c);
    const ChannelStats st = channel_stats(v, x, false);
    check_launched(launch::augment_contrast(x, v.voxels(), static_cast<float>(st.mean),
                                            static_cast<float>(d.factor.factors[static_cast<std::size_t>(c)]), st.min,
                                            st.max, d.preserve_range, kernels::cuda::stream()),
                   "contrast");
  }
}

void low_resolution(const DeviceImage& v, const LowResolutionDraw& d) {
  for (std::int64_t c = 0; c < v.channels; ++c) {
    const auto& zoom = d.channel_zoom[static_cast<std::size_t>(c)];
    if (!zoom) continue;
    std::int64_t small[3];
    for (int a = 0; a < 3; ++a) small[a] = low_resolution_extent(v.extent[a], *zoom);
    if (d.ignore_axis0) small[0] = v.extent[0];
    if (small[0] == v.extent[0] && small[1] == v.extent[1] && small[2] == v.extent[2]) continue;
    const Tensor low = device_empty({small[0] * small[1] * small[2]}, DType::f32, v.device());
    float* l = static_cast<float*>(low.raw_data());
    check_launched(launch::augment_low_resolution_down(l, v.channel(c), v.extent, small, kernels::cuda::stream()),
                   "low resolution (down)");
    check_launched(launch::augment_low_resolution_up(v.channel(c), l, v.extent, small, kernels::cuda::stream()),
                   "low resolution (up)");
  }
}

void gamma(const DeviceImage& v, const GammaDraw& d) {
  for (std::int64_t c = 0; c < v.channels; ++c) {
    float* x = v.channel(c);
    if (d.invert_image) affine(v, x, -1.0f, 0.0f);
    const ChannelStats before = channel_stats(v, x, d.retain_stats);
    const GammaConstants k = gamma_constants(before, d.gamma.factors[static_cast<std::size_t>(c)]);
    check_launched(launch::augment_gamma(x, v.voxels(), k.lo, k.inv_range, k.gamma, k.range, kernels::cuda::stream()),
                   "gamma");
    if (d.retain_stats) {
      const AffineConstants r = retained_stats_affine(before, channel_stats(v, x, true));
      affine(v, x, r.scale, r.shift);
    }
    if (d.invert_image) affine(v, x, -1.0f, 0.0f);
  }
}

void mirror(AugmentedPatch& p, const std::array<bool, 3>& axes) {
  const unsigned flip = (axes[0] ? 1u : 0u) | (axes[1] ? 2u : 0u) | (axes[2] ? 4u : 0u);
  if (flip == 0) return;
  const DeviceImage v = view_of(p.image);
  Tensor image = device_empty(p.image.shape(), DType::f32, v.device());
  check_launched(launch::augment_mirror(static_cast<float*>(image.raw_data()), v.channel(0), v.channels, v.extent, flip,
                                        kernels::cuda::stream()),
                 "mirror");
  if (p.labels.defined()) {
    Tensor labels = device_empty(p.labels.shape(), DType::u8, v.device());
    check_launched(launch::augment_mirror_labels(static_cast<std::uint8_t*>(labels.raw_data()),
                                                 static_cast<const std::uint8_t*>(p.labels.raw_data()), v.extent, flip,
                                                 kernels::cuda::stream()),
                   "mirror (labels)");
    p.labels = labels;
  }
  p.image = image;
}

void check_draw_channels(std::int64_t channels, std::size_t drawn, const char* transform) {
  check(static_cast<std::size_t>(channels) == drawn, "{}: the {} draw was made for {} channels, the image has {}", kOp,
        transform, drawn, channels);
}

}  // namespace

AugmentedPatch apply_augmentation_cuda(const Tensor& image_in, const Tensor& labels_in, Extent3 out_patch,
                                       const AugmentDraws& draws) {
  check(image_in.defined() && image_in.dim() == 4, "{}: expected an image [C, D, H, W], got {}", kOp,
        image_in.defined() ? image_in.shape().str() : std::string("an undefined tensor"));
  check(image_in.device().is_cuda(), "{}: expected a CUDA image, got one on {}", kOp, image_in.device().str());
  check(out_patch[0] > 0 && out_patch[1] > 0 && out_patch[2] > 0,
        "{}: the output extent must be positive, got [{}, {}, {}]", kOp, out_patch[0], out_patch[1], out_patch[2]);
  cuda::require_device(image_in.device().index, kOp);
  const Tensor image = image_in.to(Layout::plain).to(DType::f32).contiguous();
  Tensor labels;
  if (labels_in.defined()) {
    check(labels_in.dim() == 3 && labels_in.size(0) == image.size(1) && labels_in.size(1) == image.size(2) &&
              labels_in.size(2) == image.size(3),
          "{}: labels {} do not match the image {} (expected [D, H, W])", kOp, labels_in.shape().str(),
          image.shape().str());
    check(labels_in.dtype() == DType::u8, "{}: expected u8 labels, got {}", kOp, dtype_name(labels_in.dtype()));
    check(labels_in.device() == image.device(), "{}: the labels are on {}, the image on {}", kOp,
          labels_in.device().str(), image.device().str());
    labels = labels_in.contiguous();
  }
  const std::int64_t channels = image.size(0);
  if (draws.noise.acted) check_draw_channels(channels, draws.noise.channel_seeds.size(), "noise");
  if (draws.blur.acted) check_draw_channels(channels, draws.blur.channel_sigmas.size(), "blur");
  if (draws.brightness.acted) check_draw_channels(channels, draws.brightness.factors.size(), "brightness");
  if (draws.contrast.factor.acted) check_draw_channels(channels, draws.contrast.factor.factors.size(), "contrast");
  if (draws.low_resolution.acted)
    check_draw_channels(channels, draws.low_resolution.channel_zoom.size(), "low resolution");
  if (draws.inverted_gamma.gamma.acted)
    check_draw_channels(channels, draws.inverted_gamma.gamma.factors.size(), "gamma");
  if (draws.gamma.gamma.acted) check_draw_channels(channels, draws.gamma.gamma.factors.size(), "gamma");

  AugmentedPatch p = draws.spatial.transformed ? resample_cuda(image, labels, out_patch, draws.spatial.matrix)
                                               : centre_crop_cuda(image, labels, out_patch);
  const DeviceImage v = view_of(p.image);
  if (draws.noise.acted) noise(v, draws.noise);
  if (draws.blur.acted) blur(v, draws.blur);
  if (draws.brightness.acted)
    for (std::int64_t c = 0; c < channels; ++c)
      affine(v, v.channel(c), static_cast<float>(draws.brightness.factors[static_cast<std::size_t>(c)]), 0.0f);
  if (draws.contrast.factor.acted) contrast(v, draws.contrast);
  if (draws.low_resolution.acted) low_resolution(v, draws.low_resolution);
  if (draws.inverted_gamma.gamma.acted) gamma(v, draws.inverted_gamma);
  if (draws.gamma.gamma.acted) gamma(v, draws.gamma);
  mirror(p, draws.mirror);
  return p;
}

#else

AugmentedPatch apply_augmentation_cuda(const Tensor&, const Tensor&, Extent3, const AugmentDraws&) {
  fail("data::apply_augmentation_cuda: {}", cuda::unavailable_reason());
}

#endif

}  // namespace tlk::data
