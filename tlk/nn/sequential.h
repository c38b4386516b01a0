#pragma once
#include <cstddef>
#include <memory>
#include <type_traits>
#include <vector>

#include "tlk/nn/module.h"

namespace tlk::nn {

/// A chain of one-input layers, named "0", "1", ... in the order added (so their parameters are
/// "0.weight", "2.bias", as torch.nn.Sequential); forward feeds each layer's output to the next.
/// An empty Sequential is the identity.
///
/// Example:
/// ```
/// auto head = std::make_shared<nn::Sequential>();
/// head->add(std::make_shared<nn::Linear>(500, 100, gen));
/// head->add(std::make_shared<nn::ReLU>());
/// Tensor y = head->forward(x);
/// ```
class Sequential : public UnaryModule {
 public:
  Sequential() = default;
  explicit Sequential(const std::vector<std::shared_ptr<UnaryModule>>& layers);

  /// Appends `layer` under the next index and returns it (typed, for the caller to keep).
  template <class M>
  std::shared_ptr<M> add(std::shared_ptr<M> layer) {
    static_assert(std::is_base_of_v<UnaryModule, M>, "Sequential holds UnaryModules");
    append(layer);
    return layer;
  }
  Tensor forward(const Tensor& input) override;

  std::size_t size() const { return layers_.size(); }
  bool empty() const { return layers_.empty(); }
  /// The layer at `index` (tlk::Error when out of range).
  const std::shared_ptr<UnaryModule>& at(std::size_t index) const;

 private:
  void append(std::shared_ptr<UnaryModule> layer);
  std::vector<std::shared_ptr<UnaryModule>> layers_;
};

}  // namespace tlk::nn
