#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "tlk/tensor/tensor.h"

/// Data pipeline: raw datasets, label maps, preprocessing, sampling, augmentation.
namespace tlk::data {

/// A relabelling of a segmentation: label `from` becomes `to` (both 0..255).
///
/// Note [Unmapped labels]: as MONAI's MapLabelValue, a label that the map does not list stays as it
/// is. Training a kidney model on AMOS (2 = right kidney, 3 = left kidney, 13 other organs) needs
/// every other organ to become background too; `others` says so ("*:0" in text), so that one does
/// not have to list 13 organs. `others` applies to every unlisted value, background included, so
/// "*:1" would also turn background into 1.
///
/// Example:
/// ```
/// data::LabelMap amos_to_kidney = data::parse_label_map("2:1,3:1,*:0");
/// Tensor kidney = data::apply(amos_to_kidney, amos_labels);   // u8, 0 or 1
/// ```
struct LabelMap {
  std::map<std::uint8_t, std::uint8_t> pairs;  ///< from -> to
  std::optional<std::uint8_t> others;          ///< where unlisted labels go; nullopt: they stay

  /// True when the map changes nothing.
  bool is_identity() const;
  /// Where `label` goes.
  std::uint8_t map(std::uint8_t label) const;
};

/// Parses "from:to,from:to[,*:to]" (spaces allowed around items); "" is the identity. Bad text, a
/// value outside 0..255 or a label listed twice is a tlk::Error quoting the text.
/// Example: `parse_label_map("2:1, 3:1, *:0")`.
LabelMap parse_label_map(const std::string& text);

/// The map in the text form parse_label_map reads ("2:1,3:1,*:0"; "" for the identity).
std::string to_string(const LabelMap& map);

/// Applies `map` to a label volume of any shape: u8, i32 (NIfTI's i16/u16/i32 voxels), i64, or f32/f64
/// holding whole numbers; the result is u8 of the same shape. A value outside 0..255 (or not a whole
/// number) is a tlk::Error that names `what` (e.g. the file), the value and its position. An identity
/// map on a contiguous u8 volume returns the volume itself.
/// Example: `Tensor y = data::apply(data::parse_label_map("2:1,3:1,*:0"), io::read_nifti(f).data, f);`
Tensor apply(const LabelMap& map, const Tensor& labels, const std::string& what = "labels");

}  // namespace tlk::data
