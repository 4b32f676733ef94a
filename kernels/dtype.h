#pragma once
// Element types the CUDA backend stores on the device, and the host-side names for them.
#include <cstddef>
#include <string>

#include <library_types.h>

namespace mamba {

enum class DType { F32, BF16, F16 };

inline size_t dtype_size(DType t) { return t == DType::F32 ? 4 : 2; }
inline const char* dtype_name(DType t) { return t == DType::F32 ? "f32" : t == DType::BF16 ? "bf16" : "f16"; }
inline cudaDataType_t cuda_data_type(DType t) { return t == DType::F32 ? CUDA_R_32F : t == DType::BF16 ? CUDA_R_16BF : CUDA_R_16F; }
DType parse_device_dtype(const std::string& s);  // "f32" | "bf16" | "f16"; throws mamba::Error otherwise

}  // namespace mamba
