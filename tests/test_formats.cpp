// Every checkpoint format against its float64 reference (tools/make_format_fixtures.py): HF Mamba-1
// safetensors, the original state-spaces layout (pytorch_model.bin + mamba_ssm config) of Mamba-1 and
// Mamba-2, mamba.c's model.bin, and GGUF mamba / mamba2 with F32, F16, BF16 and Q8_0 tensors.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/checkpoint.h"
#include "engine/session.h"
#include "tests/test_util.h"

using namespace mamba;

namespace {

std::filesystem::path formats_dir() { return std::filesystem::path(test::source_dir()) / "tests" / "fixtures" / "formats"; }
std::string fixture(const std::string& name) { return (formats_dir() / name).string(); }

struct FormatCase {
  std::string name;
  std::string format;  // expected Checkpoint::format (prefix)
  Arch arch;
};

const FormatCase kCases[] = {
    {"mamba1_hf", "safetensors", Arch::Mamba1},       {"mamba1_hf_bias", "safetensors", Arch::Mamba1},
    {"mamba1_original", "PyTorch zip", Arch::Mamba1}, {"mamba2_original", "PyTorch zip", Arch::Mamba2},
    {"mambac", "mamba.c model.bin", Arch::Mamba1},    {"gguf_mamba1", "GGUF v3", Arch::Mamba1},
    {"gguf_mamba2", "GGUF v3", Arch::Mamba2},
};

class FormatFixture : public ::testing::TestWithParam<FormatCase> {};

TEST_P(FormatFixture, LogitsGreedyAndScansMatchTheReference) {
  const FormatCase& fc = GetParam();
  const Checkpoint ck = load_checkpoint(fixture(fc.name));
  EXPECT_EQ(ck.model->config.arch, fc.arch);
  EXPECT_EQ(ck.format.rfind(fc.format, 0), 0u) << ck.format;
  const auto ref = test::load_model_reference(formats_dir() / fc.name);
  const int64_t V = ck.model->config.vocab_size, T = static_cast<int64_t>(ref.input_ids.size());
  ASSERT_EQ(static_cast<int64_t>(ref.logits.size()), T * V);
  auto backend = make_cpu_backend(ck.model);

  // Every position, both scans, odd chunk sizes (one chunk, partial chunks, chunks of 1).
  const auto recurrent = test::all_logits(*backend, ref.input_ids, ScanMode::Recurrent);
  EXPECT_LT(test::worst_row_err(recurrent, ref.logits, T, V), 1e-4) << "recurrent";
  for (int64_t chunk : {1, 3, 8, 64}) {
    backend->reset_state();
    const auto chunked = test::all_logits(*backend, ref.input_ids, ScanMode::Chunked, chunk);
    EXPECT_LT(test::worst_row_err(chunked, ref.logits, T, V), 1e-4) << "chunk " << chunk;
    EXPECT_LT(test::worst_row_err(chunked, recurrent, T, V), 1e-5) << "chunked vs recurrent, chunk " << chunk;
    backend->reset_state();
  }

  // Greedy continuation through the Session (prefill, then decode steps), and each step's logits.
  Session s(make_cpu_backend(ck.model));
  GenerateOptions go;
  go.max_new_tokens = static_cast<int64_t>(ref.greedy_ids.size());
  go.sampling.temperature = 0;
  go.stop_at_eos = false;
  const auto r = s.generate(ref.input_ids, go);
  EXPECT_EQ(r.ids, ref.greedy_ids);
  auto stepper = make_cpu_backend(ck.model);
  std::vector<float> row(static_cast<size_t>(V));
  stepper->forward(ref.input_ids, {}, row.data());
  for (size_t k = 0; k < ref.greedy_ids.size(); ++k) {
    if (k > 0) stepper->step(ref.greedy_ids[k - 1], row.data());
    EXPECT_LT(test::rel_err(row.data(), ref.decode_logits.data() + k * V, size_t(V)), 1e-4) << "decode step " << k;
  }
}

INSTANTIATE_TEST_SUITE_P(All, FormatFixture, ::testing::ValuesIn(kCases), [](const auto& i) { return i.param.name; });

TEST(Formats, SingleFilesOpenDirectly) {
  for (const char* f : {"gguf_mamba1/model.gguf", "mambac/model.bin", "mamba1_original/pytorch_model.bin", "mamba1_hf/config.json"}) {
    EXPECT_TRUE(is_checkpoint_path(fixture(f))) << f;
    const Checkpoint ck = load_checkpoint(fixture(f));
    EXPECT_GT(ck.model->config.n_layer, 0) << f;
  }
  EXPECT_FALSE(is_checkpoint_path(fixture("mamba1_hf/reference.json")));
  EXPECT_THROW(load_checkpoint(fixture("mamba1_hf/reference.json")), Error);
}

TEST(Formats, VocabularyPaddingIsNeverSampled) {
  // mamba_ssm's config: vocab 101 padded to 104; mamba.c: 101 rounded up to 104; GGUF: 1007 real tokens.
  EXPECT_EQ(load_checkpoint(fixture("mamba1_original")).model->config.vocab_valid, 101);
  EXPECT_EQ(load_checkpoint(fixture("mamba1_original")).model->config.vocab_size, 104);
  EXPECT_EQ(load_checkpoint(fixture("mambac")).model->config.vocab_valid, 101);
  EXPECT_EQ(load_checkpoint(fixture("gguf_mamba2")).model->config.vocab_valid, 1007);
  // Make the padded rows win every argmax: the session must still never pick them.
  auto m = std::const_pointer_cast<Model>(load_checkpoint(fixture("mamba1_original")).model);
  auto& lm = m->weights.lm_head;
  ASSERT_FALSE(lm.empty());
  const int64_t D = m->config.d_model;
  for (int64_t v = 101; v < 104; ++v)
    for (int64_t d = 0; d < D; ++d) lm[v * D + d] = 50.f * (d % 2 ? 1.f : -1.f) * m->weights.norm_f[d];
  Session s(make_cpu_backend(m));
  for (float temp : {0.f, 1.5f}) {
    GenerateOptions go;
    go.max_new_tokens = 40;
    go.sampling.temperature = temp;
    go.stop_at_eos = false;
    s.reset();
    const auto r = s.generate(std::vector<int32_t>{1, 2, 3}, go);
    for (int32_t id : r.ids) EXPECT_LT(id, 101) << "temperature " << temp;
  }
}

TEST(Formats, TokenizerSources) {
  const Checkpoint g = load_checkpoint(fixture("gguf_mamba1"));
  ASSERT_TRUE(g.tokenizer);
  EXPECT_NE(g.tokenizer_source.find("GGUF metadata"), std::string::npos) << g.tokenizer_source;
  // The rebuilt tokenizer encodes and decodes as the tokenizer.json it came from.
  const Tokenizer hf = Tokenizer::from_file(test::source_dir() + "/tests/fixtures/tokenizer/small_tokenizer.json");
  for (const std::string text : {"Hello world, hello again.", "  spaces\tand\nnewlines 123 ünïcödé <|endoftext|>!", "a"}) {
    const auto ids = g.tokenizer->encode(text);
    EXPECT_EQ(ids, hf.encode(text)) << text;
    EXPECT_EQ(g.tokenizer->decode(ids), hf.decode(ids)) << text;
  }
  EXPECT_EQ(g.tokenizer->vocab_size(), 1007);
  // Tiny vocabularies do not fit GPT-NeoX: no tokenizer, and the dock is told why.
  const Checkpoint o = load_checkpoint(fixture("mamba1_original"));
  EXPECT_FALSE(o.tokenizer);
  EXPECT_NE(o.tokenizer_source.find("none"), std::string::npos);
  const Checkpoint c = load_checkpoint(fixture("mambac"));
  EXPECT_FALSE(c.tokenizer);
  EXPECT_NE(c.tokenizer_source.find("tokenizer.bin"), std::string::npos) << c.tokenizer_source;
}

// A Mamba-1 model with the GPT-NeoX vocabulary in the original layout: the bundled tokenizer is used.
TEST(Formats, GptNeoxFallbackForStateSpacesFolders) {
  if (gpt_neox_tokenizer_path().empty()) GTEST_SKIP() << "bundled GPT-NeoX tokenizer not found";
  test::TempDir d;
  Config c = Config::mamba1(8, 1, 50280, 16, 2, 4, 1);
  c.vocab_valid = 50277;
  c.finalize("tiny neox");
  auto m = Model::random(c, 3);
  // A mamba.c export of it (f32, tied), and its tokenizer.bin written from GPT-NeoX's own decode.
  const Tokenizer neox = Tokenizer::from_file(gpt_neox_tokenizer_path());
  {
    std::string bin(256, '\0');
    const uint32_t magic = 0x4d616d62, version = 1;
    const int32_t h[8] = {1, 50277, 8, 16, 1, 2, 4, 1};
    std::memcpy(bin.data(), &magic, 4);
    std::memcpy(bin.data() + 4, &version, 4);
    std::memcpy(bin.data() + 8, h, sizeof h);
    const auto& w = m->weights;
    const auto& l = w.layers1[0];
    std::vector<float> conv(l.conv_w);
    for (const Tensor* t : std::initializer_list<const Tensor*>{&w.embedding, &l.in_proj, &conv, &l.conv_b, &l.x_proj, &l.dt_proj,
                                                                &l.dt_proj_bias, &l.A, &l.D, &l.out_proj, &l.norm, &w.norm_f})
      bin += test::f32_bytes(*t);
    test::write_file(d.file("model.bin"), bin);
  }
  const Checkpoint plain = load_checkpoint(d.file("model.bin"));
  ASSERT_TRUE(plain.tokenizer);
  EXPECT_NE(plain.tokenizer_source.find("GPT-NeoX-20B (bundled"), std::string::npos) << plain.tokenizer_source;
  EXPECT_EQ(plain.model->config.vocab_valid, 50277);
  std::string tb;
  auto u32 = [&](uint32_t v) { tb.append(reinterpret_cast<const char*>(&v), 4); };
  u32(0x4d62546b);
  u32(1);
  u32(50277);
  std::vector<std::string> pieces;
  uint32_t longest = 0;
  for (int32_t i = 0; i < 50277; ++i) {
    pieces.push_back(neox.decode(std::span<const int32_t>(&i, 1)));
    longest = std::max<uint32_t>(longest, static_cast<uint32_t>(pieces.back().size()));
  }
  u32(longest);
  for (const auto& p : pieces) {
    u32(static_cast<uint32_t>(p.size()));
    tb += p;
  }
  test::write_file(d.file("tokenizer.bin"), tb);
  const Checkpoint with_bin = load_checkpoint(d.path.string());
  ASSERT_TRUE(with_bin.tokenizer);
  EXPECT_NE(with_bin.tokenizer_source.find("tokenizer.bin (mamba.c)"), std::string::npos) << with_bin.tokenizer_source;
  EXPECT_EQ(with_bin.tokenizer->encode("Hello world"), neox.encode("Hello world"));
  // A tokenizer.bin of another vocabulary is not taken for GPT-NeoX's.
  tb[tb.size() - 1] ^= 0x20;
  test::write_file(d.file("tokenizer.bin"), tb);
  const Checkpoint other = load_checkpoint(d.path.string());
  EXPECT_FALSE(other.tokenizer);
  EXPECT_NE(other.tokenizer_source.find("not GPT-NeoX-20B"), std::string::npos) << other.tokenizer_source;
}

TEST(Formats, MambaCSizeMismatchIsRefused) {
  test::TempDir d;
  std::string bytes = read_text_file(fixture("mambac/model.bin"));
  test::write_file(d.file("model.bin"), bytes.substr(0, bytes.size() - 4));
  try {
    load_checkpoint(d.file("model.bin"));
    FAIL() << "a truncated model.bin loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the header implies"), std::string::npos) << e.what();
  }
  bytes[4] = 2;  // version
  test::write_file(d.file("model.bin"), bytes);
  EXPECT_THROW(load_checkpoint(d.file("model.bin")), Error);
}

}  // namespace

namespace {

TEST(Formats, CliReadsEveryFormat) {
  const std::string cli = MAMBA_CLI_PATH;
  const auto info = test::run_command(cli + " info -m " + fixture("gguf_mamba2/model.gguf"));
  ASSERT_EQ(info.code, 0) << info.err;
  const auto j = nlohmann::json::parse(info.out);
  EXPECT_EQ(j["format"], "GGUF v3");
  EXPECT_EQ(j["arch"], "Mamba-2");
  EXPECT_EQ(j["vocab_valid"], 1007);
  EXPECT_NE(j["tokenizer_source"].get<std::string>().find("GGUF metadata"), std::string::npos);
  // Greedy ids through the CLI equal the reference's, for a pytorch_model.bin folder and a mamba.c file.
  for (const char* name : {"mamba1_original", "mambac/model.bin"}) {
    const std::string dir = std::string(name).substr(0, std::string(name).find('/'));
    const auto ref = test::load_model_reference(formats_dir() / dir);
    std::string ids;
    for (int32_t id : ref.input_ids) ids += (ids.empty() ? "" : ",") + std::to_string(id);
    const auto r = test::run_command(cli + " generate -m " + fixture(name) + " --ids " + ids + " -n " +
                                     std::to_string(ref.greedy_ids.size()) + " -t 0 --no-stop --print-ids");
    ASSERT_EQ(r.code, 0) << r.err;
    const std::string last = r.out.substr(r.out.rfind('['));
    EXPECT_EQ(nlohmann::json::parse(last).get<std::vector<int32_t>>(), ref.greedy_ids) << name;
  }
  const auto bad = test::run_command(cli + " info -m " + fixture("mamba1_hf/reference.json"));
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("nor a model file this app reads"), std::string::npos) << bad.err;
}

}  // namespace
