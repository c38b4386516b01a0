#include "tlk/io/progress_bar.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <mutex>

namespace tlk::io {

namespace {
std::mutex& draw_mutex() {
  static std::mutex m;
  return m;
}
}  // namespace

ProgressBar::ProgressBar(std::string label, std::int64_t total, bool quiet, std::FILE* out)
    : label_(std::move(label)),
      total_(std::max<std::int64_t>(total, 1)),
      quiet_(quiet),
      tty_(isatty(fileno(out)) != 0),
      out_(out),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

ProgressBar::~ProgressBar() {
  if (!finished_) finish();
}

double ProgressBar::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

std::string ProgressBar::format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<std::int64_t>(std::llround(seconds));
  if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
  if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

void ProgressBar::advance(std::int64_t n, const std::string& note) {
  std::lock_guard lock(draw_mutex());
  done_ = std::min(done_ + n, total_);
  if (!note.empty()) note_ = note;
  if (quiet_) return;
  const auto now = std::chrono::steady_clock::now();
  if (tty_) {
    if (done_ < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    draw(false);
  } else {
    const int decile = static_cast<int>(done_ * 10 / total_);
    if (decile == last_decile_ || done_ == total_) return;  // the final line comes from finish()
    last_decile_ = decile;
    draw(false);
  }
}

void ProgressBar::finish() {
  std::lock_guard lock(draw_mutex());
  if (finished_) return;
  finished_ = true;
  if (!quiet_) draw(true);
}

void ProgressBar::draw(bool final_line) {
  const double elapsed = elapsed_seconds();
  const double fraction = static_cast<double>(done_) / total_;
  const double eta = done_ > 0 ? elapsed * (1.0 - fraction) / fraction : NAN;
  constexpr int kWidth = 24;
  const int filled = static_cast<int>(fraction * kWidth);
  const std::string bar = std::string(filled, '#') + std::string(kWidth - filled, '.');
  const std::string text = fmt::format("{} [{}] {}/{} {:3.0f}% elapsed {} eta {}{}{}", label_, bar, done_, total_,
                                       100.0 * fraction, format_duration(elapsed),
                                       final_line ? "0s" : format_duration(eta), note_.empty() ? "" : "  ", note_);
  if (tty_)
    fmt::print(out_, "\r{}\033[K{}", text, final_line ? "\n" : "");
  else
    fmt::print(out_, "{}\n", text);
  std::fflush(out_);
}

}  // namespace tlk::io
