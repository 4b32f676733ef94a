#include "engine/tensor_source.h"

#include <cstring>
#include <sstream>

namespace mamba {

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string TensorInfo::shape_str() const {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  s << "]";
  return s.str();
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0) {
    if (mant == 0) bits = sign;
    else {  // subnormal: renormalise
      int e = -1;
      do {
        mant <<= 1;
        ++e;
      } while (!(mant & 0x400));
      bits = sign | (uint32_t(127 - 15 - e) << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 31) bits = sign | 0x7f800000u | (mant << 13);
  else bits = sign | ((exp + 112) << 23) | (mant << 13);
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

void f16_to_f32(const uint8_t* src, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    uint16_t v;
    std::memcpy(&v, src + 2 * i, 2);
    out[i] = f16_to_f32(v);
  }
}

void bf16_to_f32(const uint8_t* src, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    uint16_t v;
    std::memcpy(&v, src + 2 * i, 2);
    const uint32_t bits = uint32_t(v) << 16;
    std::memcpy(out + i, &bits, 4);
  }
}

void q8_0_to_f32(const uint8_t* src, int64_t n, float* out) {
  for (int64_t b = 0; b < n / kQ8Block; ++b) {
    const uint8_t* blk = src + b * kQ8BlockBytes;
    uint16_t d16;
    std::memcpy(&d16, blk, 2);
    const float d = f16_to_f32(d16);
    const int8_t* q = reinterpret_cast<const int8_t*>(blk + 2);
    for (int64_t i = 0; i < kQ8Block; ++i) out[b * kQ8Block + i] = d * float(q[i]);
  }
}

}  // namespace mamba
