// The embedded default model (resources/models/mamba2-shakespeare, made by tools/train_default_model.py)
// against the float64 reference that the same script computed with transformers
// (tests/fixtures/default_model/reference.json): tokenizer ids, logits in both scan modes, greedy
// continuation. Skips only when the model folder itself is absent (e.g. a source package without it).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/json_lenient.h"
#include "engine/session.h"
#include "engine/tokenizer.h"
#include "tests/test_util.h"

using namespace mamba;
namespace fs = std::filesystem;

namespace {

constexpr double kTol = 1e-4;  // relative L2 error per logit row (float32 engine vs float64 reference)

fs::path model_dir() { return fs::path(test::source_dir()) / "resources" / "models" / "mamba2-shakespeare"; }
fs::path reference_path() { return fs::path(test::source_dir()) / "tests" / "fixtures" / "default_model" / "reference.json"; }
bool have_model() { return fs::exists(model_dir() / "config.json"); }

const nlohmann::json& reference() {
  static const nlohmann::json ref = parse_json_lenient(read_text_file(reference_path().string()), "reference.json");
  return ref;
}

std::shared_ptr<const Model> model() {
  static const std::shared_ptr<const Model> m = Model::load(model_dir().string());
  return m;
}

// Worst relative error of `got` (T rows of V logits) against the reference of one prompt: at every position
// the reference's top-k logits (compared at the same vocabulary ids), and all V logits of the last position.
double worst_rel_err(const std::vector<float>& got, int64_t V, const nlohmann::json& p) {
  const auto& top_ids = p["top_ids"];
  const auto& top_logits = p["top_logits"];
  const size_t T = top_ids.size();
  double worst = 0;
  for (size_t t = 0; t < T; ++t) {
    std::vector<int32_t> ids = top_ids[t].get<std::vector<int32_t>>();
    std::vector<double> ref = top_logits[t].get<std::vector<double>>();
    double num = 0, den = 0;
    for (size_t k = 0; k < ids.size(); ++k) {
      const double d = double(got[t * V + ids[k]]) - ref[k];
      num += d * d;
      den += ref[k] * ref[k];
    }
    worst = std::max(worst, std::sqrt(num / den));
  }
  std::vector<double> last = p["last_logits"].get<std::vector<double>>();
  double num = 0, den = 0;
  for (int64_t v = 0; v < V; ++v) {
    const double d = double(got[(T - 1) * V + v]) - last[static_cast<size_t>(v)];
    num += d * d;
    den += last[static_cast<size_t>(v)] * last[static_cast<size_t>(v)];
  }
  return std::max(worst, std::sqrt(num / den));
}

}  // namespace

#define SKIP_WITHOUT_DEFAULT_MODEL() \
  if (!have_model()) GTEST_SKIP() << "default model folder absent: " << model_dir().string()

TEST(DefaultModel, ConfigAndTokenizer) {
  SKIP_WITHOUT_DEFAULT_MODEL();
  const auto& ref = reference();
  const Config& c = model()->config;
  EXPECT_EQ(c.vocab_size, ref["vocab_size"].get<int64_t>());
  EXPECT_EQ(c.n_groups, 1);
  EXPECT_EQ(c.n_heads * c.head_dim, c.d_inner);
  EXPECT_TRUE(c.tie_embeddings);
  Tokenizer tok = Tokenizer::from_file(model_dir().string());
  EXPECT_EQ(tok.vocab_size(), c.vocab_size);
  EXPECT_EQ(tok.token_to_id("<|endoftext|>"), std::optional<int32_t>(0));
  EXPECT_EQ(tok.eos_id(), std::optional<int32_t>(0));
  EXPECT_TRUE(tok.is_special(0));
}

TEST(DefaultModel, TokenizerEncodesReferencePrompts) {
  SKIP_WITHOUT_DEFAULT_MODEL();
  Tokenizer tok = Tokenizer::from_file(model_dir().string());
  const auto& prompts = reference()["prompts"];
  ASSERT_EQ(prompts.size(), 3u);
  for (const auto& p : prompts) {
    const std::string text = p["text"].get<std::string>();
    SCOPED_TRACE(text);
    const std::vector<int32_t> ids = p["ids"].get<std::vector<int32_t>>();
    EXPECT_GE(ids.size(), 8u);
    EXPECT_LE(ids.size(), 40u);
    EXPECT_EQ(tok.encode(text), ids);
    EXPECT_EQ(tok.decode(ids), text);
    EXPECT_EQ(tok.decode(p["greedy_ids"].get<std::vector<int32_t>>()), p["greedy_text"].get<std::string>());
  }
}

TEST(DefaultModel, LogitsMatchFloat64Reference) {
  SKIP_WITHOUT_DEFAULT_MODEL();
  auto m = model();
  const int64_t V = m->config.vocab_size;
  for (const auto& p : reference()["prompts"]) {
    SCOPED_TRACE(p["text"].get<std::string>());
    const std::vector<int32_t> ids = p["ids"].get<std::vector<int32_t>>();
    ASSERT_EQ(p["top_ids"].size(), ids.size());
    for (ScanMode scan : {ScanMode::Chunked, ScanMode::Recurrent}) {
      auto b = make_cpu_backend(m);
      const auto got = test::all_logits(*b, ids, scan);
      EXPECT_LE(worst_rel_err(got, V, p), kTol) << scan_name(scan) << ": the weights or the engine changed; if the model was retrained, "
                                                << "commit the reference.json that tools/train_default_model.py wrote with it";
      // the argmax agrees wherever the reference's top two logits are not a near tie
      for (size_t t = 0; t < ids.size(); ++t) {
        const auto& tl = p["top_logits"][t];
        if (tl[0].get<double>() - tl[1].get<double>() < 1e-3) continue;
        const float* row = got.data() + t * V;
        EXPECT_EQ(std::max_element(row, row + V) - row, p["top_ids"][t][0].get<int64_t>()) << scan_name(scan) << " t=" << t;
      }
    }
  }
}

TEST(DefaultModel, GreedyContinuationMatchesTransformers) {
  SKIP_WITHOUT_DEFAULT_MODEL();
  for (const auto& p : reference()["prompts"]) {
    SCOPED_TRACE(p["text"].get<std::string>());
    const std::vector<int32_t> ids = p["ids"].get<std::vector<int32_t>>();
    const std::vector<int32_t> want = p["greedy_ids"].get<std::vector<int32_t>>();
    ASSERT_EQ(want.size(), 20u);
    for (ScanMode scan : {ScanMode::Chunked, ScanMode::Recurrent}) {
      Session s(make_cpu_backend(model()));
      GenerateOptions go;
      go.sampling.temperature = 0;
      go.stop_at_eos = false;
      go.scan = scan;
      go.max_new_tokens = static_cast<int64_t>(want.size());
      EXPECT_EQ(s.generate(ids, go).ids, want) << scan_name(scan);
    }
  }
}

TEST(DefaultModel, PerturbedWeightsFailTheReference) {
  // The comparison must be able to fail: a 1% change of one layer's out_proj must trip the tolerance.
  SKIP_WITHOUT_DEFAULT_MODEL();
  auto m = std::const_pointer_cast<Model>(Model::load(model_dir().string()));
  for (float& v : m->weights.layers[0].out_proj) v *= 1.01f;
  const auto& p = reference()["prompts"][0];
  auto b = make_cpu_backend(m);
  const auto got = test::all_logits(*b, p["ids"].get<std::vector<int32_t>>(), ScanMode::Chunked);
  EXPECT_GT(worst_rel_err(got, m->config.vocab_size, p), kTol);
}
