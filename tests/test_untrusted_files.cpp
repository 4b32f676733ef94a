// Hostile and malformed checkpoints: pickles that try to run code, recurse, or declare impossible sizes;
// zip bombs and archive entries that escape; one handcrafted GGUF per failure mode (as llama.cpp's
// test-gguf.cpp does), every truncation of a valid GGUF, and random corruption. Each must be refused with
// a clear error; nothing may execute or crash.
#include <gtest/gtest.h>
#include <zip.h>

#include <cstring>
#include <random>

#include "engine/checkpoint.h"
#include "engine/gguf.h"
#include "engine/pickle.h"
#include "engine/torch_checkpoint.h"
#include "tests/test_util.h"

using namespace mamba;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

#define EXPECT_REFUSED(expr, part)                                                             \
  do {                                                                                         \
    const std::string msg_ = error_of([&] { expr; });                                          \
    EXPECT_NE(msg_.find(part), std::string::npos) << "expected '" << part << "' in: " << msg_; \
  } while (0)

// --- pickle opcodes -----------------------------------------------------------------------------------
struct Pickle {
  std::string b = std::string("\x80\x02", 2);
  Pickle& op(char c) {
    b += c;
    return *this;
  }
  Pickle& global(const std::string& module, const std::string& name) {
    b += 'c' + module + '\n' + name + '\n';
    return *this;
  }
  Pickle& str(const std::string& s) {
    b += 'X';
    const uint32_t n = static_cast<uint32_t>(s.size());
    b.append(reinterpret_cast<const char*>(&n), 4);
    b += s;
    return *this;
  }
  Pickle& i1(uint8_t v) {
    b += 'K';
    b += static_cast<char>(v);
    return *this;
  }
  Pickle& i4(int32_t v) {
    b += 'J';
    b.append(reinterpret_cast<const char*>(&v), 4);
    return *this;
  }
  Pickle& put(uint32_t idx) {
    b += 'r';
    b.append(reinterpret_cast<const char*>(&idx), 4);
    return *this;
  }
  Pickle& get(uint32_t idx) {
    b += 'j';
    b.append(reinterpret_cast<const char*>(&idx), 4);
    return *this;
  }
  // _rebuild_tensor_v2(storage(key, numel), 0, size, stride, False, OrderedDict())
  Pickle& tensor(const std::string& key, int64_t numel, std::vector<int32_t> size, std::vector<int32_t> stride,
                 const char* storage = "FloatStorage") {
    global("torch._utils", "_rebuild_tensor_v2").op('(');
    op('(').str("storage").global("torch", storage).str(key).str("cpu").i4(static_cast<int32_t>(numel)).op('t').op('Q');
    i1(0);
    op('(');
    for (int32_t s : size) i4(s);
    op('t').op('(');
    for (int32_t s : stride) i4(s);
    op('t');
    op('\x89').global("collections", "OrderedDict").op(')').op('R');
    return op('t').op('R');
  }
  std::string done() { return b + '.'; }
};

// A state dict {"w": (2, 3) f32 from storage "0"} as torch.save writes it.
std::string state_dict_pickle(std::vector<int32_t> size = {2, 3}, std::vector<int32_t> stride = {3, 1}, int64_t numel = 6) {
  Pickle p;
  p.global("collections", "OrderedDict").op(')').op('R').put(0).op('(').str("w").tensor("0", numel, size, stride).op('u');
  return p.done();
}

struct ZipEntry {
  std::string name, data;
  bool deflate = false;
};

void write_zip(const std::string& path, const std::vector<ZipEntry>& entries) {
  int err = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  ASSERT_NE(z, nullptr);
  for (const auto& e : entries) {
    zip_source_t* s = zip_source_buffer(z, e.data.data(), e.data.size(), 0);
    ASSERT_NE(s, nullptr);
    const zip_int64_t idx = zip_file_add(z, e.name.c_str(), s, ZIP_FL_OVERWRITE | ZIP_FL_ENC_UTF_8);
    ASSERT_GE(idx, 0) << e.name;
    zip_set_file_compression(z, static_cast<zip_uint64_t>(idx), e.deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0);
  }
  ASSERT_EQ(zip_close(z), 0);
}

std::string floats(std::initializer_list<float> v) { return test::f32_bytes(std::vector<float>(v)); }

std::string refusal(const std::string& pkl, std::vector<ZipEntry> extra = {}, const TorchZipLimits& lim = {}) {
  test::TempDir d;
  std::vector<ZipEntry> e = {{"archive/data.pkl", pkl}, {"archive/data/0", floats({1, 2, 3, 4, 5, 6})}};
  e.insert(e.end(), extra.begin(), extra.end());
  write_zip(d.file("pytorch_model.bin"), e);
  return error_of([&] { open_torch_checkpoint(d.file("pytorch_model.bin"), lim); });
}

}  // namespace

TEST(TorchZip, HandcraftedStateDictLoads) {
  test::TempDir d;
  write_zip(d.file("m.bin"), {{"archive/data.pkl", state_dict_pickle()}, {"archive/data/0", floats({1, 2, 3, 4, 5, 6})}});
  auto src = open_torch_checkpoint(d.file("m.bin"));
  const TensorInfo* t = src->find("w");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->shape, (std::vector<int64_t>{2, 3}));
  std::vector<float> out(6);
  src->read_f32(*t, out.data());
  EXPECT_EQ(out, (std::vector<float>{1, 2, 3, 4, 5, 6}));
  // A transposed view of the same storage is gathered by its strides.
  write_zip(d.file("t.bin"), {{"archive/data.pkl", state_dict_pickle({3, 2}, {1, 3})}, {"archive/data/0", floats({1, 2, 3, 4, 5, 6})}});
  auto tsrc = open_torch_checkpoint(d.file("t.bin"));
  tsrc->read_f32(*tsrc->find("w"), out.data());
  EXPECT_EQ(out, (std::vector<float>{1, 4, 2, 5, 3, 6}));
}

TEST(TorchZip, CodeExecutionIsRefused) {
  test::TempDir d;
  const std::string marker = d.file("pwned");
  // posix.system("touch marker"), as pickle's protocol 0 and as STACK_GLOBAL.
  Pickle p0;
  p0.global("posix", "system").op('(').str("touch " + marker).op('t').op('R');
  std::string msg = refusal(p0.done());
  EXPECT_NE(msg.find("refused global 'posix.system'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("nothing was executed"), std::string::npos) << msg;
  Pickle p1;
  p1.str("os").str("system").op('\x93').str("touch " + marker).op('\x85').op('R');
  EXPECT_NE(refusal(p1.done()).find("refused global 'os.system'"), std::string::npos);
  for (auto [m, n] : {std::pair{"builtins", "eval"}, {"subprocess", "Popen"}, {"torch", "load"}, {"torch._utils", "_rebuild_parameter"}}) {
    Pickle p;
    p.global(m, n);
    EXPECT_NE(refusal(p.done()).find("refused global"), std::string::npos) << m << "." << n;
  }
  EXPECT_FALSE(std::filesystem::exists(marker));
}

TEST(TorchZip, ReduceOfAnythingElseIsRefused) {
  Pickle p;  // an accepted global that is not a callable we interpret
  p.global("torch", "FloatStorage").op(')').op('R');
  EXPECT_NE(refusal(p.done()).find("REDUCE of 'torch.FloatStorage' is refused"), std::string::npos);
  Pickle q;  // a string as the callable
  q.str("system").op(')').op('R');
  EXPECT_NE(refusal(q.done()).find("REDUCE of something that is not an accepted global"), std::string::npos);
  Pickle r;  // object construction opcodes
  r.global("collections", "OrderedDict").op(')').op('\x81');
  EXPECT_NE(refusal(r.done()).find("NEWOBJ"), std::string::npos);
  Pickle s;
  s.op('(').str("a").op('i');
  EXPECT_NE(refusal(s.done()).find("INST/OBJ"), std::string::npos);
  Pickle t;  // BUILD on a tensor
  t.global("collections", "OrderedDict").op(')').op('R').put(0).op('(').str("w").tensor("0", 6, {6}, {1}).op('}').op('b').op('u');
  EXPECT_NE(refusal(t.done()).find("BUILD is only accepted"), std::string::npos);
}

TEST(TorchZip, DeepRecursionIsRefused) {
  Pickle p;  // 100000 nested lists
  for (int i = 0; i < 100000; ++i) p.op(']');
  for (int i = 0; i < 99999; ++i) p.op('a');
  EXPECT_NE(refusal(p.done()).find("nesting deeper than 64"), std::string::npos);
  Pickle q;  // nested tuples through MARK ... TUPLE
  for (int i = 0; i < 100000; ++i) q.op('(');
  for (int i = 0; i < 100000; ++i) q.op('t');
  EXPECT_NE(refusal(q.done()).find("nesting deeper"), std::string::npos);
  Pickle r;  // a chain grown after its links were nested: list 1 goes into list 0, then list 2 into list 1
  r.op(']').put(0).op(']').put(1).op(']').put(2).get(0).get(1).op('a').get(1).get(2).op('a');
  EXPECT_NE(refusal(r.done()).find("already inside another"), std::string::npos);
  Pickle s;  // a list inside itself
  s.op(']').put(0).get(0).op('a');
  EXPECT_NE(refusal(s.done()).find("inside itself"), std::string::npos);
}

TEST(TorchZip, HugeDeclaredSizesAreRefused) {
  std::string big_str = "\x80\x02X";
  const uint32_t n = 0xfffffff0u;
  big_str.append(reinterpret_cast<const char*>(&n), 4);
  EXPECT_NE(refusal(big_str + "abc.").find("runs past the end of the pickle"), std::string::npos);
  std::string big8 = "\x80\x02\x8d";
  const uint64_t n8 = uint64_t(1) << 62;
  big8.append(reinterpret_cast<const char*>(&n8), 8);
  EXPECT_NE(refusal(big8 + ".").find("runs past the end"), std::string::npos);
  Pickle memo;
  memo.op('N').put(0xffffffffu);
  EXPECT_NE(refusal(memo.done()).find("memo index"), std::string::npos);
  // A storage declaring more elements than its entry holds, and a view past its storage.
  EXPECT_NE(refusal(state_dict_pickle({2, 3}, {3, 1}, 1 << 30)).find("declares 1073741824 elements"), std::string::npos);
  EXPECT_NE(refusal(state_dict_pickle({1 << 20, 1 << 20}, {1 << 20, 1})).find("reaches element"), std::string::npos);
  EXPECT_NE(refusal(state_dict_pickle({2, 4}, {4, 1})).find("reaches element"), std::string::npos);
  std::string neg = state_dict_pickle({-2, 3}, {3, 1});
  EXPECT_NE(refusal(neg).find("malformed size"), std::string::npos);
}

TEST(TorchZip, ZipBombsAndEscapingEntriesAreRefused) {
  // data.pkl that inflates past the limit (65 MiB of zeros, a few dozen KB compressed).
  const std::string zeros(65u << 20, '\0');
  test::TempDir d;
  write_zip(d.file("bomb.bin"), {{"archive/data.pkl", zeros, true}});
  EXPECT_REFUSED(open_torch_checkpoint(d.file("bomb.bin")), "more than a state dict needs");
  EXPECT_LT(std::filesystem::file_size(d.file("bomb.bin")), 1u << 20);
  // A storage entry far larger than the pickle says.
  write_zip(d.file("big.bin"), {{"archive/data.pkl", state_dict_pickle()}, {"archive/data/0", std::string(8u << 20, '\0'), true}});
  EXPECT_REFUSED(open_torch_checkpoint(d.file("big.bin")), "declares 6 elements but its entry holds 8388608 bytes");
  for (const char* evil : {"../evil", "/etc/evil", "archive/../../evil", "archive/data/..\\..\\evil"}) {
    const std::string msg = refusal(state_dict_pickle(), {{evil, "x"}});
    EXPECT_NE(msg.find("escapes the archive"), std::string::npos) << evil << ": " << msg;
  }
  // A storage key that tries to leave data/.
  Pickle p;
  p.global("collections", "OrderedDict").op(')').op('R').op('(').str("w").tensor("../0", 6, {6}, {1}).op('u');
  EXPECT_NE(refusal(p.done()).find("not a plain name"), std::string::npos);
}

TEST(TorchZip, LegacyAndForeignFilesAreNamed) {
  test::TempDir d;
  const unsigned char legacy[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};
  test::write_file(d.file("old.bin"), std::string(reinterpret_cast<const char*>(legacy), sizeof legacy));
  EXPECT_REFUSED(open_torch_checkpoint(d.file("old.bin")), "legacy (pre-1.6, non-zip) format");
  test::write_file(d.file("text.bin"), "hello");
  EXPECT_REFUSED(open_torch_checkpoint(d.file("text.bin")), "not a PyTorch checkpoint");
  write_zip(d.file("nopkl.bin"), {{"archive/other", "x"}});
  EXPECT_REFUSED(open_torch_checkpoint(d.file("nopkl.bin")), "no <name>/data.pkl");
  write_zip(d.file("list.bin"), {{"archive/data.pkl", Pickle().op(']').done()}});
  EXPECT_REFUSED(open_torch_checkpoint(d.file("list.bin")), "does not hold a state dict");
  // Every truncation of a valid pickle is refused, never a crash.
  const std::string good = state_dict_pickle();
  for (size_t n = 0; n + 1 < good.size(); ++n) EXPECT_THROW(pickle::load(std::string_view(good.data(), n), "cut"), Error) << "cut at " << n;
}

// --- GGUF ---------------------------------------------------------------------------------------------
namespace {

struct GgufBuilder {
  uint32_t version = 3;
  std::string kv;
  uint64_t n_kv = 0;
  struct T {
    std::string name;
    std::vector<uint64_t> ne;
    uint32_t type = 0;
    uint64_t offset = 0;
  };
  std::vector<T> tensors;
  std::string data;
  uint64_t alignment = 32;
  bool override_counts = false;
  uint64_t n_tensors_override = 0, n_kv_override = 0;

  static std::string s(const std::string& v) {
    const uint64_t n = v.size();
    return std::string(reinterpret_cast<const char*>(&n), 8) + v;
  }
  template <typename V>
  static std::string raw(V v) {
    return std::string(reinterpret_cast<const char*>(&v), sizeof v);
  }
  GgufBuilder& kv_str(const std::string& k, const std::string& v) {
    kv += s(k) + raw<uint32_t>(8) + s(v);
    ++n_kv;
    return *this;
  }
  GgufBuilder& kv_u32(const std::string& k, uint32_t v) {
    kv += s(k) + raw<uint32_t>(4) + raw(v);
    ++n_kv;
    return *this;
  }
  GgufBuilder& kv_raw(const std::string& bytes) {
    kv += bytes;
    ++n_kv;
    return *this;
  }
  // An f32 tensor of `ne` (GGML order) with data appended, aligned.
  GgufBuilder& f32(const std::string& name, std::vector<uint64_t> ne) {
    uint64_t n = 1;
    for (auto d : ne) n *= d;
    while (data.size() % alignment) data += '\0';
    tensors.push_back({name, ne, 0, data.size()});
    data += std::string(n * 4, '\0');
    return *this;
  }
  std::string bytes() const {
    std::string b = "GGUF" + raw(version);
    b += raw<uint64_t>(override_counts ? n_tensors_override : tensors.size());
    b += raw<uint64_t>(override_counts ? n_kv_override : n_kv);
    b += kv;
    for (const auto& t : tensors) {
      b += s(t.name) + raw<uint32_t>(static_cast<uint32_t>(t.ne.size()));
      for (auto d : t.ne) b += raw(d);
      b += raw(t.type) + raw(t.offset);
    }
    while (b.size() % alignment) b += '\0';
    return b + data;
  }
};

GgufBuilder valid_gguf() {
  GgufBuilder g;
  g.kv_str("general.architecture", "mamba").kv_u32("general.alignment", 32);
  g.f32("token_embd.weight", {8, 4}).f32("output_norm.weight", {8});
  return g;
}

std::string gguf_error(const GgufBuilder& g) {
  test::TempDir d;
  test::write_file(d.file("m.gguf"), g.bytes());
  return error_of([&] { GgufFile f(d.file("m.gguf")); });
}

std::string gguf_error(const std::string& bytes) {
  test::TempDir d;
  test::write_file(d.file("m.gguf"), bytes);
  return error_of([&] { GgufFile f(d.file("m.gguf")); });
}

}  // namespace

TEST(Gguf, ValidHandcraftedFileParses) {
  EXPECT_EQ(gguf_error(valid_gguf()), "(no error)");
  test::TempDir d;
  test::write_file(d.file("m.gguf"), valid_gguf().bytes());
  GgufFile f(d.file("m.gguf"));
  ASSERT_EQ(f.tensors().size(), 2u);
  EXPECT_EQ(f.tensors()[0].ne, (std::vector<int64_t>{8, 4}));
  EXPECT_EQ(f.find("general.architecture")->s, "mamba");
}

// One file per failure mode.
TEST(Gguf, EachMalformationIsRefused) {
  auto with = [](auto change) {
    GgufBuilder g = valid_gguf();
    change(g);
    return gguf_error(g);
  };
  using G = GgufBuilder;
  EXPECT_NE(gguf_error("GGUX" + G::raw<uint32_t>(3) + std::string(16, '\0')).find("no 'GGUF' magic"), std::string::npos);
  EXPECT_NE(gguf_error("GGUF").find("too short"), std::string::npos);
  EXPECT_NE(with([](G& g) { g.version = 1; }).find("version 1 is not supported"), std::string::npos);
  EXPECT_NE(with([](G& g) { g.version = 0x03000000; }).find("unknown GGUF version"), std::string::npos);
  EXPECT_NE(with([](G& g) {
              g.override_counts = true;
              g.n_tensors_override = uint64_t(1) << 40;
              g.n_kv_override = 2;
            }).find("tensor count 1099511627776 does not fit"),
            std::string::npos);
  EXPECT_NE(with([](G& g) {
              g.override_counts = true;
              g.n_tensors_override = 2;
              g.n_kv_override = uint64_t(1) << 60;
            }).find("metadata count"),
            std::string::npos);
  EXPECT_NE(with([](G& g) { g.kv_raw(G::raw<uint64_t>(uint64_t(1) << 40) + "k"); }).find("metadata key of 1099511627776 bytes"),
            std::string::npos);
  EXPECT_NE(with([](G& g) { g.kv_raw(G::s("") + G::raw<uint32_t>(4) + G::raw<uint32_t>(1)); }).find("is empty"), std::string::npos);
  EXPECT_NE(with([](G& g) { g.kv_u32("general.alignment", 32); }).find("duplicate metadata key 'general.alignment'"), std::string::npos);
  EXPECT_NE(with([](G& g) { g.kv_raw(G::s("x") + G::raw<uint32_t>(13) + G::raw<uint32_t>(1)); }).find("unknown value type 13"),
            std::string::npos);
  EXPECT_NE(
      with([](G& g) { g.kv_raw(G::s("x") + G::raw<uint32_t>(9) + G::raw<uint32_t>(9) + G::raw<uint64_t>(1)); }).find("arrays of arrays"),
      std::string::npos);
  EXPECT_NE(with([](G& g) {
              g.kv_raw(G::s("x") + G::raw<uint32_t>(9) + G::raw<uint32_t>(4) + G::raw<uint64_t>(uint64_t(1) << 50));
            }).find("declares 1125899906842624 elements"),
            std::string::npos);
  EXPECT_NE(with([](G& g) { g.kv_raw(G::s("x") + G::raw<uint32_t>(7) + G::raw<uint8_t>(2)); }).find("neither 0 nor 1"), std::string::npos);
  EXPECT_NE(with([](G& g) { g.kv_raw(G::s("x") + G::raw<uint32_t>(10) + G::raw<uint64_t>(~uint64_t(0))); }).find("u64 too large"),
            std::string::npos);
  // alignment: not a power of two, of the wrong type
  {
    GgufBuilder g;
    g.kv_str("general.architecture", "mamba").kv_u32("general.alignment", 24);
    EXPECT_NE(gguf_error(g).find("not a power of two"), std::string::npos);
    GgufBuilder h;
    h.kv_str("general.alignment", "32");
    EXPECT_NE(gguf_error(h).find("general.alignment must be a u32"), std::string::npos);
  }
  EXPECT_NE(with([](G& g) { g.tensors[0].name = std::string(64, 'n'); }).find("longer than the limit"), std::string::npos);
  EXPECT_NE(with([](G& g) { g.tensors[1].name = g.tensors[0].name; }).find("duplicate tensor 'token_embd.weight'"), std::string::npos);
  EXPECT_NE(with([](G& g) { g.tensors[0].ne = {}; }).find("has 0 dimensions"), std::string::npos);
  EXPECT_NE(with([](G& g) { g.tensors[0].ne = {1, 1, 1, 1, 32}; }).find("has 5 dimensions"), std::string::npos);
  EXPECT_NE(with([](G& g) { g.tensors[0].ne = {8, 0}; }).find("of size 0"), std::string::npos);
  EXPECT_NE(with([](G& g) {
              g.tensors[0].ne = {uint64_t(1) << 40, uint64_t(1) << 40};
            }).find("more elements than any model"),
            std::string::npos);
  EXPECT_NE(with([](G& g) { g.tensors[0].type = 99; }).find("unknown ggml type 99"), std::string::npos);
  EXPECT_NE(with([](G& g) { g.tensors[0].type = 12; }).find("is Q4_K, which this reader does not dequantise"), std::string::npos);
  EXPECT_NE(with([](G& g) { g.tensors[0].type = 8; }).find("not a multiple of the Q8_0 block"), std::string::npos);
  EXPECT_NE(with([](G& g) { g.tensors[1].offset += 4; }).find("not a multiple of the alignment"), std::string::npos);
  EXPECT_NE(with([](G& g) { g.tensors[1].offset += 32000; }).find("lies outside the data section"), std::string::npos);
  EXPECT_NE(with([](G& g) { g.tensors[1].offset = 64; }).find("overlaps"), std::string::npos);
  EXPECT_NE(with([](G& g) { g.data.resize(g.data.size() - 1); }).find("lies outside the data section"), std::string::npos);
}

TEST(Gguf, EveryTruncationAndRandomCorruptionIsRefusedOrValid) {
  const std::string good = read_text_file(test::source_dir() + "/tests/fixtures/formats/gguf_mamba1/model.gguf");
  test::TempDir d;
  const std::string path = d.file("m.gguf");
  // Truncations inside the header and metadata (the tokenizer arrays), and through the tensor data.
  for (size_t n = 0; n < good.size(); n += (n < 4096 ? 1 : 997)) {
    test::write_file(path, good.substr(0, n));
    EXPECT_THROW(load_checkpoint(path), Error) << "cut at " << n;
  }
  std::mt19937 rng(7);
  int refused = 0;
  for (int i = 0; i < 300; ++i) {
    std::string bad = good;
    for (int k = 0; k < 4; ++k) bad[rng() % 2048] = static_cast<char>(rng());
    test::write_file(path, bad);
    try {
      load_checkpoint(path);
    } catch (const Error&) {
      ++refused;
    }
  }
  EXPECT_GT(refused, 0);
}

TEST(Gguf, TokenizerWithATokenThatIsNotUtf8IsRefused) {
  // fuzzing found this reaching the JSON writer, whose exception escaped every handler
  const auto strings = [](std::vector<std::string> v) {
    std::string b = GgufBuilder::raw<uint32_t>(9) + GgufBuilder::raw<uint32_t>(8) + GgufBuilder::raw<uint64_t>(v.size());
    for (const auto& x : v) b += GgufBuilder::s(x);
    return b;
  };
  test::TempDir d;
  for (const bool bad : {false, true}) {
    GgufBuilder g = valid_gguf();
    g.kv_str("tokenizer.ggml.model", "gpt2");
    g.kv_raw(GgufBuilder::s("tokenizer.ggml.tokens") + strings({"a", "b", bad ? std::string("c\xad") : std::string("c")}));
    g.kv_raw(GgufBuilder::s("tokenizer.ggml.merges") + strings({"a b"}));
    test::write_file(d.file("t.gguf"), g.bytes());
    const GgufFile f(d.file("t.gguf"));
    if (bad) {
      EXPECT_REFUSED(gguf_tokenizer(f), "not valid UTF-8");
    } else {
      EXPECT_EQ(gguf_tokenizer(f)->n_valid, 3);
    }
  }
}

TEST(Gguf, ModelLevelProblemsAreNamed) {
  test::TempDir d;
  GgufBuilder g = valid_gguf();
  test::write_file(d.file("m.gguf"), g.bytes());
  EXPECT_REFUSED(load_checkpoint(d.file("m.gguf")), "missing metadata 'mamba.embedding_length'");
  GgufBuilder l;
  l.kv_str("general.architecture", "llama");
  l.f32("token_embd.weight", {8, 4});
  test::write_file(d.file("l.gguf"), l.bytes());
  EXPECT_REFUSED(load_checkpoint(d.file("l.gguf")), "architecture 'llama' is not a Mamba model");
}
