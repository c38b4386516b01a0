// Writing NIfTI-1 and NIfTI-2 files (the reader is in nifti.cpp).
#include <zlib.h>

#include <cstring>
#include <fstream>
#include <limits>

#include "tlk/io/hdf5_file.h"
#include "tlk/io/nifti.h"
#include "tlk/tensor/error.h"

namespace tlk::io {

namespace {

struct HeaderWriter {
  std::vector<std::uint8_t> bytes;
  template <class T>
  void put(std::size_t offset, T v) {
    std::memcpy(bytes.data() + offset, &v, sizeof v);
  }
  void text(std::size_t offset, const std::string& s, std::size_t size) {
    std::memcpy(bytes.data() + offset, s.data(), std::min(s.size(), size - 1));
  }
};

template <class Stored, class Held>
void encode(const Held* src, std::int64_t count, std::vector<std::uint8_t>& out, const std::string& name) {
  const std::size_t start = out.size();
  out.resize(start + static_cast<std::size_t>(count) * sizeof(Stored));
  for (std::int64_t i = 0; i < count; ++i) {
    if constexpr (std::is_integral_v<Stored> && sizeof(Stored) < sizeof(Held))
      check(src[i] >= std::numeric_limits<Stored>::min() && src[i] <= std::numeric_limits<Stored>::max(),
            "{}: voxel {} holds {}, outside the stored type's range", name, i, static_cast<double>(src[i]));
    const Stored v = static_cast<Stored>(src[i]);
    std::memcpy(out.data() + start + static_cast<std::size_t>(i) * sizeof(Stored), &v, sizeof v);
  }
}

std::vector<std::uint8_t> encode_voxels(const NiftiImage& image, const std::string& name) {
  std::vector<std::uint8_t> out;
  const Tensor t = image.data.contiguous();
  const std::int64_t n = t.numel();
  switch (image.stored_type) {
    case NiftiType::u8:
      encode<std::uint8_t>(t.to(DType::u8).data<std::uint8_t>(), n, out, name);
      break;
    case NiftiType::i16:
      encode<std::int16_t>(t.to(DType::i32).data<std::int32_t>(), n, out, name);
      break;
    case NiftiType::u16:
      encode<std::uint16_t>(t.to(DType::i32).data<std::int32_t>(), n, out, name);
      break;
    case NiftiType::i32:
      encode<std::int32_t>(t.to(DType::i32).data<std::int32_t>(), n, out, name);
      break;
    case NiftiType::f32:
      encode<float>(t.to(DType::f32).data<float>(), n, out, name);
      break;
    case NiftiType::f64:
      encode<double>(t.to(DType::f64).data<double>(), n, out, name);
      break;
  }
  return out;
}

std::vector<std::uint8_t> header(const NiftiImage& im, const Shape& shape) {
  const bool v2 = im.version == 2;
  HeaderWriter h{std::vector<std::uint8_t>(v2 ? 544 : 352, 0)};  // header + 4 bytes of "no extensions"
  const std::int64_t ndim = shape.size();
  const std::int16_t code = static_cast<std::int16_t>(im.stored_type);
  const std::int16_t bits = im.stored_type == NiftiType::u8                                        ? 8
                            : im.stored_type == NiftiType::i16 || im.stored_type == NiftiType::u16 ? 16
                            : im.stored_type == NiftiType::f64                                     ? 64
                                                                                                   : 32;
  double pixdim[8] = {im.qfac, 1, 1, 1, 1, 1, 1, 1};
  for (int i = 0; i < 3; ++i) pixdim[i + 1] = im.spacing[static_cast<std::size_t>(i)];
  if (!v2) {
    h.put<std::int32_t>(0, 348);
    h.put<std::int16_t>(40, static_cast<std::int16_t>(ndim));
    for (std::int64_t i = 0; i < ndim; ++i)
      h.put<std::int16_t>(static_cast<std::size_t>(42 + 2 * i),
                          static_cast<std::int16_t>(shape[static_cast<int>(ndim - 1 - i)]));
    for (std::int64_t i = ndim + 1; i < 8; ++i) h.put<std::int16_t>(static_cast<std::size_t>(40 + 2 * i), 1);
    h.put<std::int16_t>(70, code);
    h.put<std::int16_t>(72, bits);
    for (int i = 0; i < 8; ++i) h.put<float>(static_cast<std::size_t>(76 + 4 * i), static_cast<float>(pixdim[i]));
    h.put<float>(108, 352.0f);
    h.put<float>(112, static_cast<float>(im.scl_slope));
    h.put<float>(116, static_cast<float>(im.scl_inter));
    h.put<std::uint8_t>(123, static_cast<std::uint8_t>(im.xyzt_units));
    h.text(148, im.description, 80);
    h.put<std::int16_t>(252, static_cast<std::int16_t>(im.qform_code));
    h.put<std::int16_t>(254, static_cast<std::int16_t>(im.sform_code));
    for (int i = 0; i < 6; ++i)
      h.put<float>(static_cast<std::size_t>(256 + 4 * i), static_cast<float>(im.quatern[static_cast<std::size_t>(i)]));
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 4; ++c)
        h.put<float>(static_cast<std::size_t>(280 + 16 * r + 4 * c),
                     static_cast<float>(im.srow[static_cast<std::size_t>(r)][static_cast<std::size_t>(c)]));
    std::memcpy(h.bytes.data() + 344, "n+1\0", 4);
  } else {
    h.put<std::int32_t>(0, 540);
    std::memcpy(h.bytes.data() + 4, "n+2\0\r\n\032\n", 8);
    h.put<std::int16_t>(12, code);
    h.put<std::int16_t>(14, bits);
    h.put<std::int64_t>(16, ndim);
    for (std::int64_t i = 0; i < ndim; ++i)
      h.put<std::int64_t>(static_cast<std::size_t>(24 + 8 * i), shape[static_cast<int>(ndim - 1 - i)]);
    for (std::int64_t i = ndim + 1; i < 8; ++i) h.put<std::int64_t>(static_cast<std::size_t>(16 + 8 * i), 1);
    for (int i = 0; i < 8; ++i) h.put<double>(static_cast<std::size_t>(104 + 8 * i), pixdim[i]);
    h.put<std::int64_t>(168, 544);
    h.put<double>(176, im.scl_slope);
    h.put<double>(184, im.scl_inter);
    h.text(240, im.description, 80);
    h.put<std::int32_t>(344, im.qform_code);
    h.put<std::int32_t>(348, im.sform_code);
    for (int i = 0; i < 6; ++i)
      h.put<double>(static_cast<std::size_t>(352 + 8 * i), im.quatern[static_cast<std::size_t>(i)]);
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 4; ++c)
        h.put<double>(static_cast<std::size_t>(400 + 32 * r + 8 * c),
                      im.srow[static_cast<std::size_t>(r)][static_cast<std::size_t>(c)]);
    h.put<std::int32_t>(500, im.xyzt_units);
  }
  return h.bytes;
}

}  // namespace

void write_nifti(const std::filesystem::path& path, const NiftiImage& image) {
  const std::string name = path.string();
  check(image.data.defined() && image.data.dim() >= 1 && image.data.dim() <= 4,
        "{}: NIfTI images hold 1 to 4 dimensions, got {}", name,
        image.data.defined() ? image.data.shape().str() : "none");
  check(image.version == 1 || image.version == 2, "{}: NIfTI version must be 1 or 2, got {}", name, image.version);
  if (image.version == 1)
    for (auto e : image.data.shape())
      check(e <= 32767, "{}: extent {} does not fit NIfTI-1 (at most 32767); write NIfTI-2", name, e);
  std::vector<std::uint8_t> bytes = header(image, image.data.shape());
  const std::vector<std::uint8_t> voxels = encode_voxels(image, name);
  bytes.insert(bytes.end(), voxels.begin(), voxels.end());
  const bool gz = path.extension() == ".gz";
  write_atomically(path, [&](const std::filesystem::path& tmp) {
    if (gz) {
      gzFile file = gzopen(tmp.c_str(), "wb6");
      check(file != nullptr, "{}: cannot create the file", name);
      const int written = gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size()));
      const int closed = gzclose(file);
      check(written == static_cast<int>(bytes.size()) && closed == Z_OK, "{}: writing failed (disk full?)", name);
    } else {
      std::ofstream out(tmp, std::ios::binary);
      check(out.good(), "{}: cannot create the file", name);
      out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
      out.close();
      check(out.good(), "{}: writing failed (disk full?)", name);
    }
  });
}

}  // namespace tlk::io
