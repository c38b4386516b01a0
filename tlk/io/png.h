#pragma once
#include <cstdint>
#include <filesystem>
#include <vector>

#include "tlk/tensor/tensor.h"

namespace tlk::io {

/// Writes an 8-bit PNG: `pixels` is u8 [H, W] (grey) or [H, W, 3] (RGB), row-major, top row first.
/// Written to a temporary name and renamed; errors name the file.
/// Example: `io::write_png("slice.png", grey_u8_hw);`
void write_png(const std::filesystem::path& path, const Tensor& pixels);

/// Reads back an 8-bit, non-interlaced grey or RGB PNG as written by write_png (for tests and tools);
/// other PNG flavours are a tlk::Error naming the file.
Tensor read_png(const std::filesystem::path& path);

}  // namespace tlk::io
