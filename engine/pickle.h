#pragma once
// A restricted unpickler for PyTorch state dicts. It interprets the pickle opcodes a state dict uses
// and builds plain values; it never calls anything. Globals are refused unless they name one of the
// few classes a state dict needs (collections.OrderedDict, torch._utils._rebuild_tensor_v2 and the
// Float/Half/BFloat16 storage types), and REDUCE / BUILD are only interpreted for those. Everything is
// bounded: nesting depth, stack, memo, and every length is checked against the bytes that remain.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mamba::pickle {

struct Value;
using ValuePtr = std::shared_ptr<const Value>;

// A storage a tensor points into: the archive entry data/<key> of `numel` elements of `dtype`.
struct StorageRef {
  std::string dtype;  // F32 | F16 | BF16
  std::string key;    // archive entry name under data/
  int64_t numel = 0;
};

// torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...), as data.
struct TensorRef {
  StorageRef storage;
  int64_t offset = 0;  // in elements
  std::vector<int64_t> size, stride;
};

struct Value {
  enum class Kind { None, Bool, Int, Float, String, Tuple, List, Dict, Global, Storage, Tensor };
  Kind kind = Kind::None;
  int depth = 0;                                       // nesting depth (scalars 0)
  int64_t i = 0;                                       // Bool, Int
  double f = 0;                                        // Float
  std::string s;                                       // String (text or bytes); Global: "module.name"
  std::vector<ValuePtr> items;                         // Tuple, List
  std::vector<std::pair<ValuePtr, ValuePtr>> entries;  // Dict (insertion order; OrderedDict too)
  StorageRef storage;                                  // Storage
  TensorRef tensor;                                    // Tensor
  // Set once the value is inside another container: it can no longer grow, so depths computed on
  // insertion stay true and no cycle can form.
  mutable bool sealed = false;
};

struct Limits {
  int max_depth = 64;
  size_t max_stack = 1 << 20;
  size_t max_memo = 1 << 22;
};

// Interprets `data` (one pickle, up to STOP). Throws mamba::Error "<origin>: ..." on anything outside
// the restricted set, on malformed input, and on any limit.
ValuePtr load(std::string_view data, const std::string& origin, const Limits& limits = {});

}  // namespace mamba::pickle
