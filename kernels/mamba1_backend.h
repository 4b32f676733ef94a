#pragma once
// Mamba-1 on CUDA: cuBLAS for in_proj, out_proj and the LM head (weights in bf16 / f16 / f32, fp32
// accumulation), x_proj and dt_proj in f32, and two kernels of its own per layer (mamba1_conv.cuh,
// mamba1_scan.cuh). The state lives on the device in the host State's layout; decode is the host loop
// of Backend::decode over step(). Probes are collected from the scan's optional outputs.
#include <memory>

#include "engine/backend.h"

namespace mamba {

std::unique_ptr<Backend> make_cuda_mamba1_backend(std::shared_ptr<const Model> model, const BackendOptions& opt);

}  // namespace mamba
