#pragma once
// Helpers for tests: temporary folders, running commands, writing safetensors files and model folders
// byte by byte.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <random>
#include "engine/json_lenient.h"

#include "engine/backend.h"
#include "engine/error.h"
#include "engine/json_lenient.h"
#include "engine/model.h"

namespace mamba::test {

inline std::string source_dir() { return MAMBA_SOURCE_DIR; }

// The committed float64 reference fixtures (tools/make_fixtures.py), sorted by name.
inline std::vector<std::filesystem::path> model_fixture_dirs() {
  std::vector<std::filesystem::path> out;
  const std::filesystem::path root = std::filesystem::path(source_dir()) / "tests" / "fixtures" / "models";
  if (!std::filesystem::exists(root)) return out;
  for (const auto& e : std::filesystem::directory_iterator(root))
    if (std::filesystem::exists(e.path() / "reference.json")) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    static int counter = 0;
    path = std::filesystem::temp_directory_path() / ("mamba_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

struct CommandResult {
  int code = -1;  // exit status; -1 if the command could not be started or did not exit normally
  std::string out, err;
};

// Runs `cmd` through the shell and collects its stdout, its stderr (through a temporary file) and its
// exit status.
inline CommandResult run_command(const std::string& cmd) {
  TempDir d;
  const std::string err_file = d.file("stderr.txt");
  CommandResult r;
  FILE* p = popen((cmd + " 2>" + err_file).c_str(), "r");
  if (!p) return r;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = read_text_file(err_file);
  return r;
}

// Runs `body` in a forked child (so a file size limit or a user switch stays there) and returns what it
// returned, or a note that it died.
inline std::string in_child_process(const std::function<std::string()>& body) {
  int fds[2];
  if (pipe(fds) != 0) return "pipe failed";
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    std::string verdict;
    try {
      verdict = body();
    } catch (const std::exception& e) {
      verdict = std::string("the child threw: ") + e.what();
    }
    (void)!write(fds[1], verdict.data(), verdict.size());
    _exit(0);
  }
  close(fds[1]);
  std::string verdict;
  char buf[512];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) verdict.append(buf, size_t(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status)) return "the child did not exit normally";
  return verdict;
}

// In a child: the process may write files of at most `bytes` (RLIMIT_FSIZE, as a full disk would stop it).
inline bool limit_file_size(uint64_t bytes) {
  signal(SIGXFSZ, SIG_IGN);  // past the limit write() fails with EFBIG instead of killing the process
  rlimit lim{};
  if (getrlimit(RLIMIT_FSIZE, &lim) != 0) return false;
  lim.rlim_cur = bytes;
  return setrlimit(RLIMIT_FSIZE, &lim) == 0;
}

// In a child: folders the test made (owned by root, 0755) become read-only as they are for anyone else.
inline bool drop_root() { return geteuid() != 0 || (setgid(65534) == 0 && setuid(65534) == 0); }

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

struct StTensor {
  std::string dtype = "F32";
  std::vector<int64_t> shape;
  std::string bytes;  // raw data
};

inline std::string f32_bytes(const std::vector<float>& v) { return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4); }

// Serialises tensors in name order, contiguous, as a valid safetensors file (header padded to 8 bytes).
inline std::string safetensors_bytes(const std::map<std::string, StTensor>& tensors, nlohmann::json* header_out = nullptr) {
  nlohmann::json h = nlohmann::json::object();
  std::string data;
  for (const auto& [name, t] : tensors) {
    h[name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
    data += t.bytes;
  }
  if (header_out) *header_out = h;
  std::string hs = h.dump();
  while ((8 + hs.size()) % 8) hs += ' ';
  uint64_t n = hs.size();
  return std::string(reinterpret_cast<const char*>(&n), 8) + hs + data;
}

inline std::string raw_safetensors(const std::string& header, const std::string& data) {
  uint64_t n = header.size();
  return std::string(reinterpret_cast<const char*>(&n), 8) + header + data;
}

// All tensors of `m` in HF naming, f32.
inline std::map<std::string, StTensor> model_tensors(const Model& m) {
  const Config& c = m.config;
  std::map<std::string, StTensor> t;
  auto put = [&](const std::string& n, const std::vector<float>& v, std::vector<int64_t> shape) { t[n] = {"F32", shape, f32_bytes(v)}; };
  put("backbone.embeddings.weight", m.weights.embedding, {c.vocab_size, c.d_model});
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const auto& l = m.weights.layers[static_cast<size_t>(i)];
    const std::string p = "backbone.layers." + std::to_string(i) + ".";
    put(p + "norm.weight", l.norm, {c.d_model});
    put(p + "mixer.in_proj.weight", l.in_proj, {c.d_in_proj, c.d_model});
    put(p + "mixer.conv1d.weight", l.conv_w, {c.conv_dim, 1, c.d_conv});
    if (!l.conv_b.empty()) put(p + "mixer.conv1d.bias", l.conv_b, {c.conv_dim});
    put(p + "mixer.dt_bias", l.dt_bias, {c.n_heads});
    std::vector<float> a_log(l.A.size());
    for (size_t h = 0; h < a_log.size(); ++h) a_log[h] = std::log(-l.A[h]);
    put(p + "mixer.A_log", a_log, {c.n_heads});
    put(p + "mixer.D", l.D, {c.n_heads});
    put(p + "mixer.norm.weight", l.gnorm, {c.d_inner});
    put(p + "mixer.out_proj.weight", l.out_proj, {c.d_model, c.d_inner});
  }
  put("backbone.norm_f.weight", m.weights.norm_f, {c.d_model});
  if (!m.weights.lm_head.empty()) put("lm_head.weight", m.weights.lm_head, {c.vocab_size, c.d_model});
  return t;
}

inline nlohmann::json config_json(const Config& c) {
  return {{"model_type", "mamba2"},
          {"hidden_size", c.d_model},
          {"num_hidden_layers", c.n_layer},
          {"state_size", c.d_state},
          {"num_heads", c.n_heads},
          {"head_dim", c.head_dim},
          {"expand", c.expand},
          {"n_groups", c.n_groups},
          {"chunk_size", c.chunk_size},
          {"conv_kernel", c.d_conv},
          {"use_conv_bias", c.conv_bias},
          {"use_bias", false},
          {"layer_norm_epsilon", 1e-5},
          {"residual_in_fp32", true},
          {"tie_word_embeddings", c.tie_embeddings},
          {"vocab_size", c.vocab_size},
          {"eos_token_id", 0},
          {"bos_token_id", 0},
          {"pad_token_id", 0}};
}

inline Config tiny_config(int64_t n_groups = 1, bool tied = true) {
  Config c;
  c.d_model = 32;
  c.n_layer = 2;
  c.d_state = 16;
  c.head_dim = 16;
  c.expand = 2;
  c.n_heads = 4;
  c.n_groups = n_groups;
  c.chunk_size = 8;
  c.d_conv = 4;
  c.vocab_size = 50;
  c.tie_embeddings = tied;
  c.dt_min = 0;
  c.dt_max = INFINITY;
  c.eos_token_id = 0;
  c.finalize("tiny");
  return c;
}

// A fixture's reference.json (tools/make_fixtures.py), rows flattened.
struct ModelReference {
  std::vector<int32_t> input_ids;    // (T)
  std::vector<float> logits;         // (T, V)
  std::vector<int32_t> greedy_ids;   // (n)
  std::vector<float> decode_logits;  // (n, V): row k is the logits whose argmax is greedy_ids[k]; empty if absent
};

inline std::vector<float> flatten_rows(const nlohmann::json& rows) {
  std::vector<float> out;
  for (const auto& row : rows) {
    const auto r = row.get<std::vector<float>>();
    out.insert(out.end(), r.begin(), r.end());
  }
  return out;
}

inline ModelReference load_model_reference(const std::filesystem::path& dir) {
  const std::string path = (dir / "reference.json").string();
  const auto j = parse_json_lenient(read_text_file(path), path);
  ModelReference r;
  r.input_ids = j["input_ids"].get<std::vector<int32_t>>();
  r.logits = flatten_rows(j["logits"]);
  r.greedy_ids = j["greedy_ids"].get<std::vector<int32_t>>();
  if (j.contains("decode_logits")) r.decode_logits = flatten_rows(j["decode_logits"]);
  return r;
}

inline std::vector<int32_t> random_ids(int64_t n, int64_t V, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (auto& i : ids) i = static_cast<int32_t>(rng() % V);
  return ids;
}

// Logits for every position, (T, V).
inline std::vector<float> all_logits(Backend& b, const std::vector<int32_t>& ids, ScanMode scan, int64_t chunk = 0) {
  std::vector<float> out(ids.size() * size_t(b.model().config.vocab_size));
  ForwardOptions fo;
  fo.scan = scan;
  fo.chunk_size = chunk;
  fo.all_logits = true;
  b.forward(ids, fo, out.data());
  return out;
}

// tiny_config with dynamics strong enough that a wrong state would show (distinct decays per head).
inline std::shared_ptr<const Model> tiny_model(int64_t groups, int64_t d_conv = 4) {
  Config c = tiny_config(groups, groups == 1);
  c.d_conv = d_conv;
  c.finalize("tiny");
  auto m = std::const_pointer_cast<Model>(Model::random(c, 5));
  for (auto& l : m->weights.layers)
    for (size_t h = 0; h < l.A.size(); ++h) {
      l.A[h] = -0.3f - 0.5f * float(h);
      l.A_log[h] = std::log(-l.A[h]);  // the float64 reference reads A_log
      l.dt_bias[h] = -0.5f + 0.4f * float(h);
      l.D[h] = 0.5f;
    }
  return m;
}

// Out-of-range ids must be rejected by forward (one bad id among good ones) and by step, leaving the live
// state exactly as it was. Returns what went wrong, or "" (gtest-free: the Qt tests include this header).
inline std::string bad_ids_problem(Backend& b) {
  const int32_t V = static_cast<int32_t>(b.model().config.vocab_size);
  std::vector<float> logits(static_cast<size_t>(V));
  const ForwardOptions fo;
  const std::vector<int32_t> ids = {1, 2, 3}, bad = {4, V};
  b.forward(ids, fo, logits.data());
  const State before = b.get_state();
  try {
    b.forward(bad, fo, logits.data());
    return "forward accepted id " + std::to_string(V) + ", one past the vocabulary";
  } catch (const Error&) {}
  try {
    b.step(-1, logits.data());
    return "step accepted id -1";
  } catch (const Error&) {}
  const State after = b.get_state();
  if (after.n_tokens != before.n_tokens) return "the token count moved";
  if (after.layers[0].ssm != before.layers[0].ssm) return "the SSM state changed";
  return "";
}

inline double rel_err(const float* a, const float* ref, size_t n);

// Worst per-row ||a - ref|| / ||ref|| over `rows` rows of V values.
inline double worst_row_err(const std::vector<float>& a, const std::vector<float>& ref, int64_t rows, int64_t V) {
  double w = 0;
  for (int64_t t = 0; t < rows; ++t) w = std::max(w, rel_err(a.data() + t * V, ref.data() + t * V, size_t(V)));
  return w;
}

inline double rel_err(const float* a, const float* ref, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    num += (double(a[i]) - ref[i]) * (double(a[i]) - ref[i]);
    den += double(ref[i]) * ref[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

}  // namespace mamba::test
