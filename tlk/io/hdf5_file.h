#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "tlk/tensor/tensor.h"

/// File formats: HDF5 (checkpoints, datasets), later NIfTI, YAML and PNG.
namespace tlk::io {

/// An HDF5 file opened for reading or writing, with tensors as plain datasets (row-major, the
/// tensor's dtype: f32, f64, i64, i32 or u8) that h5py and PyTorch tooling read directly, and string
/// attributes on the root group.
///
/// Every failure is a tlk::Error naming the file and the dataset; the HDF5 library's own error
/// printing is switched off.
///
/// Example:
/// ```
/// io::Hdf5File f = io::Hdf5File::create("weights.h5");
/// f.write("model/conv.weight", w);
/// Tensor back = io::Hdf5File::open("weights.h5").read("model/conv.weight");
/// ```
class Hdf5File {
 public:
  /// Creates (truncates) `path` for writing.
  static Hdf5File create(const std::filesystem::path& path);
  /// Opens an existing file read-only.
  static Hdf5File open(const std::filesystem::path& path);
  ~Hdf5File();
  Hdf5File(Hdf5File&& other) noexcept;
  Hdf5File& operator=(Hdf5File&&) = delete;
  Hdf5File(const Hdf5File&) = delete;

  /// Writes `tensor` (any layout; stored plain row-major) as dataset `name`; '/' in the name makes
  /// groups. Large tensors are chunked and compressed (deflate level 1).
  void write(const std::string& name, const Tensor& tensor);
  /// Reads dataset `name` into a new CPU tensor of its stored dtype and shape.
  Tensor read(const std::string& name) const;
  bool has(const std::string& name) const;
  /// Names of the datasets below group `group` (recursively), with the group prefix removed.
  std::vector<std::string> datasets(const std::string& group = "/") const;
  /// A string attribute on the root group.
  void set_attribute(const std::string& name, const std::string& value);
  std::string attribute(const std::string& name) const;
  bool has_attribute(const std::string& name) const;
  /// Every string attribute whose name starts with `prefix`, keyed by the rest of the name.
  std::map<std::string, std::string> attributes_with_prefix(const std::string& prefix) const;
  /// Writes everything to disk (called by the destructor too; call it to see errors as exceptions).
  void flush();
  const std::filesystem::path& path() const { return path_; }

 private:
  Hdf5File(std::int64_t id, std::filesystem::path path) : id_(id), path_(std::move(path)) {}
  std::int64_t id_ = -1;
  std::filesystem::path path_;
};

/// Writes a file through `write_fn` to a temporary name beside `path`, then renames it over `path`:
/// a reader never sees a half-written file, and a failure (exception) leaves `path` as it was and no
/// temporary behind.
void write_atomically(const std::filesystem::path& path,
                      const std::function<void(const std::filesystem::path&)>& write_fn);

}  // namespace tlk::io
