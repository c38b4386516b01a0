#pragma once
#include <array>
#include <cstdint>

#include "tlk/tensor/random.h"
#include "tlk/tensor/tensor.h"

namespace tlk::data {

/// The tissue class of one phantom voxel. Values 1..15 are the AMOS organs with AMOS's own label
/// values (1 spleen, 2 right kidney, 3 left kidney, 4 gallbladder, 5 esophagus, 6 liver, 7 stomach,
/// 8 aorta, 9 postcava (IVC), 10 pancreas, 11 right adrenal gland, 12 left adrenal gland,
/// 13 duodenum, 14 bladder, 15 prostate/uterus); a kidney's value there is its cortex. The rest are
/// parts of organs (medulla, tumour, gas in the stomach) or unlabeled tissue.
/// Example: `if (tissue == PhantomTissue::right_kidney_medulla) ...`
enum class PhantomTissue : std::uint8_t {
  air = 0,
  spleen = 1,
  right_kidney = 2,
  left_kidney = 3,
  gallbladder = 4,
  esophagus = 5,
  liver = 6,
  stomach = 7,
  aorta = 8,
  postcava = 9,
  pancreas = 10,
  right_adrenal = 11,
  left_adrenal = 12,
  duodenum = 13,
  bladder = 14,
  prostate_uterus = 15,
  right_kidney_medulla,
  left_kidney_medulla,
  right_tumour,
  left_tumour,
  right_tumour_core,
  left_tumour_core,
  stomach_gas,
  subcutaneous_fat,
  muscle,        ///< abdominal wall, psoas and paraspinal muscles
  visceral_fat,  ///< the abdominal cavity around the organs
  bone_cortex,
  bone_marrow,
  disc,  ///< intervertebral disc
  bowel,
  bowel_gas,
  iliac_artery,  ///< unlabeled vessels below the aortic bifurcation
  iliac_vein,
  count
};

/// Number of PhantomTissue values (the size of a per-tissue lookup table).
inline constexpr int kPhantomTissueCount = static_cast<int>(PhantomTissue::count);

/// The voxel grid a phantom is drawn on, in canonical RAS+ order [D, H, W] = [z, y, x].
/// World coordinates are millimetres with the body's axis at x = y = 0 and z = 0 at the kidneys' level.
/// Example: `PhantomGrid g{.shape = {64, 128, 128}, .spacing = {2.0, 1.5, 1.5}, .origin = {-69, -95.25, -95.25}};`
struct PhantomGrid {
  std::array<std::int64_t, 3> shape{};  ///< (D, H, W)
  std::array<double, 3> spacing{};      ///< (z, y, x) mm
  std::array<double, 3> origin{};       ///< world (z, y, x) mm of voxel [0, 0, 0]
};

/// How much patients vary and what pathology they carry.
/// Example: `PhantomAnatomyOptions a; a.tumours = true;`
struct PhantomAnatomyOptions {
  double position_jitter_mm = 3.0;  ///< sd of each organ's displacement (clipped at 2.5 sd)
  double size_jitter = 0.12;        ///< organ semi-axes are scaled by uniform(1 - j, 1 + j)
  double body_size_jitter = 0.07;   ///< the body's half-width and half-depth, likewise
  bool tumours = false;             ///< a kidney tumour in every case (KiTS-like)
  double tumour_radius_min_mm = 6.0;
  double tumour_radius_max_mm = 16.0;
  double second_tumour_probability = 0.3;  ///< a second tumour, in either kidney
  int bowel_loops = 10;                    ///< unlabeled bowel blobs (some with gas)
};

/// Draws one random patient from `gen` and rasterizes it onto `grid`: u8 [D, H, W] of PhantomTissue
/// values, plus a u8 body mask (1 inside the skin) in `body` when it is not null. The draws are
/// sequential (the same generator state gives the same patient); rasterizing runs OpenMP over slices.
///
/// Note [Phantom anatomy]: organs are ellipsoids (arbitrary orientation; an elliptic cylinder is an
/// ellipsoid with a huge z semi-axis) and capsules (tubes along a segment, radius varying linearly)
/// at positions taken from an adult abdomen shrunk to a body of about 160 x 120 mm, scaled with each
/// patient's body size. They are painted in a fixed priority order (later wins): fat, muscles,
/// bowel, organs, vessels, adrenals, kidneys, kidney medulla, tumours, bone. Organs paint only inside
/// the abdominal cavity (inside the wall muscle), bone and muscles only inside the skin, and a part
/// (medulla, tumour core, stomach gas) only over its parent, so nothing labeled leaves the body.
///
/// Example: `Generator gen(1); Tensor t = draw_phantom_anatomy(grid, {}, gen);`
Tensor draw_phantom_anatomy(const PhantomGrid& grid, const PhantomAnatomyOptions& options, Generator& gen,
                            Tensor* body = nullptr);

}  // namespace tlk::data
