// Decode chains: m_opt.chain steps in one graph, each step's token sampled by the step before on the device.
// The inputs come in by one copy at the start (ChainIO), the ids (with their reports, and the probes) go out
// by one at the end; a sampled stop id lowers ChainIO::live, and the steps after it do nothing. Then decode(),
// which runs the Session's generation through chains and single steps.
#include <algorithm>
#include <array>
#include <cstddef>

#include "engine/error.h"
#include "kernels/cuda_backend_impl.h"
#include "kernels/cuda_check.h"
#include "kernels/lab.h"

namespace mamba {

int CudaBackend::decode_chain() const { return m_opt.chain > 1 && m_opt.graphs && !lab::profiling() && decode_fused() ? m_opt.chain : 0; }

void CudaBackend::enqueue_chain(cudaStream_t s, const GraphKey& key, bool pdl) {
  const int64_t L = m_c.n_layer;
  const int n = m_opt.chain;
  const bool greedy = key.mode == StepMode::ChainGreedy;
  ChainIO* dev = m_chain_dev.as<ChainIO>();
  CUDA_CHECK(cudaMemcpyAsync(dev, m_chain_pinned.get(), offsetof(ChainIO, ids), cudaMemcpyHostToDevice, s));
  for (int k = 0; k < n; ++k) {
    enqueue_fused_layers(s, pdl, dev->slot[k], k > 0, &dev->live, k, key.probes ? probe_rows(k, 0) : nullptr);
    SampleParams sp;
    sp.logits = m_logits_dec.as<float>();
    sp.cfg = &dev->sample;
    sp.out = &dev->ids[k];
    sp.ws = m_sample_ws.as<SampleWorkspace>();
    sp.report = key.report ? &dev->reports[k] : nullptr;
    sp.chain.live = &dev->live;
    sp.chain.step = k;
    sp.chain.u = &dev->u[k];
    sp.chain.next = k + 1 < n ? dev->slot[k + 1] : nullptr;
    sp.chain.stop = dev->stop;
    sp.chain.n_stop = &dev->n_stop;
    // The next step's first layer launches only once this step's last kernel is done: launched earlier, its
    // clusters find the SMs held by the LM head or the sampler and pack two blocks onto an SM, and every layer
    // after it keeps that placement (8.5 against 7.8 us per layer).
    GemvParams gl = lm_head_params();
    gl.lab = lab_hooks(LabKernel::LmHead, L, k);
    if (greedy) {
      gl.argmax = sp;
      gl.argmax_ws = m_argmax_ws.as<ArgmaxWorkspace>();
      launch_gemv(gl, s, pdl);
      continue;
    }
    launch_gemv(gl, s, pdl);
    sp.hold_next = true;
    sp.lab = lab_hooks(LabKernel::Sampler, L, k);
    launch_sample(sp, s, pdl);
  }
  const size_t out = key.report ? sizeof(ChainIO) : offsetof(ChainIO, reports);  // `live` and the ids, the reports if any
  CUDA_CHECK(cudaMemcpyAsync(m_chain_pinned.get(), dev, out, cudaMemcpyDeviceToHost, s));
  if (key.probes) {
    const size_t bytes = sizeof(float) * size_t(n * L * probe_layout().stride());
    CUDA_CHECK(cudaMemcpyAsync(m_probe_pinned.get(), m_probe_dev.get(), bytes, cudaMemcpyDeviceToHost, s));
  }
}

std::vector<int32_t> CudaBackend::step_sample_chain(int32_t token, const SamplerParams& sp, std::span<const double> uniforms,
                                                    std::span<const int32_t> stop, std::vector<SampleInfo>* infos, int top_n,
                                                    ProbeSink* probes) {
  const int n = decode_chain();
  if (n == 0 || sp.repeat_penalty != 1.f) return {};
  if (uniforms.empty() || uniforms.size() > size_t(n))
    throw Error("decode chain: " + std::to_string(uniforms.size()) + " steps asked, 1.." + std::to_string(n) + " possible");
  if (stop.size() > size_t(kMaxStop)) throw Error("decode chain: at most " + std::to_string(kMaxStop) + " stop ids");
  const SampleConfig sc = sample_config(sp, 0.0);
  check_ids(std::span<const int32_t>(&token, 1));
  activate();
  if (probes) reserve_probes();
  cudaStream_t s = m_stream->get();
  m_stream->sync();  // the pinned io block is about to be rewritten
  ChainIO* io = m_chain_pinned.as<ChainIO>();
  const int want = int(uniforms.size());
  io->sample = sc;
  io->live = want;  // steps >= want do nothing
  io->n_stop = int32_t(stop.size());
  std::copy(stop.begin(), stop.end(), io->stop);
  for (int k = 0; k < n; ++k) {
    io->u[k] = k < want ? clamp_uniform(uniforms[size_t(k)]) : 0.f;
    io->slot[k][0] = k == 0 ? token : 0;
    io->slot[k][1] = static_cast<int32_t>((m_pos + k) % m_c.d_conv);
  }
  // A report needs the sampler; greedy without one lets the LM head take the argmax (the same id).
  const bool report = infos != nullptr;
  const GraphKey key{sp.temperature == 0.f && !report ? StepMode::ChainGreedy : StepMode::Chain, report, probes != nullptr};
  if (!graph(key).ready()) capture(key);
  graph(key).launch(s);
  m_stream->sync();
  const int ran = io->live;
  if (ran < 1 || ran > want)
    throw Error("decode chain: the device reports " + std::to_string(ran) + " steps run of " + std::to_string(want));
  const int64_t first = m_n_tokens;
  m_pos = (m_pos + ran) % m_c.d_conv;
  m_n_tokens += ran;
  m_last_logits_dev = m_logits_dec.as<float>();
  if (infos) {
    infos->resize(size_t(ran));
    for (int k = 0; k < ran; ++k) to_info(io->reports[k], top_n, &(*infos)[size_t(k)]);
  }
  if (probes) deliver_decode_probes(probe_layout(), m_c.n_layer, m_probe_pinned.as<float>(), ran, first, *probes);
  return std::vector<int32_t>(io->ids, io->ids + ran);
}

std::string CudaBackend::decode_path(const SamplerParams& sp) const {
  if (sp.repeat_penalty != 1.f) return "host sampling (repetition penalty)";
  const int chain = decode_chain();
  return chain > 1 ? "device sampling, chains of " + std::to_string(chain) + " steps" : "device sampling";
}

int64_t CudaBackend::decode(const DecodeRequest& r, Sampler& sampler, std::span<const int32_t> history, const DecodeCallback& on_token) {
  check_decode_request(r);
  const SamplerParams& sp = sampler.params();
  if (sp.repeat_penalty != 1.f) return Backend::decode(r, sampler, history, on_token);
  const bool report = r.prob || r.top_n > 0;
  // One draw per id when sampling, none when greedy: the host sampler's use of the generator.
  const bool draws = sp.temperature > 0.f;
  auto draw = [&] { return draws ? sampler.next_uniform() : 0.5; };
  auto is_stop = [&](int32_t id) { return std::find(r.stop.begin(), r.stop.end(), id) != r.stop.end(); };
  int64_t n = 0;
  int32_t token = r.token;
  // Reports one id; false when the run ends with it.
  auto emit = [&](int32_t id, SampleInfo* info) {
    ++n;
    DecodedToken d;
    d.id = id;
    if (info) d.info = std::move(*info);
    const bool more = on_token ? on_token(d) : true;
    return more && !is_stop(id);
  };
  SampleInfo info;
  SampleInfo* want = report ? &info : nullptr;
  if (token < 0 && r.steps > 0) {
    token = sample_last(sp, draw(), want, r.top_n).value();
    if (!emit(token, want)) return n;
  }
  const int chain = decode_chain();
  std::vector<double> u;
  std::vector<SampleInfo> infos;
  while (n < r.steps) {
    if (chain > 1 && r.steps - n >= chain) {
      // A chain that stops early (a stop id) used fewer draws than it was given: the generator is set back
      // and advanced by the draws used, so it stands where the host sampler's would.
      const std::array<uint64_t, 4> before = sampler.rng();
      u.resize(size_t(chain));
      for (double& v : u) v = draw();
      const std::vector<int32_t> ids = step_sample_chain(token, sp, u, r.stop, report ? &infos : nullptr, r.top_n, r.probes);
      if (draws && ids.size() < u.size()) {
        sampler.set_rng(before);
        for (size_t k = 0; k < ids.size(); ++k) draw();
      }
      bool more = true;
      for (size_t k = 0; k < ids.size(); ++k) more = emit(ids[k], report ? &infos[k] : nullptr) && more;
      if (!more) return n;
      token = ids.back();
      continue;
    }
    token = step_sample(token, sp, draw(), want, r.top_n, r.probes).value();
    if (!emit(token, want)) return n;
  }
  return n;
}

}  // namespace mamba
