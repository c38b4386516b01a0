#include "tlk/tensor/strided_copy.h"

#include <cstring>

#include "tlk/tensor/error.h"

namespace tlk::detail {

namespace {

// Walks all but the last dimension with an index counter; the last dimension is a tight loop
// (memcpy when both sides are unit-stride and of one dtype).
template <class D, class S>
void copy_loop(const Tensor& dst, const Tensor& src) {
  const int nd = dst.dim();
  D* d = dst.data<D>();
  const S* s = src.data<S>();
  if (nd == 0) {
    *d = static_cast<D>(*s);
    return;
  }
  const Shape& shape = dst.shape();
  const std::int64_t inner = shape[nd - 1];
  const std::int64_t ds = dst.strides()[nd - 1], ss = src.strides()[nd - 1];
  const std::int64_t outer = inner == 0 ? 0 : dst.numel() / inner;
#pragma omp parallel for if (outer > 64 && dst.numel() > 65536)
  for (std::int64_t row = 0; row < outer; ++row) {
    std::int64_t rem = row, doff = 0, soff = 0;
    for (int i = nd - 2; i >= 0; --i) {
      std::int64_t idx = rem % shape[i];
      rem /= shape[i];
      doff += idx * dst.strides()[i];
      soff += idx * src.strides()[i];
    }
    D* drow = d + doff;
    const S* srow = s + soff;
    if constexpr (std::is_same_v<D, S>) {
      if (ds == 1 && ss == 1) {
        std::memcpy(drow, srow, static_cast<std::size_t>(inner) * sizeof(D));
        continue;
      }
    }
    for (std::int64_t j = 0; j < inner; ++j) drow[j * ds] = static_cast<D>(srow[j * ss]);
  }
}

}  // namespace

void copy_strided(const Tensor& dst, const Tensor& src) {
  check(dst.shape() == src.shape(), "copy: shapes differ (destination {}, source {})", dst.shape().str(),
        src.shape().str());
  check(dst.device().is_cpu() && src.device().is_cpu(), "copy_strided: both tensors must be on the CPU");
  visit_cpu_dtype(dst.dtype(), "copy", [&](auto dtag) {
    using D = typename decltype(dtag)::type;
    visit_cpu_dtype(src.dtype(), "copy", [&](auto stag) {
      using S = typename decltype(stag)::type;
      copy_loop<D, S>(dst, src);
    });
  });
}

}  // namespace tlk::detail
