#include "engine/digest.h"

#define XXH_INLINE_ALL  // header-only use: nothing to link, one translation unit holds it
#include <xxhash.h>

#include <cstdio>

#include "engine/error.h"

namespace mamba {

std::string Digest128::hex() const {
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(hi), static_cast<unsigned long long>(lo));
  return buf;
}

uint64_t xxh3_64(const void* data, size_t bytes) { return XXH3_64bits(data, bytes); }

Digest128 xxh3_128(const void* data, size_t bytes) {
  const XXH128_hash_t h = XXH3_128bits(data, bytes);
  return {h.low64, h.high64};
}

struct Hasher128::Impl {
  XXH3_state_t* state = nullptr;
};

Hasher128::Hasher128() : m_impl(std::make_unique<Impl>()) {
  m_impl->state = XXH3_createState();
  if (!m_impl->state) throw std::bad_alloc();
  XXH3_128bits_reset(m_impl->state);
}

Hasher128::~Hasher128() { XXH3_freeState(m_impl->state); }

void Hasher128::update(const void* data, size_t bytes) {
  if (bytes) XXH3_128bits_update(m_impl->state, data, bytes);
}

Digest128 Hasher128::digest() const {
  const XXH128_hash_t h = XXH3_128bits_digest(m_impl->state);
  return {h.low64, h.high64};
}

}  // namespace mamba
