#include "tlk/nn/sequential.h"

#include <string>

#include "tlk/tensor/error.h"

namespace tlk::nn {

Sequential::Sequential(const std::vector<std::shared_ptr<UnaryModule>>& layers) {
  for (const auto& layer : layers) append(layer);
}

void Sequential::append(std::shared_ptr<UnaryModule> layer) {
  check(layer != nullptr, "Sequential: layer {} is null", layers_.size());
  register_module(std::to_string(layers_.size()), layer);
  layers_.push_back(std::move(layer));
}

Tensor Sequential::forward(const Tensor& input) {
  Tensor h = input;
  for (auto& layer : layers_) h = layer->forward(h);
  return h;
}

const std::shared_ptr<UnaryModule>& Sequential::at(std::size_t index) const {
  check(index < layers_.size(), "Sequential: index {} is out of range (the chain has {} layers)", index,
        layers_.size());
  return layers_[index];
}

}  // namespace tlk::nn
