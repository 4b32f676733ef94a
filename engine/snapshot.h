#pragma once
// A snapshot: everything needed to continue a sequence exactly where it was, as a value and as a file.
// The recurrent state (per layer conv window and SSM state), the token history with any sampled but
// not yet fed token, the sampler's settings and generator, any dt edits in force, and who made it (the
// model's identity hash, device, weight dtype, engine version). The file format (magic, format version,
// sizes, a checksum over everything) is described in docs/SNAPSHOTS.md; files are written atomically.
// Every refusal is a SnapshotError saying which problem it is; nothing is changed by a refused load.
#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/dt_edit.h"
#include "engine/error.h"
#include "engine/sampler.h"
#include "engine/state.h"

namespace mamba {

struct Model;

// The sampler between two draws: settings plus the generator's four words (xoshiro256**).
struct SamplerState {
  SamplerParams params;
  std::array<uint64_t, 4> rng{};
  static SamplerState of(const Sampler& s) { return {s.params(), s.rng()}; }
  Sampler make() const;
  bool operator==(const SamplerState& o) const;
};

// The shapes a snapshot's state and tokens have (from the model's Config).
struct SnapshotShape {
  int64_t n_layer = 0, conv_dim = 0, conv_len = 0;  // conv window per layer: (conv_dim, conv_len = K - 1)
  int64_t n_heads = 0, head_dim = 0, d_state = 0;   // SSM state per layer: (H, P, N)
  int64_t vocab_size = 0;                           // every token id is below it
  static SnapshotShape of(const Config& c);
  bool operator==(const SnapshotShape&) const = default;
  uint64_t state_bytes() const;  // fp32 state of all layers
  std::string describe() const;  // "24 layers, 24 heads x 64 x 128, conv 1792 x 3, vocab 50288"
};

struct Snapshot {
  // who made it
  std::string model_id;    // Model::identity()
  std::string model_name;  // the model folder's name, for messages
  std::string device;      // Backend::name() of the session it was taken from
  std::string weights_dtype;
  std::string engine_version;
  int64_t created_unix = 0;  // seconds since 1970
  std::string label;         // the user's name for it (free text)
  // what it holds
  SnapshotShape shape;
  State state;                   // state.n_tokens: the tokens fed through the model
  std::vector<int32_t> tokens;   // the whole sequence: the fed tokens, then the pending ones
  std::vector<int32_t> pending;  // the tail of `tokens` not yet fed (normally the last sampled id)
  std::optional<SamplerState> sampler;
  std::vector<DtEdit> dt_edits;  // in force when it was taken, and for the tokens after it

  uint64_t file_bytes() const;  // the size of its file
};

enum class SnapshotProblem {
  NotASnapshot,  // no snapshot magic
  NewerVersion,  // written by a newer format version than this build reads
  Truncated,     // shorter than its sizes say
  Damaged,       // altered or corrupted: a checksum does not match, or its header cannot be read
  SizeMismatch,  // the sizes it declares do not agree with each other or with the model
  OtherModel,    // made with another model
};
const char* snapshot_problem_name(SnapshotProblem p);  // "not a snapshot", "newer format version", ...

class SnapshotError : public Error {
 public:
  SnapshotError(SnapshotProblem problem, const std::string& message) : Error(message), m_problem(problem) {}
  SnapshotProblem problem() const { return m_problem; }

 private:
  SnapshotProblem m_problem;
};

constexpr uint32_t kSnapshotFormatVersion = 1;

// The file's bytes, and back. `origin` names the file in messages.
std::string encode_snapshot(const Snapshot& s);
Snapshot decode_snapshot(std::string_view bytes, const std::string& origin);
// The header as JSON plus what the file's frame says (format version, sizes, checksum), checked as
// decode_snapshot checks it.
nlohmann::json snapshot_info(std::string_view bytes, const std::string& origin);

// Atomic (engine/atomic_file.h): a failed save leaves no partial file and any old file intact.
void save_snapshot(const Snapshot& s, const std::string& path);
Snapshot load_snapshot(const std::string& path);
nlohmann::json snapshot_info_file(const std::string& path);

// Throws SnapshotError (OtherModel, SizeMismatch) unless `s` belongs to `model`.
void check_snapshot_fits(const Snapshot& s, const Model& model, const std::string& origin);

// What a transformer's KV cache for the same number of tokens would take, for comparison: a decoder
// with this model's depth L and width D, K and V in fp16: 2 (K, V) x L x D x 2 bytes per token.
uint64_t transformer_kv_bytes(const Config& c, int64_t tokens);

}  // namespace mamba
