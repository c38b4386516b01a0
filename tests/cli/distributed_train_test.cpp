// `mpirun -np 2 tlk train --distributed`: the same model as one process with the global batch, for
// supervised training and DANN adaptation; resume with another rank count; a stalled or killed
// rank ends the job with an error instead of a hang.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "run_tlk.h"
#include "test_util.h"
#include "tlk/task/checkpoint.h"

using namespace tlk;
using namespace tlk::testing;

namespace {

/// The launcher's command line. Open MPI refuses root unless told (CI runs as root); two ranks on
/// two cores need --oversubscribe when fewer slots are detected.
std::string launcher(int ranks) {
  return fmt::format("{} --allow-run-as-root --oversubscribe -np {} ", TLK_MPIEXEC, ranks);
}

/// A run_tlk prefix: one OpenMP thread per rank, then the launcher.
std::string mpirun(int ranks) { return "OMP_NUM_THREADS=1 " + launcher(ranks); }

/// A shell command line that runs tlk train on `dir`'s domains with a tiny UNet.
std::string train_args(const std::filesystem::path& dir, const std::string& out, int batch, int epochs,
                       const std::string& extra = "") {
  std::ofstream(dir / "train.yaml") << "data: {patch: [8, 16, 16], loader_threads: 1}\n"
                                       "model: {levels: 3, base_features: 4, max_features: 16}\n"
                                       "train: {iterations_per_epoch: 3, val_iterations: 2, seed: 5, threads: 1}\n"
                                       "output: {quiet: true}\n";
  return fmt::format("train --config {} --set data.train={} --set output.dir={} --set data.batch={} "
                     "--set train.epochs={} {}",
                     (dir / "train.yaml").string(), (dir / "source").string(), (dir / out).string(), batch, epochs,
                     extra);
}

int csv_rows(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::string line;
  int rows = -1;  // the header
  while (std::getline(in, line)) ++rows;
  return rows;
}

/// The last row of a CSV log, by column name.
std::map<std::string, double> last_row(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::string header, line, last;
  std::getline(in, header);
  while (std::getline(in, line)) last = line;
  std::map<std::string, double> row;
  std::istringstream names(header), values(last);
  std::string name, value;
  while (std::getline(names, name, ',') && std::getline(values, value, ',')) row[name] = std::stod(value);
  return row;
}

void check_same_tensors(const std::vector<nn::NamedTensor>& a, const std::vector<nn::NamedTensor>& b,
                        double tolerance) {
  REQUIRE(a.size() == b.size());
  for (std::size_t k = 0; k < a.size(); ++k) {
    INFO(a[k].first);
    CHECK(a[k].first == b[k].first);
    CHECK(max_abs_diff(a[k].second, b[k].second) <= tolerance);
  }
}

/// The pids of the processes whose parent is `parent`.
std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const auto close = text.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(text.substr(close + 2));
    char state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent) out.push_back(std::stoi(name));
  }
  return out;
}

/// Starts a two-rank training long enough to be interrupted, sends `signal` to one rank once
/// training has begun, and returns mpirun's exit status, its stderr and how long the job took to end.
struct Interrupted {
  int status;
  std::string err;
  double seconds;
};
Interrupted interrupt_one_rank(const std::filesystem::path& dir, int signal) {
  const std::filesystem::path err_file = dir / "stderr.txt";
  const std::string cmd = "exec " + launcher(2) + TLK_CLI_PATH + " " +
                          train_args(dir, "interrupted", 1, 1,
                                     "--distributed --set train.iterations_per_epoch=100000 "
                                     "--set distributed.timeout_s=3") +
                          " 2>" + err_file.string() + " >/dev/null";
  const pid_t job = fork();
  REQUIRE(job >= 0);
  if (job == 0) {
    setenv("OMP_NUM_THREADS", "1", 1);
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait until both ranks train (steps.csv has rows), then hit one of them.
  const auto steps = dir / "interrupted" / "steps.csv";
  for (int i = 0; i < 600 && csv_rows(steps) < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  REQUIRE(csv_rows(steps) >= 2);
  const std::vector<pid_t> ranks = children_of(job);
  REQUIRE(ranks.size() == 2);
  const auto start = std::chrono::steady_clock::now();
  kill(ranks.back(), signal);
  int status = 0;
  pid_t done = 0;
  while ((done = waitpid(job, &status, WNOHANG)) == 0 &&
         std::chrono::steady_clock::now() - start < std::chrono::seconds(90))
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  if (done == 0) {  // the job hangs: end it, then fail
    for (pid_t p : ranks) kill(p, SIGKILL);
    kill(job, SIGKILL);
    waitpid(job, &status, 0);
    FAIL("the job still ran 90 s after one rank was interrupted");
  }
  std::stringstream err;
  err << std::ifstream(err_file).rdbuf();
  return {status, err.str(), std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()};
}

}  // namespace

TEST_CASE("tlk train --distributed: 2 ranks with batch 1 train the model of 1 process with batch 2") {
  const auto dir = make_adaptation_domains("cli_distributed");
  for (const std::string strategy : {"supervised", "adapt", "distill"}) {
    INFO("strategy " << strategy);
    std::string extra = "--set transfer.strategy=" + strategy;
    if (strategy == "adapt")
      extra += " --set data.target=" + (dir / "target").string() + " --set adapt.widths=4,8 --set adapt.grl_alpha=10 "
               "--set adapt.grl_max_iters=3";
    if (strategy == "distill")  // from the supervised model, through the teacher cache (each rank its own folder)
      extra += " --set distill.teacher=" + (dir / "supervised_one" / "final.h5").string() +
               " --set distill.cache=" + (dir / "teacher_cache").string() + " --set model.base_features=2";
    const TlkRun one = run_tlk(train_args(dir, strategy + "_one", 2, 2, extra));
    REQUIRE_MESSAGE(one.status == 0, one.err);
    const TlkRun two = run_tlk_with_prefix(mpirun(2), train_args(dir, strategy + "_two", 1, 2, extra + " --distributed"));
    REQUIRE_MESSAGE(two.status == 0, two.err);
    // Rank 0 alone reports and writes: one summary line, one log row per epoch and per step.
    CHECK(count_lines(two.out) == 1);
    CHECK(two.out.find("on 2 ranks") != std::string::npos);
    CHECK(csv_rows(dir / (strategy + "_two") / "log.csv") == 2);
    CHECK(csv_rows(dir / (strategy + "_two") / "steps.csv") == 6);
    // The validation split over the ranks and summed gives the one-process loss and pseudo Dice.
    const auto log_one = last_row(dir / (strategy + "_one") / "log.csv");
    const auto log_two = last_row(dir / (strategy + "_two") / "log.csv");
    CHECK(log_two.at("train_loss") == doctest::Approx(log_one.at("train_loss")).epsilon(1e-5));
    CHECK(log_two.at("val_loss") == doctest::Approx(log_one.at("val_loss")).epsilon(1e-4));
    CHECK(log_two.at("mean_dice") == doctest::Approx(log_one.at("mean_dice")).epsilon(1e-2));
    const task::Checkpoint a = task::load_checkpoint(dir / (strategy + "_one") / "final.h5");
    const task::Checkpoint b = task::load_checkpoint(dir / (strategy + "_two") / "final.h5");
    check_same_tensors(a.model, b.model, 1e-4);
    check_same_tensors(a.auxiliary, b.auxiliary, 1e-4);  // the discriminator and its Adam state
    if (strategy == "adapt") CHECK_FALSE(b.auxiliary.empty());
    if (strategy == "distill")
      for (const char* sub : {"rank0_of_2", "rank1_of_2"}) CHECK(!std::filesystem::is_empty(dir / "teacher_cache" / sub));
  }
}

TEST_CASE("tlk train --distributed: classification (LeNet, DANN) on 2 ranks trains the model of 1 process") {
  const auto dir = fresh_temp_dir("cli_distributed_classification");
  const std::string train = write_bars(dir, "train", 64, 2, 1), target = write_bars(dir, "target", 64, 2, 2, 40);
  const std::string test = write_bars(dir, "test", 33, 2, 3);  // an odd count: the ranks score 16 and 17
  std::ofstream(dir / "digits.yaml") << "task: classification\n"
                                         "model: {name: lenet, conv1_channels: 4, conv2_channels: 8, hidden: 16}\n"
                                         "train: {epochs: 2, lr: 0.05, schedule: constant, seed: 3, threads: 1}\n"
                                         "output: {quiet: true}\n";
  for (const std::string run : {"supervised", "adapt", "adapt_sync_bn"}) {
    INFO("run " << run);
    // DANN's discriminator without batch norm (batch statistics would be per rank, as in PyTorch's
    // DDP), or with batch norm synchronized over the ranks (distributed.sync_batch_norm).
    const std::string strategy = run == "supervised" ? "supervised" : "adapt";
    const std::string norm = run == "adapt_sync_bn" ? "batch_norm --set distributed.sync_batch_norm=true" : "none";
    const std::string args = fmt::format(
        "train --config {} --set data.train={} --set data.test={} --set transfer.strategy={} --set data.target={} "
        "--set adapt.regularizer={} --set adapt.hidden=16",
        (dir / "digits.yaml").string(), train, test, strategy, target, norm);
    const TlkRun one = run_tlk(args + " --set data.batch=16 --set output.dir=" + (dir / (run + "_one")).string());
    REQUIRE_MESSAGE(one.status == 0, one.err);
    const TlkRun two = run_tlk_with_prefix(mpirun(2), args + " --distributed --set data.batch=8 --set output.dir=" +
                                                          (dir / (run + "_two")).string());
    REQUIRE_MESSAGE(two.status == 0, two.err);
    CHECK(count_lines(two.out) == 1);
    const auto log_one = last_row(dir / (run + "_one") / "log.csv");
    const auto log_two = last_row(dir / (run + "_two") / "log.csv");
    CHECK(log_two.at("train_loss") == doctest::Approx(log_one.at("train_loss")).epsilon(1e-5));
    CHECK(log_two.at("test_accuracy") == doctest::Approx(log_one.at("test_accuracy")));
    const task::Checkpoint a = task::load_checkpoint(dir / (run + "_one") / "final.h5");
    const task::Checkpoint b = task::load_checkpoint(dir / (run + "_two") / "final.h5");
    check_same_tensors(a.model, b.model, 1e-4);
    check_same_tensors(a.auxiliary, b.auxiliary, 1e-4);
  }
  // Distillation through distill.cache: rank 0 scores every image and writes the cache while rank 1
  // waits, then reads it; the model is the one process's.
  const std::string distill = fmt::format(
      "train --config {} --set data.train={} --set data.test={} --set transfer.strategy=distill "
      "--set distill.teacher={} --set model.hidden=8",
      (dir / "digits.yaml").string(), train, test, (dir / "supervised_one" / "final.h5").string());
  const TlkRun one = run_tlk(distill + " --set data.batch=16 --set distill.cache=" + (dir / "cache_one").string() +
                             " --set output.dir=" + (dir / "distill_one").string());
  REQUIRE_MESSAGE(one.status == 0, one.err);
  const TlkRun two = run_tlk_with_prefix(mpirun(2), distill + " --distributed --set data.batch=8 --set distill.cache=" +
                                                        (dir / "cache_two").string() + " --set output.dir=" +
                                                        (dir / "distill_two").string());
  REQUIRE_MESSAGE(two.status == 0, two.err);
  CHECK(!std::filesystem::is_empty(dir / "cache_two"));
  check_same_tensors(task::load_checkpoint(dir / "distill_one" / "final.h5").model,
                     task::load_checkpoint(dir / "distill_two" / "final.h5").model, 1e-4);
}

TEST_CASE("tlk train --distributed: a run resumes with another number of ranks") {
  const auto dir = make_adaptation_domains("cli_distributed_resume");
  const TlkRun first = run_tlk_with_prefix(mpirun(2), train_args(dir, "run", 1, 1, "--distributed"));
  REQUIRE_MESSAGE(first.status == 0, first.err);
  const TlkRun alone = run_tlk(train_args(dir, "run", 1, 2, "--resume"));
  REQUIRE_MESSAGE(alone.status == 0, alone.err);
  const TlkRun again = run_tlk_with_prefix(mpirun(2), train_args(dir, "run", 1, 3, "--resume --distributed"));
  REQUIRE_MESSAGE(again.status == 0, again.err);
  CHECK(csv_rows(dir / "run" / "log.csv") == 3);
  CHECK(task::load_checkpoint(dir / "run" / "final.h5").epoch == 3);
}

TEST_CASE("tlk train --distributed: a stalled rank ends the job with an error naming the timeout") {
  const auto dir = make_adaptation_domains("cli_distributed_stall");
  const Interrupted run = interrupt_one_rank(dir, SIGSTOP);  // alive, but never answers again
  CHECK(run.status != 0);
  CHECK(run.err.find("distributed.timeout_s") != std::string::npos);
  CHECK(run.err.find("tlk: error (rank") != std::string::npos);
  CHECK(run.seconds < 60);
}

TEST_CASE("tlk train --distributed: a killed rank ends the whole job") {
  const auto dir = make_adaptation_domains("cli_distributed_kill");
  const Interrupted run = interrupt_one_rank(dir, SIGKILL);
  CHECK(run.status != 0);
  CHECK(run.seconds < 60);
}
