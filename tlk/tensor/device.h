#pragma once
#include <fmt/format.h>

#include <cstdint>
#include <string>

namespace tlk {

enum class DeviceType : std::uint8_t { cpu, cuda };

/// Where a tensor's storage lives: the CPU, or one CUDA GPU by index.
struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;

  static constexpr Device cpu() { return {DeviceType::cpu, 0}; }
  static constexpr Device cuda(int index = 0) { return {DeviceType::cuda, index}; }
  constexpr bool is_cpu() const { return type == DeviceType::cpu; }
  constexpr bool is_cuda() const { return type == DeviceType::cuda; }
  friend constexpr bool operator==(const Device& a, const Device& b) { return a.type == b.type && a.index == b.index; }
  friend constexpr bool operator!=(const Device& a, const Device& b) { return !(a == b); }
  /// "cpu" or "cuda:0".
  std::string str() const { return is_cpu() ? std::string("cpu") : fmt::format("cuda:{}", index); }
};

/// Parses "cpu", "cuda" (= cuda:0) or "cuda:N"; throws tlk::Error naming `what` for anything else.
/// It does not check that the GPU exists (cuda::require_device does).
Device parse_device(const std::string& text, const char* what);

/// Storage layout of a tensor. `plain` is any strided view (NCDHW when contiguous); `channels_last` is
/// a dense NDHWC arrangement (still strided, so element access works); `blocked` is an opaque oneDNN
/// layout such as nCdhw8c that only oneDNN primitives and `to(Layout::plain)` can read.
enum class Layout : std::uint8_t { plain, channels_last, blocked };

constexpr const char* layout_name(Layout l) {
  switch (l) {
    case Layout::plain:
      return "plain";
    case Layout::channels_last:
      return "channels_last";
    case Layout::blocked:
      return "blocked";
  }
  return "?";
}

/// The layout a network's activations take on `device`, from a user's "auto", "plain" or
/// "channels_last": auto is channels_last on a GPU (NDHWC end to end, Note [Channels-last on the GPU]
/// in kernels/cuda/launch.h, faster there in f32 and bf16) and plain on the CPU (which picks oneDNN's
/// blocked layouts itself). Throws tlk::Error naming `what` for another text or for channels_last on
/// the CPU. Example: `Layout l = parse_activation_layout("auto", Device::cuda(), "--layout");`
Layout parse_activation_layout(const std::string& text, Device device, const char* what);

}  // namespace tlk
