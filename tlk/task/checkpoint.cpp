#include "tlk/task/checkpoint.h"

#include "tlk/io/hdf5_file.h"
#include "tlk/tensor/error.h"
#include "tlk/tensor/random.h"

namespace tlk::task {

namespace {
constexpr const char* kFormat = "tlk-checkpoint-1";
}

void describe_model(Checkpoint& c, const std::string& registry_name, const nn::ModuleOptions& options) {
  c.metadata["model"] = registry_name;
  c.metadata["model.in_channels"] = std::to_string(options.in_channels);
  c.metadata["model.num_classes"] = std::to_string(options.num_classes);
  for (const auto& [key, value] : options.values()) c.metadata["model.option." + key] = value;
}

std::shared_ptr<nn::Module> rebuild_model(const Checkpoint& c) {
  auto it = c.metadata.find("model");
  check(it != c.metadata.end(), "rebuild_model: the checkpoint does not say which model it holds (no 'model' metadata)");
  auto integer = [&](const std::string& key) {
    auto found = c.metadata.find(key);
    check(found != c.metadata.end(), "rebuild_model: metadata '{}' is missing", key);
    try {
      return static_cast<std::int64_t>(std::stoll(found->second));
    } catch (const std::exception&) {
      fail("rebuild_model: metadata '{}' is '{}', expected an integer", key, found->second);
    }
  };
  nn::ModuleOptions options =
      nn::ModuleOptions{}.with_in_channels(integer("model.in_channels")).with_num_classes(integer("model.num_classes"));
  const std::string prefix = "model.option.";
  for (const auto& [key, value] : c.metadata)
    if (key.rfind(prefix, 0) == 0) options = options.with(key.substr(prefix.size()), value);
  Generator gen(0);  // the initial weights are overwritten by the checkpoint's
  auto model = nn::ModuleRegistry::instance().create(it->second, options, gen);
  model->load_state_dict(c.model);
  return model;
}

void save_checkpoint(const std::filesystem::path& path, const Checkpoint& c) {
  io::write_atomically(path, [&](const std::filesystem::path& tmp) {
    auto file = io::Hdf5File::create(tmp);
    file.set_attribute("format", kFormat);
    for (const auto& [name, t] : c.model) file.write("model/" + name, t);
    for (const auto& [name, t] : c.optimizer) file.write("optimizer/" + name, t);
    for (const auto& [name, t] : c.auxiliary) file.write("auxiliary/" + name, t);
    std::vector<std::int64_t> rng(c.rng_state.begin(), c.rng_state.end());
    file.write("rng_state", Tensor::from_vector(rng, {6}));
    file.set_attribute("epoch", std::to_string(c.epoch));
    file.set_attribute("iteration", std::to_string(c.iteration));
    file.set_attribute("schedule_step", std::to_string(c.schedule_step));
    for (const auto& [key, value] : c.metadata) file.set_attribute("meta." + key, value);
    file.flush();
  });
}

Checkpoint load_checkpoint(const std::filesystem::path& path) {
  auto file = io::Hdf5File::open(path);
  check(file.has_attribute("format") && file.attribute("format") == kFormat,
        "{}: not a TLK checkpoint (no '{}' format attribute)", path.string(), kFormat);
  Checkpoint c;
  for (const auto& name : file.datasets("/model")) c.model.emplace_back(name, file.read("model/" + name));
  for (const auto& name : file.datasets("/optimizer")) c.optimizer.emplace_back(name, file.read("optimizer/" + name));
  for (const auto& name : file.datasets("/auxiliary")) c.auxiliary.emplace_back(name, file.read("auxiliary/" + name));
  Tensor rng = file.read("rng_state");
  check(rng.numel() == 6 && rng.dtype() == DType::i64, "{}: rng_state has shape {} and dtype {}, expected 6 i64",
        path.string(), rng.shape().str(), dtype_name(rng.dtype()));
  for (std::size_t i = 0; i < 6; ++i) c.rng_state[i] = static_cast<std::uint64_t>(rng.data<std::int64_t>()[i]);
  auto number = [&](const char* key) {
    const std::string text = file.attribute(key);
    try {
      return static_cast<std::int64_t>(std::stoll(text));
    } catch (const std::exception&) {
      fail("{}: attribute '{}' is '{}', expected an integer", path.string(), key, text);
    }
  };
  c.epoch = number("epoch");
  c.iteration = number("iteration");
  c.schedule_step = number("schedule_step");
  for (const auto& [key, value] : file.attributes_with_prefix("meta.")) c.metadata[key] = value;
  return c;
}

transfer::FinetuneReport finetune_from_checkpoint(nn::Module& model, const std::filesystem::path& path,
                                                  const transfer::FinetuneOptions& options) {
  transfer::FinetuneReport report = transfer::finetune_from(model, load_checkpoint(path).model, options);
  report.source = path.string();
  return report;
}

}  // namespace tlk::task
