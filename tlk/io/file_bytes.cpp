#include "tlk/io/file_bytes.h"

#include <zlib.h>

#include <string>

#include "tlk/tensor/error.h"

namespace tlk::io {

std::vector<std::uint8_t> read_file_bytes(const std::filesystem::path& path) {
  std::error_code ec;
  check(std::filesystem::is_regular_file(path, ec), "{}: no such file", path.string());
  gzFile file = gzopen(path.c_str(), "rb");  // gzread passes plain files through
  check(file != nullptr, "{}: cannot open for reading", path.string());
  std::vector<std::uint8_t> bytes;
  std::vector<std::uint8_t> chunk(1 << 20);
  for (;;) {
    const int n = gzread(file, chunk.data(), static_cast<unsigned>(chunk.size()));
    if (n <= 0) {
      int code = 0;
      const char* message = gzerror(file, &code);
      const bool broken = n < 0 || (code != Z_OK && code != Z_STREAM_END);
      const std::string text = message ? message : "";
      gzclose(file);
      check(!broken, "{}: the gzip stream is corrupt or cut short ({})", path.string(), text);
      return bytes;
    }
    bytes.insert(bytes.end(), chunk.begin(), chunk.begin() + n);
  }
}

}  // namespace tlk::io
