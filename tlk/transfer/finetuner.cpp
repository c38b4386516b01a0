#include "tlk/transfer/finetuner.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <map>
#include <set>

#include "tlk/autograd/grad_mode.h"
#include "tlk/tensor/error.h"

namespace tlk::transfer {

namespace {

bool under(const std::string& name, const std::string& prefix) {
  if (prefix.empty()) return false;
  if (prefix.back() == '.') return name.compare(0, prefix.size(), prefix) == 0;
  if (name.compare(0, prefix.size(), prefix) != 0) return false;
  return name.size() == prefix.size() || name[prefix.size()] == '.';
}

// Fails when a prefix selects none of `names` (Note [Prefixes match whole name components]).
void check_prefixes_match(const std::vector<std::string>& prefixes, const std::vector<nn::NamedTensor>& tensors,
                          const char* field, const char* kind) {
  std::set<std::string> top;
  for (const auto& [name, t] : tensors) top.insert(name.substr(0, name.find('.')));
  for (const auto& prefix : prefixes) {
    check(!prefix.empty(), "finetune_from: FinetuneOptions::{} holds an empty prefix", field);
    bool found = false;
    for (const auto& [name, t] : tensors) found = found || under(name, prefix);
    check(found, "finetune_from: FinetuneOptions::{} prefix '{}' matches no {} of the model (its top-level names: {})",
          field, prefix, kind, fmt::join(top, ", "));
  }
}

void check_options(const FinetuneOptions& o) {
  check(std::isfinite(o.copied_lr_scale) && o.copied_lr_scale >= 0,
        "finetune_from: copied_lr_scale must be finite and >= 0, got {}", o.copied_lr_scale);
  check(o.freeze != Freeze::prefixes || !o.freeze_prefixes.empty(),
        "finetune_from: freeze = Freeze::prefixes needs at least one freeze_prefixes entry");
  check(o.freeze == Freeze::prefixes || o.freeze_prefixes.empty(),
        "finetune_from: freeze_prefixes ({}) are only used with freeze = Freeze::prefixes",
        fmt::join(o.freeze_prefixes, ", "));
}

// "a, b, c ... and 7 more".
std::string name_list(const std::vector<std::string>& names, std::size_t limit = 12) {
  std::string out;
  for (std::size_t i = 0; i < names.size() && i < limit; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > limit) out += fmt::format(" ... and {} more", names.size() - limit);
  return out;
}

}  // namespace

bool matches_prefix(const std::string& name, const std::vector<std::string>& prefixes) {
  for (const auto& p : prefixes)
    if (under(name, p)) return true;
  return false;
}

std::string FinetuneReport::str() const {
  std::string out =
      fmt::format("finetune from {}: {} copied, {} mismatched, {} missing, {} unexpected, {} skipped, {} frozen",
                  source.empty() ? "state" : source, copied.size(), mismatched.size(), missing.size(),
                  unexpected.size(), skipped.size(), frozen.size());
  if (!mismatched.empty()) {
    out += "\n  mismatched (kept the model's initialisation):";
    const std::size_t limit = 12;
    for (std::size_t i = 0; i < mismatched.size() && i < limit; ++i)
      out += fmt::format("\n    {}: checkpoint {} vs model {}", mismatched[i].name, mismatched[i].pretrained.str(),
                         mismatched[i].model.str());
    if (mismatched.size() > limit) out += fmt::format("\n    ... and {} more", mismatched.size() - limit);
  }
  if (!missing.empty()) out += "\n  missing (kept the model's initialisation): " + name_list(missing);
  if (!skipped.empty()) out += "\n  skipped (skip_prefixes; kept the model's initialisation): " + name_list(skipped);
  if (!unexpected.empty()) out += "\n  unexpected (in the checkpoint only; ignored): " + name_list(unexpected);
  if (!frozen.empty()) out += "\n  frozen: " + name_list(frozen);
  return out;
}

FinetuneReport finetune_from(nn::Module& model, const std::vector<nn::NamedTensor>& pretrained,
                             const FinetuneOptions& options) {
  check_options(options);
  const std::vector<nn::NamedTensor> own = model.state_dict();
  const std::vector<nn::NamedTensor> params = model.named_parameters();
  check_prefixes_match(options.skip_prefixes, own, "skip_prefixes", "parameter or buffer");
  check_prefixes_match(options.freeze_prefixes, params, "freeze_prefixes", "parameter");

  std::map<std::string, Tensor> given;
  for (const auto& [name, t] : pretrained) {
    check(t.defined(), "finetune_from: pretrained tensor '{}' is undefined", name);
    check(given.emplace(name, t).second, "finetune_from: the pretrained weights hold '{}' twice", name);
  }

  FinetuneReport report;
  report.source = "state";
  std::vector<std::pair<Tensor, Tensor>> copies;  // (destination, source)
  for (const auto& [name, dst] : own) {
    auto it = given.find(name);
    if (matches_prefix(name, options.skip_prefixes)) {
      report.skipped.push_back(name);
    } else if (it == given.end()) {
      report.missing.push_back(name);
    } else if (it->second.shape() != dst.shape()) {
      report.mismatched.push_back({name, it->second.shape(), dst.shape()});
    } else {
      copies.emplace_back(dst, it->second);
      report.copied.push_back(name);
    }
    if (it != given.end()) given.erase(it);
  }
  for (const auto& [name, t] : given) report.unexpected.push_back(name);

  {
    // Note [Parameters are shared handles] (nn/module.h): copy_ writes into the model's own storage,
    // so the model sees the values and shares no memory with `pretrained`.
    NoGradGuard no_grad;
    for (auto& [dst, src] : copies) {
      Tensor d = dst;
      d.copy_(src);
    }
  }

  if (options.freeze != Freeze::none) {
    const std::set<std::string> copied(report.copied.begin(), report.copied.end());
    for (const auto& [name, p] : params) {
      const bool freeze =
          options.freeze == Freeze::copied ? copied.count(name) != 0 : matches_prefix(name, options.freeze_prefixes);
      if (!freeze) continue;
      Tensor handle = p;
      handle.set_requires_grad(false);
      handle.set_grad(Tensor());  // Note [Freezing]: a stale gradient would still be applied by step()
      report.frozen.push_back(name);
    }
  }
  return report;
}

FinetuneOptions FinetuneOptions::from_config(const std::string& freeze, const std::string& skip,
                                             double copied_lr_scale) {
  auto split = [](const std::string& text) {
    std::vector<std::string> items;
    std::size_t start = 0;
    while (start < text.size()) {
      const std::size_t comma = std::min(text.find(',', start), text.size());
      std::string item = text.substr(start, comma - start);
      item.erase(0, item.find_first_not_of(' '));
      item.erase(item.find_last_not_of(' ') + 1);
      if (!item.empty()) items.push_back(item);
      start = comma + 1;
    }
    return items;
  };
  FinetuneOptions o;
  if (freeze == "copied") {
    o.freeze = Freeze::copied;
  } else if (freeze != "none" && !freeze.empty()) {
    o.freeze = Freeze::prefixes;
    o.freeze_prefixes = split(freeze);
  }
  o.copied_lr_scale = copied_lr_scale;
  o.skip_prefixes = split(skip);
  return o;
}

std::vector<nn::ParamGroup> finetune_param_groups(nn::Module& model, const FinetuneReport& report,
                                                  const FinetuneOptions& options, double weight_decay) {
  check(std::isfinite(options.copied_lr_scale) && options.copied_lr_scale >= 0,
        "finetune_param_groups: copied_lr_scale must be finite and >= 0, got {}", options.copied_lr_scale);
  const std::set<std::string> copied(report.copied.begin(), report.copied.end());
  const std::set<std::string> frozen(report.frozen.begin(), report.frozen.end());
  nn::ParamGroup pretrained{{}, options.copied_lr_scale, weight_decay, "pretrained"};
  nn::ParamGroup fresh{{}, 1.0, weight_decay, "new"};
  for (const auto& [name, p] : model.named_parameters()) {
    if (frozen.count(name) || !p.requires_grad()) continue;
    (copied.count(name) ? pretrained : fresh).params.push_back(p);
  }
  return {pretrained, fresh};
}

}  // namespace tlk::transfer
