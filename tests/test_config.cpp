#include <gtest/gtest.h>

#include <cmath>

#include "engine/config.h"
#include "engine/error.h"
#include "engine/json_lenient.h"
#include "tests/test_util.h"

using namespace mamba;

namespace {

nlohmann::json base() { return test::config_json(test::tiny_config()); }

// Expects from_json_text to throw with a message containing every one of `parts`.
void expect_error(const std::string& text, std::initializer_list<const char*> parts) {
  try {
    Config::from_json_text(text, "cfg.json");
    FAIL() << "no error for: " << text;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("cfg.json"), std::string::npos) << msg;
    for (const char* p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "missing '" << p << "' in: " << msg;
  }
}

std::string with(const char* key, const std::string& raw_value) {
  std::string s = base().dump();
  // replace the closing brace with the extra raw field (may be non-JSON, e.g. Infinity)
  s.pop_back();
  return s + ",\"" + key + "\":" + raw_value + "}";
}

}  // namespace

TEST(Config, DerivedSizes) {
  Config c = Config::from_json_text(base().dump(), "x");
  EXPECT_EQ(c.d_inner, 64);
  EXPECT_EQ(c.conv_dim, 64 + 2 * 16);
  EXPECT_EQ(c.d_in_proj, 2 * 64 + 2 * 16 + 4);
  EXPECT_EQ(c.heads_per_group, 4);
  EXPECT_TRUE(std::isinf(c.dt_max));
}

TEST(Config, InfinityLiteralSpellings) {
  for (const std::string v : {"[0.0, Infinity]", "[0.0, {\"__float__\": \"Infinity\"}]"}) {
    Config c = Config::from_json_text(with("time_step_limit", v), "x");
    EXPECT_EQ(c.dt_min, 0.0);
    EXPECT_TRUE(std::isinf(c.dt_max) && c.dt_max > 0) << v;
  }
  Config f = Config::from_json_text(with("time_step_limit", "[0.001, 0.1]"), "x");
  EXPECT_DOUBLE_EQ(f.dt_min, 0.001);
  EXPECT_DOUBLE_EQ(f.dt_max, 0.1);
}

TEST(Config, NonFiniteLiteralsAnywhere) {
  // -Infinity and NaN must parse (they appear in real configs' unrelated fields); strings are untouched.
  auto j = parse_json_lenient(R"({"a": -Infinity, "b": NaN, "c": "Infinity NaN", "d": [Infinity]})", "x");
  EXPECT_TRUE(std::isinf(json_to_double(j["a"], "x", "a")) && json_to_double(j["a"], "x", "a") < 0);
  EXPECT_TRUE(std::isnan(json_to_double(j["b"], "x", "b")));
  EXPECT_EQ(j["c"], "Infinity NaN");
  EXPECT_TRUE(std::isinf(json_to_double(j["d"][0], "x", "d")));
  Config c = Config::from_json_text(with("some_unused_field", "NaN"), "x");
  EXPECT_EQ(c.d_model, 32);
}

TEST(Config, Errors) {
  expect_error("{not json", {"not valid JSON"});
  expect_error("[1,2]", {"JSON object"});
  auto j = base();
  j.erase("hidden_size");
  expect_error(j.dump(), {"missing required field 'hidden_size'"});
  j = base();
  j["num_heads"] = 3;
  expect_error(j.dump(), {"num_heads (3)", "head_dim", "hidden_size"});
  j = base();
  j["n_groups"] = 3;
  j["num_heads"] = 4;
  expect_error(j.dump(), {"divisible by n_groups"});
  j = base();
  j["state_size"] = 0;
  expect_error(j.dump(), {"'state_size' must be positive"});
  j = base();
  j["hidden_size"] = "32";
  expect_error(j.dump(), {"'hidden_size' must be an integer"});
  j = base();
  j["time_step_limit"] = {0.5, 0.1};
  expect_error(j.dump(), {"time_step_limit"});
  j = base();
  j["time_step_limit"] = {0.5};
  expect_error(j.dump(), {"time_step_limit", "pair"});
  j = base();
  j["use_conv_bias"] = 1;
  expect_error(j.dump(), {"'use_conv_bias' must be true or false"});
  j = base();
  j["model_type"] = "falcon_mamba";
  expect_error(j.dump(), {"model_type"});
  j = base();
  j["eos_token_id"] = 50;
  expect_error(j.dump(), {"eos_token_id", "outside the vocabulary"});
  expect_error(with("layer_norm_epsilon", "-1"), {"layer_norm_epsilon"});
}

TEST(Config, MambaSsmForm) {
  const char* text = R"({"d_model": 768, "d_intermediate": 0, "n_layer": 24, "vocab_size": 50277,
    "ssm_cfg": {"layer": "Mamba2"}, "attn_layer_idx": [], "attn_cfg": {}, "rms_norm": true,
    "residual_in_fp32": true, "fused_add_norm": true, "pad_vocab_size_multiple": 16, "tie_embeddings": true})";
  Config c = Config::from_json_text(text, "x");
  EXPECT_EQ(c.vocab_size, 50288);
  EXPECT_EQ(c.n_heads, 24);
  EXPECT_EQ(c.d_state, 128);
  EXPECT_TRUE(c.tie_embeddings);
  EXPECT_EQ(c.n_params(), Config::preset("130m").n_params());
}

TEST(Config, MambaSsmMamba1Defaults) {
  // state-spaces/mamba-130m's config.json: no ssm_cfg.layer means Mamba1, mamba_ssm's defaults apply.
  const char* text = R"({"d_model": 768, "n_layer": 24, "vocab_size": 50277, "ssm_cfg": {}, "rms_norm": true,
    "residual_in_fp32": true, "fused_add_norm": true, "pad_vocab_size_multiple": 8})";
  Config c = Config::from_json_text(text, "x");
  EXPECT_EQ(c.arch, Arch::Mamba1);
  EXPECT_EQ(c.vocab_size, 50280);
  EXPECT_EQ(c.vocab_valid, 50277);
  EXPECT_EQ(c.d_inner, 1536);
  EXPECT_EQ(c.d_state, 16);
  EXPECT_EQ(c.dt_rank, 48);
  EXPECT_EQ(c.d_conv, 4);
  EXPECT_TRUE(c.tie_embeddings);
  EXPECT_EQ(c.n_heads, 1536);  // each channel is its own head of one channel
  EXPECT_EQ(c.head_dim, 1);
  EXPECT_EQ(c.conv_dim, 1536);
  EXPECT_EQ(c.d_in_proj, 3072);
  EXPECT_EQ(c.d_x_proj, 48 + 32);
  EXPECT_EQ(c.n_params(), Config::preset("mamba1-130m").n_params());
  // mamba-130m: 129,135,360 parameters with the tied embedding counted once
  EXPECT_EQ(c.n_params(), 129135360);
  EXPECT_THROW(Config::from_json_text(R"({"d_model": 8, "n_layer": 1, "vocab_size": 10, "ssm_cfg": {"layer": "Mamba3"}})", "x"), Error);
  EXPECT_THROW(Config::from_json_text(R"({"d_model": 8, "n_layer": 1, "vocab_size": 10, "ssm_cfg": {"dt_rank": "big"}})", "x"), Error);
}

TEST(Config, HfMambaForm) {
  const char* text = R"({"model_type": "mamba", "hidden_size": 64, "num_hidden_layers": 2, "vocab_size": 100, "state_size": 8,
    "expand": 2, "intermediate_size": 128, "conv_kernel": 3, "time_step_rank": "auto", "use_bias": true, "use_conv_bias": false,
    "tie_word_embeddings": false, "layer_norm_epsilon": 1e-6, "eos_token_id": 0})";
  Config c = Config::from_json_text(text, "x");
  EXPECT_EQ(c.arch, Arch::Mamba1);
  EXPECT_EQ(c.d_inner, 128);
  EXPECT_EQ(c.dt_rank, 4);
  EXPECT_EQ(c.d_conv, 3);
  EXPECT_TRUE(c.use_bias);
  EXPECT_FALSE(c.conv_bias);
  EXPECT_FALSE(c.tie_embeddings);
  EXPECT_DOUBLE_EQ(c.norm_eps, 1e-6);
  EXPECT_NE(c.summary().find("Mamba-1"), std::string::npos);
}

TEST(Config, Presets) {
  EXPECT_EQ(Config::preset("2.7b").n_heads, 80);
  // mamba2-130m has about 129M parameters with the tied embedding counted once
  const double p = double(Config::preset("130m").n_params());
  EXPECT_GT(p, 125e6);
  EXPECT_LT(p, 135e6);
  EXPECT_THROW(Config::preset("7b"), Error);
}

TEST(Config, HostileValuesAreRefusedBeforeArithmetic) {
  // mamba_ssm form: headdim divides expand * d_model, so 0 must be refused first (was SIGFPE).
  expect_error(R"({"d_model": 64, "n_layer": 2, "vocab_size": 10, "ssm_cfg": {"layer": "Mamba2", "headdim": 0}})",
               {"'headdim' must be positive"});
  // Mamba-1 (mamba_ssm's default layer): a zero or oversized dt_rank, an absurd expand.
  expect_error(R"({"d_model": 64, "n_layer": 2, "vocab_size": 10, "ssm_cfg": {"dt_rank": 0}})", {"'time_step_rank' must be positive"});
  expect_error(R"({"d_model": 64, "n_layer": 2, "vocab_size": 10, "ssm_cfg": {"dt_rank": 1000}})", {"time_step_rank", "exceeds"});
  expect_error(R"({"d_model": 64, "n_layer": 2, "vocab_size": 10, "ssm_cfg": {"expand": 4096}})", {"'expand' is implausibly large"});
  expect_error(R"({"d_model": 64, "n_layer": 2, "vocab_size": 10, "pad_vocab_size_multiple": 9223372036854775807})",
               {"pad_vocab_size_multiple"});
  expect_error(R"({"d_model": 2147483648, "n_layer": 2, "vocab_size": 10})", {"'d_model' is implausibly large"});
  // Fields that pass one by one but whose products would overflow or describe an absurd model.
  auto j = base();
  j["hidden_size"] = 1 << 20;
  j["num_heads"] = 1 << 15;
  j["head_dim"] = 64;
  j["state_size"] = 1 << 20;
  j["n_groups"] = 1 << 15;
  expect_error(j.dump(), {"implausibly many"});
  for (const char* key : {"hidden_size", "num_hidden_layers", "state_size", "vocab_size", "chunk_size", "conv_kernel"}) {
    j = base();
    j[key] = int64_t{1} << 31;
    expect_error(j.dump(), {key, "implausibly large"});
    j[key] = -(int64_t{1} << 31);
    expect_error(j.dump(), {key, "must be positive"});
  }
  expect_error(with("layer_norm_epsilon", "1e300"), {"layer_norm_epsilon", "no larger than 1"});
  expect_error(with("layer_norm_epsilon", "1e-300"), {"layer_norm_epsilon"});
  expect_error(with("layer_norm_epsilon", "NaN"), {"layer_norm_epsilon"});
}

TEST(Json, NestingIsLimitedBeforeParsing) {
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  for (const std::string& text : {deep, "{\"a\": " + deep + "}", std::string(200000, '{')}) {
    try {
      parse_json_lenient(text, "deep.json");
      FAIL() << "accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("deep.json: JSON nested deeper than 64 levels"), std::string::npos) << e.what();
    }
  }
  // Brackets inside strings do not count; 64 levels are fine, also with a non-finite literal at the bottom.
  EXPECT_NO_THROW(parse_json_lenient("{\"s\": \"" + std::string(1000, '[') + "\\\"\"}", "x"));
  EXPECT_NO_THROW(parse_json_lenient(std::string(63, '[') + "NaN" + std::string(63, ']'), "x"));
  EXPECT_THROW(parse_json(std::string(65, '[') + std::string(65, ']'), "x"), Error);
  // A number beyond double's range is a parse error of the file, not an exception of another kind.
  EXPECT_THROW(parse_json("{\"vocab_size\": 51e3080}", "x"), Error);
  expect_error(with("vocab_size", "1e3081"), {"not valid JSON", "number overflow"});
  // Error messages quote at most a short excerpt of a huge value, and never throw on invalid UTF-8.
  EXPECT_LE(json_excerpt(nlohmann::json(std::string(1 << 20, 'a'))).size(), 60u);
  EXPECT_FALSE(json_excerpt(nlohmann::json(std::string("\xff\xfe"))).empty());
}

TEST(Config, StateSizeIsBounded) {
  // Few parameters, an enormous state: d_state 2^20 with 2^20 inner channels.
  auto j = base();
  j["hidden_size"] = 1024;
  j["expand"] = 1024;
  j["num_heads"] = 1 << 20;
  j["head_dim"] = 1;
  j["state_size"] = 1 << 20;
  j["n_groups"] = 1;
  expect_error(j.dump(), {"state of", "implausibly many"});
}
