#include "tlk/data/augment.h"

#include <algorithm>
#include <string>

#include "tlk/data/device_augment.h"
#include "tlk/tensor/error.h"

namespace tlk::data {

AugmentOptions AugmentOptions::none() {
  AugmentOptions o = all(0.0);
  o.blur.probability_per_channel = AugmentOptions{}.blur.probability_per_channel;
  o.low_resolution.probability_per_channel = AugmentOptions{}.low_resolution.probability_per_channel;
  return o;
}

AugmentOptions AugmentOptions::all(double probability) {
  AugmentOptions o;
  for (double* p : {&o.rotation.probability, &o.scaling.probability, &o.noise.probability, &o.blur.probability,
                    &o.brightness.probability, &o.contrast.probability, &o.low_resolution.probability,
                    &o.inverted_gamma.probability, &o.gamma.probability})
    *p = probability;
  o.blur.probability_per_channel = 1.0;
  o.low_resolution.probability_per_channel = 1.0;
  o.mirror.probability_per_axis = {probability, probability, probability};
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

AugmentDraws draw_augmentation(const AugmentOptions& options, std::int64_t channels, Generator& gen) {
  AugmentDraws d;
  d.spatial = draw_spatial(options.rotation, options.scaling, gen);
  d.noise = draw_gaussian_noise(options.noise, channels, gen);
  d.blur = draw_gaussian_blur(options.blur, channels, gen);
  d.brightness = draw_brightness(options.brightness, channels, gen);
  d.contrast = draw_contrast(options.contrast, channels, gen);
  d.low_resolution = draw_low_resolution(options.low_resolution, channels, gen);
  d.inverted_gamma = draw_gamma(options.inverted_gamma, channels, gen);
  d.gamma = draw_gamma(options.gamma, channels, gen);
  d.mirror = draw_mirror(options.mirror, gen);
  return d;
}

AugmentedPatch apply_augmentation(const Tensor& image, const Tensor& labels, Extent3 out_patch,
                                  const AugmentDraws& draws, int num_threads) {
  check(image.defined(), "data::apply_augmentation: the image is undefined");
  if (image.device().is_cuda()) return apply_augmentation_cuda(image, labels, out_patch, draws);
  const int nt = num_threads;
  AugmentedPatch p = draws.spatial.transformed ? resample_patch(image, labels, out_patch, draws.spatial.matrix, nt)
                                               : centre_crop(image, labels, out_patch);
  apply_gaussian_noise_(p.image, draws.noise, nt);
  apply_gaussian_blur_(p.image, draws.blur, nt);
  apply_brightness_(p.image, draws.brightness, nt);
  apply_contrast_(p.image, draws.contrast, nt);
  apply_low_resolution_(p.image, draws.low_resolution, nt);
  apply_gamma_(p.image, draws.inverted_gamma, nt);
  apply_gamma_(p.image, draws.gamma, nt);
  mirror_(p, draws.mirror, nt);
  return p;
}

AugmentedPatch augment_patch(const Tensor& image, const Tensor& labels, Extent3 out_patch,
                             const AugmentOptions& options, Generator& gen) {
  check(image.defined() && image.dim() == 4, "data::augment_patch: expected an image [C, D, H, W], got {}",
        image.defined() ? image.shape().str() : std::string("an undefined tensor"));
  return apply_augmentation(image, labels, out_patch, draw_augmentation(options, image.size(0), gen),
                            options.num_threads);
}

}  // namespace tlk::data
