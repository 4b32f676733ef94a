#include "engine/pickle.h"

#include <cstring>
#include <unordered_map>

#include "engine/error.h"

namespace mamba::pickle {

namespace {

using Kind = Value::Kind;

const char* const kAllowed =
    "collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch.FloatStorage, torch.HalfStorage, torch.BFloat16Storage";

std::string storage_dtype(const std::string& global) {
  if (global == "torch.FloatStorage") return "F32";
  if (global == "torch.HalfStorage") return "F16";
  if (global == "torch.BFloat16Storage") return "BF16";
  return "";
}

bool allowed_global(const std::string& g) {
  return g == "collections.OrderedDict" || g == "torch._utils._rebuild_tensor_v2" || !storage_dtype(g).empty();
}

class Machine {
 public:
  Machine(std::string_view data, const std::string& origin, const Limits& lim) : m_d(data), m_origin(origin), m_lim(lim) {}

  ValuePtr run() {
    for (;;) {
      const size_t at = m_pos;
      const uint8_t op = u8();
      switch (op) {
        case 0x80: u8(); break;      // PROTO
        case 0x95: bytes(8); break;  // FRAME (length is advisory)
        case '.':                    // STOP
          if (m_stack.size() != 1 || !m_marks.empty()) fail(at, "STOP with a malformed stack");
          return m_stack.back();
        case '(': m_marks.push_back(m_stack.size()); break;  // MARK
        case ')': push(make(Kind::Tuple)); break;            // EMPTY_TUPLE
        case '}': push(make(Kind::Dict)); break;             // EMPTY_DICT
        case ']': push(make(Kind::List)); break;             // EMPTY_LIST
        case 'N': push(make(Kind::None)); break;
        case 0x88: push(boolean(true)); break;   // NEWTRUE
        case 0x89: push(boolean(false)); break;  // NEWFALSE
        case 'J': {                              // BININT
          int32_t v;
          std::memcpy(&v, bytes(4), 4);
          push(integer(v));
          break;
        }
        case 'K': push(integer(u8())); break;  // BININT1
        case 'M': {                            // BININT2
          uint16_t v;
          std::memcpy(&v, bytes(2), 2);
          push(integer(v));
          break;
        }
        case 0x8a: {  // LONG1
          const uint8_t n = u8();
          if (n > 8) fail(at, "integer of " + std::to_string(n) + " bytes is too large");
          const uint8_t* b = bytes(n);
          uint64_t v = 0;
          for (int k = n - 1; k >= 0; --k) v = (v << 8) | b[k];
          if (n > 0 && n < 8 && (b[n - 1] & 0x80)) v |= ~uint64_t(0) << (8 * n);  // sign-extend
          push(integer(static_cast<int64_t>(v)));
          break;
        }
        case 'G': {  // BINFLOAT (big-endian)
          const uint8_t* b = bytes(8);
          uint64_t bits = 0;
          for (int k = 0; k < 8; ++k) bits = (bits << 8) | b[k];
          auto v = make(Kind::Float);
          std::memcpy(&v->f, &bits, 8);
          push(v);
          break;
        }
        case 'X': push(string(u32())); break;        // BINUNICODE
        case 0x8c: push(string(u8())); break;        // SHORT_BINUNICODE
        case 0x8d: push(string(u64())); break;       // BINUNICODE8
        case 'U': push(string(u8())); break;         // SHORT_BINSTRING
        case 'T': push(string(u32())); break;        // BINSTRING
        case 'C': push(string(u8())); break;         // SHORT_BINBYTES
        case 'B': push(string(u32())); break;        // BINBYTES
        case 0x8e: push(string(u64())); break;       // BINBYTES8
        case 'q': memo_put(u8()); break;             // BINPUT
        case 'r': memo_put(u32()); break;            // LONG_BINPUT
        case 0x94: memo_put(m_memo.size()); break;   // MEMOIZE
        case 'h': push(memo_get(u8(), at)); break;   // BINGET
        case 'j': push(memo_get(u32(), at)); break;  // LONG_BINGET
        case 't': {                                  // TUPLE
          auto v = make(Kind::Tuple);
          v->items = pop_mark(at);
          push(finish(v, at));
          break;
        }
        case 0x85:
        case 0x86:
        case 0x87: {  // TUPLE1..3
          const size_t n = op - 0x84;
          if (m_stack.size() < n + floor()) fail(at, "tuple of more items than the stack holds");
          auto v = make(Kind::Tuple);
          v->items.assign(m_stack.end() - static_cast<long>(n), m_stack.end());
          m_stack.resize(m_stack.size() - n);
          push(finish(v, at));
          break;
        }
        case 'a': {  // APPEND
          ValuePtr x = pop(at);
          auto l = mutable_top(at, Kind::List);
          l->items.push_back(x);
          finish(l, at);
          break;
        }
        case 'e': {  // APPENDS
          auto xs = pop_mark(at);
          auto l = mutable_top(at, Kind::List);
          l->items.insert(l->items.end(), xs.begin(), xs.end());
          finish(l, at);
          break;
        }
        case 's': {  // SETITEM
          ValuePtr v = pop(at), k = pop(at);
          auto d = mutable_top(at, Kind::Dict);
          d->entries.emplace_back(k, v);
          finish(d, at);
          break;
        }
        case 'u': {  // SETITEMS
          auto xs = pop_mark(at);
          if (xs.size() % 2) fail(at, "SETITEMS with an odd number of items");
          auto d = mutable_top(at, Kind::Dict);
          for (size_t k = 0; k < xs.size(); k += 2) d->entries.emplace_back(xs[k], xs[k + 1]);
          finish(d, at);
          break;
        }
        case 'c': {  // GLOBAL module\nname\n
          const std::string module = line(at), name = line(at);
          push(global(module + "." + name, at));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          ValuePtr name = pop(at), module = pop(at);
          if (name->kind != Kind::String || module->kind != Kind::String) fail(at, "STACK_GLOBAL needs two strings");
          push(global(module->s + "." + name->s, at));
          break;
        }
        case 'Q': {  // BINPERSID
          ValuePtr pid = pop(at);
          push(persistent(pid, at));
          break;
        }
        case 'R': {  // REDUCE
          ValuePtr args = pop(at), fn = pop(at);
          push(reduce(fn, args, at));
          break;
        }
        case 'b': {  // BUILD: only an OrderedDict's attributes (a state dict's _metadata), which are dropped
          ValuePtr state = pop(at);
          state->sealed = true;
          if (m_stack.size() <= floor() || m_stack.back()->kind != Kind::Dict)
            fail(at, "BUILD is only accepted on a dictionary (a state dict's _metadata)");
          if (state->kind != Kind::Dict && state->kind != Kind::None && state->kind != Kind::Tuple)
            fail(at, "BUILD with an unexpected state");
          break;
        }
        case 'P': fail(at, "text persistent ids (PERSID) are refused");
        case 0x81:
        case 0x92: fail(at, "object construction (NEWOBJ) is refused: only a state dict's classes are accepted");
        case 'i':
        case 'o': fail(at, "object construction (INST/OBJ) is refused");
        case 0x82:
        case 0x83:
        case 0x84: fail(at, "extension registry references (EXT) are refused");
        default: {
          char buf[8];
          std::snprintf(buf, sizeof buf, "0x%02x", op);
          fail(at, std::string("unsupported pickle opcode ") + buf);
        }
      }
    }
  }

 private:
  [[noreturn]] void fail(size_t at, const std::string& what) const {
    throw Error(m_origin + ": pickle byte " + std::to_string(at) + ": " + what + "; nothing was executed");
  }

  uint8_t u8() {
    if (m_pos >= m_d.size()) fail(m_pos, "truncated (no STOP)");
    return static_cast<uint8_t>(m_d[m_pos++]);
  }
  const uint8_t* bytes(uint64_t n) {
    if (n > m_d.size() - m_pos) fail(m_pos, "a length of " + std::to_string(n) + " bytes runs past the end of the pickle");
    const uint8_t* p = reinterpret_cast<const uint8_t*>(m_d.data()) + m_pos;
    m_pos += static_cast<size_t>(n);
    return p;
  }
  uint32_t u32() {
    uint32_t v;
    std::memcpy(&v, bytes(4), 4);
    return v;
  }
  uint64_t u64() {
    uint64_t v;
    std::memcpy(&v, bytes(8), 8);
    return v;
  }
  std::string line(size_t at) {
    const size_t nl = m_d.find('\n', m_pos);
    if (nl == std::string_view::npos || nl - m_pos > 256) fail(at, "malformed GLOBAL");
    std::string s(m_d.substr(m_pos, nl - m_pos));
    m_pos = nl + 1;
    return s;
  }

  static std::shared_ptr<Value> make(Kind k) {
    auto v = std::make_shared<Value>();
    v->kind = k;
    return v;
  }
  static std::shared_ptr<Value> integer(int64_t i) {
    auto v = make(Kind::Int);
    v->i = i;
    return v;
  }
  static std::shared_ptr<Value> boolean(bool b) {
    auto v = make(Kind::Bool);
    v->i = b;
    return v;
  }
  std::shared_ptr<Value> string(uint64_t n) {
    auto v = make(Kind::String);
    const uint8_t* p = bytes(n);
    v->s.assign(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
    return v;
  }

  size_t floor() const { return m_marks.empty() ? 0 : m_marks.back(); }
  void push(ValuePtr v) {
    if (m_stack.size() >= m_lim.max_stack) fail(m_pos, "the stack grows past " + std::to_string(m_lim.max_stack) + " items");
    m_stack.push_back(std::move(v));
  }
  ValuePtr pop(size_t at) {
    if (m_stack.size() <= floor()) fail(at, "stack underflow");
    ValuePtr v = std::move(m_stack.back());
    m_stack.pop_back();
    return v;
  }
  std::vector<ValuePtr> pop_mark(size_t at) {
    if (m_marks.empty()) fail(at, "no MARK");
    const size_t m = m_marks.back();
    m_marks.pop_back();
    std::vector<ValuePtr> xs(m_stack.begin() + static_cast<long>(m), m_stack.end());
    m_stack.resize(m);
    return xs;
  }
  // The container on top of the stack, to be changed in place (it was created by this pickle).
  Value* mutable_top(size_t at, Kind k) {
    if (m_stack.size() <= floor() || m_stack.back()->kind != k) fail(at, "an item added to something that is not a container");
    if (m_stack.back()->sealed) fail(at, "an item added to a container that is already inside another one");
    return const_cast<Value*>(m_stack.back().get());
  }
  // Checks the nesting depth of a container after it changed.
  template <typename V>
  V finish(V v, size_t at) {
    int d = 0;
    auto seal = [&](const ValuePtr& x) {
      if (x.get() == &*v) {
        // the container holds a reference to itself: break the cycle before refusing, or it is never freed
        v->items.clear();
        v->entries.clear();
        fail(at, "a container inside itself");
      }
      x->sealed = true;
      d = std::max(d, x->depth);
    };
    for (const auto& x : v->items) seal(x);
    for (const auto& [k, x] : v->entries) {
      seal(k);
      seal(x);
    }
    v->depth = d + 1;
    if (v->depth > m_lim.max_depth) fail(at, "nesting deeper than " + std::to_string(m_lim.max_depth) + " levels");
    return v;
  }

  void memo_put(uint64_t idx) {
    if (m_stack.size() <= floor()) fail(m_pos, "memo of an empty stack");
    if (idx >= m_lim.max_memo) fail(m_pos, "memo index " + std::to_string(idx) + " is too large");
    m_memo[idx] = m_stack.back();
    if (m_memo.size() > m_lim.max_memo) fail(m_pos, "too many memo entries");
  }
  ValuePtr memo_get(uint64_t idx, size_t at) {
    auto it = m_memo.find(idx);
    if (it == m_memo.end()) fail(at, "memo index " + std::to_string(idx) + " was never stored");
    return it->second;
  }

  ValuePtr global(const std::string& g, size_t at) {
    if (!allowed_global(g)) fail(at, "refused global '" + g + "' (a state dict needs only " + kAllowed + ")");
    auto v = make(Kind::Global);
    v->s = g;
    return v;
  }

  static bool is_int(const ValuePtr& v) { return v->kind == Kind::Int; }
  static std::vector<int64_t> int_tuple(const ValuePtr& v, bool& ok) {
    std::vector<int64_t> out;
    ok = v->kind == Kind::Tuple;
    if (!ok) return out;
    for (const auto& x : v->items) {
      if (!is_int(x) || x->i < 0) ok = false;
      else out.push_back(x->i);
    }
    return out;
  }

  // ('storage', <storage class>, key, location, numel)
  ValuePtr persistent(const ValuePtr& pid, size_t at) {
    pid->sealed = true;
    if (pid->kind != Kind::Tuple || pid->items.size() != 5 || pid->items[0]->kind != Kind::String || pid->items[0]->s != "storage")
      fail(at, "a persistent id that is not ('storage', type, key, location, numel)");
    const auto& it = pid->items;
    const std::string dtype = it[1]->kind == Kind::Global ? storage_dtype(it[1]->s) : "";
    if (dtype.empty()) fail(at, "a storage of an unsupported type (F32, F16 and BF16 are accepted)");
    if (it[2]->kind != Kind::String || it[2]->s.empty() || it[2]->s.size() > 64) fail(at, "a storage key that is not a short string");
    for (char ch : it[2]->s)
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_') fail(at, "storage key '" + it[2]->s + "' is not a plain name");
    if (it[3]->kind != Kind::String) fail(at, "a storage location that is not a string");
    if (!is_int(it[4]) || it[4]->i < 0) fail(at, "a storage size that is not a non-negative integer");
    auto v = make(Kind::Storage);
    v->storage = {dtype, it[2]->s, it[4]->i};
    return v;
  }

  ValuePtr reduce(const ValuePtr& fn, const ValuePtr& args, size_t at) {
    args->sealed = true;
    if (fn->kind != Kind::Global) fail(at, "REDUCE of something that is not an accepted global");
    if (args->kind != Kind::Tuple) fail(at, "REDUCE arguments are not a tuple");
    if (fn->s == "collections.OrderedDict") {
      if (!args->items.empty()) fail(at, "OrderedDict with constructor arguments");
      return make(Kind::Dict);
    }
    if (fn->s == "torch._utils._rebuild_tensor_v2") {
      const auto& a = args->items;
      if (a.size() < 4 || a.size() > 7 || a[0]->kind != Kind::Storage || !is_int(a[1]) || a[1]->i < 0)
        fail(at, "_rebuild_tensor_v2 with unexpected arguments");
      bool ok1 = false, ok2 = false;
      auto v = make(Kind::Tensor);
      v->tensor.storage = a[0]->storage;
      v->tensor.offset = a[1]->i;
      v->tensor.size = int_tuple(a[2], ok1);
      v->tensor.stride = int_tuple(a[3], ok2);
      if (!ok1 || !ok2 || v->tensor.size.size() != v->tensor.stride.size() || v->tensor.size.size() > 8)
        fail(at, "_rebuild_tensor_v2 with a malformed size or stride");
      return v;
    }
    fail(at, "REDUCE of '" + fn->s + "' is refused");
  }

  std::string_view m_d;
  const std::string& m_origin;
  Limits m_lim;
  size_t m_pos = 0;
  std::vector<ValuePtr> m_stack;
  std::vector<size_t> m_marks;
  std::unordered_map<uint64_t, ValuePtr> m_memo;
};

}  // namespace

ValuePtr load(std::string_view data, const std::string& origin, const Limits& limits) { return Machine(data, origin, limits).run(); }

}  // namespace mamba::pickle
