#pragma once
// Hashes from xxHash (XXH3): fast, stable across platforms and versions of the library (the XXH3
// output is frozen since 0.8.0), used for model identities and file checksums. Not cryptographic.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace mamba {

struct Digest128 {
  uint64_t lo = 0, hi = 0;
  std::string hex() const;  // 32 lowercase hex digits, high half first (xxhsum's canonical form)
  bool operator==(const Digest128&) const = default;
};

uint64_t xxh3_64(const void* data, size_t bytes);
Digest128 xxh3_128(const void* data, size_t bytes);

// The same XXH3-128 over data that arrives in pieces.
class Hasher128 {
 public:
  Hasher128();
  ~Hasher128();
  Hasher128(const Hasher128&) = delete;
  Hasher128& operator=(const Hasher128&) = delete;
  void update(const void* data, size_t bytes);
  Digest128 digest() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

}  // namespace mamba
