#pragma once
#include <filesystem>

#include "tlk/tensor/tensor.h"

namespace tlk::io {

/// Reads an IDX file (the format of the MNIST files, e.g. t10k-images-idx3-ubyte), gzip-compressed
/// or not (detected from the content, not the name), into a CPU tensor of its dims.
///
/// Note [IDX format]: a 4-byte magic 0x00 0x00 TYPE NDIMS, then NDIMS big-endian u32 extents, then
/// the values row-major, big-endian. TYPE 0x08 (unsigned byte) -> u8; 0x09 (signed byte), 0x0B (i16)
/// and 0x0C (i32) -> i32; 0x0D (f32) -> f32; 0x0E (f64) -> f64. MNIST images are 0x00000803
/// ([N, 28, 28] u8), labels 0x00000801 ([N] u8). A wrong magic, a file shorter than its header
/// promises (truncated) or one with bytes after the data is a tlk::Error naming the file.
///
/// Example: `Tensor images = io::read_idx("t10k-images-idx3-ubyte.gz");  // u8 [10000, 28, 28]`
Tensor read_idx(const std::filesystem::path& path);

/// Writes `tensor` (u8, i32, f32 or f64; 1 to 6 dims) as an IDX file, gzip-compressed when `path` ends
/// in ".gz"; written to a temporary name and renamed.
/// Example: `io::write_idx("labels-idx1-ubyte.gz", Tensor::from_vector<std::uint8_t>({7, 2, 1}, {3}));`
void write_idx(const std::filesystem::path& path, const Tensor& tensor);

}  // namespace tlk::io
