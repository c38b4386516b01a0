#pragma once
#include <cstdint>
#include <filesystem>
#include <vector>

namespace tlk::io {

/// The whole file, decompressed when it is gzip (plain files pass through). A missing file or a
/// corrupt or cut-short gzip stream is a tlk::Error naming the file.
/// Example: `std::vector<std::uint8_t> bytes = io::read_file_bytes("case_00010.nii.gz");`
std::vector<std::uint8_t> read_file_bytes(const std::filesystem::path& path);

}  // namespace tlk::io
