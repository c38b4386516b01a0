#include "tlk/io/nifti.h"


#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>

#include "tlk/io/hdf5_file.h"
#include "tlk/io/file_bytes.h"
#include "tlk/tensor/error.h"

namespace tlk::io {

namespace {

constexpr std::size_t kHeader1 = 348, kHeader2 = 540;

// Reads header fields at byte offsets, swapping bytes when the file's order differs from ours.
struct Fields {
  const std::uint8_t* p;
  bool swap;
  template <class T>
  T get(std::size_t offset) const {
    T v;
    std::memcpy(&v, p + offset, sizeof v);
    if (swap) {
      auto* b = reinterpret_cast<std::uint8_t*>(&v);
      std::reverse(b, b + sizeof v);
    }
    return v;
  }
  std::string text(std::size_t offset, std::size_t size) const {
    const char* c = reinterpret_cast<const char*>(p + offset);
    return std::string(c, strnlen(c, size));
  }
};

std::size_t type_size(NiftiType t) {
  switch (t) {
    case NiftiType::u8:
      return 1;
    case NiftiType::i16:
    case NiftiType::u16:
      return 2;
    case NiftiType::i32:
    case NiftiType::f32:
      return 4;
    case NiftiType::f64:
      return 8;
  }
  return 0;
}

DType held_dtype(NiftiType t) {
  switch (t) {
    case NiftiType::u8:
      return DType::u8;
    case NiftiType::i16:
    case NiftiType::u16:
    case NiftiType::i32:
      return DType::i32;
    case NiftiType::f32:
      return DType::f32;
    case NiftiType::f64:
      return DType::f64;
  }
  return DType::f32;
}

template <class Stored, class Held>
void convert_voxels(const std::uint8_t* src, std::int64_t count, bool swap, Held* dst) {
  for (std::int64_t i = 0; i < count; ++i) {
    Stored v;
    std::memcpy(&v, src + i * static_cast<std::int64_t>(sizeof(Stored)), sizeof v);
    if (swap && sizeof(Stored) > 1) {
      auto* b = reinterpret_cast<std::uint8_t*>(&v);
      std::reverse(b, b + sizeof v);
    }
    dst[i] = static_cast<Held>(v);
  }
}

Tensor decode_voxels(const std::uint8_t* src, const Shape& shape, NiftiType type, bool swap) {
  Tensor t = Tensor::empty(shape, TensorOptions{held_dtype(type)});
  const std::int64_t n = shape.numel();
  switch (type) {
    case NiftiType::u8:
      std::memcpy(t.raw_data(), src, static_cast<std::size_t>(n));
      break;
    case NiftiType::i16:
      convert_voxels<std::int16_t>(src, n, swap, t.data<std::int32_t>());
      break;
    case NiftiType::u16:
      convert_voxels<std::uint16_t>(src, n, swap, t.data<std::int32_t>());
      break;
    case NiftiType::i32:
      convert_voxels<std::int32_t>(src, n, swap, t.data<std::int32_t>());
      break;
    case NiftiType::f32:
      convert_voxels<float>(src, n, swap, t.data<float>());
      break;
    case NiftiType::f64:
      convert_voxels<double>(src, n, swap, t.data<double>());
      break;
  }
  return t;
}

}  // namespace

NiftiImage read_nifti(const std::filesystem::path& path) {
  const std::string name = path.string();
  const std::vector<std::uint8_t> bytes = read_file_bytes(path);
  check(bytes.size() >= kHeader1, "{}: {} bytes is too short for a NIfTI header (348 bytes at least)", name,
        bytes.size());
  std::int32_t raw_size;
  std::memcpy(&raw_size, bytes.data(), 4);
  // Note [Byte order]: the header size field is 348 or 540 in the writer's byte order; read swapped,
  // the file came from a machine of the other endianness and every field and voxel is swapped.
  const bool swap = raw_size != 348 && raw_size != 540;
  const std::int32_t sizeof_hdr =
      swap ? static_cast<std::int32_t>(__builtin_bswap32(static_cast<std::uint32_t>(raw_size))) : raw_size;
  check(sizeof_hdr == 348 || sizeof_hdr == 540,
        "{}: not a NIfTI file (header size field is {}, expected 348 for NIfTI-1 or 540 for NIfTI-2)", name, raw_size);
  check(bytes.size() >= static_cast<std::size_t>(sizeof_hdr), "{}: the file ends inside its header ({} bytes)", name,
        bytes.size());
  const Fields f{bytes.data(), swap};
  NiftiImage image;
  image.version = sizeof_hdr == 540 ? 2 : 1;
  std::int64_t dim[8];
  double pixdim[8];
  std::int16_t datatype;
  std::int64_t vox_offset;
  if (image.version == 1) {
    const std::string magic = f.text(344, 4);
    check(magic == "n+1" || magic == "ni1", "{}: bad NIfTI-1 magic '{}' (expected 'n+1')", name, magic);
    check(magic == "n+1", "{}: a two-file NIfTI (.hdr/.img) is not supported; convert it to a single .nii", name);
    for (int i = 0; i < 8; ++i) dim[i] = f.get<std::int16_t>(40 + 2 * i);
    for (int i = 0; i < 8; ++i) pixdim[i] = f.get<float>(76 + 4 * i);
    datatype = f.get<std::int16_t>(70);
    const float offset = f.get<float>(108);
    check(std::isfinite(offset) && offset >= 0 && offset == std::floor(offset), "{}: invalid vox_offset {}", name,
          offset);
    vox_offset = static_cast<std::int64_t>(offset);
    image.scl_slope = f.get<float>(112);
    image.scl_inter = f.get<float>(116);
    image.xyzt_units = f.get<std::uint8_t>(123);
    image.description = f.text(148, 80);
    image.qform_code = f.get<std::int16_t>(252);
    image.sform_code = f.get<std::int16_t>(254);
    for (int i = 0; i < 6; ++i) image.quatern[static_cast<std::size_t>(i)] = f.get<float>(256 + 4 * i);
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 4; ++c)
        image.srow[static_cast<std::size_t>(r)][static_cast<std::size_t>(c)] = f.get<float>(280 + 16 * r + 4 * c);
  } else {
    const std::string magic = f.text(4, 3);
    check(magic == "n+2", "{}: bad NIfTI-2 magic '{}' (expected 'n+2')", name, magic);
    for (int i = 0; i < 8; ++i) dim[i] = f.get<std::int64_t>(16 + 8 * i);
    for (int i = 0; i < 8; ++i) pixdim[i] = f.get<double>(104 + 8 * i);
    datatype = f.get<std::int16_t>(12);
    vox_offset = f.get<std::int64_t>(168);
    image.scl_slope = f.get<double>(176);
    image.scl_inter = f.get<double>(184);
    image.description = f.text(240, 80);
    image.qform_code = f.get<std::int32_t>(344);
    image.sform_code = f.get<std::int32_t>(348);
    for (int i = 0; i < 6; ++i) image.quatern[static_cast<std::size_t>(i)] = f.get<double>(352 + 8 * i);
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 4; ++c)
        image.srow[static_cast<std::size_t>(r)][static_cast<std::size_t>(c)] = f.get<double>(400 + 32 * r + 8 * c);
    image.xyzt_units = f.get<std::int32_t>(500);
  }
  check(datatype == 2 || datatype == 4 || datatype == 8 || datatype == 16 || datatype == 64 || datatype == 512,
        "{}: unsupported voxel type code {} (supported: uint8 2, int16 4, int32 8, float32 16, float64 64, uint16 512)",
        name, datatype);
  image.stored_type = static_cast<NiftiType>(datatype);
  check(dim[0] >= 1 && dim[0] <= 4, "{}: dim[0] is {}, expected 1 to 4 dimensions", name, dim[0]);
  Shape shape;
  for (std::int64_t i = dim[0]; i >= 1; --i) {
    check(dim[i] >= 1, "{}: dim[{}] is {}, expected a positive extent", name, i, dim[i]);
    shape.push_back(dim[i]);
    image.dims.insert(image.dims.begin(), dim[i]);
  }
  for (int i = 0; i < 3; ++i) image.spacing[static_cast<std::size_t>(i)] = i < dim[0] ? std::abs(pixdim[i + 1]) : 1.0;
  image.qfac = pixdim[0] < 0 ? -1.0 : 1.0;
  const std::int64_t data_bytes = shape.numel() * static_cast<std::int64_t>(type_size(image.stored_type));
  check(vox_offset >= sizeof_hdr, "{}: vox_offset {} points inside the {}-byte header", name, vox_offset, sizeof_hdr);
  check(vox_offset + data_bytes <= static_cast<std::int64_t>(bytes.size()),
        "{}: truncated or inconsistent: dims {} of {}-byte voxels need {} bytes from offset {}, the file has {}", name,
        shape.str(), type_size(image.stored_type), data_bytes, vox_offset, bytes.size());
  image.data = decode_voxels(bytes.data() + vox_offset, shape, image.stored_type, swap);
  return image;
}

std::array<std::array<double, 4>, 4> NiftiImage::affine() const {
  std::array<std::array<double, 4>, 4> m{};
  m[3] = {0, 0, 0, 1};
  if (sform_code > 0) {
    for (int r = 0; r < 3; ++r) m[static_cast<std::size_t>(r)] = srow[static_cast<std::size_t>(r)];
    return m;
  }
  if (qform_code <= 0) {
    for (int i = 0; i < 3; ++i)
      m[static_cast<std::size_t>(i)][static_cast<std::size_t>(i)] = spacing[static_cast<std::size_t>(i)];
    return m;
  }
  // Note [qform]: the rotation from the quaternion (b, c, d) with a = sqrt(1 - b² - c² - d²),
  // columns scaled by the spacing, the third by qfac (NIfTI-1 standard, "method 2").
  const double b = quatern[0], c = quatern[1], d = quatern[2];
  const double a = std::sqrt(std::max(0.0, 1.0 - (b * b + c * c + d * d)));
  const double R[3][3] = {{a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)},
                          {2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)},
                          {2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b}};
  const double scale[3] = {spacing[0], spacing[1], spacing[2] * qfac};
  for (int r = 0; r < 3; ++r) {
    for (int col = 0; col < 3; ++col)
      m[static_cast<std::size_t>(r)][static_cast<std::size_t>(col)] = R[r][col] * scale[col];
    m[static_cast<std::size_t>(r)][3] = quatern[static_cast<std::size_t>(3 + r)];
  }
  return m;
}

Tensor NiftiImage::scaled_f32() const {
  Tensor values = data.to(DType::f32);
  if (scl_slope == 0.0 || (scl_slope == 1.0 && scl_inter == 0.0)) return values;
  Tensor out = values.clone();
  float* p = out.data<float>();
  for (std::int64_t i = 0; i < out.numel(); ++i)
    p[i] = static_cast<float>(scl_slope * static_cast<double>(p[i]) + scl_inter);
  return out;
}

}  // namespace tlk::io
