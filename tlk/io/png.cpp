#include "tlk/io/png.h"

#include <zlib.h>

#include <array>
#include <cstring>
#include <fstream>
#include <iterator>

#include "tlk/io/hdf5_file.h"
#include "tlk/tensor/error.h"

namespace tlk::io {

namespace {

constexpr std::array<std::uint8_t, 8> kSignature{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

void put_u32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}

std::uint32_t get_u32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

/// One chunk: length, type, data, CRC over type and data.
void put_chunk(std::vector<std::uint8_t>& out, const char* type, const std::vector<std::uint8_t>& data) {
  put_u32(out, static_cast<std::uint32_t>(data.size()));
  const std::size_t start = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data.begin(), data.end());
  put_u32(out, static_cast<std::uint32_t>(crc32(0, out.data() + start, static_cast<uInt>(out.size() - start))));
}

}  // namespace

void write_png(const std::filesystem::path& path, const Tensor& pixels_in) {
  check(pixels_in.dtype() == DType::u8 && (pixels_in.dim() == 2 || (pixels_in.dim() == 3 && pixels_in.size(2) == 3)),
        "{}: a PNG needs u8 pixels [H, W] or [H, W, 3], got {} {}", path.string(), dtype_name(pixels_in.dtype()),
        pixels_in.shape().str());
  const Tensor pixels = pixels_in.contiguous();
  const auto height = static_cast<std::uint32_t>(pixels.size(0)), width = static_cast<std::uint32_t>(pixels.size(1));
  const int channels = pixels.dim() == 3 ? 3 : 1;
  const std::size_t row = static_cast<std::size_t>(width) * channels;
  // Every scanline starts with its filter type; 0 (none) keeps the writer simple.
  std::vector<std::uint8_t> raw;
  raw.reserve((row + 1) * height);
  for (std::uint32_t y = 0; y < height; ++y) {
    raw.push_back(0);
    const std::uint8_t* src = pixels.data<std::uint8_t>() + y * row;
    raw.insert(raw.end(), src, src + row);
  }
  uLongf compressed_size = compressBound(static_cast<uLong>(raw.size()));
  std::vector<std::uint8_t> compressed(compressed_size);
  check(compress2(compressed.data(), &compressed_size, raw.data(), static_cast<uLong>(raw.size()), 6) == Z_OK,
        "{}: PNG compression failed", path.string());
  compressed.resize(compressed_size);

  std::vector<std::uint8_t> file(kSignature.begin(), kSignature.end());
  std::vector<std::uint8_t> header;
  put_u32(header, width);
  put_u32(header, height);
  header.insert(header.end(), {8, static_cast<std::uint8_t>(channels == 3 ? 2 : 0), 0, 0, 0});  // depth, colour, ...
  put_chunk(file, "IHDR", header);
  put_chunk(file, "IDAT", compressed);
  put_chunk(file, "IEND", {});
  write_atomically(path, [&](const std::filesystem::path& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    out.write(reinterpret_cast<const char*>(file.data()), static_cast<std::streamsize>(file.size()));
    out.close();
    check(out.good(), "{}: writing failed (disk full?)", path.string());
  });
}

Tensor read_png(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "{}: cannot open", path.string());
  const std::vector<std::uint8_t> file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  check(file.size() > kSignature.size() && std::equal(kSignature.begin(), kSignature.end(), file.begin()),
        "{}: not a PNG file", path.string());
  std::uint32_t width = 0, height = 0;
  int channels = 0;
  std::vector<std::uint8_t> compressed;
  for (std::size_t pos = kSignature.size(); pos + 12 <= file.size();) {
    const std::uint32_t length = get_u32(&file[pos]);
    check(pos + 12 + length <= file.size(), "{}: truncated PNG chunk", path.string());
    const std::string type(reinterpret_cast<const char*>(&file[pos + 4]), 4);
    const std::uint8_t* data = &file[pos + 8];
    if (type == "IHDR") {
      width = get_u32(data);
      height = get_u32(data + 4);
      check(data[8] == 8 && (data[9] == 0 || data[9] == 2) && data[12] == 0,
            "{}: only 8-bit grey or RGB, non-interlaced PNGs are read", path.string());
      channels = data[9] == 2 ? 3 : 1;
    } else if (type == "IDAT") {
      compressed.insert(compressed.end(), data, data + length);
    }
    pos += 12 + length;
  }
  check(channels > 0, "{}: PNG without a header chunk", path.string());
  const std::size_t row = static_cast<std::size_t>(width) * channels;
  std::vector<std::uint8_t> raw((row + 1) * height);
  uLongf raw_size = static_cast<uLongf>(raw.size());
  check(uncompress(raw.data(), &raw_size, compressed.data(), static_cast<uLong>(compressed.size())) == Z_OK &&
            raw_size == raw.size(),
        "{}: corrupt PNG image data", path.string());
  Tensor pixels = channels == 3 ? Tensor::empty({height, width, 3}, TensorOptions{}.with(DType::u8))
                                : Tensor::empty({height, width}, TensorOptions{}.with(DType::u8));
  for (std::uint32_t y = 0; y < height; ++y) {
    check(raw[y * (row + 1)] == 0, "{}: PNG filter type {} is not supported (written by another program?)",
          path.string(), raw[y * (row + 1)]);
    std::memcpy(pixels.data<std::uint8_t>() + y * row, &raw[y * (row + 1) + 1], row);
  }
  return pixels;
}

}  // namespace tlk::io
