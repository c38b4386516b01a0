#include "tlk/task/data_parallel.h"

#include <omp.h>

#include <algorithm>

#include "tlk/nn/norm.h"

namespace tlk::task {

namespace {

std::vector<Tensor> tensors_of(const std::vector<nn::NamedTensor>& named) {
  std::vector<Tensor> out;
  for (const auto& [name, t] : named) out.push_back(t);
  return out;
}

int set_cross_process_sum(nn::Module& module, const ops::CrossProcessSum& sum) {
  int count = 0;
  if (auto* bn = dynamic_cast<nn::BatchNorm3d*>(&module)) {
    bn->cross_process_sum = sum;
    ++count;
  }
  for (const auto& [name, child] : module.children())
    if (child) count += set_cross_process_sum(*child, sum);
  return count;
}

}  // namespace

int DataParallel::threads(int threads) const {
  if (threads > 0 || !group_) return threads;
  return std::max(1, omp_get_num_procs() / group_->local_size());
}

Device DataParallel::device(const Device& configured, const std::string& text) const {
  return group_ && configured.is_cuda() && text == "cuda" ? Device::cuda(group_->local_rank()) : configured;
}

void DataParallel::start(const std::string& inputs, const std::vector<const nn::Module*>& modules,
                         double bucket_mb) {
  if (!group_) return;
  group_->check_same(inputs, "the training config or case list");
  // Every rank starts from rank 0's state (its initialisation, fine-tune or resumed checkpoint).
  for (const nn::Module* m : modules)
    if (m) dist::broadcast_tensors(*group_, tensors_of(m->state_dict()), 0, "model state");
  std::vector<Tensor> reduced;
  for (const Tensor& p : nn::parameters_of(modules))
    if (p.requires_grad()) reduced.push_back(p);
  reducer_ = std::make_unique<dist::GradientReducer>(
      *group_, reduced, dist::GradientReducerOptions{static_cast<std::int64_t>(bucket_mb * (1 << 20))});
}

void DataParallel::after_backward() {
  if (reducer_) reducer_->finish_backward();
}

std::vector<double> DataParallel::mean(std::vector<double> values, const std::string& what) const {
  if (!group_) return values;
  values = group_->all_reduce_sum(values, what);
  for (double& v : values) v /= group_->size();
  return values;
}

std::vector<double> DataParallel::sum(std::vector<double> values, const std::string& what) const {
  return group_ ? group_->all_reduce_sum(values, what) : values;
}

void DataParallel::average_buffers(const std::vector<const nn::Module*>& modules) const {
  if (!group_) return;
  for (const nn::Module* m : modules)
    if (m) dist::average_tensors(*group_, tensors_of(m->named_buffers()), "batch-norm statistics");
}

void DataParallel::barrier(const std::string& what) const {
  if (group_) group_->barrier(what);
}

int DataParallel::synchronize_batch_norm(const std::vector<nn::Module*>& modules) const {
  if (!group_) return 0;
  // The statistics are a few numbers per channel: they travel through MPI from the CPU.
  const ops::CrossProcessSum sum = [group = group_](const Tensor& t) {
    Tensor total = t.to(Device::cpu()).to(Layout::plain).contiguous().clone();
    group->all_reduce_sum(total, "synchronized batch-norm statistics");
    return total.to(t.device());
  };
  int count = 0;
  for (nn::Module* m : modules)
    if (m) count += set_cross_process_sum(*m, sum);
  return count;
}

}  // namespace tlk::task
