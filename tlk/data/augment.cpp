#include "tlk/data/augment.h"

#include <algorithm>

namespace tlk::data {

AugmentOptions AugmentOptions::none() {
  AugmentOptions o;
  o.rotation.probability = 0;
  o.scaling.probability = 0;
  o.noise.probability = 0;
  o.blur.probability = 0;
  o.brightness.probability = 0;
  o.contrast.probability = 0;
  o.low_resolution.probability = 0;
  o.inverted_gamma.probability = 0;
  o.gamma.probability = 0;
  o.mirror.probability_per_axis = {0, 0, 0};
  return o;
}

bool uses_dummy_2d(Extent3 patch) {
  const std::int64_t largest = std::max({patch[0], patch[1], patch[2]});
  return patch[0] > 0 && static_cast<double>(largest) / static_cast<double>(patch[0]) > 3.0;
}

AugmentOptions dummy_2d_augment_options() {
  AugmentOptions o;
  o.rotation.angle_range_deg = {{{-180.0, 180.0}, {0.0, 0.0}, {0.0, 0.0}}};
  o.scaling.scale_axis0 = false;
  o.low_resolution.ignore_axis0 = true;
  return o;
}

Extent3 enlarged_patch_size(Extent3 patch, const AugmentOptions& options) {
  return enlarged_patch_size(patch, options.rotation, options.scaling);
}

AugmentedPatch augment_patch(const Tensor& image, const Tensor& labels, Extent3 out_patch,
                             const AugmentOptions& options, Generator& gen) {
  const int nt = options.num_threads;
  const SpatialDraw spatial = draw_spatial(options.rotation, options.scaling, gen);
  AugmentedPatch p = spatial.transformed ? resample_patch(image, labels, out_patch, spatial.matrix, nt)
                                         : centre_crop(image, labels, out_patch);
  gaussian_noise_(p.image, options.noise, gen, nt);
  gaussian_blur_(p.image, options.blur, gen, nt);
  brightness_(p.image, options.brightness, gen, nt);
  contrast_(p.image, options.contrast, gen, nt);
  low_resolution_(p.image, options.low_resolution, gen, nt);
  gamma_(p.image, options.inverted_gamma, gen, nt);
  gamma_(p.image, options.gamma, gen, nt);
  mirror_(p, draw_mirror(options.mirror, gen), nt);
  return p;
}

}  // namespace tlk::data
