#pragma once
// Chooses a backend by device name; knows whether this build has CUDA and whether a GPU is present.
#include <memory>
#include <string>

#include "engine/backend.h"

namespace mamba {

// "cpu" or "cuda"; throws mamba::Error with the reason when the device is unavailable.
std::unique_ptr<Backend> make_backend(const std::string& device, std::shared_ptr<const Model> model, const BackendOptions& opt = {});

// True when a CUDA device can be used; otherwise `why` says why not (not built with CUDA, no GPU, driver).
bool cuda_available(std::string* why = nullptr);

}  // namespace mamba
