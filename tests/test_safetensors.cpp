#include <gtest/gtest.h>

#include <cstring>

#include "engine/error.h"
#include "engine/model.h"
#include "engine/safetensors.h"
#include "tests/test_util.h"

using namespace mamba;
using mamba::test::TempDir;

namespace {

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

std::string open_error(const std::string& bytes) {
  TempDir d;
  const std::string p = d.file("model.safetensors");
  test::write_file(p, bytes);
  std::string msg = error_of([&] { SafetensorsFile f(p); });
  if (msg != "<no error>") {
    EXPECT_NE(msg.find(p), std::string::npos) << "message must name the file: " << msg;
  }
  return msg;
}

#define EXPECT_HAS(msg, part) EXPECT_NE((msg).find(part), std::string::npos) << (msg)

std::string four_floats() { return test::f32_bytes({1.f, 2.f, 3.f, 4.f}); }

}  // namespace

TEST(Safetensors, ValidFileAndDtypes) {
  TempDir d;
  std::map<std::string, test::StTensor> t;
  t["a"] = {"F32", {2, 2}, four_floats()};
  const uint16_t bf[2] = {0x3f80, 0xc040};  // 1.0, -3.0
  t["b"] = {"BF16", {2}, std::string(reinterpret_cast<const char*>(bf), 4)};
  const uint16_t hf[3] = {0x3c00, 0xc500, 0x0001};  // 1.0, -5.0, smallest subnormal
  t["c"] = {"F16", {3}, std::string(reinterpret_cast<const char*>(hf), 6)};
  test::write_file(d.file("x.safetensors"), test::safetensors_bytes(t));
  SafetensorsFile f(d.file("x.safetensors"));
  ASSERT_EQ(f.tensors().size(), 3u);
  float out[4];
  convert_to_f32(f.tensors().at("a"), out);
  EXPECT_EQ(out[3], 4.f);
  convert_to_f32(f.tensors().at("b"), out);
  EXPECT_EQ(out[0], 1.f);
  EXPECT_EQ(out[1], -3.f);
  convert_to_f32(f.tensors().at("c"), out);
  EXPECT_EQ(out[0], 1.f);
  EXPECT_EQ(out[1], -5.f);
  EXPECT_FLOAT_EQ(out[2], 5.9604645e-8f);
}

TEST(Safetensors, TooShort) { EXPECT_HAS(open_error("abc"), "too short"); }

TEST(Safetensors, HeaderLengthBounds) {
  std::string b(16, '\0');
  uint64_t huge = 1ull << 40;
  std::memcpy(b.data(), &huge, 8);
  EXPECT_HAS(open_error(b), "out of bounds");
  uint64_t past = 100;
  std::memcpy(b.data(), &past, 8);
  EXPECT_HAS(open_error(b), "runs past the end");
}

TEST(Safetensors, HeaderNotJson) { EXPECT_HAS(open_error(test::raw_safetensors("{\"a\": [", "")), "not valid JSON"); }

TEST(Safetensors, HeaderNotObject) { EXPECT_HAS(open_error(test::raw_safetensors("[1, 2]", "")), "JSON object"); }

TEST(Safetensors, DtypeAllowList) {
  EXPECT_HAS(open_error(test::raw_safetensors(R"({"a":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}})", std::string(16, 'x'))),
             "unsupported dtype 'I64'");
}

TEST(Safetensors, ShapeTimesDtypeMustEqualSpan) {
  EXPECT_HAS(open_error(test::raw_safetensors(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", four_floats())),
             "does not match shape [3]");
}

TEST(Safetensors, NegativeShape) {
  EXPECT_HAS(open_error(test::raw_safetensors(R"({"a":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})", four_floats())),
             "non-negative");
}

TEST(Safetensors, OffsetsInsideFile) {
  EXPECT_HAS(open_error(test::raw_safetensors(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})", four_floats())),
             "outside the data section");
  EXPECT_HAS(open_error(test::raw_safetensors(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})", four_floats())), "end < begin");
}

TEST(Safetensors, Overlap) {
  EXPECT_HAS(open_error(test::raw_safetensors(
                 R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                 four_floats())),
             "overlaps");
}

TEST(Safetensors, Hole) {
  EXPECT_HAS(open_error(test::raw_safetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", four_floats())), "hole");
}

TEST(Safetensors, TrailingBytes) {
  EXPECT_HAS(open_error(test::raw_safetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", four_floats())),
             "trailing bytes");
}

TEST(Safetensors, MissingFields) {
  EXPECT_HAS(open_error(test::raw_safetensors(R"({"a":{"dtype":"F32","shape":[4]}})", four_floats())), "data_offsets");
}

// ---- model folders: the tensors the config implies, with exactly those shapes -----------------

namespace {

struct ModelDir {
  TempDir dir;
  Config cfg = test::tiny_config(2, false);
  std::shared_ptr<const Model> ref = Model::random(cfg, 7);
  std::map<std::string, test::StTensor> tensors = test::model_tensors(*ref);
  void write() const {
    test::write_file(dir.file("config.json"), test::config_json(cfg).dump());
    test::write_file(dir.file("model.safetensors"), test::safetensors_bytes(tensors));
  }
  std::string load_error() const {
    write();
    return error_of([&] { Model::load(dir.path.string()); });
  }
};

}  // namespace

TEST(ModelLoad, RoundTripF32) {
  ModelDir m;
  m.write();
  auto loaded = Model::load(m.dir.path.string());
  EXPECT_EQ(loaded->weights.layers[1].in_proj, m.ref->weights.layers[1].in_proj);
  for (size_t h = 0; h < loaded->weights.layers[0].A.size(); ++h)
    EXPECT_NEAR(loaded->weights.layers[0].A[h], m.ref->weights.layers[0].A[h], 1e-5f * std::abs(m.ref->weights.layers[0].A[h]));
  EXPECT_EQ(loaded->weights.lm_head, m.ref->weights.lm_head);
  EXPECT_EQ(loaded->source_dtype, "F32");
}

TEST(ModelLoad, MambaSsmEmbeddingNameAndTiedWhenLmHeadAbsent) {
  ModelDir m;
  m.tensors["backbone.embedding.weight"] = m.tensors["backbone.embeddings.weight"];
  m.tensors.erase("backbone.embeddings.weight");
  m.tensors.erase("lm_head.weight");
  m.cfg.tie_embeddings = true;
  m.write();
  auto loaded = Model::load(m.dir.path.string());
  EXPECT_TRUE(loaded->config.tie_embeddings);
  EXPECT_TRUE(loaded->weights.lm_head.empty());
  EXPECT_EQ(&loaded->weights.lm_head_or_embedding(), &loaded->weights.embedding);
}

TEST(ModelLoad, MissingTensor) {
  ModelDir m;
  m.tensors.erase("backbone.layers.1.mixer.D");
  EXPECT_HAS(m.load_error(), "missing tensor 'backbone.layers.1.mixer.D'");
}

TEST(ModelLoad, WrongShape) {
  ModelDir m;
  m.tensors["backbone.norm_f.weight"] = {"F32", {4}, four_floats()};
  const std::string e = m.load_error();
  EXPECT_HAS(e, "'backbone.norm_f.weight' has shape [4]");
  EXPECT_HAS(e, "config implies [32]");
}

TEST(ModelLoad, UnexpectedTensor) {
  ModelDir m;
  m.tensors["backbone.layers.9.mixer.D"] = {"F32", {4}, four_floats()};
  EXPECT_HAS(m.load_error(), "unexpected tensor 'backbone.layers.9.mixer.D'");
}

TEST(ModelLoad, AbsentLmHeadMeansTied) {
  ModelDir m;
  m.cfg.tie_embeddings = false;
  m.tensors.erase("lm_head.weight");
  // HF semantics: an absent lm_head means the embedding is used
  m.write();
  EXPECT_TRUE(Model::load(m.dir.path.string())->config.tie_embeddings);
}

TEST(ModelLoad, NotAFolderOrNoWeights) {
  EXPECT_HAS(error_of([] { Model::load("/nonexistent/model"); }), "not a model folder");
  ModelDir m;
  test::write_file(m.dir.file("config.json"), test::config_json(m.cfg).dump());
  EXPECT_HAS(error_of([&] { Model::load(m.dir.path.string()); }), "no model.safetensors");
}

TEST(ModelLoad, Bf16Weights) {
  ModelDir m;
  for (auto& [name, t] : m.tensors) {  // truncate every f32 to bf16
    std::string b(t.bytes.size() / 2, '\0');
    for (size_t i = 0; i < t.bytes.size() / 4; ++i) std::memcpy(b.data() + 2 * i, t.bytes.data() + 4 * i + 2, 2);
    t = {"BF16", t.shape, b};
  }
  m.write();
  auto loaded = Model::load(m.dir.path.string());
  EXPECT_EQ(loaded->source_dtype, "BF16");
  const float ref = m.ref->weights.layers[0].in_proj[5], got = loaded->weights.layers[0].in_proj[5];
  EXPECT_NEAR(got, ref, std::abs(ref) / 128);
}

TEST(ModelLoad, Sharded) {
  ModelDir m;
  std::map<std::string, test::StTensor> a, b;
  nlohmann::json wm;
  int i = 0;
  for (auto& [name, t] : m.tensors) {
    const bool first_shard = i++ % 2 == 0;
    (first_shard ? a : b)[name] = t;
    wm[name] = first_shard ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  test::write_file(m.dir.file("config.json"), test::config_json(m.cfg).dump());
  test::write_file(m.dir.file("model-00001-of-00002.safetensors"), test::safetensors_bytes(a));
  test::write_file(m.dir.file("model-00002-of-00002.safetensors"), test::safetensors_bytes(b));
  test::write_file(m.dir.file("model.safetensors.index.json"), nlohmann::json({{"metadata", {}}, {"weight_map", wm}}).dump());
  auto loaded = Model::load(m.dir.path.string());
  EXPECT_EQ(loaded->weights.layers[1].out_proj, m.ref->weights.layers[1].out_proj);

  // a weight_map pointing at the wrong shard
  nlohmann::json bad = wm;
  const std::string first = bad.begin().key();
  bad[first] = bad[first] == "model-00001-of-00002.safetensors" ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors";
  test::write_file(m.dir.file("model.safetensors.index.json"), nlohmann::json({{"weight_map", bad}}).dump());
  EXPECT_HAS(error_of([&] { Model::load(m.dir.path.string()); }), "that shard does not contain it");
  // a missing shard and a path outside the folder
  bad = wm;
  bad[first] = "model-00009-of-00009.safetensors";
  test::write_file(m.dir.file("model.safetensors.index.json"), nlohmann::json({{"weight_map", bad}}).dump());
  EXPECT_HAS(error_of([&] { Model::load(m.dir.path.string()); }), "does not exist");
  bad[first] = "../model-00001-of-00002.safetensors";
  test::write_file(m.dir.file("model.safetensors.index.json"), nlohmann::json({{"weight_map", bad}}).dump());
  EXPECT_HAS(error_of([&] { Model::load(m.dir.path.string()); }), "plain file name");
  // the same tensor in two shards
  b[first] = a.count(first) ? a[first] : b[first];
  a[first] = b[first];
  test::write_file(m.dir.file("model-00001-of-00002.safetensors"), test::safetensors_bytes(a));
  test::write_file(m.dir.file("model-00002-of-00002.safetensors"), test::safetensors_bytes(b));
  test::write_file(m.dir.file("model.safetensors.index.json"), nlohmann::json({{"weight_map", wm}}).dump());
  EXPECT_HAS(error_of([&] { Model::load(m.dir.path.string()); }), "also appears in another shard");
}
