#pragma once
#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "tlk/nn/module.h"
#include "tlk/nn/registry.h"
#include "tlk/transfer/finetuner.h"

/// Trainers, predictors and evaluation: the layer that ties nn, io and data together.
namespace tlk::task {

/// Everything a training run needs to continue exactly where it stopped.
struct Checkpoint {
  std::vector<nn::NamedTensor> model;        ///< parameters and buffers by name (Module::state_dict)
  std::vector<nn::NamedTensor> optimizer;    ///< Optimizer::state()
  /// Modules trained beside the model but not part of it (a domain discriminator), by name.
  std::vector<nn::NamedTensor> auxiliary;
  std::array<std::uint64_t, 6> rng_state{};  ///< Generator::state() of the run's generator
  std::int64_t epoch = 0;
  std::int64_t iteration = 0;
  std::int64_t schedule_step = 0;
  /// The model's configuration (and anything else the run wants back), as text; a checkpoint alone
  /// rebuilds the model from it. Stored as root attributes "meta.<key>".
  std::map<std::string, std::string> metadata;
};

/// Records how to rebuild the model: its registry name and options (nn/registry.h) go into the
/// metadata ("model", "model.in_channels", "model.num_classes", "model.option.<key>").
void describe_model(Checkpoint& checkpoint, const std::string& registry_name, const nn::ModuleOptions& options);

/// Rebuilds the model a checkpoint describes (describe_model) and loads its weights (strict): a
/// checkpoint alone is enough to run or fine-tune the model.
/// Example: `auto net = task::rebuild_model(task::load_checkpoint("best.h5"));`
std::shared_ptr<nn::Module> rebuild_model(const Checkpoint& checkpoint);

/// Writes `checkpoint` to `path` as HDF5: /model/<name>, /optimizer/<name> and /auxiliary/<name> datasets (plain
/// arrays h5py reads), /rng_state, and root attributes for the counters and metadata. The file is
/// written under a temporary name and renamed, so a crash or a full disk never leaves a
/// half-written checkpoint in place of a good one.
void save_checkpoint(const std::filesystem::path& path, const Checkpoint& checkpoint);

/// Reads a checkpoint written by save_checkpoint; a file that is not one is a tlk::Error naming it
/// and what is missing.
Checkpoint load_checkpoint(const std::filesystem::path& path);

/// transfer::finetune_from with the model weights of a checkpoint file; the report's source names it.
/// Example: `auto report = task::finetune_from_checkpoint(*net, "amos_unet.h5", options);`
transfer::FinetuneReport finetune_from_checkpoint(nn::Module& model, const std::filesystem::path& path,
                                                  const transfer::FinetuneOptions& options = {});

}  // namespace tlk::task
