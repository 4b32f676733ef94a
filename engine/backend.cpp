// What every backend shares: scan names, and decode() as a host loop over step() with the host sampler.
#include "engine/backend.h"

#include <algorithm>

#include "engine/error.h"

namespace mamba {

const char* scan_name(ScanMode m) { return m == ScanMode::Chunked ? "chunked" : "recurrent"; }

ScanMode parse_scan(const std::string& s) {
  if (s == "chunked") return ScanMode::Chunked;
  if (s == "recurrent") return ScanMode::Recurrent;
  throw Error("unknown scan mode '" + s + "' (expected chunked or recurrent)");
}

void check_decode_request(const DecodeRequest& r) {
  if (r.steps < 0) throw Error("decode: the number of steps must be >= 0");
  if (r.top_n < 0 || r.top_n > DecodeRequest::kMaxTopN)
    throw Error("decode: alternatives per token must be in 0.." + std::to_string(DecodeRequest::kMaxTopN));
}

void check_forward_options(const ForwardOptions& o) {
  if (o.chunk_size < 0 || o.chunk_size > ForwardOptions::kMaxChunk)
    throw Error("chunk size must be 0 (the default) or 1.." + std::to_string(ForwardOptions::kMaxChunk) + ", got " +
                std::to_string(o.chunk_size));
}

void Backend::set_dt_edits(std::vector<DtEdit> edits) {
  if (!edits.empty())
    throw Error(name() + ": dt edits are applied by the CPU backend only; switch the device to the CPU to run with " + edits[0].describe());
}

int64_t Backend::decode(const DecodeRequest& r, Sampler& sampler, std::span<const int32_t> history, const DecodeCallback& on_token) {
  check_decode_request(r);
  std::vector<float> logits(static_cast<size_t>(model().config.vocab_size));
  // The repetition penalty reads the whole history, this run's ids included.
  const bool penalty = sampler.params().repeat_penalty != 1.f;
  std::vector<int32_t> hist;
  if (penalty) hist.assign(history.begin(), history.end());
  const bool report = r.prob || r.top_n > 0;
  int32_t token = r.token;
  int64_t n = 0;
  while (n < r.steps) {
    if (token >= 0) step(token, logits.data(), r.probes);
    else last_logits(logits);
    DecodedToken d;
    d.id = sampler.sample(logits, penalty ? std::span<const int32_t>(hist) : history, report ? &d.info : nullptr, r.top_n);
    ++n;
    if (penalty) hist.push_back(d.id);
    const bool more = on_token ? on_token(d) : true;
    if (!more || std::find(r.stop.begin(), r.stop.end(), d.id) != r.stop.end()) break;
    token = d.id;
  }
  return n;
}

}  // namespace mamba
