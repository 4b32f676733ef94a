// The malformed-model suite's cases (tests/hostile_models.h).
#include "tests/hostile_models.h"

#include <sys/stat.h>
#include <unistd.h>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include "engine/json_lenient.h"
#include "tests/test_util.h"

namespace mamba::test::hostile {

namespace fs = std::filesystem;

namespace {
using mamba::test::TempDir;
using nlohmann::json;

const std::string kGood = mamba::test::source_dir() + "/tests/fixtures/models/g1_tied_k4";
const std::string kTokenizer = mamba::test::source_dir() + "/resources/models/mamba2-shakespeare/tokenizer.json";

// The good fixture, split so that cases can edit the header and the data separately.
struct Parts {
  json config, header;
  std::string data;
};

Parts good_parts() {
  Parts p;
  p.config = mamba::parse_json_lenient(mamba::read_text_file(kGood + "/config.json"), "config.json");
  const std::string st = mamba::read_text_file(kGood + "/model.safetensors");
  uint64_t n = 0;
  std::memcpy(&n, st.data(), 8);
  p.header = json::parse(st.substr(8, n));
  p.data = st.substr(8 + n);
  return p;
}

std::string with_length(uint64_t n, const std::string& rest) { return std::string(reinterpret_cast<const char*>(&n), 8) + rest; }
std::string st_bytes(const json& header, const std::string& data) {
  const std::string h = header.dump();
  return with_length(h.size(), h + data);
}
std::string nested(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

// Writes the folder from `p` (config.json, model.safetensors, tokenizer.json), leaving out what `skip` names.
void write_folder(const fs::path& dir, const Parts& p, bool tokenizer = true) {
  fs::create_directories(dir);
  mamba::test::write_file((dir / "config.json").string(), p.config.dump(2));
  mamba::test::write_file((dir / "model.safetensors").string(), st_bytes(p.header, p.data));
  if (tokenizer) fs::copy_file(kTokenizer, dir / "tokenizer.json", fs::copy_options::overwrite_existing);
}

void replace_with_fifo(const fs::path& f) {
  fs::remove(f);
  if (::mkfifo(f.c_str(), 0644) != 0) throw std::runtime_error("mkfifo " + f.string() + " failed");
}

// Sets the data of float32 tensor `name` (its first values) in p.data.
void poke(Parts& p, const std::string& name, std::vector<float> values) {
  const uint64_t begin = p.header[name]["data_offsets"][0];
  std::memcpy(p.data.data() + begin, values.data(), values.size() * 4);
}

}  // namespace

std::vector<Case> cases() {
  const auto edit = [](std::function<void(Parts&)> f, bool tokenizer = true) {
    return [f, tokenizer](const fs::path& dir) {
      Parts p = good_parts();
      f(p);
      write_folder(dir, p, tokenizer);
    };
  };
  const auto config_field = [edit](const char* key, json value) { return edit([=](Parts& p) { p.config[key] = value; }); };
  const auto raw_weights = [](std::function<std::string(const Parts&)> bytes) {
    return [bytes](const fs::path& dir) {
      Parts p = good_parts();
      write_folder(dir, p);
      mamba::test::write_file((dir / "model.safetensors").string(), bytes(p));
    };
  };
  const auto sharded = [](std::function<json(const Parts&)> index) {
    return [index](const fs::path& dir) {
      Parts p = good_parts();
      write_folder(dir, p);
      fs::rename(dir / "model.safetensors", dir / "model-00001-of-00001.safetensors");
      mamba::test::write_file((dir / "model.safetensors.index.json").string(), index(p).dump());
    };
  };
  const std::string emb = "backbone.embeddings.weight", inp = "backbone.layers.0.mixer.in_proj.weight";
  return {
      // the folder and its files
      {"empty folder", [](const fs::path& d) { fs::create_directories(d); }, {"config.json", "file not found"}},
      {"a file where the folder should be", [](const fs::path& d) { mamba::test::write_file(d.string(), "x"); }, {"not a model folder"}},
      {"config.json is a folder",
       [](const fs::path& d) {
         write_folder(d, good_parts());
         fs::remove(d / "config.json");
         fs::create_directories(d / "config.json");
       },
       {"config.json", "folder"}},
      {"config.json is a FIFO",
       [](const fs::path& d) {
         write_folder(d, good_parts());
         replace_with_fifo(d / "config.json");
       },
       {"config.json", "not a regular file"}},
      {"model.safetensors is a FIFO",
       [](const fs::path& d) {
         write_folder(d, good_parts());
         replace_with_fifo(d / "model.safetensors");
       },
       {"model.safetensors", "not a regular file"}},
      {"tokenizer.json is a FIFO",
       [](const fs::path& d) {
         write_folder(d, good_parts());
         replace_with_fifo(d / "tokenizer.json");
       },
       {"tokenizer.json", "not a regular file"}},
      {"model.safetensors is a folder",
       [](const fs::path& d) {
         write_folder(d, good_parts());
         fs::remove(d / "model.safetensors");
         fs::create_directories(d / "model.safetensors");
       },
       {"model.safetensors", "folder"}},
      {"symlink loop",
       [](const fs::path& d) {
         write_folder(d, good_parts());
         fs::remove(d / "model.safetensors");
         fs::create_symlink("loop_b", d / "model.safetensors");
         fs::create_symlink("model.safetensors", d / "loop_b");
       },
       {"model.safetensors", "symbolic links"}},
      {"no weights",
       [](const fs::path& d) {
         write_folder(d, good_parts());
         fs::remove(d / "model.safetensors");
       },
       {"no model.safetensors"}},
      // config.json
      {"config not JSON",
       [](const fs::path& d) {
         write_folder(d, good_parts());
         mamba::test::write_file((d / "config.json").string(), "{\"hidden_size\": 32,");
       },
       {"config.json", "not valid JSON"}},
      {"config nested 200k deep",
       config_field("architectures", nullptr),
       {"config.json", "nested deeper"}},  // the field is replaced below, in the loop, by raw text
      {"config number beyond double",
       [](const fs::path& d) {
         write_folder(d, good_parts());
         std::string text = mamba::read_text_file((d / "config.json").string());
         const std::string field = "\"vocab_size\": 96";
         text.replace(text.find(field), field.size(), field + "e3080");
         mamba::test::write_file((d / "config.json").string(), text);
       },
       {"config.json", "number overflow"}},
      {"config missing field",
       edit([](Parts& p) { p.config.erase("hidden_size"); }),
       {"config.json", "missing required field 'hidden_size'"}},
      {"config zero field", config_field("state_size", 0), {"config.json", "'state_size' must be positive"}},
      {"config negative field", config_field("num_heads", -4), {"config.json", "'num_heads' must be positive"}},
      {"config d_model 1e9", config_field("hidden_size", 1000000000), {"config.json", "'hidden_size' is implausibly large"}},
      {"config 2^31 fields", config_field("state_size", int64_t{1} << 31), {"config.json", "'state_size' is implausibly large"}},
      {"config 30M layers", config_field("num_hidden_layers", 30000000), {"config.json", "'num_hidden_layers' is implausibly large"}},
      {"config more layers than the file holds",
       config_field("num_hidden_layers", 4000),
       {"model.safetensors", "parameters, but the weight files hold only"}},
      {"config inconsistent heads", config_field("num_heads", 3), {"config.json", "num_heads (3)"}},
      {"config string for a number", config_field("vocab_size", "96"), {"config.json", "'vocab_size' must be an integer"}},
      {"config epsilon 1e300", config_field("layer_norm_epsilon", 1e300), {"config.json", "layer_norm_epsilon"}},
      {"config eos outside vocabulary", config_field("eos_token_id", 96), {"config.json", "eos_token_id"}},
      {"mamba_ssm config headdim 0",
       edit([](Parts& p) {
         p.config = {{"d_model", 32}, {"n_layer", 2}, {"vocab_size", 96}, {"ssm_cfg", {{"layer", "Mamba2"}, {"headdim", 0}}}};
       }),
       {"config.json", "'headdim' must be positive"}},
      // model.safetensors
      {"truncated data",
       raw_weights([](const Parts& p) { return st_bytes(p.header, p.data.substr(0, p.data.size() - 100)); }),
       {"model.safetensors", "outside the data section"}},
      {"truncated header",
       raw_weights([](const Parts& p) { return st_bytes(p.header, "").substr(0, 200); }),
       {"model.safetensors", "runs past the end of the file"}},
      {"header length 2^62",
       raw_weights([](const Parts& p) { return with_length(uint64_t{1} << 62, p.header.dump() + p.data); }),
       {"model.safetensors", "header length", "out of bounds"}},
      {"header length 0",
       raw_weights([](const Parts& p) { return with_length(0, p.header.dump() + p.data); }),
       {"model.safetensors", "out of bounds"}},
      {"header not JSON",
       raw_weights([](const Parts& p) {
         const std::string h = "{\"a\": [1, 2" + std::string(p.header.dump().size() - 11, ' ');
         return with_length(h.size(), h + p.data);
       }),
       {"model.safetensors", "header is not valid JSON"}},
      {"header nested 200k deep",
       raw_weights([](const Parts& p) {
         const std::string h = "{\"x\": " + nested(200000) + "}";
         return with_length(h.size(), h + p.data);
       }),
       {"model.safetensors", "nested deeper"}},
      {"duplicate tensor names",
       raw_weights([emb](const Parts& p) {
         // JSON keeps the last of two equal keys: the duplicate claims 4 bytes, the rest of its bytes are a hole
         std::string h = p.header.dump();
         h.insert(h.size() - 1, ",\"" + emb + "\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}");
         return with_length(h.size(), h + p.data);
       }),
       {"model.safetensors", "unused hole"}},
      {"span does not match shape",
       edit([inp](Parts& p) { p.header[inp]["data_offsets"][0] = uint64_t(p.header[inp]["data_offsets"][0]) - 8; }),
       {"model.safetensors", "does not match shape"}},
      {"overlapping spans",
       edit([](Parts& p) {
         // two tensors claiming the same bytes, each with a consistent size
         p.header["backbone.layers.0.mixer.D"]["data_offsets"] = p.header["backbone.layers.0.mixer.A_log"]["data_offsets"];
       }),
       {"model.safetensors", "overlaps"}},
      {"offsets out of range",
       edit([emb](Parts& p) {
         p.header[emb]["data_offsets"] = {uint64_t{1} << 40, (uint64_t{1} << 40) + 12288};
       }),
       {"model.safetensors", "outside the data section"}},
      {"shape overflow",
       edit([emb](Parts& p) {
         p.header[emb]["shape"] = {int64_t{1} << 40, int64_t{1} << 40};
       }),
       {"model.safetensors", "shape overflows"}},
      {"transposed shape",
       edit([inp](Parts& p) {
         p.header[inp]["shape"] = {32, 164};
       }),
       {"model.safetensors", "has shape [32, 164], config implies [164, 32]"}},
      {"unknown dtype", edit([emb](Parts& p) { p.header[emb]["dtype"] = "F64"; }), {"model.safetensors", "unsupported dtype"}},
      {"missing tensor",
       raw_weights([](const Parts& p) {
         json h = p.header;
         const json norm = h["backbone.norm_f.weight"];
         h.erase("backbone.norm_f.weight");
         const uint64_t b = norm["data_offsets"][0], e = norm["data_offsets"][1];
         return st_bytes(h, p.data.substr(0, b) + p.data.substr(e));
       }),
       {"missing tensor 'backbone.norm_f.weight'"}},
      {"trailing bytes",
       raw_weights([](const Parts& p) { return st_bytes(p.header, p.data + "garbage!"); }),
       {"model.safetensors", "trailing bytes"}},
      {"unexpected tensor",
       raw_weights([](const Parts& p) {
         json h = p.header;
         h["extra.weight"] = {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {p.data.size(), p.data.size() + 4}}};
         return st_bytes(h, p.data + std::string(4, '\0'));
       }),
       {"model.safetensors", "unexpected tensor 'extra.weight'"}},
      {"NaN weights",
       edit([inp](Parts& p) {
         poke(p, inp, {1.f, std::nanf("")});
       }),
       {"model.safetensors", inp, "non-finite", "NaN"}},
      {"Inf weights",
       edit([emb](Parts& p) { poke(p, emb, {std::numeric_limits<float>::infinity()}); }),
       {"model.safetensors", emb, "non-finite", "Inf"}},
      {"A_log overflows",
       edit([](Parts& p) { poke(p, "backbone.layers.1.mixer.A_log", {200.f}); }),
       {"model.safetensors", "A_log", "overflows"}},
      // model.safetensors.index.json
      {"index names a path outside the folder",
       sharded([](const Parts& p) {
         json m;
         for (auto it = p.header.begin(); it != p.header.end(); ++it)
           if (it.key() != "__metadata__") m[it.key()] = "../model-00001-of-00001.safetensors";
         return json{{"weight_map", m}};
       }),
       {"model.safetensors.index.json", "plain file name"}},
      {"index names an absolute path",
       sharded([](const Parts& p) {
         json m;
         for (auto it = p.header.begin(); it != p.header.end(); ++it)
           if (it.key() != "__metadata__") m[it.key()] = "/etc/passwd";
         return json{{"weight_map", m}};
       }),
       {"model.safetensors.index.json", "plain file name"}},
      {"index nested deep",
       [](const fs::path& d) {
         write_folder(d, good_parts());
         fs::remove(d / "model.safetensors");
         mamba::test::write_file((d / "model.safetensors.index.json").string(), "{\"weight_map\": " + nested(100000) + "}");
       },
       {"model.safetensors.index.json", "nested deeper"}},
      {"index names a missing shard",
       sharded([](const Parts& p) {
         json m;
         for (auto it = p.header.begin(); it != p.header.end(); ++it)
           if (it.key() != "__metadata__") m[it.key()] = "model-00002-of-00002.safetensors";
         return json{{"weight_map", m}};
       }),
       {"model.safetensors.index.json", "does not exist"}},
      // tokenizer.json
      {"garbage tokenizer",
       [](const fs::path& d) {
         write_folder(d, good_parts());
         mamba::test::write_file((d / "tokenizer.json").string(), std::string("\x89PNG\r\n\x1a\n\0\0garbage", 18));
       },
       {"tokenizer.json", "not valid JSON"}},
      {"tokenizer nested deep",
       [](const fs::path& d) {
         write_folder(d, good_parts());
         mamba::test::write_file((d / "tokenizer.json").string(), "{\"model\": " + nested(200000) + "}");
       },
       {"tokenizer.json", "nested deeper"}},
      {"tokenizer of another kind",
       [](const fs::path& d) {
         write_folder(d, good_parts());
         mamba::test::write_file((d / "tokenizer.json").string(), R"({"model": {"type": "WordPiece", "vocab": {"a": 0}}})");
       },
       {"tokenizer.json", "unsupported"}},
  };
}

void make(const Case& c, const fs::path& dir) {
  c.make(dir);
  if (std::string(c.name) == "config nested 200k deep") {
    std::string text = mamba::read_text_file((dir / "config.json").string());
    text.replace(text.find("null"), 4, nested(200000));
    mamba::test::write_file((dir / "config.json").string(), text);
  }
}

void make_good(const fs::path& dir) { write_folder(dir, good_parts()); }

}  // namespace mamba::test::hostile
