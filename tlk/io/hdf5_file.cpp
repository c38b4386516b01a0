#include "tlk/io/hdf5_file.h"

#include <hdf5.h>

#include <system_error>

#include "tlk/tensor/error.h"

namespace tlk::io {

namespace {

// Note [HDF5 errors]: the library prints an error stack on stderr by default; TLK turns that off once
// and reports failures itself, as one tlk::Error naming the file and the dataset.
void silence_hdf5() {
  static const bool done = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)done;
}

hid_t h5_type(DType t) {
  switch (t) {
    case DType::f32:
      return H5T_NATIVE_FLOAT;
    case DType::f64:
      return H5T_NATIVE_DOUBLE;
    case DType::i64:
      return H5T_NATIVE_INT64;
    case DType::i32:
      return H5T_NATIVE_INT32;
    case DType::u8:
      return H5T_NATIVE_UINT8;
    default:
      fail("HDF5: dtype {} cannot be stored (expected f32, f64, i64, i32 or u8)", dtype_name(t));
  }
}

DType dtype_from(hid_t type, const std::string& where) {
  const H5T_class_t cls = H5Tget_class(type);
  const std::size_t size = H5Tget_size(type);
  if (cls == H5T_FLOAT && size == 4) return DType::f32;
  if (cls == H5T_FLOAT && size == 8) return DType::f64;
  if (cls == H5T_INTEGER) {
    const bool is_signed = H5Tget_sign(type) == H5T_SGN_2;
    if (size == 8 && is_signed) return DType::i64;
    if (size == 4 && is_signed) return DType::i32;
    if (size == 1 && !is_signed) return DType::u8;
    if (size == 2 || size == 1 || size == 4) return DType::i64;  // read through a widening conversion
  }
  fail("{}: unsupported HDF5 element type (class {}, {} bytes); expected float32/64 or an integer type", where,
       static_cast<int>(cls), size);
}

// Closes an HDF5 handle when it goes out of scope.
struct Handle {
  hid_t id;
  herr_t (*close)(hid_t);
  ~Handle() {
    if (id >= 0) close(id);
  }
};

void make_groups(hid_t file, const std::string& name, const std::string& where) {
  for (std::size_t pos = name.find('/', 1); pos != std::string::npos; pos = name.find('/', pos + 1)) {
    const std::string group = name.substr(0, pos);
    if (group.empty() || H5Lexists(file, group.c_str(), H5P_DEFAULT) > 0) continue;
    Handle g{H5Gcreate2(file, group.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose};
    check(g.id >= 0, "{}: could not create group '{}'", where, group);
  }
}

}  // namespace

Hdf5File Hdf5File::create(const std::filesystem::path& path) {
  silence_hdf5();
  const hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  check(id >= 0, "{}: cannot create the HDF5 file (is the folder there and writable?)", path.string());
  return Hdf5File(id, path);
}

Hdf5File Hdf5File::open(const std::filesystem::path& path) {
  silence_hdf5();
  check(std::filesystem::exists(path), "{}: no such file", path.string());
  const hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  check(id >= 0, "{}: not a readable HDF5 file (corrupt or truncated?)", path.string());
  return Hdf5File(id, path);
}

Hdf5File::Hdf5File(Hdf5File&& other) noexcept : id_(other.id_), path_(std::move(other.path_)) { other.id_ = -1; }

Hdf5File::~Hdf5File() {
  if (id_ >= 0) H5Fclose(id_);
}

void Hdf5File::flush() {
  check(H5Fflush(id_, H5F_SCOPE_GLOBAL) >= 0, "{}: writing to disk failed (disk full?)", path_.string());
}

void Hdf5File::write(const std::string& name_in, const Tensor& tensor) {
  const std::string name = name_in.front() == '/' ? name_in : "/" + name_in;
  const std::string where = fmt::format("{} dataset '{}'", path_.string(), name);
  Tensor t = tensor.detach().to(Device::cpu()).to(Layout::plain).contiguous();
  make_groups(id_, name, where);
  std::vector<hsize_t> dims(t.shape().begin(), t.shape().end());
  Handle space{t.dim() == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(t.dim(), dims.data(), nullptr), H5Sclose};
  Handle props{H5Pcreate(H5P_DATASET_CREATE), H5Pclose};
  if (t.numel() >= 65536 && t.dim() > 0) {
    // Chunks of whole trailing rows, about 1 MiB, compressed: volumes and big weights shrink on disk.
    std::vector<hsize_t> chunk = dims;
    hsize_t bytes = element_size(t.dtype());
    for (int i = t.dim() - 1; i >= 0; --i) {
      if (bytes * chunk[static_cast<std::size_t>(i)] > (1u << 20)) {
        chunk[static_cast<std::size_t>(i)] = std::max<hsize_t>(1, (1u << 20) / bytes);
        for (int j = i - 1; j >= 0; --j) chunk[static_cast<std::size_t>(j)] = 1;
        break;
      }
      bytes *= chunk[static_cast<std::size_t>(i)];
    }
    H5Pset_chunk(props.id, t.dim(), chunk.data());
    H5Pset_deflate(props.id, 1);
  }
  Handle set{H5Dcreate2(id_, name.c_str(), h5_type(t.dtype()), space.id, H5P_DEFAULT, props.id, H5P_DEFAULT), H5Dclose};
  check(set.id >= 0, "{}: cannot create the dataset (does it exist already?)", where);
  check(H5Dwrite(set.id, h5_type(t.dtype()), H5S_ALL, H5S_ALL, H5P_DEFAULT, t.raw_data()) >= 0,
        "{}: writing {} bytes failed (disk full?)", where,
        t.numel() * static_cast<std::int64_t>(element_size(t.dtype())));
}

Tensor Hdf5File::read(const std::string& name_in) const {
  const std::string name = name_in.front() == '/' ? name_in : "/" + name_in;
  const std::string where = fmt::format("{} dataset '{}'", path_.string(), name);
  check(has(name), "{}: not found", where);
  Handle set{H5Dopen2(id_, name.c_str(), H5P_DEFAULT), H5Dclose};
  check(set.id >= 0, "{}: cannot open", where);
  Handle type{H5Dget_type(set.id), H5Tclose};
  const DType dtype = dtype_from(type.id, where);
  Handle space{H5Dget_space(set.id), H5Sclose};
  const int rank = H5Sget_simple_extent_ndims(space.id);
  check(rank >= 0 && rank <= Dims::kMaxDims, "{}: rank {} is not supported (at most {})", where, rank, Dims::kMaxDims);
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  H5Sget_simple_extent_dims(space.id, dims.data(), nullptr);
  Shape shape;
  for (hsize_t d : dims) shape.push_back(static_cast<std::int64_t>(d));
  Tensor t = Tensor::empty(shape, TensorOptions{dtype});
  check(H5Dread(set.id, h5_type(dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, t.raw_data()) >= 0,
        "{}: reading failed (corrupt or truncated file?)", where);
  return t;
}

bool Hdf5File::has(const std::string& name_in) const {
  const std::string name = name_in.front() == '/' ? name_in : "/" + name_in;
  // H5Lexists needs every parent to exist, so walk the path.
  for (std::size_t pos = name.find('/', 1);; pos = name.find('/', pos + 1)) {
    const std::string part = pos == std::string::npos ? name : name.substr(0, pos);
    if (H5Lexists(id_, part.c_str(), H5P_DEFAULT) <= 0) return false;
    if (pos == std::string::npos) break;
  }
  H5O_info_t info;
  return H5Oget_info_by_name(id_, name.c_str(), &info, H5P_DEFAULT) >= 0 && info.type == H5O_TYPE_DATASET;
}

std::vector<std::string> Hdf5File::datasets(const std::string& group) const {
  struct Visit {
    std::vector<std::string> names;
  } visit;
  if (group != "/" && !H5Lexists(id_, group.c_str(), H5P_DEFAULT)) return {};
  auto callback = [](hid_t, const char* name, const H5O_info_t* info, void* data) -> herr_t {
    if (info->type == H5O_TYPE_DATASET) static_cast<Visit*>(data)->names.emplace_back(name);
    return 0;
  };
  Handle g{H5Oopen(id_, group.c_str(), H5P_DEFAULT), H5Oclose};
  check(g.id >= 0, "{}: cannot open group '{}'", path_.string(), group);
  H5Ovisit(g.id, H5_INDEX_NAME, H5_ITER_INC, callback, &visit);
  return visit.names;
}

void Hdf5File::set_attribute(const std::string& name, const std::string& value) {
  Handle type{H5Tcopy(H5T_C_S1), H5Tclose};
  H5Tset_size(type.id, std::max<std::size_t>(1, value.size()));
  Handle space{H5Screate(H5S_SCALAR), H5Sclose};
  if (H5Aexists(id_, name.c_str()) > 0) H5Adelete(id_, name.c_str());
  Handle attr{H5Acreate2(id_, name.c_str(), type.id, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose};
  check(attr.id >= 0 && H5Awrite(attr.id, type.id, value.empty() ? "" : value.data()) >= 0,
        "{}: cannot write attribute '{}'", path_.string(), name);
}

bool Hdf5File::has_attribute(const std::string& name) const { return H5Aexists(id_, name.c_str()) > 0; }

std::string Hdf5File::attribute(const std::string& name) const {
  check(has_attribute(name), "{}: attribute '{}' not found", path_.string(), name);
  Handle attr{H5Aopen(id_, name.c_str(), H5P_DEFAULT), H5Aclose};
  Handle type{H5Aget_type(attr.id), H5Tclose};
  check(H5Tget_class(type.id) == H5T_STRING, "{}: attribute '{}' is not a string", path_.string(), name);
  if (H5Tis_variable_str(type.id) > 0) {
    // Variable-length strings, as h5py writes them by default.
    Handle mem{H5Tcopy(H5T_C_S1), H5Tclose};
    H5Tset_size(mem.id, H5T_VARIABLE);
    H5Tset_cset(mem.id, H5Tget_cset(type.id));  // h5py writes UTF-8; HDF5 converts no character sets
    char* text = nullptr;
    check(H5Aread(attr.id, mem.id, &text) >= 0, "{}: cannot read attribute '{}'", path_.string(), name);
    std::string value = text ? text : "";
    Handle space{H5Aget_space(attr.id), H5Sclose};
    H5Dvlen_reclaim(mem.id, space.id, H5P_DEFAULT, &text);
    return value;
  }
  std::string value(H5Tget_size(type.id), '\0');
  Handle mem{H5Tcopy(H5T_C_S1), H5Tclose};
  H5Tset_size(mem.id, value.size());
  H5Tset_cset(mem.id, H5Tget_cset(type.id));
  check(H5Aread(attr.id, mem.id, value.data()) >= 0, "{}: cannot read attribute '{}'", path_.string(), name);
  while (!value.empty() && value.back() == '\0') value.pop_back();
  return value;
}

std::map<std::string, std::string> Hdf5File::attributes_with_prefix(const std::string& prefix) const {
  std::vector<std::string> names;
  auto callback = [](hid_t, const char* name, const H5A_info_t*, void* data) -> herr_t {
    static_cast<std::vector<std::string>*>(data)->emplace_back(name);
    return 0;
  };
  hsize_t index = 0;
  H5Aiterate2(id_, H5_INDEX_NAME, H5_ITER_INC, &index, callback, &names);
  std::map<std::string, std::string> out;
  for (const auto& name : names)
    if (name.rfind(prefix, 0) == 0) out[name.substr(prefix.size())] = attribute(name);
  return out;
}

void write_atomically(const std::filesystem::path& path,
                      const std::function<void(const std::filesystem::path&)>& write_fn) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  try {
    write_fn(tmp);
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    check(!ec, "{}: could not move the finished file into place: {}", path.string(), ec.message());
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw;
  }
}

}  // namespace tlk::io
