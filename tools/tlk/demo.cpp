// `tlk demo`: TLK's AMOS -> KiTS domain-adaptation experiment on generated phantoms.
#include <fmt/format.h>

#include <cmath>

#include "args.h"
#include "cli.h"
#include "tlk/task/adaptation_demo.h"
#include "tlk/tensor/error.h"

namespace tlk::cli {

namespace {
const char* kHelp = R"(tlk demo - TLK's domain-adaptation experiment, end to end, on generated data

Usage:
  tlk demo [--out DIR] [--scale S] [--source-cases N] [--target-cases N] [--test-cases N]
           [--pretrain-epochs N] [--adapt-epochs N] [--oracle-epochs N] [--iterations N]
           [--base-features N] [--seed N] [--adapt-weight W] [--adapt-lr LR] [--grl-alpha A]
           [--grl-delay N] [--pretrained-lr-scale S] [--quiet]

Generates an AMOS-like source domain (abdominal CT phantoms with 15 organs) and a KiTS-like target
domain (kidneys with tumours, another contrast phase, noise, resolution, spacing and orientation),
then: trains a UNet on the source, scores it on the target (source only), adapts it to the target
without target labels (gradient reversal and a multi-scale discriminator on the encoder skips),
scores it, continues the source model for as long without the target (a control that separates
what adaptation adds from what more source training adds), trains an oracle on the labelled target
from scratch, and prints the target kidney Dice,
the training times, the speedup of adaptation over the oracle reaching the same Dice and the
performance ratio. Writes to DIR: raw/ (the generated NIfTI volumes), prep/, runs/ (checkpoints and
logs), pred/ (predictions), png/ (per test case: image | truth | source only | control | adapted |
oracle, on the axial slice with the most kidney; red kidney, green tumour),
results.csv and results.json. The defaults take a few minutes on a 2-core machine.

Options:
  --out DIR             output folder (default tlk_demo; its raw, prep, runs, pred and png are replaced)
  --scale S             phantom resolution (default 0.5; 1 is 64x128x128 source voxels)
  --source-cases N      labelled source cases (default 8)
  --target-cases N      target training cases (default 8; only the oracle reads their labels)
  --test-cases N        target cases every method is scored on (default 4)
  --pretrain-epochs N   source training epochs (default 8)
  --adapt-epochs N      adaptation epochs, and the control's (default 2)
  --oracle-epochs N     oracle epochs (default 8)
  --iterations N        iterations per epoch (default 12)
  --base-features N     UNet width (default 16)
  --seed N              seed (default 1)
  --adapt-weight W      weight of the adversarial loss (default 1)
  --adapt-lr LR         learning rate of the discriminator's Adam (default 0.001)
  --grl-alpha A         α of the gradient-reversal warm-up over the adaptation steps (default 10)
  --grl-delay N         discriminator-only steps (λ = 0) before reversal starts (default 0)
  --pretrained-lr-scale S
                        learning-rate multiplier of the copied weights in the adaptation and control
                        stages (default 1; TLK's medical setting is 0.2)
  --quiet               no progress display
  --help                this text

Examples:
  tlk demo
  tlk demo --out big_demo --scale 1 --pretrain-epochs 20 --adapt-epochs 10 --oracle-epochs 30
)";
}  // namespace

int demo(const std::vector<std::string>& args) {
  Args a("demo", args,
         {{"out"}, {"scale"}, {"source-cases"}, {"target-cases"}, {"test-cases"}, {"pretrain-epochs"},
          {"adapt-epochs"}, {"oracle-epochs"}, {"iterations"}, {"base-features"}, {"seed"}, {"adapt-weight"},
          {"adapt-lr"}, {"grl-alpha"}, {"grl-delay"}, {"pretrained-lr-scale"}, {"quiet", false}});
  if (a.help()) {
    fmt::print("{}", kHelp);
    return 0;
  }
  check(a.positional().empty(), "demo: unexpected argument '{}' (see tlk demo --help)",
        a.positional().empty() ? "" : a.positional()[0]);
  task::AdaptationDemoOptions o;
  o.out_dir = a.get("out", o.out_dir.string());
  o.scale = a.get_double("scale", o.scale);
  o.source_cases = static_cast<int>(a.get_int("source-cases", o.source_cases));
  o.target_cases = static_cast<int>(a.get_int("target-cases", o.target_cases));
  o.target_test_cases = static_cast<int>(a.get_int("test-cases", o.target_test_cases));
  o.pretrain_epochs = a.get_int("pretrain-epochs", o.pretrain_epochs);
  o.adapt_epochs = a.get_int("adapt-epochs", o.adapt_epochs);
  o.adapt_weight = a.get_double("adapt-weight", o.adapt_weight);
  o.adapt_lr = a.get_double("adapt-lr", o.adapt_lr);
  o.grl_alpha = a.get_double("grl-alpha", o.grl_alpha);
  o.grl_delay = a.get_int("grl-delay", o.grl_delay);
  o.pretrained_lr_scale = a.get_double("pretrained-lr-scale", o.pretrained_lr_scale);
  o.oracle_epochs = a.get_int("oracle-epochs", o.oracle_epochs);
  o.iterations_per_epoch = a.get_int("iterations", o.iterations_per_epoch);
  o.base_features = a.get_int("base-features", o.base_features);
  o.seed = static_cast<std::uint64_t>(a.get_int("seed", 1));
  o.quiet = a.flag("quiet");
  check(o.scale > 0 && o.scale <= 2, "demo: --scale must be in (0, 2], got {}", o.scale);
  check(o.adapt_weight >= 0 && std::isfinite(o.adapt_weight), "demo: --adapt-weight must be >= 0, got {}",
        o.adapt_weight);
  check(o.adapt_lr > 0 && std::isfinite(o.adapt_lr), "demo: --adapt-lr must be > 0, got {}", o.adapt_lr);
  check(o.grl_alpha >= 0 && std::isfinite(o.grl_alpha), "demo: --grl-alpha must be >= 0, got {}", o.grl_alpha);
  check(o.grl_delay >= 0, "demo: --grl-delay must be >= 0 steps, got {}", o.grl_delay);
  check(o.pretrained_lr_scale > 0 && std::isfinite(o.pretrained_lr_scale),
        "demo: --pretrained-lr-scale must be > 0, got {}", o.pretrained_lr_scale);
  check(o.source_cases >= 2 && o.target_cases >= 2 && o.target_test_cases >= 1,
        "demo: need at least 2 source and 2 target cases and 1 test case");
  check(o.pretrain_epochs >= 1 && o.adapt_epochs >= 1 && o.oracle_epochs >= 1 && o.iterations_per_epoch >= 1,
        "demo: epochs and iterations must be at least 1");
  const task::AdaptationDemoResult r = task::run_adaptation_demo(o);
  fmt::print("\n{}", task::format_adaptation_demo(r));
  fmt::print("results: {}/results.csv, pictures: {}/png/, volumes: {}/raw/\n", o.out_dir.string(),
             o.out_dir.string(), o.out_dir.string());
  return 0;
}

}  // namespace tlk::cli
