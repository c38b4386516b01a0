// `tlk train`: supervised segmentation training from a YAML config.
#include <fmt/format.h>

#include "args.h"
#include "cli.h"
#include "tlk/dist/process_group.h"
#include "tlk/io/config.h"
#include "tlk/task/classification_trainer.h"
#include "tlk/task/segmentation_trainer.h"

namespace tlk::cli {

namespace {
const char* kHelp = R"(tlk train - train a segmentation UNet on a preprocessed dataset

Usage:
  tlk train --config FILE.yaml [--set key=value ...] [--device cpu|cuda[:N]] [--resume] [--print-config]
  mpirun -np N [--hostfile H] tlk train --config FILE.yaml --distributed [...]

Trains nnUNet-style: deep supervision, Dice + cross entropy, SGD with Nesterov momentum 0.99 and a
poly learning rate, nnUNet's augmentation, batches prepared on background threads, validation
pseudo-Dice every epoch. Writes to output.dir: latest.h5, best.h5, final.h5, epoch_N.h5 every
output.save_every epochs, log.csv and log.jsonl (one row per epoch), config.yaml.
Every key and its default: docs/config.md.

With `task: classification` at the top of the config it trains an image classifier instead (LeNet
or another nn::Classifier on HDF5 image files, with the transfer strategies supervised, finetune,
adapt (DANN, CDAN), distill and their combinations): docs/classification.md.

Options:
  --config FILE     YAML config (data.train is required)
  --set key=value   override one key, e.g. --set train.epochs=5 (repeatable)
  --device D        shorthand for --set train.device=D (cpu, cuda or cuda:N)
  --resume          continue from output.dir/latest.h5 (same batches and losses as a run never stopped)
  --print-config    print every key with the value it would use, and exit
  --distributed     data-parallel training over the ranks of an MPI job (start it with mpirun): each
                    rank trains on data.batch patches of every step and gradients are averaged, so
                    N ranks train like one process with batch N x data.batch; rank 0 writes the
                    outputs (docs/distributed.md)
  --help            this text

Examples:
  tlk train --config train.yaml
  tlk train --config train.yaml --set train.epochs=10 --set data.batch=2 --set output.dir=runs/try
  tlk train --config train.yaml --resume
  tlk train --config train.yaml --device cuda
  mpirun -np 2 tlk train --config train.yaml --distributed
  mpirun -np 8 --hostfile hosts tlk train --config train.yaml --distributed --set distributed.timeout_s=120
  mpirun -np 4 tlk train --config resnet.yaml --distributed --set distributed.sync_batch_norm=true
  tlk train --config student.yaml --set transfer.strategy=distill --set distill.teacher=runs/big/final.h5 \
            --set distill.cache=runs/teacher_outputs     # later epochs and runs replay the teacher
  tlk train --config mnist_student_kd.yaml --set distill.features=hint --set distill.cache=
)";

/// With --distributed, joins the MPI job and returns its group; otherwise nullptr (one process).
dist::ProcessGroup* join(const Args& a, const task::DistributedOptions& options) {
  return a.flag("distributed") ? &dist::ProcessGroup::init_world({.timeout_seconds = options.timeout_seconds})
                               : nullptr;
}

/// Leaves the job after training; true on the process that reports (rank 0, or the only one).
bool leave(dist::ProcessGroup* group) {
  if (!group) return true;
  const bool reports = group->rank() == 0;
  dist::ProcessGroup::finalize_world();
  return reports;
}

int train_classifier(const io::Config& config, const Args& a) {
  const task::ClassificationTrainConfig train_config = task::ClassificationTrainConfig::from(config);
  if (a.flag("print-config")) {
    fmt::print("{}", train_config.to_yaml());
    return 0;
  }
  dist::ProcessGroup* group = join(a, train_config.distributed);
  task::ClassificationTrainer trainer(train_config, group);
  const auto results = trainer.run(a.flag("resume"));
  if (!leave(group)) return 0;
  if (results.empty()) {
    fmt::print("nothing to train: {} already finished its {} epochs\n", train_config.out_dir.string(),
               train_config.epochs);
    return 0;
  }
  const task::ClassificationEpoch& last = results.back();
  fmt::print("trained {} epoch(s); last train accuracy {:.4f}, val accuracy {:.4f}, test accuracy {:.4f}; "
             "checkpoints in {}\n", results.size(), last.train_accuracy, last.val_accuracy, last.test_accuracy,
             train_config.out_dir.string());
  return 0;
}
}  // namespace

int train(const std::vector<std::string>& args) {
  Args a("train", args, {{"config"}, {"set", true, true}, {"device"}, {"resume", false}, {"print-config", false},
                          {"distributed", false}});
  if (a.help()) {
    fmt::print("{}", kHelp);
    return 0;
  }
  check(a.positional().empty(), "train: unexpected argument '{}' (see tlk train --help)",
        a.positional().empty() ? "" : a.positional()[0]);
  io::Config config = io::Config::from_yaml_file(a.required("config"));
  for (const std::string& assignment : a.all("set")) config.set_override(assignment);
  if (a.has("device")) config.set("train.device", a.get("device", "cpu"));
  if (task::config_task(config) == "classification") return train_classifier(config, a);
  const task::SegmentationTrainConfig train_config = task::SegmentationTrainConfig::from(config);
  if (a.flag("print-config")) {
    fmt::print("{}", train_config.to_yaml());
    return 0;
  }
  dist::ProcessGroup* group = join(a, train_config.distributed);
  task::SegmentationTrainer trainer(train_config, group);
  const auto results = trainer.run(a.flag("resume"));
  const int ranks = group ? group->size() : 1;
  if (!leave(group)) return 0;
  if (results.empty())
    fmt::print("nothing to train: {} already finished its {} epochs\n", train_config.out_dir.string(),
               train_config.epochs);
  else
    fmt::print("trained {} epoch(s){}; last validation Dice {:.4f}; checkpoints in {}\n", results.size(),
               ranks > 1 ? fmt::format(" on {} ranks", ranks) : "", results.back().mean_dice,
               train_config.out_dir.string());
  return 0;
}

}  // namespace tlk::cli
