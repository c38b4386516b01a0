#include "tlk/kernels/cuda/dkd.h"

#include <cmath>
#include <string>

#include "tlk/kernels/cuda/dkd_launch.h"
#include "tlk/kernels/cuda/launch.h"

namespace tlk::kernels::cuda {

namespace {

struct DkdGeometry {
  std::int64_t outer = 0, channels = 0, inner = 1;
};

// Checks the operands (as transfer::dkd_terms's CPU path does; the targets' range is checked there
// before they reach the GPU) and returns the [outer, channels, inner] view of the logits.
DkdGeometry check_operands(const Tensor& student, const Tensor& teacher, const Tensor& targets, double temperature,
                           const char* op) {
  require_cuda_float(student, op, "student logits");
  require_same(teacher, student, op, "teacher logits");
  check(student.shape() == teacher.shape(), "{}: student logits {} and teacher logits {} differ in shape", op,
        student.shape().str(), teacher.shape().str());
  check(student.dim() >= 2 && student.size(1) >= 2, "{}: DKD needs logits [N, C >= 2, ...], got {}", op,
        student.shape().str());
  check(std::isfinite(temperature) && temperature > 0.0, "{}: temperature must be a finite value > 0, got {}", op,
        temperature);
  DkdGeometry g{student.size(0), student.size(1), 1};
  for (int d = 2; d < student.dim(); ++d) g.inner *= student.size(d);
  check(targets.defined() && targets.dtype() == DType::i64 && targets.device() == student.device() &&
            targets.numel() == g.outer * g.inner,
        "{}: expected {} i64 targets on {}, got {}", op, g.outer * g.inner, student.device().str(),
        targets.defined() ? fmt::format("{} {} on {}", targets.shape().str(), dtype_name(targets.dtype()),
                                        targets.device().str())
                          : std::string("an undefined tensor"));
  return g;
}

template <class T>
const T* cptr(const Tensor& t) {
  return static_cast<const T*>(t.raw_data());
}

}  // namespace

std::array<Tensor, 2> dkd_forward(const Tensor& student_in, const Tensor& teacher_in, const Tensor& targets_in,
                                  double temperature) {
  const char* op = "dkd_terms";
  const DkdGeometry g = check_operands(student_in, teacher_in, targets_in, temperature, op);
  const Tensor s = contiguous(student_in), t = contiguous(teacher_in), y = contiguous(targets_in);
  const std::int64_t positions = g.outer * g.inner;
  std::array<Tensor, 2> out{empty_like_shape(s, Shape{}), empty_like_shape(s, Shape{})};
  Tensor partial = Tensor::empty({launch::dkd_partials(positions)}, TensorOptions{DType::f64, s.device()});
  const double scale = positions > 0 ? temperature * temperature / static_cast<double>(positions) : 0.0;
  visit_floating(s.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    check_status(launch::dkd_forward<T>(cptr<T>(s), cptr<T>(t), cptr<std::int64_t>(y), g.outer, g.channels, g.inner,
                                        1.0 / temperature, scale, static_cast<T*>(out[0].raw_data()),
                                        static_cast<T*>(out[1].raw_data()), static_cast<double*>(partial.raw_data()),
                                        stream()),
                 op, "kernel launch");
  });
  return out;
}

Tensor dkd_backward(double g_tckd, double g_nckd, const Tensor& student_in, const Tensor& teacher_in,
                    const Tensor& targets_in, double temperature) {
  const char* op = "dkd_terms backward";
  const DkdGeometry g = check_operands(student_in, teacher_in, targets_in, temperature, op);
  const Tensor s = contiguous(student_in), t = contiguous(teacher_in), y = contiguous(targets_in);
  const std::int64_t positions = g.outer * g.inner;
  Tensor out = empty_like_shape(s, s.shape());
  const double scale = positions > 0 ? temperature / static_cast<double>(positions) : 0.0;
  visit_floating(s.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    check_status(launch::dkd_backward<T>(cptr<T>(s), cptr<T>(t), cptr<std::int64_t>(y), g.outer, g.channels, g.inner,
                                         1.0 / temperature, g_tckd, g_nckd, scale, static_cast<T*>(out.raw_data()),
                                         stream()),
                 op, "kernel launch");
  });
  return out;
}

}  // namespace tlk::kernels::cuda
