#pragma once
#include <cstdint>
#include <string>

#include "tlk/tensor/tensor.h"

namespace tlk::autograd {

/// A tensor kept by a graph node for its backward.
///
/// Note [Version counter]: the storage counts in-place writes (Storage::bump_version). Saving records
/// the count; unpacking compares it, so a saved tensor that was overwritten in place between forward
/// and backward is reported as an error naming the op instead of silently giving a wrong gradient.
/// The saved handle is a detached alias (same storage, no grad_fn), which also avoids a reference
/// cycle when a node saves its own output.
class SavedTensor {
 public:
  SavedTensor() = default;
  SavedTensor(const Tensor& tensor, const char* op);
  /// The saved tensor; throws tlk::Error when it was modified in place or already released.
  Tensor unpack() const;
  bool defined() const { return defined_; }
  /// Frees the saved data (called after a backward that does not retain the graph).
  void release() { tensor_ = Tensor(); }

 private:
  Tensor tensor_;
  std::uint64_t version_ = 0;
  const char* op_ = "";
  bool defined_ = false;
};

}  // namespace tlk::autograd
