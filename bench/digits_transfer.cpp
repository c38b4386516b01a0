// The digit experiments of TLK's classification transfer: MNIST -> USPS domain adaptation (source
// only vs DANN vs CDAN) and teacher -> student distillation (student alone vs distilled), each over
// several seeds, from the configs in examples/configs/. Prints one row per run and a summary
// (mean ± sample standard deviation) with each run's training time (the sum of its epochs' seconds
// in log.csv); the figures carry no date. A run already finished in the work folder is read back
// from its log, and an interrupted one continues from its latest.h5 (exactly, see task::ClassificationTrainer).
//
//   build/bench/digits_transfer --seeds 3 --threads 1
//   build/bench/digits_transfer --only distill --seeds 5
//
// Needs ../shared/data/digits (the MNIST test IDX files and the Kaggle usps.h5); MNIST is converted
// to TLK's HDF5 layout in the work folder first.
#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "tlk/data/classification_dataset.h"
#include "tlk/io/config.h"
#include "tlk/task/classification_trainer.h"
#include "tlk/tensor/error.h"

using namespace tlk;
namespace fs = std::filesystem;

namespace {

const char* kHelp = R"(usage: digits_transfer [options]
Runs the digit transfer experiments from examples/configs and prints per-seed and mean ± std tables.

Options (defaults in brackets):
  --data DIR        the digits folder [<source>/../shared/data/digits]
  --work DIR        where MNIST is converted and runs are written [/tmp/tlk_digits]
  --configs DIR     the experiment configs [<source>/examples/configs]
  --seeds N         seeds per experiment [3]
  --first-seed N    the first seed (seeds N, N+1, ...) [1]
  --epochs N        override train.epochs of the adaptation runs (0: the configs') [0]
  --only WHAT       adapt, distill or all [all]
  --methods LIST    adaptation runs, of source_only,dann,cdan [source_only,dann,cdan]
  --threads N       OpenMP threads per run (train.threads) [1]
  --set KEY=VALUE   override a config key in every run (repeatable), e.g. --set train.schedule=cosine
)";

struct Run {
  std::string experiment;
  std::uint64_t seed;
  double val_accuracy, test_accuracy, seconds;
};

std::string arg(const std::vector<std::string>& args, const std::string& name, const std::string& fallback) {
  for (std::size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == "--" + name) return args[i + 1];
  return fallback;
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? std::nan("") : s / static_cast<double>(v.size());
}

double sample_std(const std::vector<double>& v) {
  if (v.size() < 2) return 0.0;
  const double m = mean(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size() - 1));
}

struct Paths {
  fs::path data, work, configs;
  std::vector<std::string> overrides;  ///< --set key=value
};

/// The last row of a run's log.csv as (val accuracy, test accuracy), and the sum of its epochs' seconds.
Run read_log(const fs::path& dir, const std::string& label, std::uint64_t seed) {
  std::ifstream in(dir / "log.csv");
  std::string line;
  std::getline(in, line);
  std::vector<std::string> header;
  std::stringstream hs(line);
  for (std::string col; std::getline(hs, col, ',');) header.push_back(col);
  auto column = [&](const std::string& name) {
    const auto it = std::find(header.begin(), header.end(), name);
    check(it != header.end(), "digits_transfer: {} has no column {}", (dir / "log.csv").string(), name);
    return static_cast<std::size_t>(it - header.begin());
  };
  const std::size_t val = column("val_accuracy"), test = column("test_accuracy"), sec = column("seconds");
  Run r{label, seed, std::nan(""), std::nan(""), 0.0};
  while (std::getline(in, line)) {
    std::vector<double> row;
    std::stringstream rs(line);
    for (std::string cell; std::getline(rs, cell, ',');) row.push_back(std::stod(cell));
    r.val_accuracy = row[val];
    r.test_accuracy = row[test];
    r.seconds += row[sec];
  }
  return r;
}

/// Loads `name`.yaml, points its data and teacher at `paths`, sets the seed and output, and trains
/// (or continues an interrupted run from its latest.h5, or reads back a finished one).
Run run_config(const Paths& paths, const std::string& name, const std::string& label, std::uint64_t seed,
               std::int64_t epochs, int threads, const fs::path& out) {
  io::Config c = io::Config::from_yaml_file(paths.configs / (name + ".yaml"));
  c.set("data.train", (paths.work / "mnist_test.h5").string());
  c.set("data.test", (paths.data / "usps.h5").string() + ":test");
  if (c.has("data.target")) c.set("data.target", (paths.data / "usps.h5").string() + ":train");
  if (c.has("distill.teacher")) c.set("distill.teacher", (paths.work / "teacher" / "final.h5").string());
  if (c.has("distill.cache")) c.set("distill.cache", (paths.work / "teacher_outputs").string());
  c.set("train.seed", std::to_string(seed));
  c.set("train.threads", std::to_string(threads));
  if (epochs > 0) c.set("train.epochs", std::to_string(epochs));
  for (const std::string& assignment : paths.overrides) c.set_override(assignment);
  c.set("output.dir", out.string());
  c.set("output.quiet", "true");
  const auto config = task::ClassificationTrainConfig::from(c);
  if (!fs::exists(out / "final.h5")) {
    task::ClassificationTrainer trainer(config);
    trainer.run(fs::exists(out / "latest.h5"));
  }
  const Run r = read_log(out, label, seed);
  fmt::print("| {:<14} | {:>4} | {:>8.4f} | {:>8.4f} | {:>7.1f} |\n", r.experiment, r.seed, r.val_accuracy,
             r.test_accuracy, r.seconds);
  std::fflush(stdout);
  return r;
}

void summary(const std::vector<Run>& runs, const std::vector<std::string>& order) {
  fmt::print("\n| experiment     | runs | val accuracy      | test accuracy     | seconds/run |\n"
             "|---|---|---|---|---|\n");
  for (const std::string& e : order) {
    std::vector<double> val, test, sec;
    for (const Run& r : runs)
      if (r.experiment == e) val.push_back(r.val_accuracy), test.push_back(r.test_accuracy), sec.push_back(r.seconds);
    if (test.empty()) continue;
    fmt::print("| {:<14} | {:>4} | {:.4f} ± {:.4f} | {:.4f} ± {:.4f} | {:>11.1f} |\n", e, test.size(), mean(val),
               sample_std(val), mean(test), sample_std(test), mean(sec));
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  for (const auto& a : args)
    if (a == "--help" || a == "-h") {
      fmt::print("{}", kHelp);
      return 0;
    }
  try {
    const fs::path source = TLK_SOURCE_DIR;
    Paths paths{arg(args, "data", (source / ".." / "shared" / "data" / "digits").string()),
                arg(args, "work", "/tmp/tlk_digits"), arg(args, "configs", (source / "examples" / "configs").string()), {}};
    for (std::size_t i = 0; i + 1 < args.size(); ++i)
      if (args[i] == "--set") paths.overrides.push_back(args[i + 1]);
    const auto seeds = static_cast<std::uint64_t>(std::stoll(arg(args, "seeds", "3")));
    const auto first = static_cast<std::uint64_t>(std::stoll(arg(args, "first-seed", "1")));
    const std::int64_t epochs = std::stoll(arg(args, "epochs", "0"));
    const int threads = std::stoi(arg(args, "threads", "1"));
    const std::string only = arg(args, "only", "all");
    std::string methods = ",";
    methods += arg(args, "methods", "source_only,dann,cdan");
    methods += ",";
    check(fs::exists(paths.data / "usps.h5"), "digits_transfer: {} has no usps.h5 (see --data)", paths.data.string());
    fs::create_directories(paths.work);
    const fs::path mnist = paths.work / "mnist_test.h5";
    if (!fs::exists(mnist)) {
      const auto split = data::read_mnist_idx(paths.data / "mnist" / "t10k-images-idx3-ubyte.gz",
                                              paths.data / "mnist" / "t10k-labels-idx1-ubyte.gz");
      data::write_classification_file(mnist, {split}, 10, "MNIST t10k");
    }
    fmt::print("| experiment     | seed | val acc  | test acc | seconds |\n|---|---|---|---|---|\n");
    std::vector<Run> runs;
    std::vector<std::string> order;
    if (only == "all" || only == "adapt") {
      const std::map<std::string, std::string> configs{
          {"source_only", "mnist_usps_source_only"}, {"dann", "mnist_usps_dann"}, {"cdan", "mnist_usps_cdan"}};
      for (const std::string m : {"source_only", "dann", "cdan"}) {
        if (methods.find(fmt::format(",{},", m)) == std::string::npos) continue;
        order.push_back(m);
        for (std::uint64_t s = first; s < first + seeds; ++s)
          runs.push_back(run_config(paths, configs.at(m), m, s, epochs, threads,
                                    paths.work / fmt::format("{}_seed{}", m, s)));
      }
    }
    if (only == "all" || only == "distill") {
      runs.push_back(run_config(paths, "mnist_teacher", "teacher", 1, 0, threads, paths.work / "teacher"));
      order.push_back("teacher");
      order.push_back("student");
      order.push_back("student_kd");
      for (std::uint64_t s = first; s < first + seeds; ++s) {
        runs.push_back(run_config(paths, "mnist_student", "student", s, 0, threads,
                                  paths.work / fmt::format("student_seed{}", s)));
        runs.push_back(run_config(paths, "mnist_student_kd", "student_kd", s, 0, threads,
                                  paths.work / fmt::format("student_kd_seed{}", s)));
      }
    }
    summary(runs, order);
  } catch (const std::exception& e) {
    fmt::print(stderr, "digits_transfer: {}\n", e.what());
    return 1;
  }
  return 0;
}
