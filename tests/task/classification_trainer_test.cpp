// Classification training with TLK's transfer strategies (task/classification_trainer.h), on tiny
// synthetic bar images: config errors, supervised learning, DANN/CDAN with an unlabelled target file,
// distillation with a frozen teacher, fine-tuning to another class count, checkpoints, resume, the CLI.
#include <fstream>
#include <sstream>

#include "cli/run_tlk.h"
#include "test_util.h"
#include "tlk/data/classification_dataset.h"
#include "tlk/io/config.h"
#include "tlk/io/hdf5_file.h"
#include "tlk/task/checkpoint.h"
#include "tlk/task/classification_trainer.h"

using namespace tlk;
using namespace tlk::testing;
namespace fs = std::filesystem;

namespace {

io::Config tiny_config(const fs::path& dir, const std::string& train, const std::string& out) {
  io::Config c = io::Config::from_yaml_text(
      "task: classification\n"
      "data: {batch: 16}\n"
      "model: {name: lenet, conv1_channels: 4, conv2_channels: 8, hidden: 16}\n"
      "train: {epochs: 3, lr: 0.05, schedule: constant, seed: 3, threads: 1}\n"
      "output: {quiet: true}\n",
      "tiny.yaml");
  c.set("data.train", train);
  c.set("output.dir", (dir / out).string());
  return c;
}

std::vector<std::string> csv_header(const fs::path& file) {
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  std::vector<std::string> cols;
  std::stringstream s(line);
  for (std::string col; std::getline(s, col, ',');) cols.push_back(col);
  return cols;
}

std::vector<std::vector<double>> csv_rows(const fs::path& file) {
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  std::vector<std::vector<double>> rows;
  while (std::getline(in, line)) {
    std::vector<double> row;
    std::stringstream s(line);
    for (std::string cell; std::getline(s, cell, ',');) row.push_back(std::stod(cell));
    rows.push_back(row);
  }
  return rows;
}

std::size_t column(const std::vector<std::string>& header, const std::string& name) {
  const auto it = std::find(header.begin(), header.end(), name);
  REQUIRE_MESSAGE(it != header.end(), "no column " << name);
  return static_cast<std::size_t>(it - header.begin());
}

}  // namespace

TEST_CASE("classification config: defaults, task key and errors that name the key") {
  io::Config c = io::Config::from_yaml_text("task: classification\ndata: {train: a.h5}\n", "c.yaml");
  const auto t = task::ClassificationTrainConfig::from(c);
  CHECK(t.model == "lenet");
  CHECK(t.strategy == "supervised");
  CHECK(t.grl_alpha == 10.0);
  CHECK(t.distill_alpha == 0.1);
  CHECK(t.distill_temperature == 4.0);
  CHECK(t.adapt_hidden == 1024);
  CHECK(task::config_task(io::Config::from_yaml_text("data: {train: x}\n")) == "segmentation");
  // The YAML it prints reads back to the same settings.
  const auto again = task::ClassificationTrainConfig::from(io::Config::from_yaml_text(t.to_yaml(), "again.yaml"));
  CHECK(again.to_yaml() == t.to_yaml());

  auto refuses = [](const std::string& yaml, const std::string& message) {
    CAPTURE(yaml);
    CHECK_THROWS_WITH_AS(task::ClassificationTrainConfig::from(io::Config::from_yaml_text(yaml, "bad.yaml")),
                         doctest::Contains(message.c_str()), Error);
  };
  refuses("task: classification\ndata: {train: a.h5, bach: 2}\n", "did you mean 'data.batch'");
  refuses("task: classification\ntrain: {lr: 0.1}\n", "data.train is required");
  refuses("task: classification\ndata: {train: a.h5}\ntransfer: {strategy: adapt}\n", "needs data.target");
  refuses("task: classification\ndata: {train: a.h5}\ntransfer: {strategy: distill}\n", "needs distill.teacher");
  refuses("task: classification\ndata: {train: a.h5}\ntransfer: {strategy: finetune}\n", "needs transfer.pretrained");
  refuses("task: classification\ndata: {train: a.h5}\ntransfer: {strategy: adapt_all}\n", "transfer.strategy 'adapt_all'");
  refuses("task: classification\ndata: {train: a.h5, fit: stretch}\n", "data.fit 'stretch' is not one of resize, pad");
  refuses("task: classification\ndata: {train: a.h5}\nadapt: {method: mdd}\n", "adapt.method 'mdd'");
  refuses("task: classification\ndata: {train: a.h5}\ndistill: {alpha: 1.5}\n", "distill.alpha must be in [0, 1]");
  CHECK_THROWS_WITH_AS(task::config_task(io::Config::from_yaml_text("task: regression\n")),
                       doctest::Contains("task 'regression' is not one of"), Error);
  refuses("task: segmentation\ndata: {train: a.h5}\n", "task is 'segmentation'");
  CHECK(task::ClassificationTrainConfig::from(io::Config::from_yaml_text("data: {train: a.h5}\n")).train == "a.h5");
  CHECK_THROWS_WITH_AS(task::ClassificationTrainer(task::ClassificationTrainConfig::from(
                           io::Config::from_yaml_text("task: classification\ndata: {train: /no/such.h5}\n"))),
                       doctest::Contains("/no/such.h5"), Error);
}

TEST_CASE("docs/classification.md documents every classification key") {
  std::ifstream in(fs::path(TLK_GOLDEN_DIR) / ".." / ".." / "docs" / "classification.md");
  REQUIRE(in.good());
  std::stringstream text;
  text << in.rdbuf();
  for (const std::string& key : task::ClassificationTrainConfig::known_keys()) {
    CAPTURE(key);
    CHECK(text.str().find("`" + key + "`") != std::string::npos);
  }
}

TEST_CASE("classification: supervised LeNet learns bars; logs, checkpoints and rebuild") {
  const fs::path dir = fresh_temp_dir("cls_supervised");
  io::Config c = tiny_config(dir, write_bars(dir, "train", 192, 2, 1), "run");
  c.set("data.test", write_bars(dir, "test", 64, 2, 2));
  c.set("data.val_fraction", "0.25");
  task::ClassificationTrainer trainer(task::ClassificationTrainConfig::from(c));
  CHECK(trainer.train_data().size() == 144);
  CHECK(trainer.val_data().size() == 48);
  CHECK(trainer.steps_per_epoch() == 9);  // 144 / 16
  const auto epochs = trainer.run(false);
  REQUIRE(epochs.size() == 3);
  MESSAGE("bars: train acc " << epochs.back().train_accuracy << ", val " << epochs.back().val_accuracy << ", test "
                             << epochs.back().test_accuracy);
  CHECK(epochs.back().test_accuracy > 0.9);
  CHECK(epochs.back().val_accuracy > 0.9);
  CHECK(std::isnan(epochs.back().adversarial_loss));
  CHECK(std::isnan(epochs.back().lambda));
  for (const char* f : {"latest.h5", "best.h5", "final.h5", "log.csv", "log.jsonl", "steps.csv", "config.yaml"})
    CHECK_MESSAGE(fs::exists(dir / "run" / f), f);
  CHECK(csv_rows(dir / "run" / "log.csv").size() == 3);
  CHECK(csv_rows(dir / "run" / "steps.csv").size() == 27);
  const auto header = csv_header(dir / "run" / "log.csv");
  for (const char* col : {"train_loss", "task_loss", "distill_loss", "adversarial_loss", "lambda", "domain_accuracy",
                          "train_accuracy", "val_accuracy", "test_accuracy", "lr", "seconds"})
    CHECK_MESSAGE(std::find(header.begin(), header.end(), col) != header.end(), col);

  // The final checkpoint alone rebuilds the network, which scores as the trainer's did.
  const task::Checkpoint ck = task::load_checkpoint(dir / "run" / "final.h5");
  CHECK(ck.metadata.at("task") == "classification");
  auto rebuilt = task::rebuild_model(ck);
  REQUIRE(dynamic_cast<nn::Classifier*>(rebuilt.get()) != nullptr);
  CHECK(task::classification_accuracy(*rebuilt, trainer.test_data().images, trainer.test_data().labels) ==
        epochs.back().test_accuracy);
}

TEST_CASE("classification: a resumed run continues exactly, and runs are deterministic") {
  const fs::path dir = fresh_temp_dir("cls_resume");
  const std::string train = write_bars(dir, "train", 96, 2, 4);
  io::Config straight = tiny_config(dir, train, "straight");
  straight.set("train.epochs", "2");
  const auto a = task::ClassificationTrainer(task::ClassificationTrainConfig::from(straight)).run(false);
  io::Config first = tiny_config(dir, train, "resumed");
  first.set("train.epochs", "1");
  task::ClassificationTrainer(task::ClassificationTrainConfig::from(first)).run(false);
  io::Config second = tiny_config(dir, train, "resumed");
  second.set("train.epochs", "2");
  const auto b = task::ClassificationTrainer(task::ClassificationTrainConfig::from(second)).run(true);
  REQUIRE(a.size() == 2);
  REQUIRE(b.size() == 1);
  CHECK(b[0].epoch == 1);
  CHECK(b[0].train_loss == a[1].train_loss);
  CHECK(b[0].train_accuracy == a[1].train_accuracy);
}

TEST_CASE("classification: DANN and CDAN adapt to a target file that has no labels") {
  const fs::path dir = fresh_temp_dir("cls_adapt");
  const std::string train = write_bars(dir, "train", 96, 2, 5);
  const std::string target = write_unlabelled(dir, 80, 6);
  {
    // The target file really has no labels: the labelled loader refuses it, the trainer does not need them.
    CHECK_THROWS_AS(data::load_classification_dataset(target), Error);
  }
  for (const std::string method : {"dann", "cdan"}) {
    CAPTURE(method);
    io::Config c = tiny_config(dir, train, method);
    c.set("transfer.strategy", "adapt");
    c.set("data.target", target);
    c.set("data.test", write_bars(dir, "target_test", 40, 2, 7, 70));
    c.set("adapt.method", method);
    c.set("adapt.hidden", "32");
    c.set("train.epochs", "2");
    task::ClassificationTrainer trainer(task::ClassificationTrainConfig::from(c));
    CHECK(trainer.target_images().shape() == Shape{80, 1, 16, 16});
    const auto epochs = trainer.run(false);
    REQUIRE(epochs.size() == 2);
    CHECK(std::isfinite(epochs.back().adversarial_loss));
    CHECK(epochs.back().domain_accuracy >= 0.0);
    CHECK(epochs.back().domain_accuracy <= 1.0);
    // Every step logs λ and the domain accuracy; λ follows DANN's warm start (α = 10 over the run).
    const auto header = csv_header(dir / method / "steps.csv");
    const auto rows = csv_rows(dir / method / "steps.csv");
    REQUIRE(rows.size() == 12);  // 2 epochs of 96 / 16 steps
    const std::size_t lambda = column(header, "lambda"), acc = column(header, "domain_accuracy");
    CHECK(rows[0][lambda] == 0.0);
    for (std::size_t i = 1; i < rows.size(); ++i) CHECK(rows[i][lambda] > rows[i - 1][lambda]);
    CHECK(rows.back()[lambda] == doctest::Approx(2.0 / (1.0 + std::exp(-10.0 * 11 / 12)) - 1.0));
    for (const auto& r : rows) CHECK((r[acc] >= 0.0 && r[acc] <= 1.0));
    // The discriminator is saved beside the model and the model still rebuilds on its own.
    const task::Checkpoint ck = task::load_checkpoint(dir / method / "final.h5");
    CHECK(!ck.auxiliary.empty());
    CHECK(task::rebuild_model(ck) != nullptr);
  }
}

TEST_CASE("classification: distillation uses a frozen teacher (also from saved outputs)") {
  const fs::path dir = fresh_temp_dir("cls_distill");
  const std::string train = write_bars(dir, "train", 96, 2, 8);
  io::Config teacher_config = tiny_config(dir, train, "teacher");
  task::ClassificationTrainer(task::ClassificationTrainConfig::from(teacher_config)).run(false);
  const fs::path teacher = dir / "teacher" / "final.h5";
  const task::Checkpoint before = task::load_checkpoint(teacher);

  std::vector<double> losses;
  for (const bool cached : {false, true}) {
    CAPTURE(cached);
    io::Config c = tiny_config(dir, train, cached ? "student_cached" : "student");
    c.set("transfer.strategy", "distill");
    c.set("distill.teacher", teacher.string());
    c.set("model.hidden", "8");
    c.set("train.epochs", "2");
    if (cached) c.set("distill.cache", (dir / "teacher_outputs").string());
    task::ClassificationTrainer trainer(task::ClassificationTrainConfig::from(c));
    REQUIRE(trainer.distiller() != nullptr);
    const auto epochs = trainer.run(false);
    CHECK(std::isfinite(epochs.back().distill_loss));
    CHECK(epochs.back().distill_loss > 0.0);
    losses.push_back(epochs.back().distill_loss);
    // The teacher was never updated: its weights equal the checkpoint's.
    const auto after = trainer.distiller()->teacher().state_dict();
    REQUIRE(after.size() == before.model.size());
    for (const auto& [name, tensor] : after) {
      CAPTURE(name);
      const auto saved = std::find_if(before.model.begin(), before.model.end(),
                                      [&](const nn::NamedTensor& t) { return t.first == name; });
      REQUIRE(saved != before.model.end());
      CHECK(max_abs_diff(tensor, saved->second) == 0.0);
      CHECK(!tensor.requires_grad());
    }
    const auto header = csv_header(dir / (cached ? "student_cached" : "student") / "steps.csv");
    CHECK(std::find(header.begin(), header.end(), "distill_loss") != header.end());
  }
  // Saved outputs keep all K probabilities at T: the distillation term barely differs from the live teacher's.
  CHECK(losses[1] == doctest::Approx(losses[0]).epsilon(1e-3));
  CHECK(!fs::is_empty(dir / "teacher_outputs"));

  // distill+adapt with DKD: the teacher also scores the unlabelled target (its prediction stands in
  // for the missing target class), from saved outputs.
  io::Config both = tiny_config(dir, train, "distill_adapt");
  both.set("transfer.strategy", "distill+adapt");
  both.set("distill.teacher", teacher.string());
  both.set("distill.loss", "dkd");
  both.set("distill.dkd_warmup", "1");
  both.set("distill.cache", (dir / "teacher_outputs_dkd").string());
  both.set("data.target", write_unlabelled(dir, 48, 12));
  both.set("adapt.hidden", "16");
  both.set("train.epochs", "1");
  const auto e = task::ClassificationTrainer(task::ClassificationTrainConfig::from(both)).run(false);
  CHECK(std::isfinite(e.back().distill_loss));
  CHECK(std::isfinite(e.back().adversarial_loss));
}

TEST_CASE("classification: distill.features adds hints or attention transfer on the stage maps") {
  const fs::path dir = fresh_temp_dir("cls_distill_features");
  const std::string train = write_bars(dir, "train", 64, 2, 8);
  task::ClassificationTrainer(task::ClassificationTrainConfig::from(tiny_config(dir, train, "teacher"))).run(false);
  auto student_config = [&](const std::string& features, const std::string& out, int epochs) {
    io::Config c = tiny_config(dir, train, out);
    c.set("transfer.strategy", "distill");
    c.set("distill.teacher", (dir / "teacher" / "final.h5").string());
    c.set("distill.features", features);
    c.set("distill.feature_weight", "10");
    c.set("model.conv1_channels", "2");  // narrower stages than the teacher's 4 and 8: the hints need regressors
    c.set("model.conv2_channels", "3");
    c.set("train.epochs", std::to_string(epochs));
    return c;
  };
  const auto plain =
      task::ClassificationTrainer(task::ClassificationTrainConfig::from(student_config("none", "kd", 1))).run(false);
  for (const std::string features : {"hint", "attention"}) {
    INFO("distill.features " << features);
    task::ClassificationTrainer trainer(task::ClassificationTrainConfig::from(student_config(features, features, 2)));
    REQUIRE(trainer.stage_distillation() != nullptr);
    const std::vector<Tensor> regressors = trainer.stage_distillation()->parameters();
    CHECK(regressors.size() == (features == "hint" ? 4u : 0u));  // a 1x1x1 conv with bias per stage
    std::vector<Tensor> initial;
    for (const Tensor& r : regressors) initial.push_back(r.clone());
    const auto results = trainer.run(false);
    // Same seed, same batches, same student initialisation: the feature term adds to the KD term.
    CHECK(std::isfinite(results[0].distill_loss));
    CHECK(results[0].distill_loss > plain[0].distill_loss);
    for (std::size_t i = 0; i < regressors.size(); ++i) CHECK(max_abs_diff(regressors[i], initial[i]) > 0.0);  // trained
    const task::Checkpoint ckpt = task::load_checkpoint(dir / features / "final.h5");
    bool has_regressor = false;
    for (const auto& [name, t] : ckpt.auxiliary) has_regressor |= name == "features.hint_1.conv.weight";
    CHECK(has_regressor == (features == "hint"));
    // Resuming restores the regressors (and their momentum): the second epoch repeats exactly.
    task::ClassificationTrainer(task::ClassificationTrainConfig::from(student_config(features, features + "_r", 1)))
        .run(false);
    const auto resumed =
        task::ClassificationTrainer(task::ClassificationTrainConfig::from(student_config(features, features + "_r", 2)))
            .run(true);
    REQUIRE(resumed.size() == 1);
    CHECK(resumed[0].train_loss == results[1].train_loss);
    CHECK(resumed[0].distill_loss == results[1].distill_loss);
  }
  // distill+adapt: the teacher's maps of the unlabelled target batch are matched too.
  io::Config both = student_config("attention", "distill_adapt", 1);
  both.set("transfer.strategy", "distill+adapt");
  both.set("data.target", write_unlabelled(dir, 48, 12));
  both.set("adapt.hidden", "16");
  const auto adapted = task::ClassificationTrainer(task::ClassificationTrainConfig::from(both)).run(false);
  CHECK(std::isfinite(adapted[0].distill_loss));
  CHECK(std::isfinite(adapted[0].adversarial_loss));
  io::Config wrong = tiny_config(dir, train, "x");
  wrong.set("distill.features", "hint");
  CHECK_THROWS_WITH_AS(task::ClassificationTrainConfig::from(wrong), doctest::Contains("needs a distill strategy"),
                       Error);
  wrong = student_config("hint", "x", 1);
  wrong.set("distill.cache", (dir / "cache").string());
  CHECK_THROWS_WITH_AS(task::ClassificationTrainConfig::from(wrong), doctest::Contains("distill.cache keeps only"),
                       Error);
  wrong.set("distill.cache", "");
  wrong.set("distill.features", "hints");
  CHECK_THROWS_WITH_AS(task::ClassificationTrainConfig::from(wrong),
                       doctest::Contains("not one of none, hint, attention"), Error);
}

TEST_CASE("classification: fine-tuning from a checkpoint with another class count") {
  const fs::path dir = fresh_temp_dir("cls_finetune");
  io::Config pre = tiny_config(dir, write_bars(dir, "two", 96, 2, 9), "pretrained");
  pre.set("train.epochs", "1");
  task::ClassificationTrainer(task::ClassificationTrainConfig::from(pre)).run(false);
  io::Config c = tiny_config(dir, write_bars(dir, "three", 96, 3, 10), "finetuned");
  c.set("transfer.strategy", "finetune");
  c.set("transfer.pretrained", (dir / "pretrained" / "final.h5").string());
  c.set("transfer.pretrained_lr_scale", "0.5");
  c.set("train.epochs", "1");
  task::ClassificationTrainer trainer(task::ClassificationTrainConfig::from(c));
  const auto& report = trainer.finetune_report();
  CHECK(std::find(report.copied.begin(), report.copied.end(), "conv1.weight") != report.copied.end());
  CHECK(std::find(report.copied.begin(), report.copied.end(), "fc1.weight") != report.copied.end());
  REQUIRE(report.mismatched.size() == 2);  // fc2.weight [2, 16] vs [3, 16], fc2.bias
  CHECK(report.mismatched[0].name.rfind("fc2.", 0) == 0);
  CHECK(trainer.network().num_classes() == 3);
  const auto epochs = trainer.run(false);
  CHECK(std::isfinite(epochs.back().train_loss));
  CHECK(task::rebuild_model(task::load_checkpoint(dir / "finetuned" / "final.h5")) != nullptr);
}

TEST_CASE("tlk train with task: classification") {
  const fs::path dir = fresh_temp_dir("cls_cli");
  const std::string train = write_bars(dir, "train", 64, 2, 11);
  const fs::path config = dir / "cls.yaml";
  std::ofstream(config) << "task: classification\n"
                        << "data: {train: " << train << ", test: " << train << ", batch: 16}\n"
                        << "model: {name: lenet, conv1_channels: 4, conv2_channels: 8, hidden: 16}\n"
                        << "train: {epochs: 2, lr: 0.05, threads: 1}\n"
                        << "output: {dir: " << (dir / "out").string() << ", quiet: true}\n";
  const TlkRun run = run_tlk("train --config " + config.string());
  CHECK_MESSAGE(run.status == 0, run.err);
  CHECK(run.out.find("trained 2 epoch(s)") != std::string::npos);
  CHECK(run.out.find("test accuracy") != std::string::npos);
  CHECK(fs::exists(dir / "out" / "final.h5"));
  const TlkRun printed = run_tlk("train --config " + config.string() + " --print-config --set adapt.hidden=64");
  CHECK(printed.status == 0);
  CHECK(printed.out.find("hidden: 64") != std::string::npos);
  const TlkRun typo = run_tlk("train --config " + config.string() + " --set adapt.hiden=64");
  CHECK(typo.status != 0);
  CHECK(typo.err.find("did you mean 'adapt.hidden'") != std::string::npos);
}
