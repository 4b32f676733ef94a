// libFuzzer target: a state snapshot (.mstate) as a stranger may write it. Each input is decoded twice:
// as it is (the frame's checks: magic, sizes, both checksums), and resealed — its header and payload sizes
// made to fit the input and both checksums recomputed — so that mutations reach the header's JSON and
// the payload's meaning instead of stopping at the checksum. A snapshot that decodes must describe itself
// (snapshot_info) and encode back to bytes that decode to the same snapshot.
#include <cstring>
#include <string_view>

#include "engine/digest.h"
#include "engine/snapshot.h"
#include "tests/fuzz/fuzz_file.h"

namespace {

constexpr size_t kPrefix = 40, kChecksum = 16;  // the frame of engine/snapshot.cpp

void put64(std::string& b, size_t at, uint64_t v) { std::memcpy(b.data() + at, &v, 8); }  // little-endian hosts

std::string reseal(std::string b) {
  uint64_t hb = 0;
  std::memcpy(&hb, b.data() + 16, 8);
  const uint64_t room = b.size() - kPrefix - kChecksum;
  if (hb > room) hb = room;
  put64(b, 16, hb);
  put64(b, 24, room - hb);
  put64(b, 32, mamba::xxh3_64(b.data(), 32));
  const mamba::Digest128 sum = mamba::xxh3_128(b.data(), b.size() - kChecksum);
  put64(b, b.size() - 16, sum.lo);
  put64(b, b.size() - 8, sum.hi);
  return b;
}

void decode(std::string_view bytes) {
  const std::string origin = "fuzz.mstate";
  try {
    const mamba::Snapshot s = mamba::decode_snapshot(bytes, origin);
    (void)mamba::snapshot_info(bytes, origin);
    const std::string again = mamba::encode_snapshot(s);
    const mamba::Snapshot t = mamba::decode_snapshot(again, origin);
    if (t.tokens != s.tokens || t.pending != s.pending || t.state.layers.size() != s.state.layers.size()) std::abort();
  } catch (const mamba::Error& e) {
    fuzz::require_named(e, origin);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  decode(bytes);
  if (size >= kPrefix + kChecksum) decode(reseal(bytes));
  return 0;
}
