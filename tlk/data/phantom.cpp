#include "tlk/data/phantom.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

#include "tlk/tensor/error.h"
#include "tlk/tensor/random.h"

namespace tlk::data {

double PhantomIntensity::hu(PhantomTissue tissue) const {
  using T = PhantomTissue;
  switch (tissue) {
    case T::air:
      return air;
    case T::spleen:
      return spleen;
    case T::right_kidney:
    case T::left_kidney:
      return kidney_cortex;
    case T::right_kidney_medulla:
    case T::left_kidney_medulla:
      return kidney_medulla;
    case T::gallbladder:
      return gallbladder;
    case T::esophagus:
      return esophagus;
    case T::liver:
      return liver;
    case T::stomach:
      return stomach;
    case T::aorta:
    case T::iliac_artery:
      return artery;
    case T::postcava:
    case T::iliac_vein:
      return vein;
    case T::pancreas:
      return pancreas;
    case T::right_adrenal:
    case T::left_adrenal:
      return adrenal;
    case T::duodenum:
      return duodenum;
    case T::bladder:
      return bladder;
    case T::prostate_uterus:
      return prostate_uterus;
    case T::right_tumour:
    case T::left_tumour:
      return tumour;
    case T::right_tumour_core:
    case T::left_tumour_core:
      return tumour_core;
    case T::stomach_gas:
    case T::bowel_gas:
      return gas;
    case T::subcutaneous_fat:
      return fat;
    case T::muscle:
      return muscle;
    case T::visceral_fat:
      return visceral_fat;
    case T::bone_cortex:
      return bone_cortex;
    case T::bone_marrow:
      return bone_marrow;
    case T::disc:
      return disc;
    case T::bowel:
      return bowel;
    case T::count:
      break;
  }
  fail("PhantomIntensity::hu: unknown tissue {}", static_cast<int>(tissue));
}

PhantomGrid PhantomDomainOptions::grid() const {
  PhantomGrid g;
  for (std::size_t a = 0; a < 3; ++a) {
    check(spacing[a] > 0 && extent_mm[a] > 0,
          "phantom '{}': spacing ({}, {}, {}) and extent ({}, {}, {}) mm must be positive", name, spacing[0],
          spacing[1], spacing[2], extent_mm[0], extent_mm[1], extent_mm[2]);
    g.shape[a] = std::max<std::int64_t>(1, std::llround(extent_mm[a] / spacing[a]));
    g.spacing[a] = spacing[a];
    // Note [Phantom field of view]: voxel centres are symmetric about the body axis (x = y = 0) and about
    // fov_center_z_mm on z, so a grid with an odd or even count has no voxel-sized shift between domains.
    const double center = a == 0 ? fov_center_z_mm : 0.0;
    g.origin[a] = center - 0.5 * static_cast<double>(g.shape[a] - 1) * spacing[a];
  }
  return g;
}

PhantomDomainOptions amos_like_source(int cases, double scale) {
  check(scale > 0, "amos_like_source: scale must be positive, got {}", scale);
  PhantomDomainOptions o;
  o.name = "AmosPhantom";
  o.case_prefix = "amos";
  o.cases = cases;
  o.extent_mm = {128, 192, 192};
  o.spacing = {2.0 / scale, 1.5 / scale, 1.5 / scale};
  o.fov_center_z_mm = -5;
  o.orientation = "LPS";
  o.labels = PhantomLabelSet::amos;
  o.intensity.blur_sigma_mm = {0.8, 0.6, 0.6};  // portal-venous defaults otherwise
  return o;
}

PhantomDomainOptions kits_like_target(int cases, double scale) {
  check(scale > 0, "kits_like_target: scale must be positive, got {}", scale);
  PhantomDomainOptions o;
  o.name = "KitsPhantom";
  o.case_prefix = "case";
  o.cases = cases;
  o.extent_mm = {128, 192, 192};
  o.spacing = {4.0 / scale, 1.2 / scale, 1.2 / scale};
  o.fov_center_z_mm = 0;
  o.orientation = "IPL";
  o.labels = PhantomLabelSet::kits;
  o.anatomy.tumours = true;
  PhantomIntensity& i = o.intensity;  // a corticomedullary (late arterial) phase on another scanner
  i.kidney_cortex = 230;
  i.kidney_medulla = 110;
  i.tumour = 70;
  i.tumour_core = 15;
  i.artery = 280;
  i.vein = 110;
  i.liver = 75;
  i.spleen = 135;
  i.pancreas = 115;
  i.bowel = 35;
  i.case_jitter_hu = 15;
  i.noise_sigma = 22;
  i.hu_scale = 0.95;
  i.hu_offset = 20;
  i.blur_sigma_mm = {2.0, 1.0, 1.0};
  i.bias_field_hu = 30;
  return o;
}

std::string phantom_case_id(const PhantomDomainOptions& options, int index) {
  return fmt::format("{}_{:05}", options.case_prefix, index);
}

namespace {

// In-place separable Gaussian blur of a [D, H, W] volume along `axis` (0 = z) with sigma in voxels;
// borders replicate the edge voxel.
void blur_axis(float* v, const std::array<std::int64_t, 3>& shape, int axis, double sigma) {
  const int radius = static_cast<int>(std::ceil(3 * sigma));
  std::vector<double> w(static_cast<std::size_t>(2 * radius + 1));
  double sum = 0;
  for (int t = -radius; t <= radius; ++t)
    sum += w[static_cast<std::size_t>(t + radius)] = std::exp(-0.5 * t * t / (sigma * sigma));
  for (double& x : w) x /= sum;
  const auto [D, H, W] = shape;
  const std::int64_t n = shape[static_cast<std::size_t>(axis)];
  const std::int64_t stride = axis == 0 ? H * W : axis == 1 ? W : 1;
  const std::int64_t lines = D * H * W / n;
#pragma omp parallel for schedule(static)
  for (std::int64_t l = 0; l < lines; ++l) {
    // The line's first voxel: lines enumerate the other two axes in order.
    std::int64_t start = 0;
    if (axis == 0)
      start = l;
    else if (axis == 1)
      start = (l / W) * H * W + l % W;
    else
      start = l * W;
    std::vector<float> line(static_cast<std::size_t>(n));
    for (std::int64_t p = 0; p < n; ++p) line[static_cast<std::size_t>(p)] = v[start + p * stride];
    for (std::int64_t p = 0; p < n; ++p) {
      double acc = 0;
      for (int t = -radius; t <= radius; ++t) {
        const std::int64_t q = std::clamp<std::int64_t>(p + t, 0, n - 1);
        acc += w[static_cast<std::size_t>(t + radius)] * line[static_cast<std::size_t>(q)];
      }
      v[start + p * stride] = static_cast<float>(acc);
    }
  }
}

// The label each tissue gets in `set` (Note [Phantom anatomy] lists the tissues).
std::array<std::uint8_t, kPhantomTissueCount> label_table(PhantomLabelSet set) {
  using T = PhantomTissue;
  std::array<std::uint8_t, kPhantomTissueCount> lut{};
  const auto at = [&](T t) -> std::uint8_t& { return lut[static_cast<std::size_t>(t)]; };
  if (set == PhantomLabelSet::amos) {
    for (int t = 1; t <= 15; ++t) lut[static_cast<std::size_t>(t)] = static_cast<std::uint8_t>(t);
    at(T::right_kidney_medulla) = at(T::right_tumour) = at(T::right_tumour_core) = 2;
    at(T::left_kidney_medulla) = at(T::left_tumour) = at(T::left_tumour_core) = 3;
    at(T::stomach_gas) = 7;
  } else {
    for (T t : {T::right_kidney, T::left_kidney, T::right_kidney_medulla, T::left_kidney_medulla}) at(t) = 1;
    for (T t : {T::right_tumour, T::left_tumour, T::right_tumour_core, T::left_tumour_core}) at(t) = 2;
  }
  return lut;
}

// Which kidney (0 right, 1 left, -1 none) a tissue belongs to.
int kidney_side(std::uint8_t t) {
  using T = PhantomTissue;
  switch (static_cast<T>(t)) {
    case T::right_kidney:
    case T::right_kidney_medulla:
    case T::right_tumour:
    case T::right_tumour_core:
      return 0;
    case T::left_kidney:
    case T::left_kidney_medulla:
    case T::left_tumour:
    case T::left_tumour_core:
      return 1;
    default:
      return -1;
  }
}

}  // namespace

PhantomCase generate_phantom_case(const PhantomDomainOptions& options, std::uint64_t seed, int index) {
  check(index >= 0, "generate_phantom_case: case index must be >= 0, got {}", index);
  const PhantomGrid grid = options.grid();
  const auto [D, H, W] = grid.shape;
  const PhantomIntensity& in = options.intensity;
  check(in.noise_sigma >= 0 && in.case_jitter_hu >= 0,
        "phantom '{}': noise_sigma {} and case_jitter_hu {} must be >= 0", options.name, in.noise_sigma,
        in.case_jitter_hu);
  // Note [Phantom seeds]: the case's generator is seeded from the dataset seed's first draw mixed with
  // the index, so cases are independent of each other and of how many cases are generated.
  Generator root(seed);
  Generator gen(root.next_u64() ^ (0x9E3779B97F4A7C15ull * static_cast<std::uint64_t>(index + 1)));
  PhantomCase out;
  out.id = phantom_case_id(options, index);
  out.spacing = grid.spacing;
  out.origin = grid.origin;
  const Tensor tissue = draw_phantom_anatomy(grid, options.anatomy, gen, &out.body);
  std::array<double, kPhantomTissueCount> hu{};
  for (int t = 0; t < kPhantomTissueCount; ++t) {
    const double jitter = t == 0 ? 0.0 : in.case_jitter_hu * gen.normal();  // air stays calibrated
    hu[static_cast<std::size_t>(t)] = in.hu_scale * (in.hu(static_cast<PhantomTissue>(t)) + jitter) + in.hu_offset;
  }
  // A smooth bias field: three plane waves of wavelength 150..300 mm in random directions.
  std::array<std::array<double, 5>, 3> waves{};  // direction (z, y, x), wavenumber, phase
  for (auto& wv : waves) {
    const double a = gen.uniform(-1, 1), b = gen.uniform(-1, 1), c = gen.uniform(-1, 1);
    const double n = std::max(1e-9, std::hypot(a, b, c));
    wv = {a / n, b / n, c / n, 2 * std::numbers::pi / gen.uniform(150, 300), gen.uniform(0, 2 * std::numbers::pi)};
  }
  std::vector<std::uint64_t> slice_seeds(static_cast<std::size_t>(D));
  for (auto& s : slice_seeds) s = gen.next_u64();

  const std::uint8_t* t = tissue.data<std::uint8_t>();
  const std::uint8_t* body = out.body.data<std::uint8_t>();
  out.image = Tensor::empty({D, H, W});
  float* x = out.image.data<float>();
#pragma omp parallel for schedule(static)
  for (std::int64_t k = 0; k < D; ++k)
    for (std::int64_t j = 0; j < H; ++j)
      for (std::int64_t i = 0; i < W; ++i) {
        const std::int64_t v = (k * H + j) * W + i;
        double value = hu[t[v]];
        if (in.bias_field_hu != 0 && body[v]) {
          const double p[3] = {grid.origin[0] + static_cast<double>(k) * grid.spacing[0],
                               grid.origin[1] + static_cast<double>(j) * grid.spacing[1],
                               grid.origin[2] + static_cast<double>(i) * grid.spacing[2]};
          double f = 0;
          for (const auto& wv : waves) f += std::cos(wv[3] * (wv[0] * p[0] + wv[1] * p[1] + wv[2] * p[2]) + wv[4]);
          value += in.bias_field_hu * f / 3.0;
        }
        x[v] = static_cast<float>(value);
      }
  for (int a = 0; a < 3; ++a) {
    const double sigma = in.blur_sigma_mm[static_cast<std::size_t>(a)] / grid.spacing[static_cast<std::size_t>(a)];
    if (sigma > 1e-3 && grid.shape[static_cast<std::size_t>(a)] > 1) blur_axis(x, grid.shape, a, sigma);
  }
#pragma omp parallel for schedule(static)
  for (std::int64_t k = 0; k < D; ++k) {
    Generator noise(slice_seeds[static_cast<std::size_t>(k)]);
    for (std::int64_t v = k * H * W; v < (k + 1) * H * W; ++v)
      x[v] = static_cast<float>(std::clamp(std::round(x[v] + in.noise_sigma * noise.normal()), -1024.0, 3071.0));
  }

  const auto lut = label_table(options.labels);
  out.labels = Tensor::empty({D, H, W}, TensorOptions{}.with(DType::u8));
  std::uint8_t* y = out.labels.data<std::uint8_t>();
  std::int64_t kidney[2] = {0, 0};
  for (std::int64_t v = 0; v < D * H * W; ++v) {
    y[v] = lut[t[v]];
    const int side = kidney_side(t[v]);
    if (side >= 0) ++kidney[side];
  }
  check(kidney[0] > 0 && kidney[1] > 0,
        "generate_phantom_case: case {} of '{}' has {} right and {} left kidney voxels; the field of view "
        "(z {} mm around {} mm) must cover both kidneys (z about -35..35 mm)",
        out.id, options.name, kidney[0], kidney[1], options.extent_mm[0], options.fov_center_z_mm);
  return out;
}

}  // namespace tlk::data
