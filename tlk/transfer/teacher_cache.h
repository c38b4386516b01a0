#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tlk/io/hdf5_file.h"
#include "tlk/tensor/tensor.h"

namespace tlk::transfer {

/// Identifies one cached teacher output: the sample (or batch) id and the seed of the augmentation
/// that produced the student's input. Replaying the augmentation from the seed recreates the input, so
/// (sample, seed) identifies the teacher's output exactly; a new epoch draws new seeds.
/// Example: `transfer::TeacherCacheKey{.sample = case_index, .seed = augmentation_seed}`
struct TeacherCacheKey {
  std::int64_t sample = 0;
  std::uint64_t seed = 0;
  /// The dataset name in the files: "s<sample>_a<seed>".
  std::string str() const;
  auto operator<=>(const TeacherCacheKey&) const = default;
};

/// How the teacher's output is stored.
enum class CacheFormat {
  /// Per position, the k largest probabilities softmax(t/T) as f32 and their class indices as i32
  /// (TinyViT's saved logits); replay spreads the leftover mass 1 − Σ top-k uniformly over the other
  /// K − k classes. 8·k bytes per position: the choice for classification.
  top_k,
  /// The full logits as f32 (4·K bytes per position): exact, independent of the temperature.
  logits,
  /// The full probabilities softmax(t/T) quantised to u8 (round(255·p); K bytes per position, 4x less
  /// than logits and compressible); replay renormalises q/Σq. The choice for segmentation.
  probabilities_u8,
};

/// Options of a TeacherCache. They are written into every file and must agree with what a cache
/// directory already holds.
/// Example: `transfer::TeacherCacheOptions{.format = CacheFormat::top_k, .top_k = 10, .num_classes = 100}`
struct TeacherCacheOptions {
  CacheFormat format = CacheFormat::top_k;
  /// Probabilities kept per position for CacheFormat::top_k (>= 1; more than num_classes keeps all).
  std::int64_t top_k = 10;
  /// Classes K (the logits' dimension 1); 0 takes it from the directory's files or the first put().
  std::int64_t num_classes = 0;
  /// The probability formats store softmax(t / temperature): use the KD temperature.
  double temperature = 4.0;
  /// put() writes a new file once this many bytes are pending (flush() writes them any time).
  std::int64_t flush_bytes = std::int64_t{256} << 20;
  /// Never write to the directory: put() keeps entries in memory only. For the processes of a
  /// data-parallel job that read what rank 0 wrote (one process writes a directory at a time).
  bool read_only = false;
};

/// Teacher outputs saved to disk, so that later epochs replay them instead of running the teacher.
///
/// Note [Teacher cache files]: the directory holds shard files "teacher_cache_<n>.h5" (n = 0, 1, ...),
/// each written once, atomically (io::write_atomically), by flush(): a crash never leaves a
/// half-written shard, and a cache grows by adding shards (append-safe without rewriting). Each shard
/// holds the datasets "entries/<key>/<part>" and the options as root attributes; opening a cache
/// indexes every shard's keys, and a later shard's entry replaces an earlier one with the same key.
/// One process writes a directory at a time. Cost for segmentation: a [2, 15, 128, 128, 128] patch
/// is 252 MB per batch as logits, 63 MB as u8 probabilities (before deflate, which shrinks the
/// near-constant background a lot); caching every epoch of a long 3D run rarely fits on disk, so
/// cache a few epochs or a fixed-seed pass.
///
/// Example:
/// ```
/// transfer::TeacherCache cache("runs/kd/teacher", {.format = CacheFormat::top_k, .top_k = 10});
/// const TeacherCacheKey key{.sample = batch_id, .seed = seed};
/// if (!cache.has(key)) { NoGradGuard g; cache.put(key, teacher(x)); }
/// Tensor t = cache.get_teacher_logits(key);  // for ops::kl_div_with_temperature(s, t, 4.0)
/// ```
class TeacherCache {
 public:
  /// Opens (creating it if needed) the cache directory `dir` and indexes its shards. A shard written
  /// with other options (format, top_k, num_classes, temperature) is a tlk::Error naming the file.
  explicit TeacherCache(std::filesystem::path dir, const TeacherCacheOptions& options = {});
  /// Flushes pending entries (best effort: an error is printed, not thrown; call flush() to see it).
  ~TeacherCache();
  TeacherCache(const TeacherCache&) = delete;
  TeacherCache& operator=(const TeacherCache&) = delete;

  /// Stores the teacher's logits [N, K, ...spatial] (f32 or f64; [N, K] for classification) under
  /// `key`, encoded in the cache's format; it is readable at once and on disk after the next flush.
  /// K must equal num_classes (tlk::Error otherwise). Putting a key again replaces its entry.
  void put(const TeacherCacheKey& key, const Tensor& teacher_logits);
  bool has(const TeacherCacheKey& key) const;
  /// What the cache holds for `key`, decoded to f32 [N, K, ...spatial]: the logits for
  /// CacheFormat::logits, the probabilities softmax(t/T) for the other formats. A missing key is a
  /// tlk::Error naming the key and the directory.
  Tensor get_logits_or_probabilities(const TeacherCacheKey& key) const;
  /// Like get_logits_or_probabilities, checking that the entry has `expected_shape` (tlk::Error otherwise).
  Tensor get_logits_or_probabilities(const TeacherCacheKey& key, const Shape& expected_shape) const;
  /// Logits x to pass where the teacher's logits go: the stored logits, or T·log(p) for the probability
  /// formats, so that softmax(x / T) = p exactly at the cache's temperature T (zeros are floored at
  /// 1e-30). Distil at the cache's temperature when the format stores probabilities.
  Tensor get_teacher_logits(const TeacherCacheKey& key) const;
  /// Writes the pending entries as a new shard (nothing when none are pending).
  void flush();

  /// Number of distinct keys (on disk and pending).
  std::int64_t size() const;
  /// The options in force (num_classes filled in once known).
  const TeacherCacheOptions& options() const { return options_; }
  const std::filesystem::path& directory() const { return dir_; }

 private:
  using Parts = std::map<std::string, Tensor>;  // encoded datasets of one entry, by part name
  Parts encode(const Tensor& teacher_logits) const;
  Tensor decode(const TeacherCacheKey& key, const Parts& parts) const;
  Parts read_parts(const TeacherCacheKey& key) const;
  void index_shard(const std::filesystem::path& path, int number);
  void write_attributes(io::Hdf5File& file) const;

  std::filesystem::path dir_;
  TeacherCacheOptions options_;
  std::map<TeacherCacheKey, Parts> pending_;
  std::int64_t pending_bytes_ = 0;
  std::map<TeacherCacheKey, int> on_disk_;  // key -> shard number
  mutable std::map<int, std::unique_ptr<io::Hdf5File>> shards_;
  int next_shard_ = 0;
};

}  // namespace tlk::transfer
