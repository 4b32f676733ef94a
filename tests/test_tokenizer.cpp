// Tokenizer tests against expectations written by tools/make_tokenizer_fixtures.py from HF `tokenizers`.
// The GPT-NeoX-20B cases need ../shared/data/gpt-neox-20b-tokenizer.json and skip without it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "engine/clock.h"
#include "engine/error.h"
#include "engine/json_lenient.h"
#include "engine/tokenizer.h"
#include "tests/test_util.h"

namespace {

using mamba::read_text_file;
using mamba::StreamDecoder;
using mamba::Tokenizer;
using nlohmann::json;

const std::string kSource = MAMBA_SOURCE_DIR;
const std::string kFixtures = kSource + "/tests/fixtures/tokenizer/";

const json& cases() {
  static const json c = json::parse(read_text_file(kFixtures + "cases.json"));
  return c;
}

std::string show(const std::string& s) {
  std::string q = json(s).dump(-1, ' ', true, json::error_handler_t::replace);
  return q.size() > 200 ? q.substr(0, 200) + "..." : q;
}

bool is_valid_utf8(const std::string& s) { return mamba::utf8_lossy(s) == s; }

// Loads a fixture tokenizer by name; null when it is the optional GPT-NeoX one and ../shared lacks it.
std::shared_ptr<const Tokenizer> load(const std::string& name) {
  static std::map<std::string, std::shared_ptr<const Tokenizer>> loaded;
  if (auto it = loaded.find(name); it != loaded.end()) return it->second;
  const std::string path = kSource + "/" + cases()["tokenizers"][name]["file"].get<std::string>();
  std::shared_ptr<const Tokenizer> tok;
  if (std::filesystem::exists(path)) tok = std::make_shared<const Tokenizer>(Tokenizer::from_file(path));
  loaded[name] = tok;
  return tok;
}

#define LOAD_OR_SKIP(var, name) \
  const auto var = load(name);  \
  if (!var) GTEST_SKIP() << name << " tokenizer not available (optional ../shared data)"

class TokenizerFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerFixture, EncodeMatchesHuggingFace) {
  LOAD_OR_SKIP(tok, GetParam());
  const json& strings = cases()["strings"];
  const json& expected = cases()["tokenizers"][GetParam()]["encode"];
  ASSERT_EQ(strings.size(), expected.size());
  int failures = 0;
  for (size_t i = 0; i < strings.size(); ++i) {
    const auto ids = tok->encode(strings[i].get<std::string>());
    const auto want = expected[i].get<std::vector<int32_t>>();
    if (ids != want && ++failures <= 10)
      ADD_FAILURE() << "case " << i << " " << show(strings[i]) << "\n  got  " << json(ids).dump() << "\n  want " << json(want).dump();
  }
  EXPECT_EQ(failures, 0) << "of " << strings.size() << " strings";
}

TEST_P(TokenizerFixture, DecodeOfEncodeIsNfc) {
  LOAD_OR_SKIP(tok, GetParam());
  const json& strings = cases()["strings"];
  const json& roundtrip = cases()["tokenizers"][GetParam()]["roundtrip"];
  for (size_t i = 0; i < strings.size(); ++i) {
    const std::string s = strings[i];
    const std::string nfc = cases()["nfc"][i];
    const std::string want = roundtrip[i].is_null() ? nfc : roundtrip[i].get<std::string>();
    EXPECT_EQ(tok->decode(tok->encode(s)), want) << "case " << i << " " << show(s);
    // Our own NFC (utf8proc) agrees with Python's on these strings.
    EXPECT_EQ(mamba::normalize_nfc(s), nfc) << "case " << i << " " << show(s);
  }
}

TEST_P(TokenizerFixture, DecodeMatchesHuggingFace) {
  LOAD_OR_SKIP(tok, GetParam());
  for (const json& c : cases()["tokenizers"][GetParam()]["decode"]) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tok->decode(ids), c["text"].get<std::string>()) << json(ids).dump();
    EXPECT_EQ(tok->decode(ids, /*skip_special=*/true), c["text_skip"].get<std::string>()) << json(ids).dump();
  }
}

// Concatenated stream output equals whole decoding, and no push returns half a character.
void expect_stream_matches(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip_special) {
  StreamDecoder dec(tok, skip_special);
  std::string streamed;
  for (int32_t id : ids) {
    const std::string piece = dec.push(id);
    ASSERT_TRUE(is_valid_utf8(piece)) << "partial UTF-8 after id " << id << " in " << json(ids).dump();
    streamed += piece;
  }
  streamed += dec.flush();
  EXPECT_EQ(streamed, tok.decode(ids, skip_special)) << json(ids).dump();
}

TEST_P(TokenizerFixture, StreamingEqualsWholeDecode) {
  LOAD_OR_SKIP(tok, GetParam());
  for (const json& c : cases()["tokenizers"][GetParam()]["decode"]) {
    expect_stream_matches(*tok, c["ids"].get<std::vector<int32_t>>(), false);
    expect_stream_matches(*tok, c["ids"].get<std::vector<int32_t>>(), true);
  }
  for (const json& ids : cases()["tokenizers"][GetParam()]["encode"]) expect_stream_matches(*tok, ids.get<std::vector<int32_t>>(), false);
}

TEST_P(TokenizerFixture, PaddedVocabIdsDecodeToNothing) {
  LOAD_OR_SKIP(tok, GetParam());
  const int32_t n = tok->vocab_size();
  EXPECT_EQ(n, cases()["tokenizers"][GetParam()]["vocab_size"].get<int32_t>());
  for (int32_t id : {n, n + 1, n + 3, n + 11, -1, -100}) {
    EXPECT_FALSE(tok->has_token(id)) << id;
    EXPECT_EQ(tok->decode(std::vector<int32_t>{id}), "") << id;
    EXPECT_EQ(tok->token_text(id), "") << id;
    EXPECT_FALSE(tok->id_to_token(id).has_value()) << id;
    StreamDecoder dec(*tok);
    EXPECT_EQ(dec.push(id), "") << id;
  }
  const auto hello = tok->encode("Hello");
  std::vector<int32_t> mixed = {n + 1};
  mixed.insert(mixed.end(), hello.begin(), hello.end());
  mixed.push_back(n + 2);
  EXPECT_EQ(tok->decode(mixed), tok->decode(hello));
}

TEST_P(TokenizerFixture, EncodeIsThreadSafe) {
  LOAD_OR_SKIP(tok, GetParam());
  const std::string text = cases()["long_text"];
  const auto want = tok->encode(text);
  std::vector<std::vector<int32_t>> got(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < got.size(); ++t)
    threads.emplace_back([&, t] { got[t] = Tokenizer(*tok).encode(text.substr(0, text.size() - t * 1000)); });
  for (auto& th : threads) th.join();
  for (size_t t = 0; t < got.size(); ++t) EXPECT_EQ(got[t], tok->encode(text.substr(0, text.size() - t * 1000))) << t;
  EXPECT_EQ(got[0], want);
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, TokenizerFixture,
                         ::testing::Values("neox", "small", "small_seq", "small_fallback", "small_unk", "small_affix"));

// The 100 KB text (Shakespeare plus a mix of scripts, code and special tokens).
void expect_long_text_matches(const std::string& name) {
  LOAD_OR_SKIP(tok, name);
  const auto ids = tok->encode(cases()["long_text"].get<std::string>());
  const auto want = cases()["tokenizers"][name]["long_ids"].get<std::vector<int32_t>>();
  ASSERT_EQ(ids.size(), want.size());
  for (size_t i = 0; i < ids.size(); ++i) ASSERT_EQ(ids[i], want[i]) << "first difference at id " << i;
}

TEST(TokenizerLongText, NeoxMatchesHuggingFace) { expect_long_text_matches("neox"); }
TEST(TokenizerLongText, SmallMatchesHuggingFace) { expect_long_text_matches("small"); }

// --- GPT-NeoX specifics -----------------------------------------------------------------------------

TEST(TokenizerNeox, VocabAndSpecialTokens) {
  LOAD_OR_SKIP(tok, "neox");
  EXPECT_EQ(tok->vocab_size(), 50277);
  EXPECT_EQ(tok->eos_id(), 0);
  EXPECT_EQ(tok->token_to_id("<|padding|>"), 1);
  EXPECT_TRUE(tok->is_special(0));
  EXPECT_FALSE(tok->is_special(50254));  // the whitespace runs are added but not special
  EXPECT_EQ(tok->token_text(0), "<|endoftext|>");
  EXPECT_EQ(tok->token_text(209), " ");  // "Ġ"
  EXPECT_EQ(tok->id_to_token(209), "\xC4\xA0");
  EXPECT_EQ(tok->encode("Hello<|endoftext|>"), (std::vector<int32_t>{12092, 0}));
  EXPECT_EQ(tok->decode(std::vector<int32_t>{12092, 0, 12092}, true), "HelloHello");
}

TEST(TokenizerNeox, RunsOfSpacesUseWhitespaceTokens) {
  LOAD_OR_SKIP(tok, "neox");
  for (int n = 2; n <= 60; ++n) {
    std::string text = "a";
    text.append(size_t(n), ' ');
    text += 'b';
    const auto ids = tok->encode(text);
    ASSERT_GE(ids.size(), 3u);
    for (size_t i = 1; i + 1 < ids.size(); ++i) EXPECT_TRUE(ids[i] >= 50254 && ids[i] <= 50276) << n << " spaces: id " << ids[i];
  }
}

TEST(TokenizerSpeed, EncodesAMegabyteWellUnderASecond) {
  const auto tok = load("neox") ? load("neox") : load("small");
  ASSERT_TRUE(tok);
#if !defined(NDEBUG) || defined(MAMBA_SANITIZED)
  GTEST_SKIP() << "timing only in optimized, unsanitized builds";
#endif
  std::string text;
  while (text.size() < 1'000'000) text += cases()["long_text"].get<std::string>();
  const double t0 = mamba::now_seconds();
  const auto ids = tok->encode(text);
  const double s = mamba::now_seconds() - t0;
  EXPECT_LT(s, 1.0) << ids.size() << " ids";
}

// --- Streaming of byte tokens ------------------------------------------------------------------------

// The ids of the single-byte tokens spelling `bytes`.
std::vector<int32_t> byte_ids(const Tokenizer& tok, const std::string& bytes) {
  std::vector<int32_t> ids;
  for (unsigned char b : bytes) {
    for (int32_t id = 0; id < tok.vocab_size(); ++id) {
      if (tok.token_text(id) == std::string(1, char(b)) && !tok.is_special(id)) {
        ids.push_back(id);
        break;
      }
    }
  }
  return ids;
}

TEST(TokenizerStream, MultibyteCharactersSplitAcrossTokens) {
  const auto tok = load("small");
  ASSERT_TRUE(tok);
  const std::string text = "h\xC3\xA9llo \xE4\xB8\x96\xE7\x95\x8C \xF0\x9F\x8E\x89!";  // héllo 世界 🎉!
  const auto ids = byte_ids(*tok, text);
  ASSERT_EQ(ids.size(), text.size());
  StreamDecoder dec(*tok);
  std::vector<std::string> pieces;
  for (int32_t id : ids) pieces.push_back(dec.push(id));
  EXPECT_EQ(dec.flush(), "");
  // Output appears exactly when a character completes.
  const std::vector<std::string> want = {
      "h", "", "\xC3\xA9", "l", "l", "o", " ", "", "", "\xE4\xB8\x96", "", "", "\xE7\x95\x8C", " ", "", "", "", "\xF0\x9F\x8E\x89", "!"};
  EXPECT_EQ(pieces, want);
}

TEST(TokenizerStream, InvalidBytesBecomeReplacementCharacters) {
  const auto tok = load("small");
  ASSERT_TRUE(tok);
  StreamDecoder dec(*tok);
  const auto ids = byte_ids(*tok,
                            "\xF0\x9F\x98"
                            "a"
                            "\xC3");
  ASSERT_EQ(ids.size(), 5u);
  EXPECT_EQ(dec.push(ids[0]), "");
  EXPECT_EQ(dec.push(ids[1]), "");
  EXPECT_EQ(dec.push(ids[2]), "");
  EXPECT_EQ(dec.push(ids[3]),
            "\xEF\xBF\xBD"
            "a");  // known invalid once "a" arrives
  EXPECT_EQ(dec.push(ids[4]), "");
  EXPECT_EQ(dec.flush(), "\xEF\xBF\xBD");  // unfinished at the end
  EXPECT_EQ(tok->decode(ids),
            "\xEF\xBF\xBD"
            "a"
            "\xEF\xBF\xBD");
}

TEST(TokenizerStream, SkipsSpecialTokensWhenAsked) {
  const auto tok = load("small");
  ASSERT_TRUE(tok);
  StreamDecoder keep(*tok), skip(*tok, /*skip_special=*/true);
  EXPECT_EQ(keep.push(0), "<|endoftext|>");
  EXPECT_EQ(skip.push(0), "");
}

// --- Unicode helpers ----------------------------------------------------------------------------------

TEST(TokenizerUtf8, LossyMatchesFromUtf8Lossy) {
  // Expected strings from Python's bytes.decode("utf-8", "replace"), which places U+FFFD like Rust.
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(mamba::utf8_lossy("abc"), "abc");
  EXPECT_EQ(mamba::utf8_lossy("\xE2\x82"), r);
  EXPECT_EQ(mamba::utf8_lossy("\xC0\xAF"), r + r);
  EXPECT_EQ(mamba::utf8_lossy("\xED\xA0\x80"), r + r + r);
  EXPECT_EQ(mamba::utf8_lossy("\xF4\x90\x80\x80"), r + r + r + r);
  EXPECT_EQ(mamba::utf8_lossy("\xE0\x80\x80"), r + r + r);
  EXPECT_EQ(mamba::utf8_lossy("\xF0\x9F\x98"
                              "a"),
            r + "a");
  EXPECT_EQ(mamba::utf8_lossy("\xE2\x28\xA1"), r + "(" + r);
  EXPECT_EQ(mamba::utf8_lossy(std::string("a\0b", 3)), std::string("a\0b", 3));
}

TEST(TokenizerUtf8, InvalidInputIsRepairedBeforeEncoding) {
  const auto tok = load("small");
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->encode("x\xFFy\xE2\x82"), tok->encode("x\xEF\xBF\xBDy\xEF\xBF\xBD"));
}

// --- Loading ------------------------------------------------------------------------------------------

TEST(TokenizerLoad, FromDirectoryContainingTokenizerJson) {
  const auto dir = std::filesystem::temp_directory_path() / ("mamba_tok_dir_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(kFixtures + "small_tokenizer.json", dir / "tokenizer.json", std::filesystem::copy_options::overwrite_existing);
  const Tokenizer tok = Tokenizer::from_file(dir.string());
  EXPECT_EQ(tok.encode("ROMEO:"), load("small")->encode("ROMEO:"));
  std::filesystem::remove_all(dir);
}

// The message of the mamba::Error thrown while loading `text`, or "" if it loads.
std::string load_error(const std::string& text) {
  try {
    Tokenizer::from_json_text(text, "bad.json");
  } catch (const mamba::Error& e) {
    return e.what();
  }
  return "";
}

json small_json() { return json::parse(read_text_file(kFixtures + "small_tokenizer.json")); }

void expect_load_error(const json& j, const std::vector<std::string>& parts) {
  const std::string msg = load_error(j.dump());
  ASSERT_FALSE(msg.empty()) << "loaded without error; expected: " << parts[0];
  EXPECT_EQ(msg.find("\n"), std::string::npos) << msg;
  EXPECT_EQ(msg.rfind("bad.json: ", 0), 0u) << msg;
  for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
}

TEST(TokenizerLoad, BaseFixtureLoads) { EXPECT_EQ(load_error(small_json().dump()), ""); }

TEST(TokenizerLoad, RejectsNonJson) {
  const std::string msg = load_error("{\"model\": ");
  EXPECT_NE(msg.find("bad.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not valid JSON"), std::string::npos) << msg;
  EXPECT_NE(load_error("").find("not valid JSON"), std::string::npos);
  expect_load_error(json::array({1, 2}), {"not a tokenizer.json"});
}

TEST(TokenizerLoad, RejectsMissingModel) {
  json j = small_json();
  j.erase("model");
  expect_load_error(j, {"missing \"model\""});
  j = small_json();
  j["model"].erase("vocab");
  expect_load_error(j, {"missing model.vocab"});
  j = small_json();
  j["model"].erase("merges");
  expect_load_error(j, {"missing model.merges"});
}

TEST(TokenizerLoad, RejectsBadMerges) {
  json j = small_json();
  j["model"]["merges"][3] = "ab";
  expect_load_error(j, {"bad merge #4", "two tokens separated by one space"});
  j["model"]["merges"][3] = "a b c";
  expect_load_error(j, {"bad merge #4"});
  j["model"]["merges"][3] = json::array({"a"});
  expect_load_error(j, {"bad merge #4"});
  j["model"]["merges"][3] = 7;
  expect_load_error(j, {"bad merge #4"});
  j["model"]["merges"] = "h e";
  expect_load_error(j, {"model.merges must be a list"});
}

TEST(TokenizerLoad, RejectsMergesOfUnknownTokens) {
  json j = small_json();
  j["model"]["merges"][0] = json::array({"\xC4\xA0", "zzzz"});
  expect_load_error(j, {"bad merge #1", "\"zzzz\" is not in the vocab"});
  j = small_json();
  j["model"]["merges"].push_back("Q Z");  // both letters exist, "QZ" does not
  expect_load_error(j, {"merged token \"QZ\" is not in the vocab"});
}

TEST(TokenizerLoad, RejectsIdsOutOfRange) {
  json j = small_json();
  j["model"]["vocab"]["h"] = -1;
  expect_load_error(j, {"\"h\"", "id -1 is out of range"});
  j["model"]["vocab"]["h"] = 99999999;
  expect_load_error(j, {"id 99999999 is out of range"});
  j["model"]["vocab"]["h"] = 1.5;
  expect_load_error(j, {"id must be an integer"});
  j["model"]["vocab"]["h"] = "7";
  expect_load_error(j, {"id must be an integer"});
  j = small_json();
  j["added_tokens"][2]["id"] = -5;
  expect_load_error(j, {"added_tokens[2]", "out of range"});
}

TEST(TokenizerLoad, RejectsDuplicateIds) {
  json j = small_json();
  j["model"]["vocab"]["h"] = j["model"]["vocab"]["e"];
  expect_load_error(j, {"duplicate id", "\"h\"", "\"e\""});
  j = small_json();
  j["added_tokens"][2]["id"] = 500;  // a whitespace-run token onto a vocab token's id
  expect_load_error(j, {"duplicate id 500"});
  j = small_json();
  j["added_tokens"].push_back(j["added_tokens"][2]);
  expect_load_error(j, {"duplicate added token"});
}

TEST(TokenizerLoad, RejectsUnsupportedModels) {
  json j = small_json();
  j["model"]["type"] = "WordPiece";
  expect_load_error(j, {"unsupported model type \"WordPiece\"", "only byte-level BPE"});
  j["model"]["type"] = "Unigram";
  expect_load_error(j, {"unsupported model type \"Unigram\""});
  j = small_json();
  j["model"] = {{"type", "Unigram"}, {"unk_id", 0}, {"vocab", json::array({json::array({"a", -1.0})})}};
  expect_load_error(j, {"unsupported model type \"Unigram\""});
  j = small_json();
  j["model"]["dropout"] = 0.1;
  expect_load_error(j, {"unsupported: BPE dropout"});
  j = small_json();
  j["model"]["unk_token"] = "<unk>";
  expect_load_error(j, {"unk_token \"<unk>\" is not in the vocab"});
}

TEST(TokenizerLoad, RejectsUnsupportedPipelines) {
  json j = small_json();
  j["normalizer"] = {{"type", "Lowercase"}};
  expect_load_error(j, {"unsupported normalizer \"Lowercase\""});
  j = small_json();
  j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "_"}};
  expect_load_error(j, {"unsupported pre_tokenizer \"Metaspace\""});
  j = small_json();
  j["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers", json::array({{{"type", "Split"}, {"pattern", {{"Regex", "\\d+"}}}, {"behavior", "Isolated"}, {"invert", false}},
                                     {{"type", "ByteLevel"}, {"use_regex", false}}})}};
  expect_load_error(j, {"unsupported Split pattern", "GPT-2 regex"});
  j = small_json();
  j["pre_tokenizer"] = nullptr;
  expect_load_error(j, {"no pre_tokenizer"});
  j = small_json();
  j["decoder"] = nullptr;
  expect_load_error(j, {"no decoder"});
  j = small_json();
  j["decoder"] = {{"type", "WordPiece"}};
  expect_load_error(j, {"unsupported decoder \"WordPiece\""});
}

TEST(TokenizerLoad, MissingFileNamesThePath) {
  try {
    Tokenizer::from_file("/nonexistent/dir/tok.json");
    FAIL() << "no error";
  } catch (const mamba::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/tok.json"), std::string::npos) << e.what();
  }
  try {
    Tokenizer::from_file(kFixtures);  // a folder without tokenizer.json
    FAIL() << "no error";
  } catch (const mamba::Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.json: no such file"), std::string::npos) << e.what();
  }
}

TEST(TokenizerLoad, MergesAsStringsAndPairsAgree) {
  json pairs = small_json(), strings = small_json();
  strings["model"]["merges"] = json::array();
  for (const json& m : pairs["model"]["merges"])
    strings["model"]["merges"].push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
  const Tokenizer a = Tokenizer::from_json_text(pairs.dump(), "pairs");
  const Tokenizer b = Tokenizer::from_json_text(strings.dump(), "strings");
  const std::string text = cases()["long_text"];
  EXPECT_EQ(a.encode(text), b.encode(text));
}

// --- mamba-cli tokenize / detokenize ---------------------------------------------------------------------

#ifdef MAMBA_CLI_PATH
using CliResult = mamba::test::CommandResult;

CliResult run_cli(const std::string& args) { return mamba::test::run_command(std::string(MAMBA_CLI_PATH) + " " + args); }

TEST(TokenizerCli, TokenizeAndDetokenize) {
  const auto tok = load("small");
  const std::string file = kFixtures + "small_tokenizer.json";
  const CliResult t = run_cli("tokenize --tokenizer " + file + " --text 'ROMEO: caf\xC3\xA9  <|endoftext|>'");
  ASSERT_EQ(t.code, 0) << t.err;
  const auto ids = json::parse(t.out).get<std::vector<int32_t>>();
  EXPECT_EQ(ids, tok->encode("ROMEO: caf\xC3\xA9  <|endoftext|>"));
  EXPECT_EQ(t.out.back(), '\n');
  EXPECT_EQ(t.out.find('\n'), t.out.size() - 1);  // one line

  std::string csv;
  for (size_t i = 0; i < ids.size(); ++i) csv += (i ? "," : "") + std::to_string(ids[i]);
  // FILE_OR_DIR: a folder holding tokenizer.json works too.
  const auto dir = std::filesystem::temp_directory_path() / ("mamba_tok_cli_dir_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(file, dir / "tokenizer.json", std::filesystem::copy_options::overwrite_existing);
  const CliResult d2 = run_cli("detokenize --tokenizer " + dir.string() + " --ids " + csv);
  std::filesystem::remove_all(dir);
  ASSERT_EQ(d2.code, 0) << d2.err;
  EXPECT_EQ(d2.out, "ROMEO: caf\xC3\xA9  <|endoftext|>\n");
}

TEST(TokenizerCli, TextFileAndErrors) {
  const std::string file = kFixtures + "small_tokenizer.json";
  const CliResult t = run_cli("tokenize --tokenizer " + file + " --text-file " + kFixtures + "small_tokenizer.json");
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_EQ(json::parse(t.out).get<std::vector<int32_t>>(), load("small")->encode(read_text_file(file)));

  const CliResult usage = run_cli("tokenize --text hi");
  EXPECT_EQ(usage.code, 2) << usage.err;
  EXPECT_EQ(run_cli("tokenize --tokenizer " + file).code, 2);
  EXPECT_EQ(run_cli("detokenize --tokenizer " + file + " --ids 1,x").code, 2);

  const CliResult missing = run_cli("tokenize --tokenizer /nonexistent.json --text hi");
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("/nonexistent.json"), std::string::npos) << missing.err;
  EXPECT_EQ(std::count(missing.err.begin(), missing.err.end(), '\n'), 1) << missing.err;
}
#endif

}  // namespace
