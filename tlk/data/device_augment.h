#pragma once
#include "tlk/data/augment.h"

/// nnUNet's augmentation applied on a GPU to draws made on the CPU.
///
/// Note [Augmentation on the GPU]: with `data.augment_on: device` the loader threads only cut the
/// enlarged region of each sample and make its draws (draw_augmentation, Note [Draw, then apply]);
/// the trainer copies the region to the GPU and applies the draws there with the kernels of
/// kernels/cuda/augment_launch.cu. Each kernel's per-voxel body is the function the CPU transform
/// uses or one checked against it on the host (Note [Kernel bodies on the host]), so the result
/// equals the CPU's up to float rounding, with one exception: Gaussian noise (Note [GPU noise]).
///
/// Note [GPU noise]: the CPU draws noise per z-slice from a sequential generator; a GPU thread cannot
/// walk such a stream to its voxel. The GPU gives voxel i of channel c the value sigma * N_i from a
/// counter-based Box-Muller (kernels::augment::noise_value, seeded by the same per-channel seed), so
/// the noise has the CPU's sigma and distribution but not its values.
namespace tlk::data {

/// apply_augmentation for CUDA tensors: `image` f32 [C, D, H, W] and `labels` u8 [D, H, W] (or
/// undefined) on one GPU give a patch of extent `out_patch` on that GPU. Throws tlk::Error naming the
/// problem when TLK was built without CUDA or the tensors are not on a GPU.
/// Example: `AugmentedPatch p = apply_augmentation_cuda(image.to(Device::cuda()), Tensor(), {64, 64, 64}, draws);`
AugmentedPatch apply_augmentation_cuda(const Tensor& image, const Tensor& labels, Extent3 out_patch,
                                       const AugmentDraws& draws);

}  // namespace tlk::data
