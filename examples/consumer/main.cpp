// Builds a small conv3d + leaky ReLU graph, runs backward and prints the weight gradient's norm.
#include <tlk/tlk.h>

#include <cmath>
#include <cstdio>

int main() {
  using namespace tlk;
  Generator gen(1);
  Tensor x = randn({1, 2, 6, 6, 6}, gen);
  Tensor w = randn({4, 2, 3, 3, 3}, gen, 0.0, 0.1);
  w.set_requires_grad();
  Tensor y = ops::leaky_relu(ops::conv3d(x, w, {}, Conv3dOptions{}.with_padding({1, 1, 1})));
  Tensor loss = ops::mean(ops::square(y));
  loss.backward();
  double norm = 0.0;
  for (double g : w.grad().to_doubles()) norm += g * g;
  std::printf("TLK %s: loss %.6f, |dL/dw| %.6f\n", TLK_VERSION_STRING, loss.item(), std::sqrt(norm));
  if (!(norm > 0.0)) return 1;
  std::printf("consumer ok\n");
  return 0;
}
