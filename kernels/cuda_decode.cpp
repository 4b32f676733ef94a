// Decode: one token through every layer as one captured CUDA graph. Where the shape and GPU allow, each layer
// is one kernel (decode_layer.cuh: thread-block clusters, sm_90); otherwise three (in_proj GEMV, the SSM step,
// out_proj GEMV). Then the final norm + LM head GEMV, and either the logits to the host or the sampler, whose
// id (and report) alone crosses the bus. With probes, the graph runs the probe-writing instances of the layer
// kernels and copies their few floats per layer out as well.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <tuple>

#include "engine/error.h"
#include "kernels/cuda_backend_impl.h"
#include "kernels/cuda_check.h"
#include "kernels/embedding.cuh"
#include "kernels/lab.h"
#include "kernels/ssm_step.cuh"

namespace mamba {

namespace {
float to_float_limit(double v) { return static_cast<float>(v); }  // +inf stays +inf
}  // namespace

// ---- what one step enqueues --------------------------------------------------------------------------

void CudaBackend::enqueue_step(cudaStream_t s, const GraphKey& key, bool pdl) {
  const int64_t V = m_c.vocab_size;
  StepIO* io_dev = m_io_dev.as<StepIO>();
  CUDA_CHECK(cudaMemcpyAsync(io_dev, m_io_pinned.get(), offsetof(StepIO, out_id), cudaMemcpyHostToDevice, s));
  float* probe = key.probes ? probe_rows(0, 0) : nullptr;
  if (decode_fused()) enqueue_fused_layers(s, pdl, &io_dev->token, false, nullptr, 0, probe);
  else enqueue_three_kernel_layers(s, pdl, probe);

  LAB_MARK("decode: lm head gemv (+final norm)", s);
  GemvParams gl = lm_head_params();
  gl.lab = lab_hooks(LabKernel::LmHead, m_c.n_layer, -1);
  if (!lab_leaves_out(LabKernel::LmHead)) launch_gemv(gl, s, pdl);

  if (key.mode == StepMode::Logits) {
    LAB_MARK("decode: logits to host", s);
    CUDA_CHECK(cudaMemcpyAsync(m_logits_pinned.get(), m_logits_dec.get(), sizeof(float) * size_t(V), cudaMemcpyDeviceToHost, s));
  } else {
    LAB_MARK("decode: sample", s);
    SampleParams sp;
    sp.logits = m_logits_dec.as<float>();
    sp.cfg = &io_dev->sample;
    sp.out = &io_dev->out_id;
    sp.ws = m_sample_ws.as<SampleWorkspace>();
    sp.report = key.report ? &io_dev->report : nullptr;
    sp.lab = lab_hooks(LabKernel::Sampler, m_c.n_layer, -1);
    launch_sample(sp, s, pdl);
    const size_t bytes = key.report ? sizeof(StepIO) - offsetof(StepIO, out_id) : sizeof(int32_t);
    CUDA_CHECK(cudaMemcpyAsync(&m_io_pinned.as<StepIO>()->out_id, &io_dev->out_id, bytes, cudaMemcpyDeviceToHost, s));
  }
  if (key.probes) {
    const size_t bytes = sizeof(float) * size_t(m_c.n_layer * probe_layout().stride());
    CUDA_CHECK(cudaMemcpyAsync(m_probe_pinned.get(), m_probe_dev.get(), bytes, cudaMemcpyDeviceToHost, s));
  }
  LAB_MARK("", s);
}

// Three kernels per layer, m_r_dec in and out: in_proj GEMV (RMSNorm prologue), the SSM step, out_proj GEMV
// (grouped norm prologue) accumulating into the residual.
void CudaBackend::enqueue_three_kernel_layers(cudaStream_t s, bool pdl, float* probe) {
  const Config& c = m_c;
  const int64_t D = c.d_model, E = c.d_inner, H = c.n_heads, P = c.head_dim, G = c.n_groups, N = c.d_state, K = c.d_conv;
  const int64_t CD = c.conv_dim, Din = c.d_in_proj, V = c.vocab_size;
  const float eps = static_cast<float>(c.norm_eps);
  StepIO* io_dev = m_io_dev.as<StepIO>();
  const DecodeProbeLayout lay = probe_layout();
  // Each kernel pulls what the same kernel of the next layer reads into L2 (weights, SSM state), so the
  // dependency chain never waits on DRAM; the last layer pulls in the first part of the LM head. Only
  // for models whose layers are small next to L2 (50 MB on an H100): a large model's decode streams
  // at full bandwidth anyway, and prefetching a layer ahead there only evicts what is in use.
  const size_t ws = dtype_size(m_wdt);
  const bool prefetch = lab_prefetch() && (Din * D + D * E) * int64_t(ws) <= (int64_t(16) << 20);
  const int64_t lm_pf = std::min<int64_t>(int64_t(24) << 20, V * D * int64_t(ws)) / 3 & ~int64_t(15);
  // What kernel class `part` (0 in_proj, 1 SSM step, 2 out_proj) of layer l prefetches: [p, p+bytes) of
  // layer l+1, or on the last layer its third of the LM head's prefetch budget.
  auto next = [&](bool last, int part, const void* p, int64_t bytes) -> std::pair<const void*, int64_t> {
    if (!prefetch) return {nullptr, 0};
    if (last) return {static_cast<const char*>(lm_head()) + part * lm_pf, lm_pf};
    return {p, bytes};
  };

  LAB_MARK("decode: embedding", s);
  EmbeddingParams ep;
  ep.table = m_embedding.get();
  ep.dtype = m_wdt;
  ep.ids = &io_dev->token;
  ep.T = 1;
  ep.D = D;
  ep.out = m_r_dec.as<float>();
  launch_embedding(ep, s, false);  // follows a memcpy, not a kernel

  for (int64_t l = 0; l < c.n_layer; ++l) {
    const DevLayer& lw = m_layers[size_t(l)];
    const bool last = l + 1 == c.n_layer;
    const DevLayer& nw = m_layers[size_t(last ? l : l + 1)];  // the next layer (unused on the last)
    // When each kernel lets its successor launch: the SSM step at its start, the GEMVs once past their wait.
    // All at the start piled ~5 layers of waiting blocks onto the SMs and slowed the running kernel ~2x; all
    // after the wait gave the short SSM step's successor too little lead to load its weights.
    LAB_MARK("decode: in_proj gemv (+rmsnorm)", s);
    GemvParams gi;
    gi.W = lw.in_proj.get();
    gi.wdtype = m_wdt;
    gi.R = Din;
    gi.K = D;
    gi.bias = lw.in_bias.empty() ? nullptr : lw.in_bias.as<float>();
    gi.prologue = GemvPrologue::RmsNorm;
    gi.x = m_r_dec.as<float>();
    gi.norm_w = lw.norm.as<float>();
    gi.eps = eps;
    gi.out = m_zx_dec.as<float>();
    gi.accumulate = false;
    gi.lab = lab_hooks(LabKernel::InProj, l, -1);
    std::tie(gi.prefetch_next, gi.prefetch_next_bytes) = next(last, 0, nw.in_proj.get(), Din * D * int64_t(ws));
    if (!lab_leaves_out(LabKernel::InProj)) launch_gemv(gi, s, pdl);

    LAB_MARK("decode: ssm step (conv+dt+scan+gate)", s);
    SsmStepParams sp;
    sp.zx = m_zx_dec.as<float>();
    sp.step_io = &io_dev->token;
    sp.E = E;
    sp.conv_dim = CD;
    sp.H = H;
    sp.P = P;
    sp.G = G;
    sp.N = N;
    sp.K = K;
    sp.conv_w = lw.conv_w.as<float>();
    sp.conv_b = lw.conv_b.empty() ? nullptr : lw.conv_b.as<float>();
    sp.ring = m_ring.as<float>() + l * CD * K;
    sp.dt_bias = lw.dt_bias.as<float>();
    sp.A = lw.A.as<float>();
    sp.D = lw.D.as<float>();
    sp.dt_lo = to_float_limit(c.dt_min);
    sp.dt_hi = to_float_limit(c.dt_max);
    sp.state = m_ssm.as<float>() + l * H * P * N;
    sp.y = m_y_dec.as<float>();
    sp.gate = true;
    sp.trigger_at_start = true;
    if (probe) {
      sp.probe = probe + l * lay.stride();
      sp.probe_layout = lay;
      sp.probe_resid = m_r_dec.as<float>();  // out_proj adds this layer's output only after this kernel
      sp.probe_D = D;
    }
    sp.lab = lab_hooks(LabKernel::SsmStep, l, -1);
    std::tie(sp.prefetch_next, sp.prefetch_next_bytes) = next(last, 1, sp.state + H * P * N, int64_t(sizeof(float)) * H * P * N);
    if (!lab_leaves_out(LabKernel::SsmStep)) launch_ssm_step(sp, s, pdl);

    LAB_MARK("decode: out_proj gemv (+group norm, residual)", s);
    GemvParams go;
    go.W = lw.out_proj.get();
    go.wdtype = m_wdt;
    go.R = D;
    go.K = E;
    go.bias = lw.out_bias.empty() ? nullptr : lw.out_bias.as<float>();
    go.prologue = GemvPrologue::GroupRmsNorm;
    go.x = m_y_dec.as<float>();
    go.norm_w = lw.gnorm.as<float>();
    go.groups = G;
    go.eps = eps;
    go.out = m_r_dec.as<float>();
    go.accumulate = true;
    go.lab = lab_hooks(LabKernel::OutProj, l, -1);
    std::tie(go.prefetch_next, go.prefetch_next_bytes) = next(last, 2, nw.out_proj.get(), D * E * int64_t(ws));
    if (!lab_leaves_out(LabKernel::OutProj)) launch_gemv(go, s, pdl);
  }
}

// One kernel per layer (decode_layer.cuh), then the finish kernel writes the residual the LM head reads
// into m_r_dec. Layer l reads residual buffer and partial products (l + 1) % 2 and writes l % 2.
void CudaBackend::enqueue_fused_layers(cudaStream_t s, bool pdl, const int32_t* step_io, bool after_kernel, const int32_t* live, int step,
                                       float* probe) {
  const Config& c = m_c;
  const int64_t D = c.d_model, nc = m_layer_plan.nc;
  const float eps = static_cast<float>(c.norm_eps);
  const int lab_step = live ? step : -1;
  float* r = m_lay_r.as<float>();
  float* parts = m_lay_parts.as<float>();
  float* ss = m_lay_ss.as<float>();
  const DecodeProbeLayout lay = probe_layout();
  const int64_t hc = int64_t(kDecodeLayerRows) * m_layer_plan.cs / c.head_dim;
  DecodeResidualIn in;
  in.embedding = m_embedding.get();
  in.nc = int(nc);
  in.clusters_per_group = int(c.n_heads / c.n_groups / hc);
  in.group_size = c.d_inner / c.n_groups;
  in.eps = eps;
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const DevLayer& lw = m_layers[size_t(l)];
    const int64_t cur = l % 2, prev = (l + 1) % 2;
    LAB_MARK("decode: layer (one kernel)", s);
    DecodeLayerParams p;
    p.D = D;
    p.E = c.d_inner;
    p.H = c.n_heads;
    p.P = c.head_dim;
    p.G = c.n_groups;
    p.N = c.d_state;
    p.K = c.d_conv;
    p.conv_dim = c.conv_dim;
    p.wdtype = m_wdt;
    p.step_io = step_io;
    p.eps = eps;
    in.r = r + prev * D;
    in.parts = parts + prev * nc * D;
    in.ss = ss + prev * nc;
    in.bias = l > 0 && !m_layers[size_t(l - 1)].out_bias.empty() ? m_layers[size_t(l - 1)].out_bias.as<float>() : nullptr;
    p.in = in;
    p.r_out = r + cur * D;
    p.norm_w = lw.norm.as<float>();
    p.in_proj = lw.in_proj.get();
    p.in_bias = lw.in_bias.empty() ? nullptr : lw.in_bias.as<float>();
    p.conv_w = lw.conv_w.as<float>();
    p.conv_b = lw.conv_b.empty() ? nullptr : lw.conv_b.as<float>();
    p.ring = m_ring.as<float>() + l * c.conv_dim * c.d_conv;
    p.dt_bias = lw.dt_bias.as<float>();
    p.A = lw.A.as<float>();
    p.Dskip = lw.D.as<float>();
    p.dt_lo = to_float_limit(c.dt_min);
    p.dt_hi = to_float_limit(c.dt_max);
    p.state = m_ssm.as<float>() + l * c.n_heads * c.head_dim * c.d_state;
    p.gnorm_w = lw.gnorm.as<float>();
    p.out_proj = lw.out_proj.get();
    p.parts_out = parts + cur * nc * D;
    p.ss_out = ss + cur * nc;
    p.live = lab_chain_halt() ? live : nullptr;
    p.step = step;
    p.live_early = l > 0;
    if (probe) {
      p.probe = probe + l * lay.stride();
      p.probe_layout = lay;
    }
    p.lab = lab_hooks(LabKernel::Layer, l, lab_step);
    launch_decode_layer(p, m_layer_plan, s, pdl && (l > 0 || after_kernel));  // layer 0 of a single step follows a memcpy
    in.embedding = nullptr;
  }
  const int64_t last = (c.n_layer - 1) % 2;
  in.r = r + last * D;
  in.parts = parts + last * nc * D;
  in.ss = ss + last * nc;
  in.bias = m_layers.back().out_bias.empty() ? nullptr : m_layers.back().out_bias.as<float>();
  LAB_MARK("decode: finish residual", s);
  launch_decode_finish(in, D, m_r_dec.as<float>(), s, pdl, live, step, lab_hooks(LabKernel::Finish, c.n_layer, lab_step));
}

// The final norm + LM head GEMV of a decode step: m_r_dec -> m_logits_dec.
GemvParams CudaBackend::lm_head_params() const {
  GemvParams gl;
  gl.W = lm_head();
  gl.wdtype = m_wdt;
  gl.R = m_c.vocab_size;
  gl.K = m_c.d_model;
  gl.prologue = GemvPrologue::RmsNorm;
  gl.x = m_r_dec.as<float>();
  gl.norm_w = m_norm_f.as<float>();
  gl.eps = static_cast<float>(m_c.norm_eps);
  gl.out = m_logits_dec.as<float>();
  return gl;
}

// ---- probes ----------------------------------------------------------------------------------------

DecodeProbeLayout CudaBackend::probe_layout() const {
  DecodeProbeLayout lay;
  lay.H = m_c.n_heads;
  const int64_t rows = decode_fused() ? kDecodeLayerRows : kSsmStepRows;
  lay.parts = (m_c.head_dim + rows - 1) / rows;
  return lay;
}

float* CudaBackend::probe_rows(int step, int64_t layer) const {
  return m_probe_dev.as<float>() + (int64_t(step) * m_c.n_layer + layer) * probe_layout().stride();
}

// Room for a whole chain's probes with the most parts either layout has; allocated once, so graphs that
// captured its address stay valid.
void CudaBackend::reserve_probes() {
  if (!m_probe_dev.empty()) return;
  DecodeProbeLayout most;
  most.H = m_c.n_heads;
  most.parts = (m_c.head_dim + kSsmStepRows - 1) / kSsmStepRows;
  const size_t bytes = sizeof(float) * size_t(CudaOptions::kMaxChain * m_c.n_layer * most.stride());
  m_probe_dev = DeviceBuffer(bytes, "decode probes");
  m_probe_pinned = PinnedBuffer(bytes);
}

// ---- graphs --------------------------------------------------------------------------------------

GraphExec& CudaBackend::graph(const GraphKey& key) {
  return m_graphs[static_cast<size_t>(key.mode) * 4 + (key.report ? 2 : 0) + (key.probes ? 1 : 0)];
}

void CudaBackend::drop_graphs() {
  for (GraphExec& g : m_graphs) g.reset();
}

void CudaBackend::capture(const GraphKey& key) {
  GraphExec& exec = graph(key);
  cudaStream_t s = m_stream->get();
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool pdl = m_pdl && attempt == 0;
    CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    cudaGraph_t graph = nullptr;
    try {
      if (key.mode == StepMode::Chain || key.mode == StepMode::ChainGreedy) enqueue_chain(s, key, pdl);
      else enqueue_step(s, key, pdl);
    } catch (...) {
      cudaStreamEndCapture(s, &graph);
      if (graph) cudaGraphDestroy(graph);
      (void)cudaGetLastError();
      if (pdl) continue;  // retry without programmatic dependent launch
      throw;
    }
    CUDA_CHECK(cudaStreamEndCapture(s, &graph));
    try {
      exec.instantiate(graph);
      if (!pdl) m_pdl = false;
      return;
    } catch (const Error&) {
      (void)cudaGetLastError();
      if (!pdl) throw;
    }
  }
}

// ---- single steps ----------------------------------------------------------------------------------

void CudaBackend::run_step(int32_t token, const GraphKey& key, const SampleConfig* sc) {
  const std::span<const int32_t> one(&token, 1);
  check_ids(one);
  activate();
  if (key.probes) reserve_probes();
  cudaStream_t s = m_stream->get();
  m_stream->sync();  // the pinned io block is about to be rewritten
  StepIO* io = m_io_pinned.as<StepIO>();
  io->token = token;
  io->pos = static_cast<int32_t>(m_pos);
  if (sc) io->sample = *sc;
  if (m_opt.graphs && !lab::profiling()) {
    GraphExec& exec = graph(key);
    if (!exec.ready()) capture(key);
    exec.launch(s);
  } else {
    enqueue_step(s, key, m_pdl && !lab::profiling());
  }
  m_stream->sync();
  m_pos = (m_pos + 1) % m_c.d_conv;
  m_n_tokens += 1;
  m_last_logits_dev = m_logits_dec.as<float>();
}

void CudaBackend::step(int32_t token, float* logits, ProbeSink* probes) {
  const int64_t first = m_n_tokens;
  run_step(token, {StepMode::Logits, false, probes != nullptr}, nullptr);
  if (logits) std::memcpy(logits, m_logits_pinned.get(), sizeof(float) * size_t(m_c.vocab_size));
  if (probes) deliver_decode_probes(probe_layout(), m_c.n_layer, m_probe_pinned.as<float>(), 1, first, *probes);
}

std::optional<int32_t> CudaBackend::step_sample(int32_t token, const SamplerParams& sp, double uniform, SampleInfo* info, int top_n,
                                                ProbeSink* probes) {
  if (sp.repeat_penalty != 1.f) return std::nullopt;  // needs the host-side history
  const SampleConfig sc = sample_config(sp, uniform);
  const int64_t first = m_n_tokens;
  run_step(token, {StepMode::Sample, info != nullptr, probes != nullptr}, &sc);
  const StepIO* io = m_io_pinned.as<StepIO>();
  if (info) to_info(io->report, top_n, info);
  if (probes) deliver_decode_probes(probe_layout(), m_c.n_layer, m_probe_pinned.as<float>(), 1, first, *probes);
  return io->out_id;
}

std::optional<int32_t> CudaBackend::sample_last(const SamplerParams& sp, double uniform, SampleInfo* info, int top_n) {
  if (sp.repeat_penalty != 1.f) return std::nullopt;
  if (!m_last_logits_dev) throw Error("sample_last: no logits yet");
  const SampleConfig sc = sample_config(sp, uniform);
  activate();
  cudaStream_t s = m_stream->get();
  m_stream->sync();
  StepIO* io = m_io_pinned.as<StepIO>();
  io->sample = sc;
  StepIO* io_dev = m_io_dev.as<StepIO>();
  CUDA_CHECK(cudaMemcpyAsync(&io_dev->sample, &io->sample, sizeof(SampleConfig), cudaMemcpyHostToDevice, s));
  SampleParams p;
  p.logits = m_last_logits_dev;
  p.cfg = &io_dev->sample;
  p.out = &io_dev->out_id;
  p.ws = m_sample_ws.as<SampleWorkspace>();
  p.report = info ? &io_dev->report : nullptr;
  launch_sample(p, s);
  const size_t bytes = info ? sizeof(StepIO) - offsetof(StepIO, out_id) : sizeof(int32_t);
  CUDA_CHECK(cudaMemcpyAsync(&io->out_id, &io_dev->out_id, bytes, cudaMemcpyDeviceToHost, s));
  m_stream->sync();
  if (info) to_info(io->report, top_n, info);
  return io->out_id;
}

SampleConfig CudaBackend::sample_config(const SamplerParams& sp, double uniform) const {
  sp.validate();
  if (sp.repeat_penalty != 1.f) throw Error("device sampling does not apply a repetition penalty (it needs the token history)");
  SampleConfig c;
  c.n = sp.n_valid > 0 ? std::min<int64_t>(sp.n_valid, m_c.vocab_size) : m_c.vocab_size;
  c.temperature = sp.temperature;
  c.top_k = sp.top_k;
  c.top_p = sp.top_p;
  c.min_p = sp.min_p;
  c.u = clamp_uniform(uniform);
  return c;
}

float CudaBackend::clamp_uniform(double u) { return static_cast<float>(std::min(std::max(u, 0.0), 0x1.fffffep-1)); }

void CudaBackend::to_info(const SampleReport& r, int top_n, SampleInfo* info) {
  info->prob = r.prob;
  info->top.clear();
  for (int k = 0; k < std::min(top_n, kReportTop); ++k)
    if (r.top_i[k] != INT32_MAX) info->top.emplace_back(r.top_i[k], r.top_p[k]);  // fewer ids than asked: the rest are empty
}

std::vector<float> CudaBackend::last_logits() const {
  if (!m_last_logits_dev) throw Error("last_logits: no logits yet");
  activate();
  m_stream->sync();
  std::vector<float> out(static_cast<size_t>(m_c.vocab_size));
  CUDA_CHECK(cudaMemcpy(out.data(), m_last_logits_dev, sizeof(float) * out.size(), cudaMemcpyDeviceToHost));
  return out;
}

void CudaBackend::last_logits(std::span<float> out) const {
  if (out.size() != size_t(m_c.vocab_size)) throw Error("last_logits: wrong output size");
  const std::vector<float> v = last_logits();
  std::copy(v.begin(), v.end(), out.begin());
}

}  // namespace mamba
