#pragma once
#include <array>
#include <cstdint>
#include <string>

#include "tlk/data/phantom_anatomy.h"
#include "tlk/tensor/tensor.h"

namespace tlk::data {

/// How a phantom domain's scanner renders tissue, in Hounsfield units (HU). The clean image is
/// hu_scale * (tissue HU + a per-case offset per tissue) + hu_offset + bias field, blurred, plus
/// Gaussian noise, rounded and clamped to [-1024, 3071].
/// Example: `PhantomIntensity i; i.kidney_cortex = 230; i.noise_sigma = 20;`
struct PhantomIntensity {
  double air = -1000, fat = -100, visceral_fat = -80, muscle = 50;
  double bone_cortex = 900, bone_marrow = 250, disc = 90, gas = -900, bowel = 30;
  double artery = 170, vein = 150;  ///< blood in the aorta (and iliac arteries), IVC (and iliac veins)
  double liver = 110, spleen = 120, pancreas = 100, stomach = 35, gallbladder = 10, bladder = 5;
  double esophagus = 45, adrenal = 60, duodenum = 40, prostate_uterus = 45;
  double kidney_cortex = 180, kidney_medulla = 160;  ///< enhanced cortex, inner kidney
  double tumour = 80, tumour_core = 20;              ///< kidney tumour and its necrotic core (radius > 9 mm)
  double case_jitter_hu = 8;                         ///< sd of a per-case, per-tissue offset (contrast timing)
  double noise_sigma = 10;                           ///< sd of the white noise added last
  double hu_scale = 1, hu_offset = 0;                ///< a global calibration difference
  std::array<double, 3> blur_sigma_mm{0, 0, 0};      ///< Gaussian blur (z, y, x): lower resolution
  double bias_field_hu = 0;  ///< amplitude of a smooth additive field inside the body (beam hardening)

  /// The HU of `tissue` before jitter, scaling and offset.
  /// Example: `double k = data::PhantomIntensity{}.hu(data::PhantomTissue::left_kidney);  // 180`
  double hu(PhantomTissue tissue) const;
};

/// Which label values a phantom dataset writes.
/// Example: `options.labels = data::PhantomLabelSet::kits;`
enum class PhantomLabelSet {
  amos,  ///< 0 background, 1..15 the AMOS organs (see PhantomTissue); a tumour counts as its kidney
  kits,  ///< 0 background, 1 kidney, 2 tumour (KiTS19)
};

/// One synthetic CT domain: geometry, scanner, storage and labels. phantom_dataset.h writes a domain
/// as an nnUNet raw dataset.
///
/// Note [Phantom domains]: amos_like_source and kits_like_target differ the way AMOS and KiTS19 do for
/// the kidney task: contrast phase (portal-venous vs corticomedullary: a bright cortex over a darker
/// medulla), a calibration offset, noise, resolution (blur) and a bias field, slice thickness and
/// in-plane spacing, field of view, file orientation (LPS vs KiTS's IPL) and label set. The anatomy
/// draws are the same kind in both, plus kidney tumours in the target. Use different seeds for
/// different domains: the same seed draws the same patients.
///
/// Example:
/// ```
/// data::PhantomDomainOptions o = data::kits_like_target(20, 0.5);
/// o.intensity.noise_sigma = 30;  // a noisier scanner
/// ```
struct PhantomDomainOptions {
  std::string name = "Phantom";                    ///< dataset.json "name"
  std::string case_prefix = "case";                ///< case ids are <prefix>_<index, 5 digits>
  int cases = 4;                                   ///< training cases (imagesTr, labelsTr)
  int test_cases = 0;                              ///< further cases written to imagesTs / labelsTs
  std::array<double, 3> extent_mm{128, 192, 192};  ///< field of view (z, y, x); shape = round(extent / spacing)
  std::array<double, 3> spacing{2.0, 1.5, 1.5};    ///< voxel spacing (z, y, x) mm
  double fov_center_z_mm = -5;                     ///< the field of view's centre on z (0 = the kidneys' level)
  PhantomIntensity intensity;
  PhantomAnatomyOptions anatomy;
  std::string orientation = "LPS";  ///< file axis codes i, j, k as nibabel's aff2axcodes ("RAS", "IPL", ...)
  PhantomLabelSet labels = PhantomLabelSet::amos;

  /// The canonical grid [D, H, W] of every case (a tlk::Error for a non-positive spacing or extent).
  /// Example: `data::amos_like_source(4).grid().shape  // {64, 128, 128}`
  PhantomGrid grid() const;
};

/// An AMOS-like source: 15 organ labels, portal-venous contrast, 2 x 1.5 x 1.5 mm, 64 x 128 x 128 voxels
/// at scale 1, stored LPS, low noise. `scale` multiplies the voxel count per axis (the spacing is
/// divided by it; the field of view and anatomy stay the same), so scale 0.5 gives 32 x 64 x 64.
/// Example: `auto src = data::amos_like_source(8, 0.5);`
PhantomDomainOptions amos_like_source(int cases, double scale = 1.0);

/// A KiTS19-like target: labels 0/1/2 (kidney, tumour), a tumour in every case, corticomedullary
/// contrast, 4 x 1.2 x 1.2 mm (32 x 160 x 160 voxels at scale 1), stored IPL like the KiTS19 files,
/// noisier, blurrier, a +20 HU offset and a bias field. `scale` as in amos_like_source.
/// Example: `auto tgt = data::kits_like_target(8, 0.5);`
PhantomDomainOptions kits_like_target(int cases, double scale = 1.0);

/// One generated case in canonical orientation (RAS+, [D, H, W] = [z, y, x]). The image has no channel
/// axis: `c.image.reshape({1, D, H, W})` gives the pipeline's [C, D, H, W].
/// Example: `data::PhantomCase c = data::generate_phantom_case(o, 7, 0); float hu = c.image.data<float>()[0];`
struct PhantomCase {
  std::string id;
  Tensor image;                     ///< f32 [D, H, W], HU (whole numbers: exactly what the file stores)
  Tensor labels;                    ///< u8 [D, H, W] in the options' label set
  Tensor body;                      ///< u8 [D, H, W], 1 inside the skin
  std::array<double, 3> spacing{};  ///< (z, y, x) mm
  std::array<double, 3> origin{};   ///< world (z, y, x) mm of voxel [0, 0, 0]
};

/// Generates case `index` of the domain drawn from `seed`. The same (options, seed, index) gives the
/// same case bit for bit, whatever the thread count. A case without both kidneys in the field of
/// view is a tlk::Error (the field of view misses them).
/// Example: `data::PhantomCase c = data::generate_phantom_case(data::amos_like_source(4), 7, 0);`
PhantomCase generate_phantom_case(const PhantomDomainOptions& options, std::uint64_t seed, int index);

/// The case id of case `index`: "<case_prefix>_<index, 5 digits>".
/// Example: `data::phantom_case_id(data::kits_like_target(4), 3)  // "case_00003"`
std::string phantom_case_id(const PhantomDomainOptions& options, int index);

}  // namespace tlk::data
