#pragma once
// The engine's version (the CMake project version), recorded in the files it writes.
namespace mamba {
const char* engine_version();
}  // namespace mamba
