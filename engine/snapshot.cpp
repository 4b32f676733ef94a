#include "engine/snapshot.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>

#include "engine/atomic_file.h"
#include "engine/digest.h"
#include "engine/input_file.h"
#include "engine/model.h"

namespace mamba {

static_assert(std::endian::native == std::endian::little, "snapshot files are little-endian; this build writes them as the host does");

namespace {

using json = nlohmann::json;

constexpr char kMagic[8] = {'M', 'A', 'M', 'B', 'A', 'S', 'N', 'P'};
constexpr size_t kPrefixBytes = 40;    // magic, version, flags, header bytes, payload bytes, prefix check
constexpr size_t kChecksumBytes = 16;  // XXH3-128 of everything before it
constexpr uint64_t kMaxHeaderBytes = 16ull << 20;
constexpr int64_t kMaxDim = int64_t(1) << 24;

template <class T>
T get_le(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class T>
void put_le(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

[[noreturn]] void refuse(SnapshotProblem p, const std::string& origin, const std::string& what) {
  throw SnapshotError(p, origin + ": " + what);
}

std::string short_id(const std::string& id) { return id.size() > 12 ? id.substr(0, 12) + "…" : id; }

json sampler_json(const SamplerState& s) {
  const SamplerParams& p = s.params;
  return {
      {"temperature", p.temperature},       {"top_k", p.top_k}, {"top_p", p.top_p},     {"min_p", p.min_p},
      {"repeat_penalty", p.repeat_penalty}, {"seed", p.seed},   {"n_valid", p.n_valid}, {"rng", {s.rng[0], s.rng[1], s.rng[2], s.rng[3]}}};
}

json header_json(const Snapshot& s) {
  json edits = json::array();
  for (const DtEdit& e : s.dt_edits)
    edits.push_back(
        {{"layer", e.layer}, {"head", e.head}, {"scale", e.scale}, {"lo", e.lo}, {"hi", std::isfinite(e.hi) ? json(e.hi) : json()}});
  const SnapshotShape& sh = s.shape;
  return {{"kind", "mamba-studio snapshot"},
          {"engine_version", s.engine_version},
          {"created_unix", s.created_unix},
          {"label", s.label},
          {"model", {{"id", s.model_id}, {"name", s.model_name}}},
          {"made_on", {{"device", s.device}, {"weights_dtype", s.weights_dtype}}},
          {"state",
           {{"dtype", "f32"},
            {"layers", sh.n_layer},
            {"conv_dim", sh.conv_dim},
            {"conv_len", sh.conv_len},
            {"heads", sh.n_heads},
            {"head_dim", sh.head_dim},
            {"d_state", sh.d_state},
            {"bytes", sh.state_bytes()}}},
          {"vocab_size", sh.vocab_size},
          {"tokens", {{"count", s.tokens.size()}, {"fed", s.state.n_tokens}, {"pending", s.pending.size()}}},
          {"sampler", s.sampler ? sampler_json(*s.sampler) : json()},
          {"dt_edits", edits}};
}

// The frame: checks everything that can be checked without the header's meaning. Returns the header
// text and the payload.
struct Frame {
  uint32_t version = 0;
  std::string_view header, payload;
  Digest128 checksum;
};

Frame read_frame(std::string_view b, const std::string& origin) {
  const size_t n = b.size();
  const size_t m = std::min(n, sizeof kMagic);
  if (std::memcmp(b.data(), kMagic, m) != 0 || n == 0)
    refuse(n == 0 ? SnapshotProblem::Truncated : SnapshotProblem::NotASnapshot, origin,
           n == 0 ? "the file is empty (truncated snapshot?)" : "not a Mamba Studio snapshot (no MAMBASNP magic at the start)");
  if (n < kPrefixBytes)
    refuse(SnapshotProblem::Truncated, origin,
           "truncated: " + std::to_string(n) + " bytes, shorter than a snapshot's " + std::to_string(kPrefixBytes) + "-byte prefix");
  if (get_le<uint64_t>(b.data() + 32) != xxh3_64(b.data(), 32))
    refuse(SnapshotProblem::Damaged, origin, "altered or damaged: the prefix's checksum does not match");
  Frame f;
  f.version = get_le<uint32_t>(b.data() + 8);
  if (f.version > kSnapshotFormatVersion)
    refuse(SnapshotProblem::NewerVersion, origin,
           "written in snapshot format version " + std::to_string(f.version) + ", newer than this build reads (up to " +
               std::to_string(kSnapshotFormatVersion) + "); open it with a newer Mamba Studio");
  if (f.version == 0) refuse(SnapshotProblem::Damaged, origin, "altered or damaged: format version 0");
  const uint64_t hb = get_le<uint64_t>(b.data() + 16), pb = get_le<uint64_t>(b.data() + 24);
  if (hb > kMaxHeaderBytes)
    refuse(SnapshotProblem::SizeMismatch, origin, "its header claims " + std::to_string(hb) + " bytes (at most 16 MiB)");
  if (pb > std::numeric_limits<uint64_t>::max() / 2)
    refuse(SnapshotProblem::SizeMismatch, origin, "its payload claims " + std::to_string(pb) + " bytes");
  const uint64_t total = kPrefixBytes + hb + pb + kChecksumBytes;
  if (n < total)
    refuse(SnapshotProblem::Truncated, origin,
           "truncated: " + std::to_string(n) + " bytes of the " + std::to_string(total) + " its sizes say it has");
  if (n > total)
    refuse(
        SnapshotProblem::Damaged, origin,
        "altered or damaged: " + std::to_string(n - total) + " bytes after the end its sizes say it has (" + std::to_string(total) + ")");
  const Digest128 want{get_le<uint64_t>(b.data() + total - 16), get_le<uint64_t>(b.data() + total - 8)};
  f.checksum = xxh3_128(b.data(), total - kChecksumBytes);
  if (!(f.checksum == want)) refuse(SnapshotProblem::Damaged, origin, "altered or damaged: the checksum over its contents does not match");
  f.header = b.substr(kPrefixBytes, hb);
  f.payload = b.substr(kPrefixBytes + hb, pb);
  return f;
}

json parse_header(const Frame& f, const std::string& origin) {
  try {
    json h = json::parse(f.header);
    if (!h.is_object()) throw std::runtime_error("not a JSON object");
    return h;
  } catch (const std::exception& e) {
    refuse(SnapshotProblem::Damaged, origin, std::string("its header cannot be read: ") + e.what());
  }
}

int64_t dim(const json& j, const char* key, const std::string& origin, int64_t lo = 1) {
  const json& v = j.at(key);
  if (!v.is_number_integer()) refuse(SnapshotProblem::Damaged, origin, std::string("header field '") + key + "' is not an integer");
  const int64_t x = v.get<int64_t>();
  if (x < lo || x > kMaxDim)
    refuse(SnapshotProblem::SizeMismatch, origin, std::string("header field '") + key + "' = " + std::to_string(x) + " is out of range");
  return x;
}

// Typed header fields. nlohmann's get<>() converts a number of another kind with a plain cast (undefined
// for a float beyond the target's range), so the kind and the range are checked first.
int64_t integer(const json& j, const char* key, const std::string& origin, int64_t lo, int64_t hi) {
  const json& v = j.at(key);
  const bool fits = v.is_number_integer() && !(v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(hi));
  if (!fits || v.get<int64_t>() < lo || v.get<int64_t>() > hi)
    refuse(SnapshotProblem::Damaged, origin,
           std::string("header field '") + key + "' is not an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
  return v.get<int64_t>();
}

uint64_t word(const json& v, const char* key, const std::string& origin) {
  if (!v.is_number_unsigned())
    refuse(SnapshotProblem::Damaged, origin, std::string("header field '") + key + "' is not an unsigned integer");
  return v.get<uint64_t>();
}

float real(const json& j, const char* key, const std::string& origin) {
  const json& v = j.at(key);
  if (!v.is_number()) refuse(SnapshotProblem::Damaged, origin, std::string("header field '") + key + "' is not a number");
  const double d = v.get<double>();
  if (std::isfinite(d) && std::fabs(d) > double(std::numeric_limits<float>::max()))
    refuse(SnapshotProblem::Damaged, origin, std::string("header field '") + key + "' is out of a float's range");
  return float(d);
}

Snapshot decode_header(const json& h, const std::string& origin) {
  Snapshot s;
  s.engine_version = h.value("engine_version", "");
  s.created_unix = h.contains("created_unix")
                       ? integer(h, "created_unix", origin, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max())
                       : 0;
  s.label = h.value("label", "");
  const json& model = h.at("model");
  s.model_id = model.at("id").get<std::string>();
  s.model_name = model.value("name", "");
  if (h.contains("made_on")) {
    s.device = h["made_on"].value("device", "");
    s.weights_dtype = h["made_on"].value("weights_dtype", "");
  }
  const json& st = h.at("state");
  if (st.value("dtype", "") != "f32") refuse(SnapshotProblem::Damaged, origin, "its state dtype is not f32");
  s.shape.n_layer = dim(st, "layers", origin);
  s.shape.conv_dim = dim(st, "conv_dim", origin);
  s.shape.conv_len = dim(st, "conv_len", origin, 0);
  s.shape.n_heads = dim(st, "heads", origin);
  s.shape.head_dim = dim(st, "head_dim", origin);
  s.shape.d_state = dim(st, "d_state", origin);
  s.shape.vocab_size = dim(h, "vocab_size", origin);
  return s;
}

}  // namespace

Sampler SamplerState::make() const {
  Sampler s(params);
  s.set_rng(rng);
  return s;
}

bool SamplerState::operator==(const SamplerState& o) const {
  const SamplerParams &a = params, &b = o.params;
  return rng == o.rng && a.temperature == b.temperature && a.top_k == b.top_k && a.top_p == b.top_p && a.min_p == b.min_p &&
         a.repeat_penalty == b.repeat_penalty && a.seed == b.seed && a.n_valid == b.n_valid;
}

SnapshotShape SnapshotShape::of(const Config& c) {
  return {c.n_layer, c.conv_dim, c.d_conv - 1, c.n_heads, c.head_dim, c.d_state, c.vocab_size};
}

uint64_t SnapshotShape::state_bytes() const {
  return uint64_t(n_layer) * uint64_t(conv_dim * conv_len + n_heads * head_dim * d_state) * sizeof(float);
}

std::string SnapshotShape::describe() const {
  return std::to_string(n_layer) + " layers, " + std::to_string(n_heads) + " heads x " + std::to_string(head_dim) + " x " +
         std::to_string(d_state) + ", conv " + std::to_string(conv_dim) + " x " + std::to_string(conv_len) + ", vocab " +
         std::to_string(vocab_size);
}

uint64_t Snapshot::file_bytes() const {
  return kPrefixBytes + header_json(*this).dump().size() + shape.state_bytes() + tokens.size() * sizeof(int32_t) + kChecksumBytes;
}

const char* snapshot_problem_name(SnapshotProblem p) {
  switch (p) {
    case SnapshotProblem::NotASnapshot: return "not a snapshot";
    case SnapshotProblem::NewerVersion: return "newer format version";
    case SnapshotProblem::Truncated: return "truncated";
    case SnapshotProblem::Damaged: return "altered or damaged";
    case SnapshotProblem::SizeMismatch: return "sizes do not match";
    case SnapshotProblem::OtherModel: return "another model";
  }
  return "?";
}

std::string encode_snapshot(const Snapshot& s) {
  const SnapshotShape& sh = s.shape;
  // a snapshot that does not hold together is a programming error, refused before anything is written
  if (!(sh.n_layer > 0) || s.state.layers.size() != size_t(sh.n_layer)) throw Error("snapshot: the state has the wrong number of layers");
  for (const LayerState& l : s.state.layers)
    if (l.conv.size() != size_t(sh.conv_dim * sh.conv_len) || l.ssm.size() != size_t(sh.n_heads * sh.head_dim * sh.d_state))
      throw Error("snapshot: a layer's state does not have the snapshot's shape");
  if (s.pending.size() > s.tokens.size() || s.state.n_tokens != int64_t(s.tokens.size() - s.pending.size()) ||
      !std::equal(s.pending.begin(), s.pending.end(), s.tokens.end() - int64_t(s.pending.size())))
    throw Error("snapshot: the token history does not agree with the state (fed + pending)");

  const std::string header = header_json(s).dump();
  const uint64_t payload = sh.state_bytes() + s.tokens.size() * sizeof(int32_t);
  std::string out;
  out.reserve(kPrefixBytes + header.size() + payload + kChecksumBytes);
  out.append(kMagic, sizeof kMagic);
  put_le<uint32_t>(out, kSnapshotFormatVersion);
  put_le<uint32_t>(out, 0);
  put_le<uint64_t>(out, header.size());
  put_le<uint64_t>(out, payload);
  put_le<uint64_t>(out, xxh3_64(out.data(), 32));
  out += header;
  for (const LayerState& l : s.state.layers) {
    out.append(reinterpret_cast<const char*>(l.conv.data()), l.conv.size() * sizeof(float));
    out.append(reinterpret_cast<const char*>(l.ssm.data()), l.ssm.size() * sizeof(float));
  }
  out.append(reinterpret_cast<const char*>(s.tokens.data()), s.tokens.size() * sizeof(int32_t));
  const Digest128 sum = xxh3_128(out.data(), out.size());
  put_le<uint64_t>(out, sum.lo);
  put_le<uint64_t>(out, sum.hi);
  return out;
}

Snapshot decode_snapshot(std::string_view bytes, const std::string& origin) {
  const Frame f = read_frame(bytes, origin);
  const json h = parse_header(f, origin);
  Snapshot s;
  try {
    s = decode_header(h, origin);
    const SnapshotShape& sh = s.shape;
    const json& tk = h.at("tokens");
    constexpr int64_t kMaxInt = std::numeric_limits<int64_t>::max();
    const int64_t count = integer(tk, "count", origin, 0, kMaxInt), fed = integer(tk, "fed", origin, 0, kMaxInt),
                  pending = integer(tk, "pending", origin, 0, kMaxInt);
    if (count < 0 || fed < 0 || pending < 0 || fed + pending != count)
      refuse(SnapshotProblem::SizeMismatch, origin,
             "its token counts do not add up (" + std::to_string(fed) + " fed + " + std::to_string(pending) +
                 " pending != " + std::to_string(count) + ")");
    // in 128 bits: crafted dimensions must not wrap around to the payload's size
    const unsigned __int128 want = (unsigned __int128)sh.n_layer *
                                       ((unsigned __int128)(sh.conv_dim * sh.conv_len) +
                                        (unsigned __int128)(sh.n_heads * sh.head_dim) * (unsigned __int128)sh.d_state) *
                                       sizeof(float) +
                                   (unsigned __int128)count * sizeof(int32_t);
    if (want != f.payload.size())
      refuse(SnapshotProblem::SizeMismatch, origin,
             "its sizes do not match: a state of " + sh.describe() + " and " + std::to_string(count) +
                 " tokens do not fit the payload of " + std::to_string(f.payload.size()) + " bytes");
    // the payload, in the order encode_snapshot writes it
    const char* p = f.payload.data();
    s.state.layers.resize(size_t(sh.n_layer));
    for (LayerState& l : s.state.layers) {
      l.conv.resize(size_t(sh.conv_dim * sh.conv_len));
      std::memcpy(l.conv.data(), p, l.conv.size() * sizeof(float));
      p += l.conv.size() * sizeof(float);
      l.ssm.resize(size_t(sh.n_heads * sh.head_dim * sh.d_state));
      std::memcpy(l.ssm.data(), p, l.ssm.size() * sizeof(float));
      p += l.ssm.size() * sizeof(float);
    }
    s.state.n_tokens = fed;
    s.tokens.resize(size_t(count));
    std::memcpy(s.tokens.data(), p, s.tokens.size() * sizeof(int32_t));
    for (int32_t id : s.tokens)
      if (id < 0 || id >= sh.vocab_size)
        refuse(SnapshotProblem::SizeMismatch, origin,
               "token id " + std::to_string(id) + " is outside its vocabulary of " + std::to_string(sh.vocab_size));
    s.pending.assign(s.tokens.end() - pending, s.tokens.end());

    const json& sp = h.at("sampler");
    if (!sp.is_null()) {
      SamplerState ss;
      ss.params.temperature = real(sp, "temperature", origin);
      ss.params.top_k = int(integer(sp, "top_k", origin, std::numeric_limits<int>::min(), std::numeric_limits<int>::max()));
      ss.params.top_p = real(sp, "top_p", origin);
      ss.params.min_p = real(sp, "min_p", origin);
      ss.params.repeat_penalty = real(sp, "repeat_penalty", origin);
      ss.params.seed = word(sp.at("seed"), "seed", origin);
      ss.params.n_valid = integer(sp, "n_valid", origin, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max());
      const json& rng = sp.at("rng");
      if (!rng.is_array() || rng.size() != 4) refuse(SnapshotProblem::Damaged, origin, "its sampler's generator state is not four words");
      for (size_t i = 0; i < 4; ++i) ss.rng[i] = word(rng[i], "rng", origin);
      try {
        ss.params.validate();
      } catch (const Error& e) {
        refuse(SnapshotProblem::Damaged, origin, std::string("its sampler settings are invalid: ") + e.what());
      }
      s.sampler = ss;
    }
    for (const json& e : h.at("dt_edits")) {
      DtEdit d;
      d.layer = integer(e, "layer", origin, 0, sh.n_layer - 1);
      d.head = integer(e, "head", origin, 0, sh.n_heads - 1);
      d.scale = real(e, "scale", origin);
      d.lo = real(e, "lo", origin);
      d.hi = e.at("hi").is_null() ? INFINITY : real(e, "hi", origin);
      if (d.layer < 0 || d.layer >= sh.n_layer || d.head < 0 || d.head >= sh.n_heads)
        refuse(SnapshotProblem::SizeMismatch, origin, "a dt edit names a layer or head the state does not have (" + d.describe() + ")");
      s.dt_edits.push_back(d);
    }
  } catch (const json::exception& e) {
    refuse(SnapshotProblem::Damaged, origin, std::string("its header is incomplete: ") + e.what());
  }
  return s;
}

json snapshot_info(std::string_view bytes, const std::string& origin) {
  const Frame f = read_frame(bytes, origin);
  decode_snapshot(bytes, origin);  // the same checks as a load
  json h = parse_header(f, origin);
  h["file"] = {{"format_version", f.version},
               {"bytes", bytes.size()},
               {"header_bytes", f.header.size()},
               {"payload_bytes", f.payload.size()},
               {"checksum_xxh3_128", f.checksum.hex()}};
  return h;
}

namespace {
// a snapshot is the state (a few MiB to a few GiB for the largest models) plus 4 bytes per token
constexpr uint64_t kMaxSnapshotFile = uint64_t(64) << 30;
std::string read_snapshot_file(const std::string& path) { return read_file(path, kMaxSnapshotFile); }
}  // namespace

void save_snapshot(const Snapshot& s, const std::string& path) { write_file_atomic(path, encode_snapshot(s)); }

Snapshot load_snapshot(const std::string& path) { return decode_snapshot(read_snapshot_file(path), path); }

json snapshot_info_file(const std::string& path) { return snapshot_info(read_snapshot_file(path), path); }

void check_snapshot_fits(const Snapshot& s, const Model& model, const std::string& origin) {
  const Config& c = model.config;
  const SnapshotShape want = SnapshotShape::of(c);
  const std::string id = model.identity();
  const std::string name = model.source.empty() ? std::string("the loaded model") : std::filesystem::path(model.source).filename().string();
  if (s.model_id != id)
    refuse(SnapshotProblem::OtherModel, origin,
           "made with another model (" + (s.model_name.empty() ? std::string() : s.model_name + ", ") + "id " + short_id(s.model_id) +
               ", " + s.shape.describe() + "); the loaded model is " + name + " (id " + short_id(id) + ", " + want.describe() + ")");
  if (!(s.shape == want))
    refuse(SnapshotProblem::SizeMismatch, origin,
           "its state (" + s.shape.describe() + ") does not match the model's (" + want.describe() + ")");
  if (!s.state.matches(c)) refuse(SnapshotProblem::SizeMismatch, origin, "its state's sizes do not match the model's");
  try {
    check_dt_edits(s.dt_edits, c);
  } catch (const Error& e) {
    refuse(SnapshotProblem::SizeMismatch, origin, e.what());
  }
}

uint64_t transformer_kv_bytes(const Config& c, int64_t tokens) { return uint64_t(2 * c.n_layer * c.d_model * 2) * uint64_t(tokens); }

}  // namespace mamba
