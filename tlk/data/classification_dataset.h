#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "tlk/tensor/random.h"
#include "tlk/tensor/tensor.h"

namespace tlk::data {

/// How images are brought to ClassificationLoadOptions::spatial_size.
enum class SpatialFit {
  /// Bilinear (2-D) / trilinear (3-D) interpolation, see Note [Image resize].
  resize,
  /// Centred zero padding where the image is smaller, centred cropping where it is larger (per axis;
  /// an odd difference puts the extra pixel at the end: bottom / right / back).
  pad,
};

/// How load_classification_dataset reads and prepares images; defaults keep the stored images
/// (scaled to [0, 1] when they are u8).
///
/// Example: `data::ClassificationLoadOptions o; o.split = "train"; o.spatial_size = {28, 28};`
struct ClassificationLoadOptions {
  /// A group of the file holding the split ("train", "test"); empty: the root, or the group after ':'
  /// in the path (`usps.h5:train`). Both given must agree.
  std::string split;
  /// Target spatial shape: (H, W) for 2-D images, (D, H, W) for 3-D; empty keeps the stored shape.
  std::vector<std::int64_t> spatial_size;
  SpatialFit fit = SpatialFit::resize;
  /// resize only: when shrinking, average with a triangle filter widened by the shrink factor (as
  /// PIL and torchvision's antialiased bilinear resize); without it, shrinking samples (aliasing).
  bool antialias = true;
  /// Replicate a single channel to three (grey -> RGB); 3-channel images are kept, others refused.
  bool grey_to_rgb = false;
  /// Multiplies the stored values; default 1/255 for u8 images, 1 for f32.
  std::optional<double> scale;
  /// After scaling: x = (x - mean[c]) / stddev[c]; one value applies to every channel; empty: none.
  /// (MNIST's usual values are mean 0.1307, stddev 0.3081.)
  std::vector<double> mean, stddev;
  /// For flattened images [N, F] (the Kaggle USPS layout): the per-image shape (C, H, W) or (H, W);
  /// empty: one channel of sqrt(F) x sqrt(F) when F is a perfect square.
  std::vector<std::int64_t> flat_image_shape;
  /// 0: the root attribute "num_classes" when the file has one, else max label + 1.
  std::int64_t num_classes = 0;
};

/// Labelled images for classification, all in memory.
///
/// Example:
/// ```
/// data::ClassificationLoadOptions o;
/// o.spatial_size = {28, 28};  // USPS 16x16 -> LeNet's 28x28
/// auto ds = data::load_classification_dataset("usps.h5:train", o);
/// fmt::print("{} images {}, {} classes\n", ds.size(), ds.images.shape().str(), ds.num_classes);
/// ```
struct ClassificationDataset {
  Tensor images;  ///< f32 [N, C, H, W] or [N, C, D, H, W]
  Tensor labels;  ///< i64 [N], each in [0, num_classes)
  std::int64_t num_classes = 0;
  std::string source;  ///< "file.h5" or "file.h5:group", for messages

  std::int64_t size() const { return labels.defined() ? labels.numel() : 0; }
  /// Images per class, [num_classes].
  std::vector<std::int64_t> class_counts() const;
};

/// Where a classification path points: `file.h5`, or `file.h5:split` when the path itself is no
/// file; `group` is the split (from the path, else `split`), without leading '/'.
struct SplitPath {
  std::filesystem::path file;
  std::string group;
};
/// Resolves `path` (tlk::Error when the file does not exist, or when the path names another split
/// than a non-empty `split`).
SplitPath split_path(const std::string& path, const std::string& split);

/// Reads images and labels from an HDF5 file and prepares them as `options` say.
///
/// Note [Classification HDF5 layout]: in the group G (the root, `options.split`, or the part after
/// the last ':' of `path` when `path` itself is no file), either
///  - `G/images` + `G/labels` (TLK's layout, written by write_classification_file), or
///  - `G/data` + `G/target` (the Kaggle usps.h5 layout: train/data [7291, 256] f32, train/target i32).
/// images: u8 or f32, [N, C, H, W] or [N, C, D, H, W]; also [N, H, W] (one channel) and [N, F]
/// (flattened, see flat_image_shape). labels: any integer type, [N] or [N, 1], each >= 0.
/// The root string attribute "num_classes" (if any) gives the class count for every split.
/// Processing order: scale -> spatial fit -> grey_to_rgb -> mean/stddev. Errors name the file and
/// dataset.
ClassificationDataset load_classification_dataset(const std::string& path,
                                                  const ClassificationLoadOptions& options = {});

/// Brings images [N, C, H, W] or [N, C, D, H, W] (f32) to `spatial_size` by `fit` (see SpatialFit).
/// Example: `Tensor x28 = data::fit_images(usps16, {28, 28}, SpatialFit::resize);`
Tensor fit_images(const Tensor& images, const std::vector<std::int64_t>& spatial_size, SpatialFit fit,
                  bool antialias = true);

/// One split to write with write_classification_file.
struct ClassificationSplit {
  std::string group;  ///< "" for the root, else e.g. "train"
  Tensor images;      ///< u8 or f32 [N, C, H, W] or [N, C, D, H, W]
  Tensor labels;      ///< integer [N], >= 0 (stored as i64)
};

/// Writes splits in TLK's layout (`<group>/images`, `<group>/labels` i64) plus the root attributes
/// "num_classes" (`num_classes`, or 0: max label + 1 over all splits) and "source", atomically.
/// Example: `data::write_classification_file("mnist_test.h5", {{"", images, labels}}, 10, "MNIST t10k");`
void write_classification_file(const std::filesystem::path& path, const std::vector<ClassificationSplit>& splits,
                               std::int64_t num_classes = 0, const std::string& source = "");

/// The MNIST IDX pair (images [N, H, W] u8, labels [N] u8; gzip or not) as a split: images u8
/// [N, 1, H, W], labels i64 [N]. A count mismatch is a tlk::Error naming both files.
/// Example: `auto s = data::read_mnist_idx("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz");`
ClassificationSplit read_mnist_idx(const std::filesystem::path& images, const std::filesystem::path& labels);

/// The images and labels at `indices` (copied; any order, repeats allowed), e.g. one batch.
/// Example: `auto batch = data::subset(ds, batches[i]);  // batch.images [B, C, H, W]`
ClassificationDataset subset(const ClassificationDataset& dataset, const std::vector<std::int64_t>& indices);

/// 0..n-1 in a random order (Fisher-Yates with `gen`).
/// Example: `Generator gen(1); auto order = data::shuffled_indices(ds.size(), gen);`
std::vector<std::int64_t> shuffled_indices(std::int64_t n, Generator& gen);

/// One epoch's batches of indices into a dataset of `n`: shuffled with `gen` (in order when null),
/// `batch_size` each; the last, smaller batch is dropped when `drop_last`.
/// Example: `for (const auto& idx : data::epoch_batches(ds.size(), 64, &gen)) step(data::subset(ds, idx));`
std::vector<std::vector<std::int64_t>> epoch_batches(std::int64_t n, std::int64_t batch_size, Generator* gen,
                                                     bool drop_last = false);

}  // namespace tlk::data
