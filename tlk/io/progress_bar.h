#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace tlk::io {

/// A progress display with rate and ETA for long work (preprocessing, training, prediction).
///
/// On a terminal it redraws one line in place (at most 10 times a second); when stderr is a file
/// or pipe (CI, logs) it prints a plain line at every 10% instead, so logs stay readable. Quiet
/// bars print nothing. Thread-safe: advance() may be called from worker threads.
///
/// Example:
/// ```
/// io::ProgressBar bar("preprocess", cases.size());
/// for (auto& c : cases) { work(c); bar.advance(1, c.name); }
/// bar.finish();
/// ```
class ProgressBar {
 public:
  ProgressBar(std::string label, std::int64_t total, bool quiet = false, std::FILE* out = stderr);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  /// Counts `n` more units done; `note` (e.g. "loss 0.41") is shown after the bar.
  void advance(std::int64_t n = 1, const std::string& note = "");
  /// Draws the final state and ends the line (called by the destructor if not called before).
  void finish();
  std::int64_t done() const { return done_; }
  /// Seconds since the bar was made.
  double elapsed_seconds() const;

  /// "1h02m", "3m05s", "12s": durations as the bar prints them.
  static std::string format_duration(double seconds);

 private:
  void draw(bool final_line);

  std::string label_;
  std::int64_t total_;
  std::int64_t done_ = 0;
  bool quiet_, tty_, finished_ = false;
  int last_decile_ = -1;
  std::FILE* out_;
  std::string note_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace tlk::io
