// Randomized robustness tests for the tokenizer: corrupted tokenizer.json files and random byte strings
// must never crash, and every failure must be a mamba::Error. Seeded, bounded (a few seconds in Release).
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>

#include "engine/error.h"
#include "engine/json_lenient.h"
#include "engine/tokenizer.h"

namespace {

using mamba::StreamDecoder;
using mamba::Tokenizer;
using nlohmann::json;

const std::string kFixtures = std::string(MAMBA_SOURCE_DIR) + "/tests/fixtures/tokenizer/";

std::string random_bytes(std::mt19937& rng, size_t max_len) {
  std::uniform_int_distribution<size_t> len(0, max_len);
  std::string s(len(rng), '\0');
  // Bias towards bytes that matter: ASCII text, spaces, UTF-8 lead and continuation bytes.
  static const std::string favourites = " \t\n'\xC3\xA9\xE2\x80\x8B\xF0\x9F\x98\x80<|>";
  for (char& c : s) {
    const unsigned r = rng() % 4;
    c = r == 0 ? char(rng() % 256) : r == 1 ? favourites[rng() % favourites.size()] : char('a' + rng() % 26);
  }
  return s;
}

// Exercises a tokenizer that loaded: encode, decode and stream must agree and not crash.
void exercise(const Tokenizer& tok, std::mt19937& rng) {
  for (int k = 0; k < 3; ++k) {
    const std::string text = random_bytes(rng, 60);
    const auto ids = tok.encode(text);
    const std::string whole = tok.decode(ids);
    StreamDecoder dec(tok);
    std::string streamed;
    for (int32_t id : ids) streamed += dec.push(id);
    streamed += dec.flush();
    ASSERT_EQ(streamed, whole);
  }
  std::vector<int32_t> ids(rng() % 20);
  for (int32_t& id : ids) id = int32_t(rng() % uint32_t(tok.vocab_size() + 5)) - 2;
  (void)tok.decode(ids, rng() % 2 == 0);
}

// Loads `text`; anything but success or mamba::Error fails the test.
void try_load(const std::string& text, std::mt19937& rng, int& loaded, int& rejected) {
  std::optional<Tokenizer> tok;
  try {
    tok.emplace(Tokenizer::from_json_text(text, "fuzz.json"));
  } catch (const mamba::Error& e) {
    ++rejected;
    ASSERT_EQ(std::string(e.what()).rfind("fuzz.json: ", 0), 0u) << e.what();
    return;
  } catch (const std::exception& e) {
    FAIL() << "non-mamba::Error exception: " << e.what();
  }
  ++loaded;
  try {
    exercise(*tok, rng);
  } catch (const std::exception& e) {
    FAIL() << "exception using a loaded tokenizer: " << e.what();
  }
}

TEST(TokenizerFuzz, MutatedJsonBytes) {
  std::mt19937 rng(12345);
  int loaded = 0, rejected = 0;
  for (const char* name : {"small_seq_tokenizer.json", "small_fallback_tokenizer.json"}) {
    const std::string base = mamba::read_text_file(kFixtures + name);
    ASSERT_FALSE(base.empty());
    for (int it = 0; it < 1500; ++it) {
      std::string s = base;
      const int edits = 1 + int(rng() % 4);
      for (int e = 0; e < edits && !s.empty(); ++e) {
        const size_t pos = rng() % s.size();
        switch (rng() % 6) {
          case 0: s[pos] = char(rng() % 256); break;
          case 1: s.insert(pos, 1, "0123456789\",[]{}:- \\"[rng() % 20]); break;
          case 2: s.erase(pos, 1 + rng() % 8); break;
          case 3: s.resize(pos); break;
          case 4: s.insert(pos, s.substr(rng() % s.size(), rng() % 40)); break;
          default: s[pos] = char('0' + rng() % 10); break;  // ids: duplicates, out of range
        }
      }
      try_load(s, rng, loaded, rejected);
      if (HasFatalFailure()) return;
    }
  }
  RecordProperty("loaded", loaded);
  RecordProperty("rejected", rejected);
  EXPECT_GT(rejected, 0);
}

// Random edits of the parsed JSON: reach the semantic checks that byte flips rarely get past the parser.
json random_value(std::mt19937& rng) {
  switch (rng() % 8) {
    case 0: return nullptr;
    case 1: return rng() % 2 == 0;
    case 2: return int64_t(rng() % 2000) - 100;
    case 3: return double(rng() % 1000) / 7.0;
    case 4: return "\xC4\xA0t";
    case 5: return json::array({"a", "b"});
    case 6: return json::object({{"type", "ByteLevel"}});
    default: return int64_t(rng()) * 4096;
  }
}

void mutate(json& node, std::mt19937& rng, int depth) {
  if (node.is_object() && !node.empty()) {
    auto it = node.begin();
    std::advance(it, rng() % node.size());
    const int action = int(rng() % 5);
    if (action == 0) {
      node.erase(it);
    } else if (action == 1 || depth > 6) {
      *it = random_value(rng);
    } else {
      mutate(*it, rng, depth + 1);
    }
  } else if (node.is_array() && !node.empty()) {
    const size_t i = rng() % node.size();
    const int action = int(rng() % 5);
    if (action == 0) {
      node.erase(i);
    } else if (action == 1) {
      node.push_back(node[rng() % node.size()]);
    } else if (action == 2 || depth > 6) {
      node[i] = random_value(rng);
    } else {
      mutate(node[i], rng, depth + 1);
    }
  } else {
    node = random_value(rng);
  }
}

TEST(TokenizerFuzz, MutatedJsonStructure) {
  std::mt19937 rng(777);
  int loaded = 0, rejected = 0;
  for (const char* name : {"small_seq_tokenizer.json", "small_unk_tokenizer.json", "small_affix_tokenizer.json"}) {
    const json base = json::parse(mamba::read_text_file(kFixtures + name));
    for (int it = 0; it < 1000; ++it) {
      json j = base;
      for (int e = 0, edits = 1 + int(rng() % 3); e < edits; ++e) mutate(j, rng, 0);
      try_load(j.dump(), rng, loaded, rejected);
      if (HasFatalFailure()) return;
    }
  }
  EXPECT_GT(loaded, 0);
  EXPECT_GT(rejected, 0);
}

TEST(TokenizerFuzz, RandomBytesRoundTrip) {
  const Tokenizer tok = Tokenizer::from_file(kFixtures + "small_tokenizer.json");
  std::mt19937 rng(2024);
  for (int it = 0; it < 20000; ++it) {
    const std::string bytes = random_bytes(rng, 120);
    const auto ids = tok.encode(bytes);
    for (int32_t id : ids) ASSERT_TRUE(tok.has_token(id));
    // Byte-level BPE loses nothing but invalid UTF-8 and non-NFC forms.
    ASSERT_EQ(tok.decode(ids), mamba::normalize_nfc(mamba::utf8_lossy(bytes)));
  }
}

TEST(TokenizerFuzz, RandomBytesNeox) {
  const std::string path = std::string(MAMBA_SOURCE_DIR) + "/../shared/data/gpt-neox-20b-tokenizer.json";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "optional ../shared data not present";
  const Tokenizer tok = Tokenizer::from_file(path);
  std::mt19937 rng(99);
  for (int it = 0; it < 10000; ++it) {
    const std::string bytes = random_bytes(rng, 200);
    const auto ids = tok.encode(bytes);
    const std::string nfc = mamba::normalize_nfc(mamba::utf8_lossy(bytes));
    // "<|endoftext|>" may have been formed at random; then NFC is applied to the pieces around it.
    if (nfc.find("<|") == std::string::npos) {
      ASSERT_EQ(tok.decode(ids), nfc);
    }
    StreamDecoder dec(tok);
    std::string streamed;
    for (int32_t id : ids) streamed += dec.push(id);
    ASSERT_EQ(streamed + dec.flush(), tok.decode(ids));
  }
}

TEST(TokenizerFuzz, RandomIdsStreamLikeDecode) {
  const Tokenizer tok = Tokenizer::from_file(kFixtures + "small_fallback_tokenizer.json");
  std::mt19937 rng(5);
  for (int it = 0; it < 20000; ++it) {
    std::vector<int32_t> ids(rng() % 30);
    for (int32_t& id : ids) id = int32_t(rng() % uint32_t(tok.vocab_size() + 3));
    const bool skip = rng() % 2 == 0;
    StreamDecoder dec(tok, skip);
    std::string streamed;
    for (int32_t id : ids) {
      const std::string piece = dec.push(id);
      ASSERT_EQ(mamba::utf8_lossy(piece), piece);
      streamed += piece;
    }
    ASSERT_EQ(streamed + dec.flush(), tok.decode(ids, skip));
  }
}

}  // namespace
