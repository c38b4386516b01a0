#include "tlk/task/evaluate.h"

#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <bitset>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "tlk/data/label_map.h"
#include "tlk/io/hdf5_file.h"
#include "tlk/io/nifti.h"
#include "tlk/io/progress_bar.h"
#include "tlk/tensor/error.h"

namespace tlk::task {

namespace fs = std::filesystem;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Note [Confusion counts]: one pass over a case counts every (prediction, reference) value pair; the
// metrics of any label or union of labels follow from these counts without another pass, and the
// labels to score can be chosen after every case is read (the labels that occur anywhere).
struct PairCount {
  std::uint8_t pred, ref;
  std::int64_t count;
};

std::vector<PairCount> count_pairs(const Tensor& prediction, const Tensor& reference, const std::string& pred_name,
                                   const std::string& ref_name) {
  check(prediction.shape() == reference.shape(), "evaluate: prediction {} has shape {} but reference {} has shape {}",
        pred_name, prediction.shape().str(), ref_name, reference.shape().str());
  const data::LabelMap identity;
  const Tensor p = data::apply(identity, prediction, pred_name), r = data::apply(identity, reference, ref_name);
  const std::uint8_t* pp = p.data<std::uint8_t>();
  const std::uint8_t* rp = r.data<std::uint8_t>();
  std::vector<std::int64_t> dense(256 * 256, 0);
  const std::int64_t n = p.numel();
  for (std::int64_t i = 0; i < n; ++i) ++dense[static_cast<std::size_t>(pp[i]) * 256 + rp[i]];
  std::vector<PairCount> out;
  for (std::size_t k = 0; k < dense.size(); ++k)
    if (dense[k] > 0) out.push_back({static_cast<std::uint8_t>(k / 256), static_cast<std::uint8_t>(k % 256), dense[k]});
  return out;
}

LabelMetrics metrics_of(const std::vector<PairCount>& pairs, const EvaluationLabel& label, double voxel_ml) {
  std::bitset<256> in;
  for (int v : label.values) in.set(static_cast<std::size_t>(v));
  std::int64_t tp = 0, n_pred = 0, n_ref = 0, total = 0;
  for (const auto& c : pairs) {
    const bool p = in.test(c.pred), r = in.test(c.ref);
    tp += p && r ? c.count : 0;
    n_pred += p ? c.count : 0;
    n_ref += r ? c.count : 0;
    total += c.count;
  }
  LabelMetrics m;
  m.tp = static_cast<double>(tp);
  m.fp = static_cast<double>(n_pred - tp);
  m.fn = static_cast<double>(n_ref - tp);
  m.tn = static_cast<double>(total - n_pred - n_ref + tp);
  m.n_pred = static_cast<double>(n_pred);
  m.n_ref = static_cast<double>(n_ref);
  if (n_pred + n_ref > 0) {
    m.dice = 2.0 * m.tp / (m.n_pred + m.n_ref);
    m.iou = m.tp / (m.tp + m.fp + m.fn);
  }
  m.volume_pred_ml = m.n_pred * voxel_ml;
  m.volume_ref_ml = m.n_ref * voxel_ml;
  return m;
}

// Mean over `ms`: Dice and IoU skip NaN (Note [Dice of an empty class]), the rest plain means.
LabelMetrics mean_of(const std::vector<LabelMetrics>& ms) {
  LabelMetrics out;
  if (ms.empty()) return out;
  const auto nanmean = [&](double LabelMetrics::*field) {
    double sum = 0;
    int n = 0;
    for (const auto& m : ms)
      if (!std::isnan(m.*field)) sum += m.*field, ++n;
    return n ? sum / n : kNaN;
  };
  out.dice = nanmean(&LabelMetrics::dice);
  out.iou = nanmean(&LabelMetrics::iou);
  for (auto field : {&LabelMetrics::tp, &LabelMetrics::fp, &LabelMetrics::fn, &LabelMetrics::tn, &LabelMetrics::n_pred,
                     &LabelMetrics::n_ref, &LabelMetrics::volume_pred_ml, &LabelMetrics::volume_ref_ml}) {
    double sum = 0;
    for (const auto& m : ms) sum += m.*field;
    out.*field = sum / static_cast<double>(ms.size());
  }
  return out;
}

// Millilitres per voxel of a NIfTI image (its spacing in its xyzt_units: m, mm or µm; unknown: mm).
double voxel_volume_ml(const io::NiftiImage& image) {
  const int unit = image.xyzt_units & 7;
  const double to_mm = unit == 1 ? 1000.0 : unit == 3 ? 0.001 : 1.0;
  double mm3 = 1.0;
  for (int i = 0; i < 3; ++i) {
    const double s =
        i < static_cast<int>(image.dims.size()) ? std::abs(image.spacing[static_cast<std::size_t>(i)]) : 1.0;
    mm3 *= (s > 0 ? s : 1.0) * to_mm;
  }
  return mm3 / 1000.0;
}

// Case id -> file for the label maps (.nii.gz or .nii) in `dir`.
std::map<std::string, fs::path> list_label_maps(const fs::path& dir, const char* what) {
  check(fs::is_directory(dir), "evaluate: {} folder {} does not exist", what, dir.string());
  std::map<std::string, fs::path> out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name[0] == '.' || !entry.is_regular_file()) continue;
    std::string id;
    for (const std::string ending : {".nii.gz", ".nii"})
      if (id.empty() && name.size() > ending.size() && name.ends_with(ending))
        id = name.substr(0, name.size() - ending.size());
    if (id.empty()) continue;
    auto [it, inserted] = out.emplace(id, entry.path());
    check(inserted, "evaluate: {} folder {} holds both {} and {}; which is case '{}'?", what, dir.string(),
          it->second.filename().string(), name, id);
  }
  return out;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

nlohmann::ordered_json metrics_json(const LabelMetrics& m, bool counts_are_integers) {
  nlohmann::ordered_json j;
  j["Dice"] = m.dice;
  j["IoU"] = m.iou;
  const std::pair<const char*, double> counts[] = {{"TP", m.tp}, {"FP", m.fp},         {"FN", m.fn},
                                                   {"TN", m.tn}, {"n_pred", m.n_pred}, {"n_ref", m.n_ref}};
  for (const auto& [key, value] : counts) {
    if (counts_are_integers)
      j[key] = static_cast<std::int64_t>(value);
    else
      j[key] = value;
  }
  j["volume_pred_ml"] = m.volume_pred_ml;
  j["volume_ref_ml"] = m.volume_ref_ml;
  return j;
}

void write_text(const fs::path& path, const std::string& text) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  io::write_atomically(path, [&](const fs::path& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    out << text;
    out.close();
    check(out.good(), "{}: could not write", tmp.string());
  });
}

}  // namespace

std::string EvaluationLabel::name() const {
  std::string out;
  for (int v : values) out += fmt::format("{}{}", out.empty() ? "" : "+", v);
  return out;
}

std::vector<EvaluationLabel> parse_evaluation_labels(const std::string& text) {
  std::vector<EvaluationLabel> labels;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    EvaluationLabel label;
    std::size_t p = 0;
    while (true) {
      const std::size_t plus = item.find('+', p);
      std::string v = item.substr(p, plus == std::string::npos ? std::string::npos : plus - p);
      v.erase(0, v.find_first_not_of(' '));
      v.erase(v.find_last_not_of(' ') + 1);
      check(
          !v.empty() && v.size() <= 3 && v.find_first_not_of("0123456789") == std::string::npos && std::stoi(v) <= 255,
          "labels '{}': '{}' is not a label 0..255 (expected e.g. '1,2' or '1+2' for a union)", text, v);
      const int value = std::stoi(v);
      check(std::find(label.values.begin(), label.values.end(), value) == label.values.end(),
            "labels '{}': label {} appears twice in '{}'", text, value, item);
      label.values.push_back(value);
      if (plus == std::string::npos) break;
      p = plus + 1;
    }
    check(std::find(labels.begin(), labels.end(), label) == labels.end(), "labels '{}': '{}' is given twice", text,
          label.name());
    labels.push_back(label);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return labels;
}

std::vector<LabelMetrics> evaluate_label_maps(const Tensor& prediction, const Tensor& reference,
                                              const std::vector<EvaluationLabel>& labels, double voxel_volume_ml) {
  const auto pairs = count_pairs(prediction, reference, "prediction", "reference");
  std::vector<LabelMetrics> out;
  for (const auto& label : labels) out.push_back(metrics_of(pairs, label, voxel_volume_ml));
  return out;
}

EvaluationResult evaluate_folder(const fs::path& prediction_dir, const fs::path& reference_dir,
                                 const std::vector<EvaluationLabel>& labels_in, const EvaluationOptions& options) {
  for (const auto& l : labels_in) {
    check(!l.values.empty(), "evaluate: a label with no values");
    for (int v : l.values) check(v >= 0 && v <= 255, "evaluate: label {} is outside 0..255", v);
  }
  const auto refs = list_label_maps(reference_dir, "reference");
  const auto preds = list_label_maps(prediction_dir, "prediction");
  for (const auto& [id, file] : preds)
    check(refs.count(id), "evaluate: prediction {} has no reference (no {}.nii.gz or .nii in {})", file.string(), id,
          reference_dir.string());
  std::vector<std::string> ids, missing;
  for (const auto& [id, file] : refs) (preds.count(id) ? ids : missing).push_back(id);
  if (!missing.empty() && !options.allow_missing_predictions) {
    std::string names;
    for (std::size_t i = 0; i < std::min<std::size_t>(missing.size(), 5); ++i) names += (i ? ", " : "") + missing[i];
    fail("evaluate: {} of {} reference case(s) have no prediction in {} ({}{})", missing.size(), refs.size(),
         prediction_dir.string(), names, missing.size() > 5 ? ", ..." : "");
  }
  check(!ids.empty(), "evaluate: no case to evaluate ({} holds {} label map(s), {} holds {})", reference_dir.string(),
        refs.size(), prediction_dir.string(), preds.size());

  const auto n = static_cast<std::int64_t>(ids.size());
  std::vector<std::vector<PairCount>> pairs(ids.size());
  std::vector<double> voxel_ml(ids.size(), 0.0);
  std::vector<std::string> errors(ids.size());
  std::atomic<bool> failed{false};
  io::ProgressBar bar("evaluate", n, options.quiet);
  const int threads = options.num_threads > 0 ? options.num_threads : omp_get_max_threads();
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (n > 1)
  for (std::int64_t i = 0; i < n; ++i) {
    const auto k = static_cast<std::size_t>(i);
    if (failed) continue;
    try {
      const fs::path& pf = preds.at(ids[k]);
      const fs::path& rf = refs.at(ids[k]);
      const io::NiftiImage pred = io::read_nifti(pf);
      const io::NiftiImage ref = io::read_nifti(rf);
      pairs[k] = count_pairs(pred.data, ref.data, pf.string(), rf.string());
      voxel_ml[k] = voxel_volume_ml(ref);
    } catch (const std::exception& e) {
      errors[k] = e.what();
      failed = true;
    }
    bar.advance(1, ids[k]);
  }
  bar.finish();
  for (const auto& e : errors)
    if (!e.empty()) throw Error(e);

  EvaluationResult result;
  result.labels = labels_in;
  if (result.labels.empty()) {
    std::set<int> present;
    for (const auto& case_pairs : pairs)
      for (const auto& c : case_pairs) {
        if (c.pred) present.insert(c.pred);
        if (c.ref) present.insert(c.ref);
      }
    check(!present.empty(),
          "evaluate: no prediction or reference in {} and {} holds a foreground label; name the labels",
          prediction_dir.string(), reference_dir.string());
    for (int v : present) result.labels.push_back(EvaluationLabel{{v}});
  }
  for (std::size_t k = 0; k < ids.size(); ++k) {
    CaseEvaluation c{ids[k], preds.at(ids[k]), refs.at(ids[k]), {}};
    for (const auto& label : result.labels) c.metrics.push_back(metrics_of(pairs[k], label, voxel_ml[k]));
    result.cases.push_back(std::move(c));
  }
  std::vector<LabelMetrics> foreground;
  for (std::size_t l = 0; l < result.labels.size(); ++l) {
    std::vector<LabelMetrics> per_case;
    for (const auto& c : result.cases) per_case.push_back(c.metrics[l]);
    result.mean.push_back(mean_of(per_case));
    if (result.labels[l].values != std::vector<int>{0} && !std::isnan(result.mean.back().dice))
      foreground.push_back(result.mean.back());
  }
  result.foreground_mean = mean_of(foreground);
  return result;
}

void write_evaluation_csv(const fs::path& path, const EvaluationResult& result) {
  std::string text = "case,label,dice,iou,tp,fp,fn,tn,n_pred,n_ref,volume_pred_ml,volume_ref_ml\n";
  for (const auto& c : result.cases)
    for (std::size_t l = 0; l < result.labels.size(); ++l) {
      const LabelMetrics& m = c.metrics[l];
      text += fmt::format("{},{},{:.6f},{:.6f},{},{},{},{},{},{},{:.4f},{:.4f}\n", csv_field(c.id),
                          result.labels[l].name(), m.dice, m.iou, static_cast<std::int64_t>(m.tp),
                          static_cast<std::int64_t>(m.fp), static_cast<std::int64_t>(m.fn),
                          static_cast<std::int64_t>(m.tn), static_cast<std::int64_t>(m.n_pred),
                          static_cast<std::int64_t>(m.n_ref), m.volume_pred_ml, m.volume_ref_ml);
    }
  write_text(path, text);
}

void write_evaluation_json(const fs::path& path, const EvaluationResult& result) {
  nlohmann::ordered_json root;
  root["labels"] = nlohmann::ordered_json::array();
  for (const auto& l : result.labels) root["labels"].push_back(l.name());
  root["metric_per_case"] = nlohmann::ordered_json::array();
  for (const auto& c : result.cases) {
    nlohmann::ordered_json j;
    j["case"] = c.id;
    j["prediction_file"] = c.prediction.string();
    j["reference_file"] = c.reference.string();
    for (std::size_t l = 0; l < result.labels.size(); ++l)
      j["metrics"][result.labels[l].name()] = metrics_json(c.metrics[l], true);
    root["metric_per_case"].push_back(j);
  }
  for (std::size_t l = 0; l < result.labels.size(); ++l)
    root["mean"][result.labels[l].name()] = metrics_json(result.mean[l], false);
  root["foreground_mean"] = metrics_json(result.foreground_mean, false);
  write_text(path, root.dump(4) + "\n");
}

}  // namespace tlk::task
