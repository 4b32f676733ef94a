// tokenizer.json loading and validation: Tokenizer::from_file / from_json_text. Anything the tokenizer
// cannot reproduce exactly is rejected here with a mamba::Error naming the file.
#include <algorithm>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "engine/error.h"
#include "engine/json_lenient.h"
#include "engine/tokenizer.h"
#include "engine/tokenizer_impl.h"

namespace mamba {
namespace {

using namespace tokenizer_detail;
using json = nlohmann::json;

// Largest accepted id + 1. Real vocabularies stay below 300k; the bound keeps a corrupt file from
// making us allocate gigabytes for the id tables.
constexpr int64_t kMaxTokenId = int64_t{1} << 22;

class Loader {
 public:
  explicit Loader(std::string origin) : origin_(std::move(origin)) {}

  std::shared_ptr<Tokenizer::Impl> load(const std::string& text) {
    const json root = parse_json(text, origin_);  // throws "<origin>: not valid JSON (...)" or too deep
    try {
      return load_root(root);
    } catch (const json::exception& e) {
      // Only reachable through a check forgotten below; still name the file.
      fail(std::string("unexpected JSON structure (") + e.what() + ")");
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw Error(origin_ + ": " + what); }

  static std::string quote(std::string_view s) {
    std::string q = json(std::string(s)).dump(-1, ' ', true, json::error_handler_t::replace);
    if (q.size() > 80) q = q.substr(0, 77) + "...";
    return q;
  }

  static std::string type_of(const json& node) {
    if (!node.is_object()) return {};
    const auto it = node.find("type");
    return it != node.end() && it->is_string() ? it->get<std::string>() : std::string();
  }

  bool get_bool(const json& obj, const char* key, bool fallback, const std::string& where) const {
    const auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) fail(where + "." + key + " must be true or false");
    return it->get<bool>();
  }

  std::optional<std::string> get_string(const json& obj, const char* key, const std::string& where) const {
    const auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return std::nullopt;
    if (!it->is_string()) fail(where + "." + key + " must be a string");
    return it->get<std::string>();
  }

  int32_t get_id(const json& v, const std::string& what) const {
    if (!v.is_number_integer()) fail(what + ": id must be an integer, got " + json_excerpt(v));
    const bool negative = v.is_number_unsigned() ? false : v.get<int64_t>() < 0;
    if (negative || v.get<uint64_t>() >= uint64_t(kMaxTokenId))
      fail(what + ": id " + json_excerpt(v) + " is out of range [0, " + std::to_string(kMaxTokenId) + ")");
    return int32_t(v.get<int64_t>());
  }

  std::shared_ptr<Tokenizer::Impl> load_root(const json& root) {
    if (!root.is_object()) fail("not a tokenizer.json: the top level is not a JSON object");
    auto impl = std::make_shared<Tokenizer::Impl>();
    impl->origin = origin_;
    const auto model = root.find("model");
    if (model == root.end() || model->is_null()) fail("missing \"model\"");
    if (!model->is_object()) fail("\"model\" must be an object");
    load_normalizer(root.contains("normalizer") ? root["normalizer"] : json(), impl->normalizers);
    load_pre_tokenizer(root.contains("pre_tokenizer") ? root["pre_tokenizer"] : json(), impl->pre_steps);
    check_decoder(root.contains("decoder") ? root["decoder"] : json());
    load_model(*model, impl->bpe);
    load_added_tokens(root.contains("added_tokens") ? root["added_tokens"] : json(), *impl);
    build_id_tables(*impl);
    return impl;
  }

  // Sequences nest; a bound keeps a hostile file from exhausting the stack.
  static constexpr int kMaxNesting = 8;

  // The members of a normalizer / pre_tokenizer Sequence at nesting `depth`, listed under `list_key`.
  const json& sequence_items(const json& node, const char* list_key, const std::string& what, int depth) const {
    const auto it = node.find(list_key);
    if (it == node.end() || !it->is_array()) fail(what + " Sequence without a \"" + list_key + "\" list");
    if (depth >= kMaxNesting) fail(what + " Sequences nested too deeply");
    return *it;
  }

  void load_normalizer(const json& node, std::vector<NormalForm>& out, int depth = 0) const {
    if (node.is_null()) return;
    const std::string type = type_of(node);
    if (type == "Sequence") {
      for (const json& n : sequence_items(node, "normalizers", "normalizer", depth)) load_normalizer(n, out, depth + 1);
    } else if (type == "NFC") {
      out.push_back(NormalForm::nfc);
    } else if (type == "NFD") {
      out.push_back(NormalForm::nfd);
    } else if (type == "NFKC") {
      out.push_back(NormalForm::nfkc);
    } else if (type == "NFKD") {
      out.push_back(NormalForm::nfkd);
    } else {
      fail("unsupported normalizer " + quote(type.empty() ? json_excerpt(node) : type) +
           " (supported: NFC, NFD, NFKC, NFKD, Sequence of these)");
    }
  }

  void load_pre_tokenizer(const json& node, std::vector<PreStep>& steps) const {
    if (node.is_null()) fail("unsupported: no pre_tokenizer (only byte-level BPE, with a ByteLevel pre_tokenizer, is supported)");
    collect_pre_steps(node, steps);
    const auto byte_levels = std::count_if(steps.begin(), steps.end(), [](const PreStep& s) { return s.kind == PreStep::byte_level; });
    if (byte_levels != 1 || steps.back().kind != PreStep::byte_level)
      fail("unsupported pre_tokenizer layout: expected ByteLevel, optionally preceded by Split steps");
  }

  void collect_pre_steps(const json& node, std::vector<PreStep>& steps, int depth = 0) const {
    const std::string type = type_of(node);
    if (type == "Sequence") {
      for (const json& n : sequence_items(node, "pretokenizers", "pre_tokenizer", depth)) collect_pre_steps(n, steps, depth + 1);
    } else if (type == "ByteLevel") {
      PreStep s;
      s.kind = PreStep::byte_level;
      // HF's ByteLevel::default() has add_prefix_space = true.
      s.add_prefix_space = get_bool(node, "add_prefix_space", true, "pre_tokenizer.ByteLevel");
      s.use_regex = get_bool(node, "use_regex", true, "pre_tokenizer.ByteLevel");
      steps.push_back(s);
    } else if (type == "Split") {
      const auto pattern = node.find("pattern");
      std::string regex;
      if (pattern != node.end() && pattern->is_object() && pattern->contains("Regex") && (*pattern)["Regex"].is_string())
        regex = (*pattern)["Regex"].get<std::string>();
      if (regex != kGpt2SplitRegex)
        fail("unsupported Split pattern " + quote(pattern != node.end() ? json_excerpt(*pattern) : "") +
             " (only the GPT-2 regex is supported)");
      const auto behavior = get_string(node, "behavior", "pre_tokenizer.Split").value_or("Isolated");
      if (behavior != "Isolated") fail("unsupported Split behavior " + quote(behavior) + " (only Isolated)");
      if (get_bool(node, "invert", false, "pre_tokenizer.Split")) fail("unsupported Split with invert=true");
      steps.push_back(PreStep{PreStep::split_gpt2, false, true});
    } else {
      fail("unsupported pre_tokenizer " + quote(type.empty() ? json_excerpt(node) : type) +
           " (supported: ByteLevel, Split with the GPT-2 regex, Sequence of these)");
    }
  }

  void check_decoder(const json& node) const {
    if (node.is_null()) fail("unsupported: no decoder (only byte-level BPE, with a ByteLevel decoder, is supported)");
    std::string type = type_of(node);
    if (type == "Sequence") {
      const auto it = node.find("decoders");
      if (it != node.end() && it->is_array() && it->size() == 1) type = type_of((*it)[0]);
    }
    if (type != "ByteLevel")
      fail("unsupported decoder " + quote(type.empty() ? json_excerpt(node) : type) + " (only ByteLevel is supported)");
  }

  void load_model(const json& model, BpeModel& bpe) const {
    std::string type = type_of(model);
    if (type.empty() && model.contains("merges")) type = "BPE";  // HF infers untagged models too
    if (type != "BPE")
      fail("unsupported model type " + quote(type.empty() ? "(none)" : type) +
           " (only byte-level BPE is supported, not WordPiece, Unigram or WordLevel)");
    const auto dropout = model.find("dropout");
    if (dropout != model.end() && !dropout->is_null()) {
      if (!dropout->is_number()) fail("model.dropout must be a number or null");
      if (dropout->get<double>() > 0.0) fail("unsupported: BPE dropout " + json_excerpt(*dropout) + " (training-only randomness)");
    }
    bpe.prefix = get_string(model, "continuing_subword_prefix", "model").value_or("");
    bpe.suffix = get_string(model, "end_of_word_suffix", "model").value_or("");
    bpe.ignore_merges = get_bool(model, "ignore_merges", false, "model");
    bpe.byte_fallback = get_bool(model, "byte_fallback", false, "model");
    bpe.fuse_unk = get_bool(model, "fuse_unk", false, "model");

    const auto vocab = model.find("vocab");
    if (vocab == model.end()) fail("missing model.vocab");
    if (!vocab->is_object()) fail("model.vocab must be an object of token -> id");
    bpe.vocab.reserve(vocab->size());
    for (const auto& [token, id] : vocab->items()) {
      const int32_t v = get_id(id, "model.vocab token " + quote(token));
      bpe.vocab.emplace(token, v);
    }

    if (const auto unk = get_string(model, "unk_token", "model")) {
      const auto id = bpe.lookup(*unk);
      if (!id) fail("model.unk_token " + quote(*unk) + " is not in the vocab");
      bpe.unk_id = *id;
    }

    const auto merges = model.find("merges");
    if (merges == model.end() || merges->is_null()) fail("missing model.merges");
    if (!merges->is_array()) fail("model.merges must be a list");
    bpe.merges.reserve(merges->size());
    int32_t rank = 0;
    size_t index = 0;
    for (const json& m : *merges) {
      ++index;
      std::string a, b;
      const std::string where = "bad merge #" + std::to_string(index);
      if (m.is_string()) {
        const std::string line = m.get<std::string>();
        if (line.starts_with("#version")) continue;  // header line of a merges.txt
        const size_t sp = line.find(' ');
        if (sp == std::string::npos || line.find(' ', sp + 1) != std::string::npos)
          fail(where + " " + quote(line) + ": expected two tokens separated by one space");
        a = line.substr(0, sp);
        b = line.substr(sp + 1);
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        a = m[0].get<std::string>();
        b = m[1].get<std::string>();
      } else {
        fail(where + " " + quote(json_excerpt(m)) + ": expected \"a b\" or [\"a\", \"b\"]");
      }
      const auto ia = bpe.lookup(a), ib = bpe.lookup(b);
      if (!ia) fail(where + ": token " + quote(a) + " is not in the vocab");
      if (!ib) fail(where + ": token " + quote(b) + " is not in the vocab");
      // HF drops the continuing-subword prefix of the right side when naming the merged token.
      if (b.size() < bpe.prefix.size()) fail(where + ": token " + quote(b) + " is shorter than the subword prefix");
      const std::string merged = a + b.substr(bpe.prefix.size());
      const auto im = bpe.lookup(merged);
      if (!im) fail(where + ": merged token " + quote(merged) + " is not in the vocab");
      bpe.merges.insert(*ia, *ib, rank++, *im);
    }
    bpe.build_byte_tables();
  }

  void load_added_tokens(const json& node, Tokenizer::Impl& impl) const {
    if (node.is_null()) return;
    if (!node.is_array()) fail("added_tokens must be a list");
    size_t index = 0;
    for (const json& t : node) {
      const std::string where = "added_tokens[" + std::to_string(index++) + "]";
      if (!t.is_object()) fail(where + " must be an object");
      AddedToken tok;
      const auto content = get_string(t, "content", where);
      if (!content) fail(where + " has no content");
      tok.content = *content;
      const auto id = t.find("id");
      if (id == t.end()) fail(where + " " + quote(tok.content) + " has no id");
      tok.id = get_id(*id, where + " " + quote(tok.content));
      tok.special = get_bool(t, "special", false, where);
      tok.normalized = get_bool(t, "normalized", !tok.special, where);
      tok.lstrip = get_bool(t, "lstrip", false, where);
      tok.rstrip = get_bool(t, "rstrip", false, where);
      tok.single_word = get_bool(t, "single_word", false, where);
      if (tok.content.empty()) continue;  // HF ignores empty added tokens
      if (!is_valid_utf8(tok.content)) fail(where + " content is not valid UTF-8");
      // Like HF, a token already in the model vocab keeps the vocab's id.
      if (const auto vid = impl.bpe.lookup(tok.content)) tok.id = *vid;
      if (impl.added_ids.contains(tok.content)) fail(where + ": duplicate added token " + quote(tok.content));
      impl.added_ids.emplace(tok.content, tok.id);
      impl.added.push_back(std::move(tok));
    }
    // HF builds its matchers from the special tokens first, then the others, each in file order.
    for (int pass = 0; pass < 2; ++pass) {
      for (size_t i = 0; i < impl.added.size(); ++i) {
        const AddedToken& tok = impl.added[i];
        if (tok.special != (pass == 0)) continue;
        if (tok.normalized) {
          impl.normalized_trie.add(normalize(tok.content, impl.normalizers), int32_t(i));
        } else {
          impl.raw_trie.add(tok.content, int32_t(i));
        }
      }
    }
  }

  void build_id_tables(Tokenizer::Impl& impl) const {
    int64_t max_id = -1;
    for (const auto& [token, id] : impl.bpe.vocab) max_id = std::max<int64_t>(max_id, id);
    for (const AddedToken& t : impl.added) max_id = std::max<int64_t>(max_id, t.id);
    const size_t n = size_t(max_id + 1);
    std::vector<const std::string*> strings(n, nullptr);
    for (const auto& [token, id] : impl.bpe.vocab) {
      const std::string*& slot = strings[size_t(id)];
      if (slot != nullptr) fail("duplicate id " + std::to_string(id) + " in model.vocab: " + quote(*slot) + " and " + quote(token));
      slot = &token;
    }
    std::vector<uint8_t> special(n, 0);
    for (size_t i = 0; i < impl.added.size(); ++i) {
      const AddedToken& t = impl.added[i];
      const std::string*& slot = strings[size_t(t.id)];
      if (slot != nullptr && *slot != t.content)
        fail("duplicate id " + std::to_string(t.id) + ": added token " + quote(t.content) + " and " + quote(*slot));
      slot = &t.content;
      if (t.special) special[size_t(t.id)] = 1;
    }
    impl.flags.assign(n, 0);
    impl.decoded_offset.assign(n + 1, 0);
    impl.raw_offset.assign(n + 1, 0);
    for (size_t id = 0; id < n; ++id) {
      impl.decoded_offset[id] = uint32_t(impl.decoded_blob.size());
      impl.raw_offset[id] = uint32_t(impl.raw_blob.size());
      if (strings[id] == nullptr) continue;
      if (!is_valid_utf8(*strings[id])) fail("token " + quote(*strings[id]) + " is not valid UTF-8");
      impl.flags[id] = Tokenizer::Impl::kHas | (special[id] ? Tokenizer::Impl::kSpecial : 0);
      impl.raw_blob += *strings[id];
      impl.decoded_blob += byte_level_decode_token(*strings[id]);
    }
    impl.decoded_offset[n] = uint32_t(impl.decoded_blob.size());
    impl.raw_offset[n] = uint32_t(impl.raw_blob.size());
  }

  std::string origin_;
};

}  // namespace

Tokenizer Tokenizer::from_file(const std::string& path) {
  std::error_code ec;
  std::string file = path;
  if (std::filesystem::is_directory(path, ec)) file = (std::filesystem::path(path) / "tokenizer.json").string();
  if (!std::filesystem::exists(file, ec)) throw Error(file + ": no such file");
  return from_json_text(read_text_file(file, uint64_t(256) << 20), file);
}

Tokenizer Tokenizer::from_json_text(const std::string& text, const std::string& origin_name) {
  return Tokenizer(Loader(origin_name).load(text));
}

}  // namespace mamba
