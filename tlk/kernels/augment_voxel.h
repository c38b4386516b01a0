#pragma once
// The per-voxel math of the training augmentation (data/augment.h), shared by the CPU transforms in
// data/ and the CUDA kernels in kernels/cuda/augment_launch.cu.
//
// Note [Kernel bodies on the host]: this header is plain C++ that nvcc compiles for the device and
// the C++ compiler for the host. A CUDA kernel of augment_launch.cu is a loop over voxels calling
// one function from here, so the tests (tests/data/augment_bodies_test.cpp) run the same function
// over every voxel on the host and compare with the CPU transform, bit for bit: the kernels' index
// math is checked on machines without a GPU. augment_launch.cu is compiled without fused
// multiply-adds (cmake/cuda.cmake), so the positions, and with them the nearest-neighbour labels,
// are the CPU's to the bit; the device's powf, log and sin may still change the last bits of an
// image, so tests/cuda/augment_cuda_test.cpp compares images there with a tolerance.
#include <cmath>
#include <cstdint>

#include "tlk/kernels/host_device.h"

namespace tlk::kernels::augment {

/// floor(x) as an integer without a libm call (the host library is built for baseline x86-64, where
/// std::floor is not inlined); valid for |x| < 2^62, far beyond any patch coordinate.
TLK_HOST_DEVICE inline std::int64_t floor_to_int(double x) {
  const auto i = static_cast<std::int64_t>(x);
  return i - static_cast<std::int64_t>(static_cast<double>(i) > x);
}

/// torch's 'reflect' index (mirror without repeating the edge) of offset i into an axis of n voxels.
TLK_HOST_DEVICE inline std::int64_t reflect_index(std::int64_t i, std::int64_t n) {
  if (n == 1) return 0;
  const std::int64_t period = 2 * (n - 1);
  i = (i < 0 ? -i : i) % period;
  return i < n ? i : period - i;
}

// ---- Resampling (rotation and scaling) --------------------------------------------------------

/// The resampled output is computed in tiles of this many voxels per axis (Note [Tiled sampling] in
/// data/spatial_transform.cpp); a row of a tile starts its position sums afresh, so the GPU kernel
/// reproduces the CPU's rounding by starting from the same tile origin.
constexpr std::int64_t kResampleTile = 16;

/// Buffers and extents of one resampling: images contiguous f32 [channels, D, H, W], labels u8
/// [D, H, W] (both label pointers null when there are none).
struct ResampleBuffers {
  const float* src = nullptr;
  float* dst = nullptr;
  const std::uint8_t* lsrc = nullptr;
  std::uint8_t* ldst = nullptr;
  std::int64_t channels = 0;
  std::int64_t in[3] = {};
  std::int64_t out[3] = {};
};

/// Output voxel q reads the input at c_in + m (q - c_out) (data::resample_patch).
struct ResampleGeometry {
  double m[3][3] = {};
  double c_in[3] = {};
  double c_out[3] = {};
};

/// Writes output voxel `o` (all channels, and its label) from input position (pz, py, px): labels by
/// nearest neighbour, images trilinearly; corners outside the input read 0.
TLK_HOST_DEVICE inline void sample_voxel(const float* src, float* dst, const std::uint8_t* lsrc, std::uint8_t* ldst,
                                         std::int64_t channels, std::int64_t in0, std::int64_t in1, std::int64_t in2,
                                         std::int64_t out_volume, std::int64_t o, double pz, double py, double px) {
  const std::int64_t in_plane = in1 * in2, in_volume = in0 * in_plane;
  if (ldst) {
    const std::int64_t nz = floor_to_int(pz + 0.5), ny = floor_to_int(py + 0.5), nx = floor_to_int(px + 0.5);
    const bool inside = nz >= 0 && nz < in0 && ny >= 0 && ny < in1 && nx >= 0 && nx < in2;
    ldst[o] = inside ? lsrc[nz * in_plane + ny * in2 + nx] : std::uint8_t{0};
  }
  const std::int64_t iz = floor_to_int(pz), iy = floor_to_int(py), ix = floor_to_int(px);
  const float tz = static_cast<float>(pz - static_cast<double>(iz));
  const float ty = static_cast<float>(py - static_cast<double>(iy));
  const float tx = static_cast<float>(px - static_cast<double>(ix));
  const float w00 = (1 - tz) * (1 - ty), w01 = (1 - tz) * ty, w10 = tz * (1 - ty), w11 = tz * ty;
  if (iz >= 0 && iz + 1 < in0 && iy >= 0 && iy + 1 < in1 && ix >= 0 && ix + 1 < in2) {
    const std::int64_t base = iz * in_plane + iy * in2 + ix;
    for (std::int64_t c = 0; c < channels; ++c) {
      const float* s = src + c * in_volume + base;
      const float r00 = s[0] + tx * (s[1] - s[0]);
      const float r01 = s[in2] + tx * (s[in2 + 1] - s[in2]);
      const float r10 = s[in_plane] + tx * (s[in_plane + 1] - s[in_plane]);
      const float r11 = s[in_plane + in2] + tx * (s[in_plane + in2 + 1] - s[in_plane + in2]);
      dst[c * out_volume + o] = w00 * r00 + w01 * r01 + w10 * r10 + w11 * r11;
    }
  } else {
    const float w[8] = {w00 * (1 - tx), w00 * tx, w01 * (1 - tx), w01 * tx,
                        w10 * (1 - tx), w10 * tx, w11 * (1 - tx), w11 * tx};
    for (std::int64_t c = 0; c < channels; ++c) {
      const float* s = src + c * in_volume;
      float acc = 0.0f;
      for (int k = 0; k < 8; ++k) {
        const std::int64_t cz = iz + (k >> 2), cy = iy + ((k >> 1) & 1), cx = ix + (k & 1);
        if (cz >= 0 && cz < in0 && cy >= 0 && cy < in1 && cx >= 0 && cx < in2)
          acc += w[k] * s[cz * in_plane + cy * in2 + cx];
      }
      dst[c * out_volume + o] = acc;
    }
  }
}

/// Resamples output voxel `o` (linear index into [D, H, W] of b.out): the GPU kernel's body. Its
/// input position is summed as the CPU sums it: from the start of the voxel's tile row, then one
/// step of m's third column per voxel.
TLK_HOST_DEVICE inline void resample_voxel(const ResampleBuffers& b, const ResampleGeometry& g, std::int64_t o) {
  const std::int64_t x = o % b.out[2], y = (o / b.out[2]) % b.out[1], z = o / (b.out[1] * b.out[2]);
  const std::int64_t x0 = x - x % kResampleTile;
  const double qz = static_cast<double>(z) - g.c_out[0], qy = static_cast<double>(y) - g.c_out[1];
  const double qx = static_cast<double>(x0) - g.c_out[2];
  double p[3];
  const double t = static_cast<double>(x - x0);
  for (int a = 0; a < 3; ++a) {
    const double start = g.c_in[a] + g.m[a][0] * qz + g.m[a][1] * qy + g.m[a][2] * qx;
    p[a] = start + g.m[a][2] * t;
  }
  sample_voxel(b.src, b.dst, b.lsrc, b.ldst, b.channels, b.in[0], b.in[1], b.in[2], b.out[0] * b.out[1] * b.out[2], o,
               p[0], p[1], p[2]);
}

// ---- Mirroring ----------------------------------------------------------------------------------

/// The linear index of the voxel that lands at `o` in a [D, H, W] volume of extent e when the axes
/// marked in `flip` (bit a for axis a) are mirrored.
TLK_HOST_DEVICE inline std::int64_t mirrored_index(std::int64_t o, const std::int64_t* e, unsigned flip) {
  std::int64_t x = o % e[2], y = (o / e[2]) % e[1], z = o / (e[1] * e[2]);
  if (flip & 1u) z = e[0] - 1 - z;
  if (flip & 2u) y = e[1] - 1 - y;
  if (flip & 4u) x = e[2] - 1 - x;
  return (z * e[1] + y) * e[2] + x;
}

// ---- Gaussian blur --------------------------------------------------------------------------------

/// One voxel of a blur along `axis` (0 = D, 1 = H, 2 = W) of the volume `x` [D, H, W]: the sum over
/// the taps, in tap order from 0, of taps[k] * x at offset k - radius (reflected at the edges).
TLK_HOST_DEVICE inline float blur_voxel(const float* x, const std::int64_t* e, int axis, const float* taps,
                                        int tap_count, std::int64_t o) {
  const std::int64_t col = o % e[2], row = (o / e[2]) % e[1], slice = o / (e[1] * e[2]);
  const std::int64_t radius = tap_count / 2;
  float acc = 0.0f;
  for (int k = 0; k < tap_count; ++k) {
    std::int64_t z = slice, y = row, xx = col;
    if (axis == 0) z = reflect_index(slice + k - radius, e[0]);
    if (axis == 1) y = reflect_index(row + k - radius, e[1]);
    if (axis == 2) xx = reflect_index(col + k - radius, e[2]);
    acc += taps[k] * x[(z * e[1] + y) * e[2] + xx];
  }
  return acc;
}

// ---- Low-resolution simulation ----------------------------------------------------------------

/// The input position a low-resolution voxel t of an axis (extent -> small) copies: nearest-exact.
TLK_HOST_DEVICE inline std::int64_t low_resolution_pick(std::int64_t t, std::int64_t extent, std::int64_t small) {
  const double down = static_cast<double>(extent) / static_cast<double>(small);
  const std::int64_t i = floor_to_int((static_cast<double>(t) + 0.5) * down);
  return i < extent - 1 ? i : extent - 1;
}

/// Low-resolution voxel `o` (linear index into extent `small`): the input voxel of x [e] it copies.
TLK_HOST_DEVICE inline float low_resolution_down_voxel(const float* x, const std::int64_t* e, const std::int64_t* small,
                                                       std::int64_t o) {
  const std::int64_t t2 = o % small[2], t1 = (o / small[2]) % small[1], t0 = o / (small[1] * small[2]);
  const std::int64_t z = low_resolution_pick(t0, e[0], small[0]), y = low_resolution_pick(t1, e[1], small[1]);
  return x[(z * e[1] + y) * e[2] + low_resolution_pick(t2, e[2], small[2])];
}

/// The two low-resolution positions an output position t reads and the weight of the second:
/// trilinear with half-pixel centres, clamped to the volume (Note [Low-resolution interpolation]).
struct LinearTap {
  std::int64_t lo = 0, hi = 0;
  float frac = 0.0f;
};
TLK_HOST_DEVICE inline LinearTap low_resolution_tap(std::int64_t t, std::int64_t extent, std::int64_t small) {
  const double up = static_cast<double>(small) / static_cast<double>(extent);
  double src = (static_cast<double>(t) + 0.5) * up - 0.5;
  src = src > 0.0 ? src : 0.0;
  LinearTap tap;
  const std::int64_t i0 = floor_to_int(src);
  tap.lo = i0 < small - 1 ? i0 : small - 1;
  tap.hi = tap.lo + 1 < small - 1 ? tap.lo + 1 : small - 1;
  tap.frac = static_cast<float>(src - static_cast<double>(tap.lo));
  return tap;
}

/// Output voxel `o` of the upsampling back from `low` [small] to extent e.
TLK_HOST_DEVICE inline float low_resolution_up_voxel(const float* low, const std::int64_t* small, const std::int64_t* e,
                                                     std::int64_t o) {
  const std::int64_t x = o % e[2], y = (o / e[2]) % e[1], z = o / (e[1] * e[2]);
  const LinearTap tz = low_resolution_tap(z, e[0], small[0]), ty = low_resolution_tap(y, e[1], small[1]),
                  tx = low_resolution_tap(x, e[2], small[2]);
  const std::int64_t sp = small[1] * small[2];
  const float* r00 = low + tz.lo * sp + ty.lo * small[2];
  const float* r01 = low + tz.lo * sp + ty.hi * small[2];
  const float* r10 = low + tz.hi * sp + ty.lo * small[2];
  const float* r11 = low + tz.hi * sp + ty.hi * small[2];
  const float a00 = r00[tx.lo] + tx.frac * (r00[tx.hi] - r00[tx.lo]);
  const float a01 = r01[tx.lo] + tx.frac * (r01[tx.hi] - r01[tx.lo]);
  const float a10 = r10[tx.lo] + tx.frac * (r10[tx.hi] - r10[tx.lo]);
  const float a11 = r11[tx.lo] + tx.frac * (r11[tx.hi] - r11[tx.lo]);
  const float b0 = a00 + ty.frac * (a01 - a00), b1 = a10 + ty.frac * (a11 - a10);
  return b0 + tz.frac * (b1 - b0);
}

// ---- Intensity --------------------------------------------------------------------------------

/// Contrast about the channel mean, clipped to [lo, hi] with `clip`.
TLK_HOST_DEVICE inline float contrast_voxel(float x, float mean, float factor, float lo, float hi, bool clip) {
  const float y = (x - mean) * factor + mean;
  if (!clip) return y;
  const float above = lo < y ? y : lo;  // std::max(lo, y)
  return above < hi ? above : hi;       // std::min(hi, above)
}

/// Gamma: ((x - lo) * inv_range)^gamma * range + lo, with negative bases clamped to 0.
TLK_HOST_DEVICE inline float gamma_voxel(float x, float lo, float inv_range, float gamma, float range) {
  const float base = (x - lo) * inv_range;
  return powf(base > 0.0f ? base : 0.0f, gamma) * range + lo;
}

/// The GPU's Gaussian noise (Note [GPU noise]): voxel i of a channel seeded `seed` gets sigma times a
/// standard normal value made by Box-Muller from two hashed counters, so any thread can compute any
/// voxel's value. Voxels 2k and 2k + 1 share one pair of uniforms (cosine and sine).
TLK_HOST_DEVICE inline std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
TLK_HOST_DEVICE inline float noise_value(std::uint64_t seed, std::int64_t i, double sigma) {
  const auto pair = static_cast<std::uint64_t>(i >> 1);
  const std::uint64_t a = mix64(seed + 0x9E3779B97F4A7C15ULL * (2 * pair + 1));
  const std::uint64_t b = mix64(seed + 0x9E3779B97F4A7C15ULL * (2 * pair + 2));
  const double u1 = static_cast<double>((a >> 11) + 1) * 0x1.0p-53;  // (0, 1]: log stays finite
  const double u2 = static_cast<double>(b >> 11) * 0x1.0p-53;
  const double r = sqrt(-2.0 * log(u1)), angle = 6.283185307179586 * u2;
  return static_cast<float>(sigma * ((i & 1) ? r * sin(angle) : r * cos(angle)));
}

}  // namespace tlk::kernels::augment
