#include "tlk/task/training_log.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <fstream>

#include "tlk/tensor/error.h"

namespace tlk::task {

namespace {

/// Numbers as both formats read them back exactly; NaN (an empty Dice) is "nan" in CSV and null in JSON.
std::string csv_number(double v) { return std::isnan(v) ? "nan" : fmt::format("{}", v); }
std::string json_number(double v) { return std::isfinite(v) ? fmt::format("{}", v) : "null"; }

std::vector<std::string> read_csv_header(const std::filesystem::path& csv) {
  std::ifstream in(csv);
  std::string line;
  std::vector<std::string> columns;
  if (!std::getline(in, line)) return columns;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = line.find(',', start);
    columns.push_back(line.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) return columns;
    start = comma + 1;
  }
}

}  // namespace

TrainingLog::TrainingLog(const std::filesystem::path& dir, bool append, const std::string& name)
    : csv_(dir / (name + ".csv")), jsonl_(dir / (name + ".jsonl")) {
  if (append) {
    columns_ = read_csv_header(csv_);
  } else {
    std::ofstream(csv_, std::ios::trunc);
    std::ofstream(jsonl_, std::ios::trunc);
  }
}

void TrainingLog::write(const LogRow& row) {
  std::vector<std::string> names;
  for (const auto& [name, value] : row) names.push_back(name);
  std::ofstream csv(csv_, std::ios::app), jsonl(jsonl_, std::ios::app);
  check(csv.good() && jsonl.good(), "training log: cannot write {} / {}", csv_.string(), jsonl_.string());
  if (columns_.empty()) {
    columns_ = names;
    csv << fmt::format("{}\n", fmt::join(names, ","));
  }
  check(names == columns_, "training log {}: the columns changed ({} now, {} in the file)", csv_.string(),
        fmt::join(names, ","), fmt::join(columns_, ","));
  std::string csv_line, json_line = "{";
  for (std::size_t i = 0; i < row.size(); ++i) {
    csv_line += (i ? "," : "") + csv_number(row[i].second);
    json_line += fmt::format("{}\"{}\": {}", i ? ", " : "", row[i].first, json_number(row[i].second));
  }
  csv << csv_line << "\n";
  jsonl << json_line << "}\n";
  csv.flush();
  jsonl.flush();
  check(csv.good() && jsonl.good(), "training log: writing {} failed (disk full?)", csv_.string());
}

}  // namespace tlk::task
