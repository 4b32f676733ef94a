// The command line as other programs meet it: output formats and exit codes.
#include <gtest/gtest.h>

#include <algorithm>

#include "engine/json_lenient.h"
#include "tests/test_util.h"

namespace {

using Result = mamba::test::CommandResult;

Result run_cli(const std::string& args) { return mamba::test::run_command(std::string(MAMBA_CLI_PATH) + " " + args); }

std::string fixture(const std::string& name) { return mamba::test::source_dir() + "/tests/fixtures/models/" + name; }

mamba::test::ModelReference reference(const std::string& name) { return mamba::test::load_model_reference(fixture(name)); }

std::string ids_arg(const std::vector<int32_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(ids[i]);
  }
  return s;
}

std::string last_line(const std::string& s) {
  std::string t = s;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  const size_t p = t.rfind('\n');
  return p == std::string::npos ? t : t.substr(p + 1);
}

}  // namespace

TEST(Cli, GenerateGreedyPrintIdsMatchesReference) {
  const auto ref = reference("g2_untied_k3");
  const auto& ids = ref.input_ids;
  Result r = run_cli("generate -m " + fixture("g2_untied_k3") + " --ids " + ids_arg(ids) + " -n 12 -t 0 --print-ids");
  ASSERT_EQ(r.code, 0) << r.err;
  auto got = nlohmann::json::parse(last_line(r.out));
  EXPECT_EQ(got.get<std::vector<int32_t>>(), ref.greedy_ids);
  // recurrent prompt scan gives the same continuation
  Result rr = run_cli("generate -m " + fixture("g2_untied_k3") + " --ids " + ids_arg(ids) + " -n 12 -t 0 --print-ids --scan recurrent");
  EXPECT_EQ(last_line(rr.out), last_line(r.out));
}

TEST(Cli, SameSeedSameOutput) {
  const std::string base = "generate -m " + fixture("g1_tied_k4") + " --ids 1,2,3 -n 20 -t 1.0 --top-p 0.9 --print-ids --seed ";
  Result a = run_cli(base + "7"), b = run_cli(base + "7"), c = run_cli(base + "8");
  ASSERT_EQ(a.code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_NE(last_line(a.out), last_line(c.out));
  EXPECT_EQ(nlohmann::json::parse(last_line(a.out)).size(), 20u);
}

TEST(Cli, LogitsFormat) {
  const auto ref = reference("fp16_weights");
  const auto& ids = ref.input_ids;
  Result r = run_cli("logits -m " + fixture("fp16_weights") + " --ids " + ids_arg(ids));
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["vocab_size"], 80);
  ASSERT_EQ(j["logits"].size(), ids.size());
  for (size_t t = 0; t < ids.size(); ++t) {
    auto got = j["logits"][t].get<std::vector<float>>();
    ASSERT_EQ(got.size(), 80u);
    EXPECT_LT(mamba::test::rel_err(got.data(), ref.logits.data() + t * 80, got.size()), 1e-4) << "row " << t;
  }
}

TEST(Cli, ExitCodes) {
  Result usage = run_cli("generate -m " + fixture("g1_tied_k4") + " --bogus");
  EXPECT_EQ(usage.code, 2);
  EXPECT_NE(usage.err.find("unknown argument '--bogus'"), std::string::npos) << usage.err;
  EXPECT_EQ(run_cli("generate -m " + fixture("g1_tied_k4")).code, 2);  // no prompt
  EXPECT_EQ(run_cli("frobnicate").code, 2);
  EXPECT_EQ(run_cli("generate -m " + fixture("g1_tied_k4") + " --ids 1,x").code, 2);

  Result missing = run_cli("generate -m /nonexistent/model --ids 1,2");
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("/nonexistent/model"), std::string::npos) << missing.err;
  EXPECT_EQ(std::count(missing.err.begin(), missing.err.end(), '\n'), 1) << "one line on stderr: " << missing.err;

  Result no_tok = run_cli("generate -m " + fixture("g1_tied_k4") + " -i hello");
  EXPECT_EQ(no_tok.code, 1);
  EXPECT_NE(no_tok.err.find("no tokenizer.json"), std::string::npos) << no_tok.err;

  Result oov = run_cli("logits -m " + fixture("g1_tied_k4") + " --ids 1,96");
  EXPECT_EQ(oov.code, 1);
  EXPECT_NE(oov.err.find("outside the vocabulary"), std::string::npos) << oov.err;
}

TEST(Cli, BenchJson) {
  Result r = run_cli("bench -m " + fixture("g1_tied_k4") + " --prompt-len 16 --gen 4 --reps 1 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  for (const char* k : {"prefill_tok_s", "decode_tok_s", "peak_memory_bytes", "memory_bandwidth_gbs", "decode_bound_tok_s", "build"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_GT(j["decode_tok_s"].get<double>(), 0);
  EXPECT_GT(j["memory_bandwidth_gbs"].get<double>(), 0.1);
}

TEST(Cli, OutOfRangeValuesAreUsageErrors) {
  const std::string m = "-m " + fixture("g1_tied_k4");
  // Each: exit 2, one line naming the option, within seconds (no huge allocation, no overflow).
  for (const std::string& args : std::vector<std::string>{"generate " + m + " --ids 1 --chunk-size 0",
                                                          "generate " + m + " --ids 1 --chunk-size -5",
                                                          "generate " + m + " --ids 1 --chunk-size 4294967296",
                                                          "logits " + m + " --ids 1 --chunk-size 5000",
                                                          "score " + m + " --text-file /dev/null --window 4503599627370497",
                                                          "generate " + m + " --ids 1 --threads 4294967297",
                                                          "generate " + m + " --ids 1 --threads -1",
                                                          "generate -m '' --ids 1",
                                                          "generate " + m + " --ids 1 -t nan",
                                                          "generate " + m + " --ids 1 -t -1",
                                                          "generate " + m + " --ids 1 --top-p 1.5",
                                                          "generate " + m + " --ids 1 --min-p 2",
                                                          "generate " + m + " --ids 1 -n -3",
                                                          "generate " + m + " --ids ''",
                                                          "generate " + m + " --ids 1,,2",
                                                          "generate " + m + " --ids 1 --seed -1",
                                                          "generate " + m + " --ids 1 --device tpu",
                                                          "generate " + m + " --ids 1 --scan sideways",
                                                          "bench --config 7b",
                                                          "detokenize --tokenizer x --ids 99999999999"}) {
    SCOPED_TRACE(args);
    Result r = run_cli(args);
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  // A chunk longer than the prompt is the prompt (documented), so this runs.
  EXPECT_EQ(run_cli("logits " + m + " --ids 1,2,3 --chunk-size 4096").code, 0);
}

TEST(Cli, HelpAndInvalidUtf8) {
  for (const char* cmd : {"--help", "generate --help", "bench -h", "tokenize --help"}) {
    Result r = run_cli(cmd);
    EXPECT_EQ(r.code, 0) << cmd;
    EXPECT_NE(r.out.find("Usage: mamba-cli"), std::string::npos) << r.out;
  }
  Result none = run_cli("");
  EXPECT_EQ(none.code, 2);
  EXPECT_NE(none.err.find("generate"), std::string::npos);
  // A prompt that is not UTF-8 is read as from_utf8_lossy reads it.
  const std::string tok = mamba::test::source_dir() + "/resources/models/mamba2-shakespeare";
  Result bad = run_cli("tokenize --tokenizer " + tok + " --text \"$(printf 'ab\\377\\376 cd')\"");
  EXPECT_EQ(bad.code, 0) << bad.err;
}
