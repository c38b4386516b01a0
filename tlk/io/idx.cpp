#include "tlk/io/idx.h"

#include <zlib.h>

#include <bit>
#include <cstring>
#include <fstream>
#include <vector>

#include "tlk/io/hdf5_file.h"
#include "tlk/io/file_bytes.h"
#include "tlk/tensor/error.h"

namespace tlk::io {

namespace {

struct IdxType {
  std::uint8_t code;
  std::size_t bytes;  // per element in the file
  DType dtype;        // in memory
  const char* name;
};

constexpr IdxType kTypes[] = {
    {0x08, 1, DType::u8, "unsigned byte"}, {0x09, 1, DType::i32, "signed byte"}, {0x0B, 2, DType::i32, "i16"},
    {0x0C, 4, DType::i32, "i32"},          {0x0D, 4, DType::f32, "f32"},         {0x0E, 8, DType::f64, "f64"},
};

std::uint32_t read_be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}

// Copies `n` big-endian values of `size` bytes from `src` into native order at `dst`.
void copy_big_endian(const std::uint8_t* src, std::uint8_t* dst, std::size_t n, std::size_t size) {
  if (size == 1 || std::endian::native == std::endian::big) {
    std::memcpy(dst, src, n * size);
    return;
  }
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t b = 0; b < size; ++b) dst[i * size + b] = src[i * size + size - 1 - b];
}

}  // namespace

Tensor read_idx(const std::filesystem::path& path) {
  const std::vector<std::uint8_t> bytes = read_file_bytes(path);
  const std::string where = path.string();
  check(bytes.size() >= 4, "{}: not an IDX file (only {} bytes)", where, bytes.size());
  const std::uint32_t magic = read_be32(bytes.data());
  const IdxType* type = nullptr;
  for (const IdxType& t : kTypes)
    if (bytes[2] == t.code) type = &t;
  const int ndims = bytes[3];
  check(bytes[0] == 0 && bytes[1] == 0 && type != nullptr && ndims >= 1 && ndims <= Dims::kMaxDims,
        "{}: not an IDX file (magic 0x{:08X}; expected 0x0000TTNN with type TT in 08, 09, 0B, 0C, 0D, 0E and "
        "1 to {} dims NN, e.g. 0x00000803 for MNIST images)",
        where, magic, Dims::kMaxDims);
  const std::size_t header = 4 + 4 * static_cast<std::size_t>(ndims);
  check(bytes.size() >= header, "{}: truncated IDX file ({} bytes; the header alone takes {})", where, bytes.size(),
        header);
  Shape shape;
  for (int i = 0; i < ndims; ++i) shape.push_back(read_be32(bytes.data() + 4 + 4 * static_cast<std::size_t>(i)));
  const std::size_t expected = static_cast<std::size_t>(shape.numel()) * type->bytes;
  const std::size_t have = bytes.size() - header;
  check(have >= expected, "{}: truncated IDX file: the header promises {} {} values ({} bytes) but {} bytes follow",
        where, shape.str(), type->name, expected, have);
  check(have == expected, "{}: {} bytes after the {} {} values the header promises (not an IDX file?)", where,
        have - expected, shape.str(), type->name);

  const std::uint8_t* src = bytes.data() + header;
  const auto n = static_cast<std::size_t>(shape.numel());
  Tensor t = Tensor::empty(shape, TensorOptions{type->dtype});
  if (type->code == 0x09 || type->code == 0x0B) {
    std::int32_t* dst = t.data<std::int32_t>();
    for (std::size_t i = 0; i < n; ++i)
      dst[i] = type->code == 0x09 ? static_cast<std::int8_t>(src[i])
                                  : static_cast<std::int16_t>((std::uint16_t{src[2 * i]} << 8) | src[2 * i + 1]);
  } else {
    copy_big_endian(src, static_cast<std::uint8_t*>(t.raw_data()), n, type->bytes);
  }
  return t;
}

void write_idx(const std::filesystem::path& path, const Tensor& tensor) {
  const Tensor t = tensor.detach().to(Device::cpu()).to(Layout::plain).contiguous();
  std::uint8_t code = 0;
  switch (t.dtype()) {
    case DType::u8: code = 0x08; break;
    case DType::i32: code = 0x0C; break;
    case DType::f32: code = 0x0D; break;
    case DType::f64: code = 0x0E; break;
    default:
      fail("{}: write_idx: dtype {} cannot be stored in IDX (expected u8, i32, f32 or f64)", path.string(),
           dtype_name(t.dtype()));
  }
  check(t.dim() >= 1, "{}: write_idx: a 0-D tensor cannot be stored in IDX", path.string());
  const std::size_t size = element_size(t.dtype());
  std::vector<std::uint8_t> bytes{0, 0, code, static_cast<std::uint8_t>(t.dim())};
  for (std::int64_t d : t.shape())
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<std::uint8_t>(d >> shift));
  const std::size_t header = bytes.size();
  bytes.resize(header + static_cast<std::size_t>(t.numel()) * size);
  // Byte swapping is its own inverse: native -> big-endian uses the same copy.
  copy_big_endian(static_cast<const std::uint8_t*>(t.raw_data()), bytes.data() + header,
                  static_cast<std::size_t>(t.numel()), size);

  const bool gzip = path.extension() == ".gz";
  write_atomically(path, [&](const std::filesystem::path& tmp) {
    if (gzip) {
      gzFile file = gzopen(tmp.c_str(), "wb");
      check(file != nullptr, "{}: cannot create the file (is the folder there and writable?)", path.string());
      const int written = gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size()));
      const int closed = gzclose(file);
      check(written == static_cast<int>(bytes.size()) && closed == Z_OK, "{}: writing failed (disk full?)",
            path.string());
    } else {
      std::ofstream out(tmp, std::ios::binary);
      check(out.good(), "{}: cannot create the file (is the folder there and writable?)", path.string());
      out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
      out.close();
      check(out.good(), "{}: writing failed (disk full?)", path.string());
    }
  });
}

}  // namespace tlk::io
