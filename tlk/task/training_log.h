#pragma once
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace tlk::task {

/// One row of a training log: named numbers in a fixed column order.
using LogRow = std::vector<std::pair<std::string, double>>;

/// A per-epoch training log written twice: `log.csv` for people and spreadsheets, `log.jsonl`
/// (one JSON object per line) for programs. Each row is flushed as soon as it is written, so a
/// crashed run keeps its history; a resumed run appends (the CSV header is written once, and the
/// columns must stay the same).
///
/// Example:
/// ```
/// task::TrainingLog log("runs/amos", /*append=*/false);
/// log.write({{"epoch", 0}, {"train_loss", 0.61}, {"lr", 0.01}});
/// ```
class TrainingLog {
 public:
  /// Writes `dir`/`name`.csv and `dir`/`name`.jsonl.
  TrainingLog(const std::filesystem::path& dir, bool append, const std::string& name = "log");
  void write(const LogRow& row);
  const std::filesystem::path& csv_path() const { return csv_; }
  const std::filesystem::path& jsonl_path() const { return jsonl_; }

 private:
  std::filesystem::path csv_, jsonl_;
  std::vector<std::string> columns_;
};

}  // namespace tlk::task
