#include "tlk/transfer/teacher_cache.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numeric>
#include <regex>
#include <system_error>

#include "tlk/kernels/ref/common.h"
#include "tlk/tensor/error.h"

namespace tlk::transfer {

namespace {

constexpr const char* kVersion = "1";
constexpr double kProbabilityFloor = 1e-30;

const char* format_name(CacheFormat f) {
  switch (f) {
    case CacheFormat::top_k:
      return "top_k";
    case CacheFormat::logits:
      return "logits";
    case CacheFormat::probabilities_u8:
      return "probabilities_u8";
  }
  return "?";
}

std::string key_text(const TeacherCacheKey& key) {
  return fmt::format("sample {}, augmentation seed {}", key.sample, key.seed);
}

/// Parses "s<sample>_a<seed>" back into a key; false for any other name.
bool parse_key(const std::string& name, TeacherCacheKey& key) {
  static const std::regex pattern(R"(s(-?[0-9]+)_a([0-9]+))");
  std::smatch m;
  if (!std::regex_match(name, m, pattern)) return false;
  const std::string a = m[1].str(), b = m[2].str();
  return std::from_chars(a.data(), a.data() + a.size(), key.sample).ec == std::errc{} &&
         std::from_chars(b.data(), b.data() + b.size(), key.seed).ec == std::errc{};
}

std::string shard_name(int number) { return fmt::format("teacher_cache_{:06d}.h5", number); }

/// The shape [N, K, ...spatial] with dimension 1 replaced by `k`.
Shape with_channels(const Shape& shape, std::int64_t k) {
  Shape s = shape;
  s[1] = k;
  return s;
}

std::int64_t bytes_of(const Tensor& t) { return t.numel() * static_cast<std::int64_t>(element_size(t.dtype())); }

}  // namespace

std::string TeacherCacheKey::str() const { return fmt::format("s{}_a{}", sample, seed); }

TeacherCache::TeacherCache(std::filesystem::path dir, const TeacherCacheOptions& options)
    : dir_(std::move(dir)), options_(options) {
  const std::string where = "TeacherCache " + dir_.string();
  check(options_.top_k >= 1 || options_.format != CacheFormat::top_k, "{}: top_k must be >= 1, got {}", where,
        options_.top_k);
  check(options_.num_classes >= 0, "{}: num_classes must be >= 0 (0: taken from the data), got {}", where,
        options_.num_classes);
  check(std::isfinite(options_.temperature) && options_.temperature > 0.0,
        "{}: temperature must be a finite value > 0, got {}", where, options_.temperature);
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  check(!ec && std::filesystem::is_directory(dir_), "{}: cannot create the cache directory: {}", where,
        ec ? ec.message() : std::string("not a directory"));
  static const std::regex shard_pattern(R"(teacher_cache_([0-9]+)\.h5)");
  std::vector<std::pair<int, std::filesystem::path>> shards;
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    std::smatch m;
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file() && std::regex_match(name, m, shard_pattern))
      shards.emplace_back(std::stoi(m[1].str()), entry.path());
  }
  std::sort(shards.begin(), shards.end());  // later shards replace earlier entries
  for (const auto& [number, path] : shards) index_shard(path, number);
}

TeacherCache::~TeacherCache() {
  try {
    flush();
  } catch (const std::exception& e) {
    fmt::print(stderr, "warning: TeacherCache {}: pending entries were not saved: {}\n", dir_.string(), e.what());
  }
}

void TeacherCache::index_shard(const std::filesystem::path& path, int number) {
  auto file = std::make_unique<io::Hdf5File>(io::Hdf5File::open(path));
  const std::string where = "TeacherCache " + path.string();
  check(file->has_attribute("tlk_teacher_cache"), "{}: not a TLK teacher cache file (no tlk_teacher_cache attribute)",
        where);
  const auto attr = [&](const char* name) {
    check(file->has_attribute(name), "{}: attribute '{}' is missing", where, name);
    return file->attribute(name);
  };
  const std::string format = attr("format");
  check(format == format_name(options_.format), "{}: the file stores format '{}' but the cache was opened with '{}'",
        where, format, format_name(options_.format));
  if (options_.format == CacheFormat::top_k) {
    const std::int64_t k = std::stoll(attr("top_k"));
    check(k == options_.top_k, "{}: the file stores top_k = {} but the cache was opened with top_k = {}", where, k,
          options_.top_k);
  }
  if (options_.format != CacheFormat::logits) {
    const double t = std::stod(attr("temperature"));
    check(t == options_.temperature,
          "{}: the file stores probabilities at temperature {} but the cache was opened with temperature {}", where, t,
          options_.temperature);
  }
  const std::int64_t classes = std::stoll(attr("num_classes"));
  if (options_.num_classes == 0) options_.num_classes = classes;
  check(classes == options_.num_classes, "{}: the file stores {} classes but the cache expects {}", where, classes,
        options_.num_classes);
  for (const std::string& name : file->datasets("entries")) {
    TeacherCacheKey key;
    const std::string entry = name.substr(0, name.find('/'));
    check(parse_key(entry, key), "{}: unexpected dataset 'entries/{}' (expected entries/s<sample>_a<seed>/<part>)",
          where, name);
    on_disk_[key] = number;
  }
  shards_[number] = std::move(file);
  next_shard_ = std::max(next_shard_, number + 1);
}

void TeacherCache::write_attributes(io::Hdf5File& file) const {
  file.set_attribute("tlk_teacher_cache", kVersion);
  file.set_attribute("format", format_name(options_.format));
  file.set_attribute("top_k", fmt::format("{}", options_.top_k));
  file.set_attribute("num_classes", fmt::format("{}", options_.num_classes));
  file.set_attribute("temperature", fmt::format("{}", options_.temperature));  // shortest exact round trip
}

TeacherCache::Parts TeacherCache::encode(const Tensor& teacher_logits) const {
  const char* op = "TeacherCache::put";
  check(teacher_logits.defined(), "{} ({}): the teacher logits are undefined", op, dir_.string());
  const Tensor x = kernels::ref::cpu_contiguous(teacher_logits, op, "teacher logits");
  check(x.dim() >= 2 && (x.dtype() == DType::f32 || x.dtype() == DType::f64),
        "{} ({}): expected f32 or f64 teacher logits [N, K, ...spatial], got {} {}", op, dir_.string(),
        dtype_name(x.dtype()), x.shape().str());
  Parts parts;
  if (options_.format == CacheFormat::logits) {
    parts["logits"] = x.dtype() == DType::f32 ? x.clone() : x.to(DType::f32);
    return parts;
  }
  const kernels::ref::ChannelView L = kernels::ref::ChannelView::of(x.shape());
  const std::int64_t K = L.channels, P = L.outer * L.inner;
  const std::int64_t k = options_.format == CacheFormat::top_k ? std::min(options_.top_k, K) : K;
  const kernels::ref::ChannelView O{L.outer, k, L.inner};  // the stored tensor's layout
  const bool top = options_.format == CacheFormat::top_k;
  Tensor probs = Tensor::empty(with_channels(x.shape(), k), TensorOptions{top ? DType::f32 : DType::u8});
  Tensor indices = top ? Tensor::empty(with_channels(x.shape(), k), TensorOptions{DType::i32}) : Tensor();
  const double inv_t = 1.0 / options_.temperature;
  std::uint8_t* u8 = top ? nullptr : probs.data<std::uint8_t>();
  float* pp = top ? probs.data<float>() : nullptr;
  std::int32_t* ip = top ? indices.data<std::int32_t>() : nullptr;
  visit_floating(x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* v = x.data<T>();
#pragma omp parallel if (P * K > 32768)
    {
      std::vector<double> prob(static_cast<std::size_t>(K));
      std::vector<std::int32_t> order(static_cast<std::size_t>(K));
#pragma omp for
      for (std::int64_t p = 0; p < P; ++p) {
        const std::int64_t n = p / L.inner, i = p % L.inner;
        // softmax(x / T) at this position, in double.
        double m = -INFINITY, sum = 0.0;
        for (std::int64_t c = 0; c < K; ++c) m = std::max(m, inv_t * static_cast<double>(v[L.index(n, c, i)]));
        for (std::int64_t c = 0; c < K; ++c)
          sum += prob[c] = std::exp(inv_t * static_cast<double>(v[L.index(n, c, i)]) - m);
        for (double& q : prob) q /= sum;
        if (!top) {
          for (std::int64_t c = 0; c < K; ++c)
            u8[O.index(n, c, i)] = static_cast<std::uint8_t>(std::lround(255.0 * prob[c]));
          continue;
        }
        std::iota(order.begin(), order.end(), 0);
        // Largest first; ties go to the lower class index.
        std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](std::int32_t a, std::int32_t b) {
          return prob[a] > prob[b] || (prob[a] == prob[b] && a < b);
        });
        for (std::int64_t j = 0; j < k; ++j) {
          pp[O.index(n, j, i)] = static_cast<float>(prob[order[j]]);
          ip[O.index(n, j, i)] = order[j];
        }
      }
    }
  });
  if (top) {
    parts["probabilities"] = probs;
    parts["indices"] = indices;
  } else {
    parts["probabilities_u8"] = probs;
  }
  return parts;
}

void TeacherCache::put(const TeacherCacheKey& key, const Tensor& teacher_logits) {
  check(teacher_logits.defined() && teacher_logits.dim() >= 2,
        "TeacherCache::put ({}): expected teacher logits [N, K, ...spatial] for {}, got {}", dir_.string(),
        key_text(key), teacher_logits.defined() ? teacher_logits.shape().str() : "(undefined)");
  const std::int64_t classes = teacher_logits.size(1);
  if (options_.num_classes == 0) options_.num_classes = classes;
  check(classes == options_.num_classes,
        "TeacherCache::put ({}): teacher logits {} for {} have {} classes but the cache holds {} classes",
        dir_.string(), teacher_logits.shape().str(), key_text(key), classes, options_.num_classes);
  Parts parts = encode(teacher_logits);
  auto old = pending_.find(key);
  if (old != pending_.end())
    for (const auto& [name, t] : old->second) pending_bytes_ -= bytes_of(t);
  for (const auto& [name, t] : parts) pending_bytes_ += bytes_of(t);
  pending_[key] = std::move(parts);
  if (pending_bytes_ >= options_.flush_bytes) flush();
}

bool TeacherCache::has(const TeacherCacheKey& key) const { return pending_.count(key) || on_disk_.count(key); }

std::int64_t TeacherCache::size() const {
  std::int64_t n = static_cast<std::int64_t>(on_disk_.size());
  for (const auto& [key, parts] : pending_) n += on_disk_.count(key) ? 0 : 1;
  return n;
}

TeacherCache::Parts TeacherCache::read_parts(const TeacherCacheKey& key) const {
  if (auto it = pending_.find(key); it != pending_.end()) return it->second;
  auto it = on_disk_.find(key);
  check(it != on_disk_.end(), "TeacherCache {}: no entry for {} ({} entries cached; run the teacher and put() it)",
        dir_.string(), key_text(key), size());
  io::Hdf5File& file = *shards_.at(it->second);
  const std::string group = "entries/" + key.str() + "/";
  Parts parts;
  const auto read = [&](const char* part) {
    check(file.has(group + part), "TeacherCache {}: entry {} lacks '{}{}'", file.path().string(), key_text(key), group,
          part);
    parts[part] = file.read(group + part);
  };
  switch (options_.format) {
    case CacheFormat::logits:
      read("logits");
      break;
    case CacheFormat::probabilities_u8:
      read("probabilities_u8");
      break;
    case CacheFormat::top_k:
      read("probabilities");
      read("indices");
      break;
  }
  return parts;
}

Tensor TeacherCache::decode(const TeacherCacheKey& key, const Parts& parts) const {
  const std::int64_t K = options_.num_classes;
  if (options_.format == CacheFormat::logits) return parts.at("logits").clone();
  if (options_.format == CacheFormat::probabilities_u8) {
    const Tensor q = parts.at("probabilities_u8").contiguous();
    const kernels::ref::ChannelView L = kernels::ref::ChannelView::of(q.shape());
    check(L.channels == K, "TeacherCache {}: entry {} has {} classes, expected {}", dir_.string(), key_text(key),
          L.channels, K);
    Tensor out = Tensor::empty(q.shape(), TensorOptions{DType::f32});
    const std::uint8_t* qp = q.data<std::uint8_t>();
    float* o = out.data<float>();
#pragma omp parallel for if (q.numel() > 32768)
    for (std::int64_t p = 0; p < L.outer * L.inner; ++p) {
      const std::int64_t n = p / L.inner, i = p % L.inner;
      double total = 0.0;
      for (std::int64_t c = 0; c < K; ++c) total += qp[L.index(n, c, i)];
      for (std::int64_t c = 0; c < K; ++c)
        o[L.index(n, c, i)] =
            static_cast<float>(total > 0.0 ? qp[L.index(n, c, i)] / total : 1.0 / static_cast<double>(K));
    }
    return out;
  }
  const Tensor probs = parts.at("probabilities").contiguous();
  const Tensor indices = parts.at("indices").to(DType::i32).contiguous();
  check(probs.dim() >= 2 && probs.shape() == indices.shape() && probs.size(1) == std::min(options_.top_k, K),
        "TeacherCache {}: entry {} has top-k probabilities {} and indices {}, expected k = {}", dir_.string(),
        key_text(key), probs.shape().str(), indices.shape().str(), std::min(options_.top_k, K));
  const kernels::ref::ChannelView L = kernels::ref::ChannelView::of(probs.shape());
  const std::int64_t k = L.channels;
  Tensor out = Tensor::empty(with_channels(probs.shape(), K), TensorOptions{DType::f32});
  const float* pp = probs.data<float>();
  const std::int32_t* ip = indices.data<std::int32_t>();
  float* o = out.data<float>();
  const kernels::ref::ChannelView F{L.outer, K, L.inner};
  for (std::int64_t e = 0; e < indices.numel(); ++e)
    check(ip[e] >= 0 && ip[e] < K, "TeacherCache {}: entry {} holds class index {} outside [0, {})", dir_.string(),
          key_text(key), ip[e], K);
#pragma omp parallel for if (out.numel() > 32768)
  for (std::int64_t p = 0; p < L.outer * L.inner; ++p) {
    const std::int64_t n = p / L.inner, i = p % L.inner;
    // Note [Top-k replay]: the k stored probabilities come back as they were; the leftover mass
    // 1 − Σ top-k (clamped at 0) is spread uniformly over the K − k classes that were not stored.
    double kept = 0.0;
    for (std::int64_t j = 0; j < k; ++j) kept += pp[L.index(n, j, i)];
    const double rest = K > k ? std::max(0.0, 1.0 - kept) / static_cast<double>(K - k) : 0.0;
    for (std::int64_t c = 0; c < K; ++c) o[F.index(n, c, i)] = static_cast<float>(rest);
    for (std::int64_t j = 0; j < k; ++j) {
      o[F.index(n, ip[L.index(n, j, i)], i)] = pp[L.index(n, j, i)];
    }
  }
  return out;
}

Tensor TeacherCache::get_logits_or_probabilities(const TeacherCacheKey& key) const {
  return decode(key, read_parts(key));
}

Tensor TeacherCache::get_logits_or_probabilities(const TeacherCacheKey& key, const Shape& expected_shape) const {
  Tensor out = get_logits_or_probabilities(key);
  check(out.shape() == expected_shape, "TeacherCache {}: entry {} has shape {} but {} was expected", dir_.string(),
        key_text(key), out.shape().str(), expected_shape.str());
  return out;
}

Tensor TeacherCache::get_teacher_logits(const TeacherCacheKey& key) const {
  Tensor out = get_logits_or_probabilities(key);
  if (options_.format == CacheFormat::logits) return out;
  float* o = out.data<float>();
  const double t = options_.temperature;
#pragma omp parallel for if (out.numel() > 32768)
  for (std::int64_t i = 0; i < out.numel(); ++i)
    o[i] = static_cast<float>(t * std::log(std::max(static_cast<double>(o[i]), kProbabilityFloor)));
  return out;
}

void TeacherCache::flush() {
  if (pending_.empty() || options_.read_only) return;
  const int number = next_shard_;
  const std::filesystem::path path = dir_ / shard_name(number);
  io::write_atomically(path, [&](const std::filesystem::path& tmp) {
    io::Hdf5File file = io::Hdf5File::create(tmp);
    write_attributes(file);
    for (const auto& [key, parts] : pending_)
      for (const auto& [part, tensor] : parts) file.write("entries/" + key.str() + "/" + part, tensor);
    file.flush();
  });
  auto file = std::make_unique<io::Hdf5File>(io::Hdf5File::open(path));
  for (const auto& [key, parts] : pending_) on_disk_[key] = number;
  shards_[number] = std::move(file);
  next_shard_ = number + 1;
  pending_.clear();
  pending_bytes_ = 0;
}

}  // namespace tlk::transfer
