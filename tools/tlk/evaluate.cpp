// `tlk evaluate`: Dice (and overlap counts) of predicted label maps against references, as nnUNet.
#include "tlk/task/evaluate.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>

#include "args.h"
#include "cli.h"
#include "tlk/tensor/error.h"

namespace tlk::cli {

namespace fs = std::filesystem;

namespace {

const char* kHelp = R"(tlk evaluate - score predicted label maps against references (Dice per case and label)

Usage:
  tlk evaluate --pred DIR --ref DIR [--labels LIST] [--out PATH] [--allow-missing] [--threads N] [--quiet]

Pairs the NIfTI label maps (<case>.nii.gz or <case>.nii) of the two folders by case id and scores
each label as nnUNet does: Dice = 2TP / (2TP + FP + FN), NaN when the label is in neither file; the
mean over cases skips NaN. Writes one CSV row per case and label, and a JSON summary in the shape of
nnUNet's summary.json (per case, mean per label, foreground mean).

Options:
  --pred DIR         predicted label maps
  --ref DIR          reference label maps (e.g. nnUNet_raw/Dataset064_KiTS19/labelsTr)
  --labels LIST      labels to score, comma-separated; '+' joins labels into one class
                     (KiTS19 kidney = kidney + tumor = 1+2). Default: every nonzero label found
  --out PATH         write PATH.csv and PATH.json; a folder (existing, or ending in /) gets
                     summary.csv and summary.json (default: the --pred folder, as nnUNet)
  --allow-missing    score only the cases that have a prediction (default: a reference
                     without a prediction is an error)
  --threads N        cases read at once (default: all cores)
  --quiet            no progress bar and no per-case rows
  --help             this text

Examples:
  tlk evaluate --pred runs/kits/predictions --ref Dataset064_KiTS19/labelsTr --labels 1+2,2
  tlk evaluate --pred preds --ref labelsTr --out results/ --quiet
)";

std::string score(double v) { return std::isnan(v) ? "nan" : fmt::format("{:.4f}", v); }

// The output files: PATH.csv and PATH.json, or DIR/summary.{csv,json}.
fs::path output_prefix(const std::string& out, const fs::path& pred_dir) {
  if (out.empty()) return pred_dir / "summary";
  if (out.back() == '/' || fs::is_directory(out)) return fs::path(out) / "summary";
  fs::path p(out);
  if (p.extension() == ".json" || p.extension() == ".csv") p.replace_extension();
  return p;
}

void print_table(const task::EvaluationResult& r, bool quiet) {
  std::size_t width = 4;
  for (const auto& c : r.cases) width = std::max(width, c.id.size());
  width = std::max<std::size_t>(width, 15);
  std::string header = fmt::format("{:<{}}", "case", width);
  for (const auto& l : r.labels) header += fmt::format(" {:>9}", "Dice " + l.name());
  fmt::print("{}\n", header);
  const auto row = [&](const std::string& name, const auto& value_of) {
    std::string line = fmt::format("{:<{}}", name, width);
    for (std::size_t l = 0; l < r.labels.size(); ++l) line += fmt::format(" {:>9}", score(value_of(l)));
    fmt::print("{}\n", line);
  };
  // Note [Condensed table]: with many cases the terminal shows the first 10 and the last 5; every
  // case is in the CSV.
  const std::size_t n = r.cases.size();
  if (!quiet)
    for (std::size_t k = 0; k < n; ++k) {
      if (n > 20 && k == 10) {
        fmt::print("{:<{}} ({} more cases in the CSV)\n", "...", width, n - 15);
        k = n - 5;
      }
      row(r.cases[k].id, [&](std::size_t l) { return r.cases[k].metrics[l].dice; });
    }
  const auto extreme = [&](std::size_t l, bool want_min) {
    double best = std::nan("");
    for (const auto& c : r.cases) {
      const double d = c.metrics[l].dice;
      if (!std::isnan(d) && (std::isnan(best) || (want_min ? d < best : d > best))) best = d;
    }
    return best;
  };
  if (!quiet && n > 1) {
    row("min", [&](std::size_t l) { return extreme(l, true); });
    row("max", [&](std::size_t l) { return extreme(l, false); });
  }
  row(fmt::format("mean ({} cases)", n), [&](std::size_t l) { return r.mean[l].dice; });
  fmt::print("foreground mean Dice: {}\n", score(r.foreground_mean.dice));
}

}  // namespace

int evaluate(const std::vector<std::string>& args) {
  Args a("evaluate", args,
         {{"pred"}, {"ref"}, {"labels"}, {"out"}, {"allow-missing", false}, {"threads"}, {"quiet", false}});
  if (a.help()) {
    fmt::print("{}", kHelp);
    return 0;
  }
  check(a.positional().empty(), "evaluate: unexpected argument '{}' (see tlk evaluate --help)",
        a.positional().empty() ? "" : a.positional()[0]);
  const fs::path pred = a.required("pred"), ref = a.required("ref");
  const std::vector<task::EvaluationLabel> labels =
      a.has("labels") ? task::parse_evaluation_labels(a.required("labels")) : std::vector<task::EvaluationLabel>{};
  task::EvaluationOptions options;
  options.allow_missing_predictions = a.flag("allow-missing");
  options.num_threads = static_cast<int>(a.get_int("threads", 0));
  check(options.num_threads >= 0, "evaluate: --threads must be 0 or more, got {}", options.num_threads);
  options.quiet = a.flag("quiet");
  const fs::path prefix = output_prefix(a.get("out", ""), pred);

  const task::EvaluationResult result = task::evaluate_folder(pred, ref, labels, options);
  print_table(result, options.quiet);
  const fs::path csv = prefix.string() + ".csv", json = prefix.string() + ".json";
  task::write_evaluation_csv(csv, result);
  task::write_evaluation_json(json, result);
  fmt::print("wrote {} and {}\n", csv.string(), json.string());
  return 0;
}

}  // namespace tlk::cli
