// Snapshots across processes: mamba-cli generate --save-state / --load-state and state info.
#include <gtest/gtest.h>

#include "engine/session.h"
#include "engine/snapshot.h"
#include "tests/test_util.h"

using namespace mamba;
using namespace mamba::test;

namespace {

CommandResult cli(const std::string& args) { return run_command(std::string(MAMBA_CLI_PATH) + " " + args); }

std::string fixture(const std::string& name) { return source_dir() + "/tests/fixtures/models/" + name; }

std::string last_line(const std::string& s) {
  std::string t = s;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  const size_t p = t.rfind('\n');
  return p == std::string::npos ? t : t.substr(p + 1);
}

std::vector<int32_t> printed_ids(const CommandResult& r) { return nlohmann::json::parse(last_line(r.out)).get<std::vector<int32_t>>(); }

const std::string kModel = fixture("g2_untied_k3");
const std::string kPromptIds = "5,17,3,99,42,8";

}  // namespace

// The property: -n 20 prints the ids of -n 10 --save-state followed by --load-state -n 10.
TEST(CliSnapshot, TenPlusTenIsTwentyAcrossProcesses) {
  TempDir d;
  for (const std::string sampling : {"-t 0", "-t 0.8 --seed 7", "-t 1.1 --seed 3 --top-k 9 --repeat-penalty 1.2"}) {
    const std::string base = "generate -m " + kModel + " --ids " + kPromptIds + " --no-stop --print-ids " + sampling;
    const CommandResult whole = cli(base + " -n 20");
    ASSERT_EQ(whole.code, 0) << whole.err;
    const CommandResult first = cli(base + " -n 10 --save-state " + d.file("ten.snap"));
    ASSERT_EQ(first.code, 0) << first.err;
    const CommandResult second = cli("generate -m " + kModel + " --no-stop --load-state " + d.file("ten.snap") + " -n 10 --print-ids");
    ASSERT_EQ(second.code, 0) << second.err;
    std::vector<int32_t> ids = printed_ids(first);
    const auto more = printed_ids(second);
    ids.insert(ids.end(), more.begin(), more.end());
    EXPECT_EQ(ids, printed_ids(whole)) << sampling;
    EXPECT_EQ(printed_ids(whole).size(), 20u);
  }
}

// From a snapshot, -i/--ids appends before continuing, and sampling flags override the saved ones: the
// same as the engine does in process.
TEST(CliSnapshot, AppendAndOverride) {
  TempDir d;
  const std::string f = d.file("s.snap");
  ASSERT_EQ(cli("generate -m " + kModel + " --ids " + kPromptIds + " -n 6 -t 0.9 --seed 5 --no-stop --save-state " + f).code, 0);
  auto model = Model::load(kModel);
  const Snapshot snap = load_snapshot(f);
  auto expect = [&](const std::vector<int32_t>& append, SamplerParams p, bool reseed) {
    Session s(make_cpu_backend(model));
    s.restore_snapshot(snap);
    GenerateOptions go;
    go.max_new_tokens = 8;
    go.sampling = p;
    go.reseed = reseed;
    go.stop_at_eos = false;
    return s.generate(append, go).ids;
  };
  const CommandResult appended = cli("generate -m " + kModel + " --load-state " + f + " --ids 7,7,7 -n 8 --no-stop --print-ids");
  ASSERT_EQ(appended.code, 0) << appended.err;
  EXPECT_EQ(printed_ids(appended), expect({7, 7, 7}, snap.sampler->params, false));
  SamplerParams greedy = snap.sampler->params;
  greedy.temperature = 0;
  const CommandResult g = cli("generate -m " + kModel + " --load-state " + f + " -n 8 -t 0 --no-stop --print-ids");
  EXPECT_EQ(printed_ids(g), expect({}, greedy, false));
  SamplerParams reseeded = snap.sampler->params;
  reseeded.seed = 11;
  const CommandResult r = cli("generate -m " + kModel + " --load-state " + f + " -n 8 --seed 11 --no-stop --print-ids");
  EXPECT_EQ(printed_ids(r), expect({}, reseeded, true));
  EXPECT_NE(printed_ids(r), printed_ids(cli("generate -m " + kModel + " --load-state " + f + " -n 8 --no-stop --print-ids")));
}

TEST(CliSnapshot, PromptOnlySaveContinues) {
  TempDir d;
  const std::string f = d.file("p.snap");
  const CommandResult saved = cli("generate -m " + kModel + " --ids " + kPromptIds + " -n 0 --save-state " + f + " --print-ids");
  ASSERT_EQ(saved.code, 0) << saved.err;
  EXPECT_EQ(last_line(saved.out), "[]");
  const CommandResult more = cli("generate -m " + kModel + " --load-state " + f + " -n 5 -t 0 --no-stop --print-ids");
  ASSERT_EQ(more.code, 0) << more.err;
  EXPECT_EQ(printed_ids(more).size(), 5u);
}

TEST(CliSnapshot, StateInfo) {
  TempDir d;
  const std::string f = d.file("i.snap");
  ASSERT_EQ(cli("generate -m " + kModel + " --ids " + kPromptIds + " -n 4 -t 0.7 --seed 2 --no-stop --save-state " + f).code, 0);
  const CommandResult info = cli("state info " + f);
  ASSERT_EQ(info.code, 0) << info.err;
  const auto j = nlohmann::json::parse(info.out);
  EXPECT_EQ(j["model"]["id"], Model::load(kModel)->identity());
  EXPECT_EQ(j["tokens"]["count"], 10);
  EXPECT_EQ(j["tokens"]["pending"], 1);
  EXPECT_EQ(j["file"]["format_version"], 1);
  EXPECT_EQ(j["file"]["bytes"], std::filesystem::file_size(f));
  EXPECT_EQ(j["state"]["bytes"], SnapshotShape::of(Model::load(kModel)->config).state_bytes());
  EXPECT_FLOAT_EQ(j["sampler"]["temperature"].get<float>(), 0.7f);
  EXPECT_EQ(j["sampler"]["seed"], 2);
  EXPECT_EQ(j["made_on"]["weights_dtype"], "f32");
  // usage errors
  EXPECT_EQ(cli("state").code, 2);
  EXPECT_EQ(cli("state show " + f).code, 2);
}

// Each refusal: exit 1 and one line that says which.
TEST(CliSnapshot, Refusals) {
  TempDir d;
  const std::string f = d.file("r.snap");
  ASSERT_EQ(cli("generate -m " + kModel + " --ids " + kPromptIds + " -n 4 --save-state " + f).code, 0);
  const std::string bytes = read_text_file(f);
  write_file(d.file("short.snap"), bytes.substr(0, bytes.size() - 100));
  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 8;
  write_file(d.file("flipped.snap"), flipped);
  write_file(d.file("text.snap"), "hello");
  struct Case {
    std::string args, words;
  };
  for (const Case& c : {Case{"-m " + fixture("g1_tied_k4") + " --load-state " + f, "another model"},
                        Case{"-m " + kModel + " --load-state " + d.file("short.snap"), "truncated"},
                        Case{"-m " + kModel + " --load-state " + d.file("flipped.snap"), "altered or damaged"},
                        Case{"-m " + kModel + " --load-state " + d.file("text.snap"), "not a Mamba Studio snapshot"},
                        Case{"-m " + kModel + " --load-state " + d.file("missing.snap"), "missing.snap"}}) {
    const CommandResult r = cli("generate " + c.args + " -n 3");
    EXPECT_EQ(r.code, 1) << c.args;
    EXPECT_NE(r.err.find(c.words), std::string::npos) << r.err;
  }
  EXPECT_EQ(cli("state info " + d.file("flipped.snap")).code, 1);
  // a save into a folder that does not exist fails with the file named, and writes nothing
  const CommandResult bad = cli("generate -m " + kModel + " --ids 1,2 -n 2 --save-state " + d.file("no/such/x.snap"));
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("x.snap"), std::string::npos) << bad.err;
}

// With the embedded default model and its tokenizer: -i text before continuing.
TEST(CliSnapshot, DefaultModelTextAppend) {
  if (!std::filesystem::exists(std::filesystem::path(default_model_dir()) / "tokenizer.json")) GTEST_SKIP() << "no default model";
  TempDir d;
  const std::string f = d.file("romeo.snap");
  const CommandResult a = cli("generate -i \"ROMEO:\" -n 10 -t 0.8 --seed 7 --print-ids --save-state " + f);
  ASSERT_EQ(a.code, 0) << a.err;
  const CommandResult b = cli("generate --load-state " + f + " -n 10 --print-ids");
  const CommandResult whole = cli("generate -i \"ROMEO:\" -n 20 -t 0.8 --seed 7 --print-ids");
  std::vector<int32_t> ids = printed_ids(a);
  const auto more = printed_ids(b);
  ids.insert(ids.end(), more.begin(), more.end());
  EXPECT_EQ(ids, printed_ids(whole));
  const CommandResult c = cli("generate --load-state " + f + " -i \"\nJULIET:\" -n 5 --print-ids");
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_NE(c.out.find("JULIET:"), std::string::npos) << c.out;
  EXPECT_EQ(printed_ids(c).size(), 5u);
}
