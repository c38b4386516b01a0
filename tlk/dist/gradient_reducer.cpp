#include "tlk/dist/gradient_reducer.h"

#include <fmt/format.h>

#include <cstring>

#include "tlk/autograd/grad_mode.h"
#include "tlk/autograd/ops/arith.h"
#include "tlk/dist/nccl_communicator.h"
#include "tlk/tensor/error.h"

namespace tlk::dist {

namespace {

/// `t` as a plain contiguous CPU tensor of dtype `as` (shares t's storage where it already is one).
Tensor host_view(const Tensor& t, DType as) {
  return t.detach().to(Device::cpu()).to(Layout::plain).to(as).contiguous();
}

/// A plain contiguous CPU copy of `t` in dtype `as`, with storage of its own.
Tensor host_copy(const Tensor& t, DType as) { return host_view(t, as).clone(); }

/// Writes `values` (a CPU tensor of t's shape) into `t` in place, whatever t's device and layout.
void assign(const Tensor& t, const Tensor& values) {
  NoGradGuard no_grad;
  Tensor target = t;
  target.copy_(values.to(t.dtype()));
}

}  // namespace

struct GradientReducer::State {
  struct Slot {
    std::size_t bucket = 0;
    std::int64_t offset = 0, numel = 0;
    bool expected = true;  ///< had a gradient on this rank in the last pass (Note [Unused parameters])
    bool ready = false;    ///< its gradient of this pass is in the bucket
    Tensor late;           ///< its gradient of this pass, when it came after the bucket was sent
  };
  struct Bucket {
    Tensor buffer;                     ///< f32, the bucket's gradients back to back
    std::vector<std::size_t> params;   ///< indices into `parameters`
    std::size_t pending = 0;           ///< expected gradients that have not arrived this pass
    std::shared_ptr<Work> work;        ///< set once its all-reduce started
  };

  ProcessGroup* group = nullptr;
  /// Note [Gradient buckets on the GPU]: with CUDA parameters the buckets live on their GPU and
  /// NCCL averages them there; otherwise they live in host memory and MPI sums them.
  std::unique_ptr<NcclCommunicator> nccl;
  Device device = Device::cpu();
  std::vector<Tensor> parameters;
  std::vector<Slot> slots;
  std::vector<Bucket> buckets;
  std::size_t next_to_start = 0;  ///< buckets start in index order on every rank
  std::size_t started_during_backward = 0, started_during_last_backward = 0;

  /// Zeroes the slots whose gradient has not arrived and starts the bucket's all-reduce.
  void start(std::size_t b) {
    Bucket& bucket = buckets[b];
    for (std::size_t k : bucket.params)
      if (!slots[k].ready) slice(k).zero_();
    std::string what = fmt::format("gradient bucket {} of {} ({} parameters)", b + 1, buckets.size(),
                                   bucket.params.size());
    bucket.work = nccl ? nccl->all_reduce_mean_async(bucket.buffer, std::move(what))
                       : group->all_reduce_sum_async(bucket.buffer, std::move(what));
  }

  /// Parameter k's place in its bucket, as a flat tensor.
  Tensor slice(std::size_t k) const {
    return buckets[slots[k].bucket].buffer.narrow(0, slots[k].offset, slots[k].numel);
  }

  void on_gradient(std::size_t index) {
    Slot& slot = slots[index];
    Bucket& bucket = buckets[slot.bucket];
    if (bucket.work) {  // Note [Unused parameters]: the bucket left without it
      slot.late = host_copy(parameters[index].grad(), DType::f32);
      return;
    }
    if (nccl) {
      NoGradGuard no_grad;
      const Tensor grad = parameters[index].grad().detach().to(Layout::plain).to(DType::f32).contiguous();
      slice(index).copy_(grad.reshape({slot.numel}));
    } else {
      const Tensor grad = host_view(parameters[index].grad(), DType::f32);
      std::memcpy(bucket.buffer.data<float>() + slot.offset, grad.data<float>(),
                  sizeof(float) * static_cast<std::size_t>(slot.numel));
    }
    if (!slot.ready) {
      slot.ready = true;
      if (slot.expected) --bucket.pending;
    }
    while (next_to_start < buckets.size() && buckets[next_to_start].pending == 0) {
      start(next_to_start++);
      ++started_during_backward;
    }
  }

  /// Ready for the next pass: each bucket waits for the gradients this rank produced in this one.
  void reset() {
    for (auto& bucket : buckets) {
      bucket.work.reset();
      bucket.pending = 0;
      for (std::size_t k : bucket.params) {
        Slot& slot = slots[k];
        slot.expected = slot.ready || slot.late.defined();
        slot.ready = false;
        slot.late = Tensor();
        bucket.pending += slot.expected;
      }
    }
    next_to_start = 0;
  }
};

GradientReducer::GradientReducer(ProcessGroup& group, std::vector<Tensor> parameters,
                                 const GradientReducerOptions& options)
    : state_(std::make_shared<State>()) {
  check(options.bucket_bytes > 0, "distributed: the bucket size must be positive, got {} bytes", options.bucket_bytes);
  State& s = *state_;
  s.group = &group;
  s.parameters = std::move(parameters);
  s.slots.resize(s.parameters.size());
  // Reverse order: backward produces the last layers' gradients first (Note [Gradient buckets]).
  std::vector<std::int64_t> sizes;
  for (std::size_t k = s.parameters.size(); k-- > 0;) {
    const Tensor& p = s.parameters[k];
    check(p.requires_grad() && p.is_leaf(), "distributed: parameter {} (shape {}) is not a leaf that requires grad",
          k, p.shape().str());
    check(is_floating(p.dtype()), "distributed: parameter {} has dtype {}; gradients need a floating dtype", k,
          dtype_name(p.dtype()));
    if (s.buckets.empty() || (sizes.back() > 0 && (sizes.back() + p.numel()) * 4 > options.bucket_bytes)) {
      s.buckets.emplace_back();
      sizes.push_back(0);
    }
    s.slots[k] = {s.buckets.size() - 1, sizes.back(), p.numel(), true, false, Tensor()};
    s.buckets.back().params.push_back(k);
    sizes.back() += p.numel();
  }
  s.device = s.parameters.empty() ? Device::cpu() : s.parameters.front().device();
  for (const Tensor& p : s.parameters)
    check(p.device() == s.device, "distributed: the parameters live on {} and {}; data-parallel training keeps a "
          "model on one device per rank", s.device.str(), p.device().str());
  if (s.device.is_cuda()) s.nccl = std::make_unique<NcclCommunicator>(group, s.device.index);
  for (std::size_t b = 0; b < s.buckets.size(); ++b) {
    s.buckets[b].buffer = Tensor::zeros({sizes[b]}, TensorOptions{}.with(s.device));
    s.buckets[b].pending = s.buckets[b].params.size();
  }
  std::weak_ptr<State> weak = state_;
  for (std::size_t k = 0; k < s.parameters.size(); ++k)
    s.parameters[k].register_post_accumulate_grad_hook([weak, k](const Tensor&) {
      if (auto state = weak.lock()) state->on_gradient(k);
    });
}

GradientReducer::~GradientReducer() {
  // Hooks hold only a weak reference; a bucket still in flight must finish before its buffer goes.
  for (auto& bucket : state_->buckets)
    if (bucket.work) try {
        bucket.work->wait();
      } catch (const Error&) {
      }
}

void GradientReducer::finish_backward() {
  State& s = *state_;
  const int ranks = s.group->size();
  const std::size_t n = s.parameters.size();
  for (std::size_t b = s.next_to_start; b < s.buckets.size(); ++b) s.start(b);
  s.next_to_start = s.buckets.size();
  // Per parameter, over the ranks: how many put its gradient in the bucket, and how many had it late.
  std::vector<double> counts(2 * n);
  for (std::size_t k = 0; k < n; ++k) {
    counts[k] = s.slots[k].ready ? 1.0 : 0.0;
    counts[n + k] = s.slots[k].late.defined() ? 1.0 : 0.0;
  }
  counts = s.group->all_reduce_sum(counts, "gradient counts");
  // Late gradients of any rank travel in one more all-reduce, the same on every rank.
  std::vector<std::size_t> late;
  std::int64_t late_numel = 0;
  for (std::size_t k = 0; k < n; ++k)
    if (counts[n + k] > 0) late.push_back(k), late_numel += s.slots[k].numel;
  Tensor late_sum;
  if (!late.empty()) {
    late_sum = Tensor::zeros({late_numel});
    std::int64_t offset = 0;
    for (std::size_t k : late) {
      if (s.slots[k].late.defined())
        std::memcpy(late_sum.data<float>() + offset, s.slots[k].late.data<float>(),
                    sizeof(float) * static_cast<std::size_t>(s.slots[k].numel));
      offset += s.slots[k].numel;
    }
    s.group->all_reduce_sum(late_sum, fmt::format("{} late gradients", late.size()));
  }
  const float scale = 1.0f / static_cast<float>(ranks);
  std::int64_t late_offset = 0;
  std::size_t late_index = 0;
  for (auto& bucket : s.buckets) bucket.work->wait();
  NoGradGuard no_grad;
  for (std::size_t k = 0; k < n; ++k) {
    const State::Slot& slot = s.slots[k];
    Tensor late_values;  // the late gradients' sum over the ranks, on the host
    if (late_index < late.size() && late[late_index] == k) {
      late_values = late_sum.narrow(0, late_offset, slot.numel);
      late_offset += slot.numel;
      ++late_index;
    }
    if (counts[k] + counts[n + k] == 0) continue;  // no rank reached it: the gradient stays undefined
    const Tensor& p = s.parameters[k];
    Tensor mean;
    if (s.nccl) {  // NCCL averaged the bucket already
      mean = s.slice(k).reshape(p.shape()).clone();
      if (late_values.defined())
        mean = ops::add(mean, ops::mul(late_values.reshape(p.shape()).to(s.device), static_cast<double>(scale)));
    } else {
      mean = Tensor::empty(p.shape());
      const float* from = s.buckets[slot.bucket].buffer.data<float>() + slot.offset;
      const float* extra = late_values.defined() ? late_values.data<float>() : nullptr;
      float* to = mean.data<float>();
      for (std::int64_t i = 0; i < slot.numel; ++i) to[i] = (from[i] + (extra ? extra[i] : 0.0f)) * scale;
    }
    p.set_grad(mean.to(p.dtype()).to(p.device()));
  }
  s.reset();
  s.started_during_last_backward = s.started_during_backward;
  s.started_during_backward = 0;
}

std::size_t GradientReducer::num_buckets() const { return state_->buckets.size(); }

std::size_t GradientReducer::buckets_started_during_backward() const { return state_->started_during_last_backward; }

void broadcast_tensors(ProcessGroup& group, const std::vector<Tensor>& tensors, int root, const std::string& what) {
  if (group.size() == 1) return;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    // f32 travels as is; every other dtype (f64, integer counters) as f64, exact for them.
    Tensor host = host_copy(t, t.dtype() == DType::f32 ? DType::f32 : DType::f64);
    group.broadcast(host, root, fmt::format("{} tensor {} of {} (shape {})", what, i + 1, tensors.size(),
                                            t.shape().str()));
    if (group.rank() != root) assign(t, host);
  }
}

void average_tensors(ProcessGroup& group, const std::vector<Tensor>& tensors, const std::string& what) {
  if (group.size() == 1) return;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    if (!is_floating(t.dtype())) continue;
    Tensor host = host_copy(t, DType::f64);
    group.all_reduce_sum(host, fmt::format("{} tensor {} of {}", what, i + 1, tensors.size()));
    double* v = host.data<double>();
    for (std::int64_t j = 0; j < host.numel(); ++j) v[j] /= group.size();
    assign(t, host);
  }
}

}  // namespace tlk::dist
