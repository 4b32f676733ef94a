#include "engine/checkpoint.h"

#include <cstdlib>
#include <filesystem>

#include "engine/error.h"
#include "engine/gguf.h"
#include "engine/input_file.h"
#include "engine/mambac.h"
#include "engine/safetensors.h"
#include "engine/tensor_source.h"
#include "engine/torch_checkpoint.h"

namespace mamba {

namespace fs = std::filesystem;

namespace {

bool has_magic(const std::string& path, const char* magic, size_t n) {
  try {
    const InputFile f(path);  // a regular file only: a FIFO must not block here
    if (f.size() < n) return false;
    std::string head(n, '\0');
    f.read(0, head.data(), n);
    return head == std::string(magic, n);
  } catch (const Error&) {
    return false;
  }
}

bool is_gguf(const std::string& path) { return has_magic(path, "GGUF", 4); }

// GPT-NeoX-20B fits a model whose embedding holds its 50277 ids plus at most some padding.
bool fits_gpt_neox(const Config& c) { return c.vocab_size >= kGptNeoxVocab && c.vocab_size < kGptNeoxVocab + 128; }

std::shared_ptr<const Tokenizer> load_gpt_neox(std::string& source, const std::string& why) {
  const std::string p = gpt_neox_tokenizer_path();
  if (p.empty()) {
    source = "none: " + why + ", and the bundled GPT-NeoX-20B tokenizer is missing (prompts are token ids)";
    return nullptr;
  }
  source = "GPT-NeoX-20B (bundled; " + why + ")";
  return std::make_shared<const Tokenizer>(Tokenizer::from_file(p));
}

// The folder's tokenizer.json, or GPT-NeoX-20B when the vocabulary fits it.
std::shared_ptr<const Tokenizer> folder_tokenizer(const fs::path& dir, const Config& c, std::string& source) {
  const fs::path tok = dir / "tokenizer.json";
  // A tokenizer.json that is there but not a readable file (a FIFO, a loop of links) is an error, not absent.
  std::error_code ec;
  if (fs::symlink_status(tok, ec).type() != fs::file_type::not_found) {
    source = "tokenizer.json in the model folder";
    return std::make_shared<const Tokenizer>(Tokenizer::from_file(tok.string()));
  }
  if (fits_gpt_neox(c)) return load_gpt_neox(source, "the folder has no tokenizer.json");
  source = "none: the folder has no tokenizer.json (prompts are token ids)";
  return nullptr;
}

// mamba.c: its tokenizer.bin is used when it spells GPT-NeoX-20B's vocabulary id for id.
std::shared_ptr<const Tokenizer> mambac_tokenizer(const fs::path& model_bin, const Config& c, std::string& source) {
  const fs::path tb = model_bin.parent_path() / "tokenizer.bin";
  if (fs::exists(tb)) {
    const std::vector<std::string> pieces = read_mambac_tokenizer(tb.string());
    const std::string p = gpt_neox_tokenizer_path();
    if (p.empty()) {
      source = "none: tokenizer.bin has no merges to encode with and the bundled GPT-NeoX-20B tokenizer is missing (prompts are token ids)";
      return nullptr;
    }
    auto neox = std::make_shared<const Tokenizer>(Tokenizer::from_file(p));
    bool same = pieces.size() <= static_cast<size_t>(neox->vocab_size()) && pieces.size() <= static_cast<size_t>(c.vocab_size);
    for (size_t i = 0; same && i < pieces.size(); ++i) {
      const int32_t id = static_cast<int32_t>(i);
      same = neox->decode(std::span<const int32_t>(&id, 1)) == pieces[i];
    }
    if (same) {
      source = "tokenizer.bin (mamba.c): the GPT-NeoX-20B vocabulary, encoded with the bundled GPT-NeoX-20B merges";
      return neox;
    }
    source = "none: tokenizer.bin is not GPT-NeoX-20B's vocabulary and holds no merges to encode with (prompts are token ids)";
    return nullptr;
  }
  if (fits_gpt_neox(c)) return load_gpt_neox(source, "no tokenizer.bin beside model.bin");
  source = "none: no tokenizer.bin beside model.bin (prompts are token ids)";
  return nullptr;
}

Checkpoint load_gguf(const std::string& path, const LoadOptions& opt) {
  auto f = std::make_shared<const GgufFile>(path);
  Config c = gguf_config(*f);
  Checkpoint ck;
  ck.path = path;
  if (auto t = gguf_tokenizer(*f)) {
    ck.tokenizer = std::make_shared<const Tokenizer>(Tokenizer::from_json_text(t->json, path + " (tokenizer metadata)"));
    if (t->n_valid > 0 && t->n_valid <= c.vocab_size) c.vocab_valid = std::min(c.vocab_valid, t->n_valid);
    ck.tokenizer_source = "GGUF metadata (byte-level BPE" + (t->note.empty() ? std::string() : "; " + t->note) + ")";
  } else if (fits_gpt_neox(c)) {
    ck.tokenizer = load_gpt_neox(ck.tokenizer_source, "the GGUF has no tokenizer");
  } else {
    ck.tokenizer_source = "none: the GGUF has no tokenizer metadata (prompts are token ids)";
  }
  auto src = open_gguf_tensors(f, c);
  ck.model = Model::from_source(c, *src, opt);
  ck.format = src->format();
  return ck;
}

Checkpoint load_mambac(const std::string& path, const LoadOptions& opt) {
  const Config c = mambac_config(path);
  Checkpoint ck;
  ck.path = path;
  auto src = open_mambac(path, c);
  ck.model = Model::from_source(c, *src, opt);
  ck.format = src->format();
  ck.tokenizer = mambac_tokenizer(fs::path(path), c, ck.tokenizer_source);
  return ck;
}

}  // namespace

std::string gpt_neox_tokenizer_path() {
  if (const char* env = std::getenv("MAMBA_GPT_NEOX_TOKENIZER"); env && *env) return fs::exists(env) ? env : "";
  const std::string rel = "tokenizers/gpt-neox-20b/tokenizer.json";
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec)
    for (const fs::path& cand : {exe.parent_path() / rel, exe.parent_path() / ".." / "share" / "mamba-studio" / rel})
      if (fs::exists(cand)) return cand.lexically_normal().string();
  const fs::path src = fs::path(MAMBA_RESOURCES_DIR) / rel;
  return fs::exists(src) ? src.string() : "";
}

bool is_checkpoint_path(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    const fs::path d(path);
    if (fs::exists(d / "config.json") || (fs::exists(d / "model.bin") && is_mambac_file((d / "model.bin").string()))) return true;
    for (const auto& e : fs::directory_iterator(d, ec))
      if (e.path().extension() == ".gguf" && is_gguf(e.path().string())) return true;
    return false;
  }
  if (!fs::is_regular_file(path, ec)) return false;
  const fs::path p(path);
  const std::string name = p.filename().string();
  if (name == "config.json" || name == "pytorch_model.bin" || p.extension() == ".safetensors")
    return fs::exists(p.parent_path() / "config.json");
  return is_gguf(path) || is_mambac_file(path);
}

Checkpoint load_checkpoint(const std::string& path, const LoadOptions& opt) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(path + ": not a model folder or file (it does not exist)");
  if (fs::is_regular_file(path, ec)) {
    if (is_gguf(path)) return load_gguf(path, opt);
    if (is_mambac_file(path)) return load_mambac(path, opt);
    if (fs::path(path).filename() == "config.json") return load_checkpoint(fs::path(path).parent_path().string(), opt);
    const fs::path parent = fs::path(path).parent_path();
    if (fs::path(path).filename() == "pytorch_model.bin" || fs::path(path).extension() == ".safetensors")
      return load_checkpoint(parent.string(), opt);
    throw Error(path + ": not a model folder, nor a model file this app reads (a .gguf or a mamba.c model.bin)");
  }
  const fs::path dir(path);
  if (!fs::exists(dir / "config.json")) {
    // A folder holding one single-file checkpoint.
    if (fs::exists(dir / "model.bin") && is_mambac_file((dir / "model.bin").string()))
      return load_mambac((dir / "model.bin").string(), opt);
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.path().extension() == ".gguf" && is_gguf(e.path().string())) return load_gguf(e.path().string(), opt);
    throw Error(path + ": not a model folder (config.json: file not found; no mamba.c model.bin or .gguf inside either)");
  }
  const Config c = Config::from_file(path);
  Checkpoint ck;
  ck.path = path;
  std::unique_ptr<TensorSource> src;
  if (fs::exists(dir / "model.safetensors") || fs::exists(dir / "model.safetensors.index.json")) src = open_safetensors_dir(path);
  else if (fs::exists(dir / "pytorch_model.bin")) src = open_torch_checkpoint((dir / "pytorch_model.bin").string());
  else throw Error(path + ": no model.safetensors, model.safetensors.index.json or pytorch_model.bin found");
  auto m = Model::from_source(c, *src, opt);
  m->source = path;
  ck.format = src->format() == "safetensors" ? "safetensors" : src->format() + ", pytorch_model.bin";
  m->format = ck.format;
  ck.model = m;
  ck.tokenizer = folder_tokenizer(dir, c, ck.tokenizer_source);
  return ck;
}

}  // namespace mamba
