#include "tlk/data/phantom_anatomy.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

#include "tlk/tensor/error.h"

namespace tlk::data {

namespace {

using Vec = std::array<double, 3>;  // world (x, y, z) mm
using Mat = std::array<Vec, 3>;     // rows

constexpr double kLong = 1e4;  // the z semi-axis of an elliptic cylinder

// Where a primitive may paint: anywhere inside the skin, or only inside the abdominal cavity.
enum class Region : std::uint8_t { body = 1, cavity = 2 };

// An ellipsoid (|M (p - c)| <= 1) or a capsule (within r0 + t (r1 - r0) of the segment a -> b).
struct Primitive {
  PhantomTissue tissue = PhantomTissue::air;
  Region region = Region::cavity;
  int parent = -1;  // paints only over this tissue when >= 0
  bool capsule = false;
  Vec c{}, a{}, b{};
  Mat m{};  // ellipsoid: diag(1 / semi-axes) * R^T
  double r0 = 0, r1 = 0;
  Vec lo{}, hi{};  // world bounding box
};

Mat matmul(const Mat& p, const Mat& q) {
  Mat r{};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 3; ++k) r[i][j] += p[i][k] * q[k][j];
  return r;
}

// Rotation by angles (radians) about x, then y, then z: R = Rz * Ry * Rx.
Mat rotation(double ax, double ay, double az) {
  const Mat rx{{{1, 0, 0}, {0, std::cos(ax), -std::sin(ax)}, {0, std::sin(ax), std::cos(ax)}}};
  const Mat ry{{{std::cos(ay), 0, std::sin(ay)}, {0, 1, 0}, {-std::sin(ay), 0, std::cos(ay)}}};
  const Mat rz{{{std::cos(az), -std::sin(az), 0}, {std::sin(az), std::cos(az), 0}, {0, 0, 1}}};
  return matmul(rz, matmul(ry, rx));
}

double deg(double d) { return d * std::numbers::pi / 180.0; }

Primitive ellipsoid(PhantomTissue tissue, const Vec& c, const Vec& semi, const Mat& rot, Region region = Region::cavity,
                    int parent = -1) {
  Primitive p;
  p.tissue = tissue;
  p.region = region;
  p.parent = parent;
  p.c = c;
  for (int n = 0; n < 3; ++n)
    for (int w = 0; w < 3; ++w) p.m[n][w] = rot[w][n] / semi[n];
  for (int w = 0; w < 3; ++w) {
    double h2 = 0;
    for (int n = 0; n < 3; ++n) h2 += rot[w][n] * semi[n] * rot[w][n] * semi[n];
    p.lo[w] = c[w] - std::sqrt(h2);
    p.hi[w] = c[w] + std::sqrt(h2);
  }
  return p;
}

Primitive capsule(PhantomTissue tissue, const Vec& a, const Vec& b, double r0, double r1,
                  Region region = Region::cavity, int parent = -1) {
  Primitive p;
  p.tissue = tissue;
  p.region = region;
  p.parent = parent;
  p.capsule = true;
  p.a = a;
  p.b = b;
  p.r0 = r0;
  p.r1 = r1;
  const double r = std::max(r0, r1);
  for (int w = 0; w < 3; ++w) {
    p.lo[w] = std::min(a[w], b[w]) - r;
    p.hi[w] = std::max(a[w], b[w]) + r;
  }
  return p;
}

bool inside(const Primitive& p, const Vec& x) {
  if (p.capsule) {
    Vec ab{}, ax{};
    double len2 = 0, dot = 0;
    for (int w = 0; w < 3; ++w) {
      ab[w] = p.b[w] - p.a[w];
      ax[w] = x[w] - p.a[w];
      len2 += ab[w] * ab[w];
      dot += ab[w] * ax[w];
    }
    const double t = len2 > 0 ? std::clamp(dot / len2, 0.0, 1.0) : 0.0;
    double d2 = 0;
    for (int w = 0; w < 3; ++w) d2 += (ax[w] - t * ab[w]) * (ax[w] - t * ab[w]);
    const double r = p.r0 + t * (p.r1 - p.r0);
    return d2 <= r * r;
  }
  double s = 0;
  for (int n = 0; n < 3; ++n) {
    const double u = p.m[n][0] * (x[0] - p.c[0]) + p.m[n][1] * (x[1] - p.c[1]) + p.m[n][2] * (x[2] - p.c[2]);
    s += u * u;
  }
  return s <= 1.0;
}

// The body outline: a superellipse |x / ax|^e + |y / ay|^e <= 1 whose half-axes vary slowly with z.
struct Body {
  double cx = 0, cy = 0, ax = 80, ay = 60, exponent = 2.6;
  double fat = 10, wall = 5;  // subcutaneous fat and abdominal wall muscle thickness, mm
  double wave_x = 0.04, wave_y = 0.04, phase_x = 0, phase_y = 0, period = 180;

  // The half-widths |x - cx| of the skin, the fat's inner edge and the wall's inner edge on the row y
  // of slice z (negative: the row misses that layer).
  std::array<double, 3> row_extents(double y, double z) const {
    const double sx = ax * (1 + wave_x * std::sin(2 * std::numbers::pi * z / period + phase_x));
    const double sy = ay * (1 + wave_y * std::sin(2 * std::numbers::pi * z / period + phase_y));
    std::array<double, 3> e{};
    const double shrink[3] = {0, fat, fat + wall};
    for (int l = 0; l < 3; ++l) {
      const double ry = std::pow(std::abs(y - cy) / (sy - shrink[l]), exponent);
      e[static_cast<std::size_t>(l)] = ry >= 1 ? -1.0 : (sx - shrink[l]) * std::pow(1 - ry, 1 / exponent);
    }
    return e;
  }
};

// One random patient: the body and the primitives in paint order (Note [Phantom anatomy]).
struct Patient {
  Body body;
  std::vector<Primitive> parts;
};

Patient draw_patient(const PhantomAnatomyOptions& o, Generator& gen) {
  Patient pt;
  Body& b = pt.body;
  const auto jitter = [&](double rel) { return gen.uniform(1 - rel, 1 + rel); };
  b.ax = 80 * jitter(o.body_size_jitter);
  b.ay = 60 * jitter(o.body_size_jitter);
  b.cx = gen.uniform(-3, 3);
  b.cy = gen.uniform(-3, 3);
  b.fat = gen.uniform(6, 14);
  b.phase_x = gen.uniform(0, 2 * std::numbers::pi);
  b.phase_y = gen.uniform(0, 2 * std::numbers::pi);
  // Organ positions are given for a reference body of 80 x 60 mm half-axes and scaled to this one.
  const double fx = b.ax / 80, fy = b.ay / 60, fs = 0.5 * (fx + fy);
  const auto shift = [&] { return o.position_jitter_mm * std::clamp(gen.normal(), -2.5, 2.5); };
  const auto pos = [&](double x, double y, double z) -> Vec {
    return {b.cx + x * fx + shift(), b.cy + y * fy + shift(), z + shift()};
  };
  const auto size = [&](double x, double y, double z) -> Vec {
    return {x * fs * jitter(o.size_jitter), y * fs * jitter(o.size_jitter), z * fs * jitter(o.size_jitter)};
  };
  const auto turn = [&](double max_deg, double base_x = 0, double base_y = 0, double base_z = 0) {
    return rotation(deg(base_x + gen.uniform(-max_deg, max_deg)), deg(base_y + gen.uniform(-max_deg, max_deg)),
                    deg(base_z + gen.uniform(-max_deg, max_deg)));
  };
  const Mat none = rotation(0, 0, 0);
  std::vector<Primitive>& p = pt.parts;
  using T = PhantomTissue;
  const int bowel = static_cast<int>(T::bowel), stomach = static_cast<int>(T::stomach);

  // Muscles: psoas (growing caudally) and paraspinal.
  for (const double side : {1.0, -1.0}) {
    p.push_back(capsule(T::muscle, pos(18 * side, -28, 10), pos(27 * side, -20, -80), 4 * fs, 11 * fs, Region::body));
    p.push_back(ellipsoid(T::muscle, pos(20 * side, -46, 0), {14 * fs, 8 * fs, kLong}, none, Region::body));
  }
  // Bowel: colon along the flanks and across, small-bowel loops; some with gas.
  const auto with_gas = [&](const Primitive& loop, double probability) {
    p.push_back(loop);
    if (gen.uniform() < probability) {
      Primitive gas = loop;
      gas.tissue = T::bowel_gas;
      gas.parent = bowel;
      if (gas.capsule) {
        gas.r0 *= 0.6;
        gas.r1 *= 0.6;
      } else {
        for (auto& row : gas.m)
          for (double& v : row) v /= 0.6;
      }
      p.push_back(gas);
    }
  };
  with_gas(capsule(T::bowel, pos(52, 2, -45), pos(52, 4, 12), 10 * fs, 10 * fs), 0.5);
  with_gas(capsule(T::bowel, pos(-52, -2, -45), pos(-50, -2, 30), 9 * fs, 9 * fs), 0.5);
  with_gas(capsule(T::bowel, pos(50, 28, 8), pos(-48, 26, 22), 9 * fs, 9 * fs), 0.5);
  for (int i = 0; i < o.bowel_loops; ++i) {
    const Vec c = pos(gen.uniform(-40, 40), gen.uniform(5, 35), gen.uniform(-45, 0));
    const double r = gen.uniform(7, 12);
    with_gas(ellipsoid(T::bowel, c, size(r, r * 0.8, r), turn(40)), 0.25);
  }
  // Organs.
  p.push_back(ellipsoid(T::liver, pos(35, 4, 38), size(32, 36, 32), turn(10)));
  p.push_back(ellipsoid(T::spleen, pos(-46, -10, 34), size(11, 22, 22), turn(10, 0, 0, -30)));
  p.push_back(capsule(T::esophagus, pos(-6, -4, 200), pos(-10, 4, 42), 5 * fs, 5 * fs));
  p.push_back(ellipsoid(T::stomach, pos(-22, 18, 35), size(22, 16, 22), turn(15, 0, 0, 20)));
  {
    Primitive gas = ellipsoid(T::stomach_gas, pos(-20, 29, 47), size(10, 6, 7), turn(10), Region::cavity, stomach);
    if (gen.uniform() < 0.6) p.push_back(gas);
  }
  {
    const Vec head = pos(18, 4, 6), neck = pos(0, 9, 12), tail = pos(-36, -2, 22);
    p.push_back(capsule(T::pancreas, head, neck, 8 * fs, 6 * fs));
    p.push_back(capsule(T::pancreas, neck, tail, 6 * fs, 5 * fs));
    const Vec d0 = pos(22, 2, 24), d1 = pos(31, 4, 8), d2 = pos(27, 6, -6), d3 = pos(4, 9, -9);
    p.push_back(capsule(T::duodenum, d0, d1, 6 * fs, 6 * fs));
    p.push_back(capsule(T::duodenum, d1, d2, 6 * fs, 6 * fs));
    p.push_back(capsule(T::duodenum, d2, d3, 6 * fs, 5 * fs));
  }
  p.push_back(ellipsoid(T::gallbladder, pos(22, 28, 12), size(7, 9, 14), turn(10, 20, 0, 0)));
  p.push_back(ellipsoid(T::prostate_uterus, pos(0, 0, -70), size(12, 10, 10), turn(10)));
  p.push_back(ellipsoid(T::bladder, pos(0, 20, -58), size(22, 16, 14), turn(8)));
  // Vessels: the aorta (left of the midline) and IVC (right) in front of the spine, then the iliacs.
  const Vec aorta_low = pos(-6, -11, -45), ivc_low = pos(15, -10, -45);
  const Vec aorta_top{aorta_low[0], aorta_low[1], 200}, ivc_top{ivc_low[0], ivc_low[1], 200};
  for (const double side : {1.0, -1.0}) {
    p.push_back(capsule(T::iliac_vein, ivc_low, pos(24 * side, -16, -110), 6 * fs, 6 * fs));
    p.push_back(capsule(T::iliac_artery, aorta_low, pos(28 * side, -12, -110), 5 * fs, 5 * fs));
  }
  p.push_back(capsule(T::postcava, ivc_top, ivc_low, 8 * fs, 8 * fs));
  p.push_back(capsule(T::aorta, aorta_top, aorta_low, 7 * fs, 7 * fs));
  // Kidneys (left one higher), with the adrenals above them; the hilum turned anteromedially.
  struct Kidney {
    Vec c, semi;
    Mat rot;
  };
  std::array<Kidney, 2> kidneys{};
  for (int k = 0; k < 2; ++k) {
    const double side = k == 0 ? 1.0 : -1.0;  // right kidney at +x (RAS)
    Kidney& kd = kidneys[static_cast<std::size_t>(k)];
    kd.c = pos(33 * side, -22, k == 0 ? -6 : 4);
    kd.semi = size(13, 12, 28);
    kd.rot = turn(8, 0, -12 * side, 25 * side);
    const Vec adrenal = pos(25 * side, -15, kd.c[2] + 30);
    p.push_back(ellipsoid(k == 0 ? T::right_adrenal : T::left_adrenal, adrenal, size(4, 9, 9), turn(15)));
  }
  for (int k = 0; k < 2; ++k) {
    const Kidney& kd = kidneys[static_cast<std::size_t>(k)];
    const T cortex = k == 0 ? T::right_kidney : T::left_kidney;
    const T medulla = k == 0 ? T::right_kidney_medulla : T::left_kidney_medulla;
    p.push_back(ellipsoid(cortex, kd.c, kd.semi, kd.rot));
    const Vec inner{kd.semi[0] * 0.62, kd.semi[1] * 0.62, kd.semi[2] * 0.75};
    p.push_back(ellipsoid(medulla, kd.c, inner, kd.rot, Region::cavity, static_cast<int>(cortex)));
  }
  // Tumours: spheres centred inside a kidney, often bulging out of it.
  if (o.tumours) {
    const int count = gen.uniform() < o.second_tumour_probability ? 2 : 1;
    for (int t = 0; t < count; ++t) {
      const int k = static_cast<int>(gen.below(2));
      const Kidney& kd = kidneys[static_cast<std::size_t>(k)];
      Vec dir{gen.normal(), gen.normal(), gen.normal()};
      const double norm = std::max(1e-9, std::hypot(dir[0], dir[1], dir[2]));
      const double u = gen.uniform(0.45, 0.95);
      Vec c = kd.c;
      for (int w = 0; w < 3; ++w)
        for (int n = 0; n < 3; ++n) c[w] += kd.rot[w][n] * kd.semi[n] * u * dir[n] / norm;
      const double r = gen.uniform(o.tumour_radius_min_mm, o.tumour_radius_max_mm);
      const T tumour = k == 0 ? T::right_tumour : T::left_tumour;
      p.push_back(ellipsoid(tumour, c, {r, r, r}, none));
      if (r > 9)
        p.push_back(ellipsoid(k == 0 ? T::right_tumour_core : T::left_tumour_core, c, {0.5 * r, 0.5 * r, 0.5 * r}, none,
                              Region::cavity, static_cast<int>(tumour)));
    }
  }
  // Spine: vertebral bodies (cortex rim, marrow) with discs, and the spinous processes.
  const Vec spine = pos(0, -30, 0);
  const Vec vb{13 * fs, 11 * fs, kLong};
  p.push_back(ellipsoid(T::bone_cortex, spine, vb, none, Region::body));
  p.push_back(ellipsoid(T::bone_marrow, spine, {vb[0] - 2.5, vb[1] - 2.5, kLong}, none, Region::body,
                        static_cast<int>(T::bone_cortex)));
  const double period = 27 * fs, phase = gen.uniform(0, period);
  for (double z = -250 + phase; z < 250; z += period)
    p.push_back(ellipsoid(T::disc, {spine[0], spine[1], z}, {vb[0], vb[1], 2.5}, none, Region::body));
  p.push_back(
      ellipsoid(T::bone_cortex, {spine[0], spine[1] - 19 * fy, 0}, {3.5 * fs, 8 * fs, kLong}, none, Region::body));
  return pt;
}

}  // namespace

Tensor draw_phantom_anatomy(const PhantomGrid& grid, const PhantomAnatomyOptions& options, Generator& gen,
                            Tensor* body) {
  const auto [D, H, W] = grid.shape;
  check(D > 0 && H > 0 && W > 0, "draw_phantom_anatomy: grid shape [{}, {}, {}] must be positive", D, H, W);
  check(options.tumour_radius_min_mm > 0 && options.tumour_radius_min_mm <= options.tumour_radius_max_mm,
        "draw_phantom_anatomy: tumour radius range [{}, {}] mm must be positive and ordered",
        options.tumour_radius_min_mm, options.tumour_radius_max_mm);
  const Patient pt = draw_patient(options, gen);
  Tensor tissue = Tensor::empty({D, H, W}, TensorOptions{}.with(DType::u8));
  if (body) *body = Tensor::empty({D, H, W}, TensorOptions{}.with(DType::u8));
  std::uint8_t* out = tissue.data<std::uint8_t>();
  std::uint8_t* mask = body ? body->data<std::uint8_t>() : nullptr;
  const double oz = grid.origin[0], oy = grid.origin[1], ox = grid.origin[2];
  const double sz = grid.spacing[0], sy = grid.spacing[1], sx = grid.spacing[2];
  // Voxel index range [first, last] whose centres lie within [lo, hi] along one axis.
  const auto range = [](double lo, double hi, double origin, double step, std::int64_t n) {
    const auto first = static_cast<std::int64_t>(std::max(0.0, std::ceil((lo - origin) / step)));
    const auto last = static_cast<std::int64_t>(std::min<double>(n - 1, std::floor((hi - origin) / step)));
    return std::array<std::int64_t, 2>{first, last};
  };
#pragma omp parallel for schedule(dynamic, 1)
  for (std::int64_t k = 0; k < D; ++k) {
    const double z = oz + static_cast<double>(k) * sz;
    std::uint8_t* t = out + k * H * W;
    std::vector<std::uint8_t> region(static_cast<std::size_t>(H * W));
    for (std::int64_t j = 0; j < H; ++j) {
      const auto e = pt.body.row_extents(oy + static_cast<double>(j) * sy, z);
      for (std::int64_t i = 0; i < W; ++i) {
        const double dx = std::abs(ox + static_cast<double>(i) * sx - pt.body.cx);
        const int layer = dx > e[0] ? 0 : dx > e[1] ? 1 : dx > e[2] ? 2 : 3;  // outside, fat, wall, cavity
        static constexpr PhantomTissue kLayer[] = {PhantomTissue::air, PhantomTissue::subcutaneous_fat,
                                                   PhantomTissue::muscle, PhantomTissue::visceral_fat};
        t[j * W + i] = static_cast<std::uint8_t>(kLayer[layer]);
        region[static_cast<std::size_t>(j * W + i)] =
            static_cast<std::uint8_t>(layer == 0   ? 0
                                      : layer == 3 ? static_cast<int>(Region::cavity)
                                                   : 1);
        if (mask) mask[k * H * W + j * W + i] = layer > 0 ? 1 : 0;
      }
    }
    for (const Primitive& p : pt.parts) {
      if (z < p.lo[2] || z > p.hi[2]) continue;
      const auto [j0, j1] = range(p.lo[1], p.hi[1], oy, sy, H);
      const auto [i0, i1] = range(p.lo[0], p.hi[0], ox, sx, W);
      for (std::int64_t j = j0; j <= j1; ++j)
        for (std::int64_t i = i0; i <= i1; ++i) {
          const std::int64_t v = j * W + i;
          if (region[static_cast<std::size_t>(v)] < static_cast<std::uint8_t>(p.region)) continue;
          if (p.parent >= 0 && t[v] != p.parent) continue;
          if (inside(p, {ox + static_cast<double>(i) * sx, oy + static_cast<double>(j) * sy, z}))
            t[v] = static_cast<std::uint8_t>(p.tissue);
        }
    }
  }
  return tissue;
}

}  // namespace tlk::data
