#include "tlk/data/orientation.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "tlk/tensor/error.h"

namespace tlk::data {

namespace {

using Affine = std::array<std::array<double, 4>, 4>;

// File voxel axis f (0 = i, 1 = j, 2 = k) is file tensor axis 2 - f; world axis w (0 = x, 1 = y,
// 2 = z) is canonical tensor axis 2 - w.
constexpr int file_tensor_axis(int f) { return 2 - f; }
constexpr int canonical_tensor_axis(int w) { return 2 - w; }

void check_orientation(const Orientation& o, const char* op) {
  bool seen[3] = {false, false, false};
  for (int w : o.world) {
    check(w >= 0 && w < 3 && !seen[w], "{}: orientation world axes {{{}, {}, {}}} are not a permutation of 0, 1, 2", op,
          o.world[0], o.world[1], o.world[2]);
    seen[w] = true;
  }
}

// The spatial axes of `t` (the last three) and the number of leading axes (0 or 1).
int leading_axes(const Tensor& t, const char* op) {
  check(t.dim() == 3 || t.dim() == 4, "{}: expected a [D, H, W] or [C, D, H, W] volume, got shape {}", op,
        t.shape().str());
  check(t.device().is_cpu() && t.layout() != Layout::blocked, "{}: expected a strided CPU tensor, got shape {} on {}",
        op, t.shape().str(), t.device().str());
  return t.dim() - 3;
}

// Copies the strided view (shape [c, n0, n1, n2], element strides `st`, base pointer at the first
// element) into contiguous `dst`. Note [Tiled reorientation]: a reorientation usually transposes (for
// KiTS the file's fastest axis becomes the slowest), so a plain loop either reads or writes with a
// stride of a whole slice and misses the cache on every element. The two axes involved (the
// output's fastest axis and the input's fastest one) are walked in 64 x 64 tiles instead.
template <class T>
void tiled_copy(const T* src, T* dst, const std::array<std::int64_t, 4>& n, const std::array<std::int64_t, 4>& st) {
  constexpr std::int64_t kTile = 64;
  int p = 2;  // spatial axis (1..3 in n/st) read with the smallest stride
  for (int a = 1; a <= 3; ++a)
    if (n[static_cast<std::size_t>(a)] > 1 &&
        std::abs(st[static_cast<std::size_t>(a)]) < std::abs(st[static_cast<std::size_t>(p + 1)]))
      p = a - 1;
  const std::int64_t n0 = n[1], n1 = n[2], n2 = n[3];
  const bool big = n[0] * n0 * n1 * n2 > (1 << 16);  // smaller copies are not worth waking threads
  if (p == 2) {
#pragma omp parallel for collapse(2) schedule(static) if (big)
    for (std::int64_t c = 0; c < n[0]; ++c)
      for (std::int64_t i0 = 0; i0 < n0; ++i0)
        for (std::int64_t i1 = 0; i1 < n1; ++i1) {
          const T* s = src + c * st[0] + i0 * st[1] + i1 * st[2];
          T* d = dst + ((c * n0 + i0) * n1 + i1) * n2;
          for (std::int64_t i2 = 0; i2 < n2; ++i2) d[i2] = s[i2 * st[3]];
        }
    return;
  }
  // Tiles over (p, 2); q is the remaining spatial axis.
  const int q = p == 0 ? 1 : 0;
  const std::array<std::int64_t, 3> ext{n0, n1, n2}, sst{st[1], st[2], st[3]}, dst_st{n1 * n2, n2, 1};
  const std::int64_t np = ext[static_cast<std::size_t>(p)], nq = ext[static_cast<std::size_t>(q)];
  const std::int64_t tiles_p = (np + kTile - 1) / kTile, tiles_2 = (n2 + kTile - 1) / kTile;
#pragma omp parallel for collapse(3) schedule(static) if (big)
  for (std::int64_t c = 0; c < n[0]; ++c)
    for (std::int64_t iq = 0; iq < nq; ++iq)
      for (std::int64_t tp = 0; tp < tiles_p; ++tp) {
        const T* sbase = src + c * st[0] + iq * sst[static_cast<std::size_t>(q)];
        T* dbase = dst + c * n0 * n1 * n2 + iq * dst_st[static_cast<std::size_t>(q)];
        const std::int64_t p0 = tp * kTile, p1 = std::min(np, p0 + kTile);
        for (std::int64_t t2 = 0; t2 < tiles_2; ++t2) {
          const std::int64_t x0 = t2 * kTile, x1 = std::min(n2, x0 + kTile);
          for (std::int64_t ip = p0; ip < p1; ++ip) {
            const T* s = sbase + ip * sst[static_cast<std::size_t>(p)];
            T* d = dbase + ip * dst_st[static_cast<std::size_t>(p)];
            for (std::int64_t i2 = x0; i2 < x1; ++i2) d[i2] = s[i2 * st[3]];
          }
        }
      }
}

// A copy of `src` whose spatial axis a reads src's spatial axis from[a], reversed where rev[a].
Tensor reoriented_copy(const Tensor& src, int lead, const std::array<int, 3>& from, const std::array<bool, 3>& rev) {
  Shape shape = src.shape();
  std::array<std::int64_t, 4> n{1, 1, 1, 1}, st{0, 0, 0, 0};
  if (lead) {
    n[0] = src.shape()[0];
    st[0] = src.strides()[0];
  }
  std::int64_t offset = 0;
  for (int a = 0; a < 3; ++a) {
    const int s = lead + from[static_cast<std::size_t>(a)];
    const std::int64_t len = src.shape()[s], stride = src.strides()[s];
    shape[lead + a] = len;
    n[static_cast<std::size_t>(a + 1)] = len;
    if (rev[static_cast<std::size_t>(a)] && len > 0) {
      offset += (len - 1) * stride;
      st[static_cast<std::size_t>(a + 1)] = -stride;
    } else {
      st[static_cast<std::size_t>(a + 1)] = stride;
    }
  }
  Tensor out = Tensor::empty(shape, TensorOptions{src.dtype(), src.device()});
  if (out.numel() == 0) return out;
  const std::size_t bytes = element_size(src.dtype());
  const char* base = static_cast<const char*>(src.raw_data()) + offset * static_cast<std::int64_t>(bytes);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    tiled_copy<T>(reinterpret_cast<const T*>(base), static_cast<T*>(out.raw_data()), n, st);
  };
  switch (bytes) {
    case 1:
      run(std::uint8_t{});
      break;
    case 2:
      run(std::uint16_t{});
      break;
    case 4:
      run(std::uint32_t{});
      break;
    case 8:
      run(std::uint64_t{});
      break;
    default:
      fail("reorient: unsupported element size {} (dtype {})", bytes, dtype_name(src.dtype()));
  }
  return out;
}

}  // namespace

std::string Orientation::code() const {
  static constexpr char kPositive[] = "RAS", kNegative[] = "LPI";
  std::string s;
  for (int f = 0; f < 3; ++f) {
    const int w = world[static_cast<std::size_t>(f)];
    s += (w >= 0 && w < 3) ? (flipped[static_cast<std::size_t>(f)] ? kNegative[w] : kPositive[w]) : '?';
  }
  return s;
}

bool Orientation::is_canonical() const {
  return world == std::array<int, 3>{0, 1, 2} && !flipped[0] && !flipped[1] && !flipped[2];
}

std::array<std::int64_t, 3> Orientation::canonical_shape() const {
  std::array<std::int64_t, 3> shape{};
  for (int f = 0; f < 3; ++f)
    shape[static_cast<std::size_t>(canonical_tensor_axis(world[static_cast<std::size_t>(f)]))] =
        file_shape[static_cast<std::size_t>(file_tensor_axis(f))];
  return shape;
}

Orientation orientation_of(const Affine& affine, const std::array<std::int64_t, 3>& file_shape) {
  // Note [Closest canonical]: the direction cosines are the affine's 3x3 columns divided by their
  // lengths (the spacing), so a 5 mm slice axis weighs like a 0.7 mm one. Greedy assignment on |cos|
  // gives a proper permutation even for oblique or sheared affines; for a signed permutation matrix
  // (nearly all medical images) it is exact. nibabel's io_orientation first takes the closest
  // orthogonal matrix (SVD); both agree unless the obliquity is near 45 degrees.
  double cosine[3][3];  // [world][file]
  for (int f = 0; f < 3; ++f) {
    double norm = 0;
    for (int w = 0; w < 3; ++w) norm += affine[w][f] * affine[w][f];
    norm = std::sqrt(norm);
    for (int w = 0; w < 3; ++w) cosine[w][f] = (norm > 0 && std::isfinite(norm)) ? affine[w][f] / norm : 0.0;
  }
  Orientation o;
  o.file_shape = file_shape;
  bool file_done[3] = {false, false, false}, world_done[3] = {false, false, false};
  for (int step = 0; step < 3; ++step) {
    int best_f = -1, best_w = -1;
    double best = -1;
    for (int f = 0; f < 3; ++f)
      for (int w = 0; w < 3; ++w)
        if (!file_done[f] && !world_done[w] && std::abs(cosine[w][f]) > best) {
          best = std::abs(cosine[w][f]);
          best_f = f;
          best_w = w;
        }
    o.world[static_cast<std::size_t>(best_f)] = best_w;
    o.flipped[static_cast<std::size_t>(best_f)] = cosine[best_w][best_f] < 0;
    file_done[best_f] = world_done[best_w] = true;
  }
  return o;
}

Orientation orientation_of(const io::NiftiImage& image) {
  const Tensor& d = image.data;
  check(d.defined() && d.dim() >= 3, "orientation_of: expected a 3-D (or more) NIfTI image, got data of shape {}",
        d.defined() ? d.shape().str() : std::string("(none)"));
  const int n = d.dim();
  return orientation_of(image.affine(), {d.shape()[n - 3], d.shape()[n - 2], d.shape()[n - 1]});
}

Tensor to_canonical(const Tensor& file_volume, const Orientation& o) {
  check_orientation(o, "to_canonical");
  const int lead = leading_axes(file_volume, "to_canonical");
  if (o.file_shape != std::array<std::int64_t, 3>{0, 0, 0})
    for (int a = 0; a < 3; ++a)
      check(file_volume.shape()[lead + a] == o.file_shape[static_cast<std::size_t>(a)],
            "to_canonical: volume of shape {} does not have the file's spatial shape [{}, {}, {}]",
            file_volume.shape().str(), o.file_shape[0], o.file_shape[1], o.file_shape[2]);
  std::array<int, 3> from{};
  std::array<bool, 3> rev{};
  for (int f = 0; f < 3; ++f) {
    const int c = canonical_tensor_axis(o.world[static_cast<std::size_t>(f)]);
    from[static_cast<std::size_t>(c)] = file_tensor_axis(f);
    rev[static_cast<std::size_t>(c)] = o.flipped[static_cast<std::size_t>(f)];
  }
  return reoriented_copy(file_volume, lead, from, rev);
}

Tensor from_canonical(const Tensor& canonical_volume, const Orientation& o) {
  check_orientation(o, "from_canonical");
  const int lead = leading_axes(canonical_volume, "from_canonical");
  if (o.file_shape != std::array<std::int64_t, 3>{0, 0, 0}) {
    const auto expected = o.canonical_shape();
    for (int a = 0; a < 3; ++a)
      check(canonical_volume.shape()[lead + a] == expected[static_cast<std::size_t>(a)],
            "from_canonical: volume of shape {} does not have the canonical spatial shape [{}, {}, {}]",
            canonical_volume.shape().str(), expected[0], expected[1], expected[2]);
  }
  std::array<int, 3> from{};
  std::array<bool, 3> rev{};
  for (int f = 0; f < 3; ++f) {
    const int t = file_tensor_axis(f);
    from[static_cast<std::size_t>(t)] = canonical_tensor_axis(o.world[static_cast<std::size_t>(f)]);
    rev[static_cast<std::size_t>(t)] = o.flipped[static_cast<std::size_t>(f)];
  }
  return reoriented_copy(canonical_volume, lead, from, rev);
}

std::array<double, 3> canonical_spacing(const io::NiftiImage& image, const Orientation& o) {
  check_orientation(o, "canonical_spacing");
  std::array<double, 3> s{};
  for (int f = 0; f < 3; ++f)
    s[static_cast<std::size_t>(canonical_tensor_axis(o.world[static_cast<std::size_t>(f)]))] =
        std::abs(image.spacing[static_cast<std::size_t>(f)]);
  return s;
}

Affine canonical_affine(const Affine& file_affine, const Orientation& o) {
  check_orientation(o, "canonical_affine");
  // file index f = flipped ? (n_f - 1) - canonical index along world[f] : that canonical index, so
  // file = M * canonical with M a signed permutation plus a translation; the result is A * M.
  double m[4][4] = {{0, 0, 0, 0}, {0, 0, 0, 0}, {0, 0, 0, 0}, {0, 0, 0, 1}};
  for (int f = 0; f < 3; ++f) {
    const int w = o.world[static_cast<std::size_t>(f)];
    if (o.flipped[static_cast<std::size_t>(f)]) {
      m[f][w] = -1;
      m[f][3] = static_cast<double>(o.file_shape[static_cast<std::size_t>(file_tensor_axis(f))] - 1);
    } else {
      m[f][w] = 1;
    }
  }
  Affine out{};
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) {
      double sum = 0;
      for (int k = 0; k < 4; ++k)
        sum += file_affine[static_cast<std::size_t>(r)][static_cast<std::size_t>(k)] * m[k][c];
      out[static_cast<std::size_t>(r)][static_cast<std::size_t>(c)] = sum;
    }
  return out;
}

std::string describe(const Orientation& o) {
  const auto c = o.canonical_shape();
  return fmt::format("{}, file [{}, {}, {}] -> canonical [{}, {}, {}] (z, y, x)", o.code(), o.file_shape[0],
                     o.file_shape[1], o.file_shape[2], c[0], c[1], c[2]);
}

}  // namespace tlk::data
