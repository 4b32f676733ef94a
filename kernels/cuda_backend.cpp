// The CUDA backend: weights on the GPU in bf16/f16/f32, the live state on the GPU in fp32, prefill
// through cuBLAS + the chunked SSD, decode through one captured graph of fused kernels per token.
#include "kernels/cuda_backend.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <tuple>

#include "engine/error.h"
#include "kernels/conv1d.cuh"
#include "kernels/cuda_backend_impl.h"
#include "kernels/cuda_check.h"
#include "kernels/dt_cumsum.cuh"
#include "kernels/elementwise.cuh"
#include "kernels/embedding.cuh"
#include "kernels/gated_rmsnorm.cuh"
#include "kernels/gemm.h"
#include "kernels/gemv.cuh"
#include "kernels/rmsnorm.cuh"
#include "kernels/ssd_recurrent.cuh"
#include "kernels/ssm_step.cuh"

namespace mamba {

namespace {

bool env_flag(const char* name, bool dflt) {
  const char* v = std::getenv(name);
  if (!v || !*v) return dflt;
  return !(std::strcmp(v, "0") == 0 || std::strcmp(v, "off") == 0 || std::strcmp(v, "false") == 0);
}

int64_t env_int(const char* name, int64_t dflt) {
  const char* v = std::getenv(name);
  if (!v || !*v) return dflt;
  return std::strtoll(v, nullptr, 10);
}

// Longest prompt piece run through the model at once: bounds the workspaces (prefill of T tokens is
// exactly prefill of its pieces one after another). A multiple of the chunk size.
int64_t segment_len(int64_t Q) {
  // (and keeps per-token grid dimensions under CUDA's 65535 limit)
  const int64_t target = std::clamp<int64_t>(env_int("MAMBA_CUDA_SEGMENT", 8192), 256, 32768);
  return std::max<int64_t>(Q, target / Q * Q);
}

std::string env_str(const char* name, const char* dflt) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : std::string(dflt);
}

float to_float_limit(double v) { return static_cast<float>(v); }  // +inf stays +inf

// A blank trace of n u64 (launch.cuh's slots): slots 0 and 1 of each kernel take minima, the others maxima.
std::vector<uint64_t> blank_trace(size_t n) {
  std::vector<uint64_t> t(n, 0);
  for (size_t k = 0; k < n; k += CudaBackend::kTraceSlots) t[k] = t[k + 1] = ~uint64_t(0);
  return t;
}

}  // namespace

CudaBackend::CudaBackend(std::shared_ptr<const Model> model, const BackendOptions& opt) : m_model(std::move(model)), m_c(m_model->config) {
  m_wdt = parse_device_dtype(opt.dtype);
  m_sdt = m_wdt == DType::F32 ? DType::F32 : DType::BF16;
  m_device = opt.device_index;
  int n_dev = 0;
  CUDA_CHECK(cudaGetDeviceCount(&n_dev));
  if (m_device < 0 || m_device >= n_dev)
    throw Error("CUDA device index " + std::to_string(m_device) + " out of range (" + std::to_string(n_dev) + " devices)");
  activate();
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, m_device));
  m_device_name = prop.name;
  m_pdl = prop.major >= 9 && env_flag("MAMBA_CUDA_PDL", true);
  m_use_graph = env_flag("MAMBA_CUDA_GRAPH", true);
  if (m_c.d_state > 256) throw Error("CUDA backend: d_state > 256 is not supported");
  if (m_c.d_conv < 1 || m_c.d_conv > 4)
    throw Error("CUDA backend: conv kernel sizes 1..4 are supported (model has " + std::to_string(m_c.d_conv) + ")");

  m_stream = std::make_unique<Stream>();
  m_blas = std::make_unique<CublasHandle>();
  CUBLAS_CHECK(cublasSetStream(m_blas->get(), m_stream->get()));
  upload_weights();

  const Config& c = m_c;
  m_ring = DeviceBuffer(sizeof(float) * size_t(c.n_layer * c.conv_dim * c.d_conv), "conv state");
  m_ssm = DeviceBuffer(sizeof(float) * size_t(c.n_layer * c.n_heads * c.head_dim * c.d_state), "SSM state");
  m_io_dev = DeviceBuffer(sizeof(StepIO), "step io");
  m_io_pinned = PinnedBuffer(sizeof(StepIO));
  *m_io_pinned.as<StepIO>() = StepIO{};
  m_r_dec = DeviceBuffer(sizeof(float) * size_t(c.d_model), "decode residual");
  m_zx_dec = DeviceBuffer(sizeof(float) * size_t(c.d_in_proj), "decode in_proj output");
  m_y_dec = DeviceBuffer(sizeof(float) * size_t(c.d_inner), "decode SSD output");
  m_logits_dec = DeviceBuffer(sizeof(float) * size_t(c.vocab_size), "decode logits");
  m_logits_pinned = PinnedBuffer(sizeof(float) * size_t(c.vocab_size));
  m_sample_ws = DeviceBuffer(sizeof(SampleWorkspace), "sampling workspace");
  CUDA_CHECK(cudaMemset(m_sample_ws.get(), 0, m_sample_ws.bytes()));
  DecodeLayerParams shape;
  shape.D = c.d_model;
  shape.E = c.d_inner;
  shape.H = c.n_heads;
  shape.P = c.head_dim;
  shape.G = c.n_groups;
  shape.N = c.d_state;
  shape.K = c.d_conv;
  shape.conv_dim = c.conv_dim;
  shape.wdtype = m_wdt;
  m_layer_plan = plan_decode_layer(shape, env_str("MAMBA_CUDA_LAYER_CS", ""));
  if (m_layer_plan.cs > 0) {
    m_lay_r = DeviceBuffer(sizeof(float) * 2 * size_t(c.d_model), "decode layer residuals");
    m_lay_parts = DeviceBuffer(sizeof(float) * 2 * size_t(m_layer_plan.nc * c.d_model), "decode layer partial products");
    m_lay_ss = DeviceBuffer(sizeof(float) * 2 * size_t(m_layer_plan.nc), "decode layer sums of squares");
  }
  m_chain_dev = DeviceBuffer(sizeof(ChainIO), "decode chain io");
  m_argmax_ws = DeviceBuffer(sizeof(ArgmaxWorkspace), "decode chain argmax workspace");
  CUDA_CHECK(cudaMemset(m_argmax_ws.get(), 0, m_argmax_ws.bytes()));
  m_chain_pinned = PinnedBuffer(sizeof(ChainIO));
  *m_chain_pinned.as<ChainIO>() = ChainIO{};
  set_decode_chain(int(env_int("MAMBA_CUDA_CHAIN", kDefaultChain)));
  reset_state();
}

CudaBackend::~CudaBackend() {
  if (m_stream) cudaStreamSynchronize(m_stream->get());
}

void CudaBackend::activate() const { CUDA_CHECK(cudaSetDevice(m_device)); }

std::string CudaBackend::name() const { return "cuda:" + std::to_string(m_device) + " " + m_device_name + " (" + dtype_name(m_wdt) + ")"; }

DeviceBuffer CudaBackend::upload(const std::vector<float>& t, DType dt, const char* what) {
  if (t.empty()) return {};
  DeviceBuffer out(dtype_size(dt) * t.size(), what);
  cudaStream_t s = m_stream->get();
  if (dt == DType::F32) {
    CUDA_CHECK(cudaMemcpyAsync(out.get(), t.data(), sizeof(float) * t.size(), cudaMemcpyHostToDevice, s));
    return out;
  }
  // Through an fp32 staging buffer, converted on the GPU (round to nearest even, as torch).
  const size_t chunk = std::min<size_t>(t.size(), size_t(16) << 20);
  DeviceBuffer staging(sizeof(float) * chunk, "weight upload staging");
  for (size_t i = 0; i < t.size(); i += chunk) {
    const size_t n = std::min(chunk, t.size() - i);
    CUDA_CHECK(cudaMemcpyAsync(staging.get(), t.data() + i, sizeof(float) * n, cudaMemcpyHostToDevice, s));
    launch_convert_f32(staging.as<float>(), static_cast<char*>(out.get()) + i * dtype_size(dt), dt, int64_t(n), s);
  }
  m_stream->sync();  // the staging buffer dies here
  return out;
}

void CudaBackend::upload_weights() {
  const Weights& w = m_model->weights;
  m_embedding = upload(w.embedding, m_wdt, "embedding");
  m_norm_f = upload(w.norm_f, DType::F32, "norm_f");
  if (!w.lm_head.empty()) m_lm_head = upload(w.lm_head, m_wdt, "lm_head");
  m_layers.resize(w.layers.size());
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const LayerWeights& lw = w.layers[l];
    DevLayer& d = m_layers[l];
    d.norm = upload(lw.norm, DType::F32, "norm");
    d.in_proj = upload(lw.in_proj, m_wdt, "in_proj");
    d.in_bias = upload(lw.in_proj_bias, DType::F32, "in_proj bias");
    d.conv_w = upload(lw.conv_w, DType::F32, "conv1d weight");
    d.conv_b = upload(lw.conv_b, DType::F32, "conv1d bias");
    d.dt_bias = upload(lw.dt_bias, DType::F32, "dt_bias");
    d.A = upload(lw.A, DType::F32, "A");
    d.D = upload(lw.D, DType::F32, "D");
    d.gnorm = upload(lw.gnorm, DType::F32, "gated norm weight");
    d.out_proj = upload(lw.out_proj, m_wdt, "out_proj");
    d.out_bias = upload(lw.out_proj_bias, DType::F32, "out_proj bias");
  }
  m_stream->sync();
}

uint64_t CudaBackend::weight_bytes() const {
  const Config& c = m_c;
  const uint64_t ws = dtype_size(m_wdt);
  uint64_t b = uint64_t(c.vocab_size * c.d_model) * ws + uint64_t(c.d_model) * 4;  // LM head + norm_f
  const Weights& w = m_model->weights;
  for (const auto& l : w.layers) {
    b += (l.in_proj.size() + l.out_proj.size()) * ws;
    b += (l.norm.size() + l.in_proj_bias.size() + l.conv_w.size() + l.conv_b.size() + l.dt_bias.size() + l.A.size() + l.D.size() +
          l.gnorm.size() + l.out_proj_bias.size()) *
         4;
  }
  return b;
}

// ---- state -------------------------------------------------------------------------------------

void CudaBackend::reset_state() {
  activate();
  cudaStream_t s = m_stream->get();
  CUDA_CHECK(cudaMemsetAsync(m_ring.get(), 0, m_ring.bytes(), s));
  CUDA_CHECK(cudaMemsetAsync(m_ssm.get(), 0, m_ssm.bytes(), s));
  m_stream->sync();
  m_n_tokens = 0;
  m_last_logits_dev = nullptr;
}

State CudaBackend::get_state() const {
  activate();
  const Config& c = m_c;
  const int64_t K = c.d_conv, C = c.conv_dim, PN = c.n_heads * c.head_dim * c.d_state;
  std::vector<float> ring(size_t(c.n_layer * C * K)), ssm(size_t(c.n_layer * PN));
  m_stream->sync();
  CUDA_CHECK(cudaMemcpy(ring.data(), m_ring.get(), sizeof(float) * ring.size(), cudaMemcpyDeviceToHost));
  CUDA_CHECK(cudaMemcpy(ssm.data(), m_ssm.get(), sizeof(float) * ssm.size(), cudaMemcpyDeviceToHost));
  State st(c);
  st.n_tokens = m_n_tokens;
  for (int64_t l = 0; l < c.n_layer; ++l) {
    LayerState& ls = st.layers[size_t(l)];
    const float* r = ring.data() + l * C * K;
    for (int64_t ch = 0; ch < C; ++ch)
      for (int64_t j = 0; j < K - 1; ++j) ls.conv[size_t(ch * (K - 1) + j)] = r[ch * K + ring_slot(m_pos, j - (K - 1), K)];
    std::copy(ssm.begin() + l * PN, ssm.begin() + (l + 1) * PN, ls.ssm.begin());
  }
  return st;
}

void CudaBackend::set_state(const State& st) {
  const Config& c = m_c;
  if (!st.matches(c)) throw Error("state does not match the model's shapes");
  activate();
  const int64_t K = c.d_conv, C = c.conv_dim, PN = c.n_heads * c.head_dim * c.d_state;
  std::vector<float> ring(size_t(c.n_layer * C * K), 0.f), ssm(size_t(c.n_layer * PN));
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const LayerState& ls = st.layers[size_t(l)];
    float* r = ring.data() + l * C * K;
    for (int64_t ch = 0; ch < C; ++ch)
      for (int64_t j = 0; j < K - 1; ++j) r[ch * K + ring_slot(m_pos, j - (K - 1), K)] = ls.conv[size_t(ch * (K - 1) + j)];
    std::copy(ls.ssm.begin(), ls.ssm.end(), ssm.begin() + l * PN);
  }
  m_stream->sync();
  CUDA_CHECK(cudaMemcpy(m_ring.get(), ring.data(), sizeof(float) * ring.size(), cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaMemcpy(m_ssm.get(), ssm.data(), sizeof(float) * ssm.size(), cudaMemcpyHostToDevice));
  m_n_tokens = st.n_tokens;
  m_last_logits_dev = nullptr;
}

// ---- prefill -----------------------------------------------------------------------------------

void CudaBackend::check_ids(std::span<const int32_t> ids) const {
  for (int32_t id : ids)
    if (id < 0 || id >= m_c.vocab_size)
      throw Error("token id " + std::to_string(id) + " is outside the vocabulary (0.." + std::to_string(m_c.vocab_size - 1) + ")");
}

void CudaBackend::reserve_prefill(int64_t T_pad) {
  if (T_pad <= m_cap) return;
  const Config& c = m_c;
  const size_t f = sizeof(float), w = dtype_size(m_wdt), sd = dtype_size(m_sdt), T = size_t(T_pad);
  m_ids.reserve(sizeof(int32_t) * T, "token ids");
  m_ids_pinned = PinnedBuffer(sizeof(int32_t) * T);
  m_resid.reserve(f * T * size_t(c.d_model), "residual stream");
  m_h.reserve(w * T * size_t(c.d_model), "normed hidden");
  m_zx.reserve(f * T * size_t(c.d_in_proj), "in_proj output");
  m_xbc.reserve(f * T * size_t(c.conv_dim), "conv output");
  if (m_sdt != DType::F32) m_xbc_act.reserve(sd * T * size_t(c.conv_dim), "conv output (matmul copy)");
  m_dt.reserve(f * T * size_t(c.n_heads), "dt");
  m_cs.reserve(f * T * size_t(c.n_heads), "dt*A cumulative sums");
  // m_y, m_y_off, m_gate_v: reserved by prefill_segment for the paths that use them.
  m_gate_ss.reserve(f * T * size_t(c.n_heads), "gated norm sums of squares");
  m_xs.reserve(sd * T * size_t(c.d_inner), "SSD scaled x");
  m_y_act.reserve(w * T * size_t(c.d_inner), "gated norm output");
  m_lm_rows = std::min<int64_t>(T_pad, 128);
  m_logits_ws.reserve(f * size_t(m_lm_rows * c.vocab_size), "logits");
  m_cap = T_pad;
}

void CudaBackend::forward(std::span<const int32_t> tokens, const ForwardOptions& opt, float* logits) {
  const int64_t T = static_cast<int64_t>(tokens.size());
  if (T == 0) throw Error("forward: no tokens");
  check_ids(tokens);
  activate();
  // MAMBA_CUDA_CHUNK (measurement): the chunk size when the caller asks for none (default: the model's).
  const int64_t Q = opt.chunk_size > 0 ? opt.chunk_size : env_int("MAMBA_CUDA_CHUNK", m_c.chunk_size);
  if (Q < 1) throw Error("chunk size must be >= 1");
  // opt.probes: the hook point for per-layer probes (a later issue); nothing is collected yet.
  const int64_t seg = segment_len(Q), V = m_c.vocab_size;
  for (int64_t start = 0; start < T; start += seg) {
    const int64_t len = std::min(seg, T - start);
    const bool last = start + len == T;
    const LogitRows rows = opt.all_logits ? LogitRows::All : last ? LogitRows::Last : LogitRows::None;
    float* out = !logits ? nullptr : opt.all_logits ? logits + start * V : logits;
    const bool chunked = opt.scan == ScanMode::Chunked && len > 1;
    prefill_segment(tokens.data() + start, len, chunked, Q, rows == LogitRows::None ? nullptr : out, rows);
  }
}

void CudaBackend::prefill_segment(const int32_t* ids, int64_t T, bool chunked, int64_t Q, float* out, LogitRows want) {
  const Config& c = m_c;
  const int64_t D = c.d_model, E = c.d_inner, H = c.n_heads, P = c.head_dim, G = c.n_groups, N = c.d_state, K = c.d_conv;
  const int64_t Din = c.d_in_proj, CD = c.conv_dim, V = c.vocab_size;
  // A prompt shorter than a chunk is one chunk of its own length: same result, no padded work.
  if (chunked && T < Q) Q = T;
  const int64_t T_pad = chunked ? (T + Q - 1) / Q * Q : T;
  reserve_prefill(T_pad);
  cudaStream_t s = m_stream->get();
  cublasHandle_t blas = m_blas->get();
  OpProfiler* prof = m_prof;
  const float eps = static_cast<float>(c.norm_eps);

  // The pinned copy is reused: wait for the previous upload to have left it.
  m_stream->sync();
  std::memcpy(m_ids_pinned.get(), ids, sizeof(int32_t) * size_t(T));
  CUDA_CHECK(cudaMemcpyAsync(m_ids.get(), m_ids_pinned.get(), sizeof(int32_t) * size_t(T), cudaMemcpyHostToDevice, s));

  prof_mark(prof, "prefill: embedding", s);
  EmbeddingParams ep;
  ep.table = m_embedding.get();
  ep.dtype = m_wdt;
  ep.ids = m_ids.as<int32_t>();
  ep.T = T;
  ep.D = D;
  ep.out = m_resid.as<float>();
  launch_embedding(ep, s);

  float* resid = m_resid.as<float>();
  float* zx = m_zx.as<float>();
  float* xbc = m_xbc.as<float>();
  const void* xbc_act = m_sdt == DType::F32 ? static_cast<const void*>(xbc) : m_xbc_act.get();
  const size_t sd = dtype_size(m_sdt);

  // Fused chunk scan (bf16 operands, supported shapes; MAMBA_CUDA_FUSED_SCAN=0 forces the unfused path):
  // one tensor-core kernel for the SSD's output side with the D skip and the gate in its epilogue,
  // then a light kernel that finishes the grouped norm. The f32 mode keeps the unfused path as the check.
  SsdChunkedArgs probe;
  probe.P = P;
  probe.N = N;
  probe.dtype = m_sdt;
  probe.x_act = xbc_act;
  probe.ld_act = CD;
  probe.C_act = static_cast<const char*>(xbc_act) + (E + G * N) * int64_t(sd);
  const bool fused = chunked && m_sdt != DType::F32 && env_int("MAMBA_CUDA_FUSED_SCAN", 1) != 0 && ssd_chunked_fused_supported(probe);
  // v in bf16 goes straight into the out_proj input buffer (normalised in place); else fp32 on the side.
  // MAMBA_CUDA_GATE_F32=1 keeps v in fp32 in bf16 mode too (one rounding fewer, 2x the bytes).
  const DType v_dtype = m_wdt == DType::BF16 && env_int("MAMBA_CUDA_GATE_F32", 0) == 0 ? DType::BF16 : DType::F32;
  if (fused && v_dtype != m_wdt) m_gate_v.reserve(sizeof(float) * size_t(T_pad * E), "gated SSD output");
  if (!fused) m_y.reserve(sizeof(float) * size_t(T_pad * E), "SSD output");
  if (chunked && !fused) m_y_off.reserve(sizeof(float) * size_t(T_pad * E), "SSD off-diagonal output");

  for (int64_t l = 0; l < c.n_layer; ++l) {
    const DevLayer& lw = m_layers[size_t(l)];
    float* ring = m_ring.as<float>() + l * CD * K;
    float* state = m_ssm.as<float>() + l * H * P * N;

    prof_mark(prof, "prefill: rmsnorm", s);
    RmsNormParams rn;
    rn.x = resid;
    rn.ldx = D;
    rn.w = lw.norm.as<float>();
    rn.out = m_h.get();
    rn.out_dtype = m_wdt;
    rn.ldo = D;
    rn.T = T;
    rn.D = D;
    rn.eps = eps;
    launch_rmsnorm(rn, s);

    prof_mark(prof, "prefill: in_proj gemm", s);
    gemm(blas, Din, T, D, {lw.in_proj.get(), m_wdt, D, true}, {m_h.get(), m_wdt, D, false}, zx, DType::F32, Din);
    if (!lw.in_bias.empty()) launch_add_bias(zx, Din, lw.in_bias.as<float>(), T, Din, s);

    prof_mark(prof, "prefill: dt softplus + cumsum", s);
    DtCumsumParams dp;
    dp.raw = zx + E + CD;
    dp.ld_raw = Din;
    dp.bias = lw.dt_bias.as<float>();
    dp.A = lw.A.as<float>();
    dp.lo = to_float_limit(c.dt_min);
    dp.hi = to_float_limit(c.dt_max);
    dp.T = T;
    dp.T_pad = T_pad;
    dp.H = H;
    dp.Q = Q;
    dp.dt = m_dt.as<float>();
    dp.cs = chunked ? m_cs.as<float>() : nullptr;
    launch_dt_cumsum(dp, s);

    SsdChunkedArgs a;
    if (chunked) {
      a.T_pad = T_pad;
      a.Q = Q;
      a.H = H;
      a.P = P;
      a.G = G;
      a.N = N;
      a.x = xbc;
      a.ldx = CD;
      a.x_act = xbc_act;
      a.B_act = static_cast<const char*>(xbc_act) + E * int64_t(sd);
      a.C_act = static_cast<const char*>(xbc_act) + (E + G * N) * int64_t(sd);
      a.ld_act = CD;
      a.dtype = m_sdt;
      a.dt = m_dt.as<float>();
      a.cs = m_cs.as<float>();
      a.state = state;
      a.ldy = E;
      a.xs = m_xs.get();  // written by the conv below
      if (fused) {
        a.fused = true;
        a.T_valid = T;
        a.D = lw.D.as<float>();  // fp32 x, fp32 skip in the epilogue
        a.gate.z = zx;
        a.gate.ldz = Din;
        a.gate.v_dtype = v_dtype;
        a.gate.ldv = E;
        a.gate.ss = m_gate_ss.as<float>();
        a.gate.v = v_dtype == m_wdt ? m_y_act.get() : m_gate_v.get();
      } else {
        a.y = m_y.as<float>();
        a.y_off = m_y_off.as<float>();  // combined by the gated norm below
        // a.D (the skip on M's diagonal) would save the gated norm one read of x, but x then enters in bf16:
        // measured, bf16 chunked logits error rose from 2.2e-2 to 3.6e-2 on the fixtures. The skip stays fp32.
      }
      m_ssd_ws.prepare(a, s);
    }

    prof_mark(prof, "prefill: conv1d (+ssd x scaling)", s);
    Conv1dParams cp;
    cp.in = zx + E;
    cp.ld_in = Din;
    cp.w = lw.conv_w.as<float>();
    cp.b = lw.conv_b.empty() ? nullptr : lw.conv_b.as<float>();
    cp.ring = ring;
    cp.pos = m_pos;
    cp.T = T;
    cp.T_pad = T_pad;
    cp.C = CD;
    cp.K = K;
    cp.out = xbc;
    cp.out_act = m_sdt == DType::F32 ? nullptr : m_xbc_act.get();
    cp.act_dtype = m_sdt;
    if (chunked) {
      cp.xs = m_xs.get();
      cp.dt = m_dt.as<float>();
      cp.cs = m_cs.as<float>();
      cp.E = E;
      cp.P = P;
      cp.Q = Q;
    }
    if (fused) cp.out_cols = E;  // only the D skip reads fp32 (x); B and C are read in bf16
    launch_conv1d_silu(cp, s);
    ConvRingUpdateParams ru;
    ru.in = zx + E;
    ru.ld_in = Din;
    ru.ring = ring;
    ru.pos = m_pos;
    ru.T = T;
    ru.C = CD;
    ru.K = K;
    launch_conv_ring_update(ru, s);

    if (chunked) {
      ssd_chunked_run(a, m_ssd_ws, blas, s, prof);
    } else {
      prof_mark(prof, "prefill: ssd recurrent", s);
      SsdRecurrentParams rp;
      rp.x = xbc;
      rp.B = xbc + E;
      rp.C = xbc + E + G * N;
      rp.ldx = CD;
      rp.dt = m_dt.as<float>();
      rp.dt_stride = T_pad;
      rp.A = lw.A.as<float>();
      rp.state = state;
      rp.y = m_y.as<float>();
      rp.ldy = E;
      rp.T = T;
      rp.H = H;
      rp.P = P;
      rp.G = G;
      rp.N = N;
      launch_ssd_recurrent(rp, s);
    }

    if (fused) {
      prof_mark(prof, "prefill: gated norm finish", s);
      GatedNormFinishParams fp;
      fp.v = a.gate.v;
      fp.v_dtype = v_dtype;
      fp.ldv = E;
      fp.ss = m_gate_ss.as<float>();
      fp.w = lw.gnorm.as<float>();
      fp.T = T;
      fp.E = E;
      fp.H = H;
      fp.G = G;
      fp.eps = eps;
      fp.out = m_y_act.get();
      fp.out_dtype = m_wdt;
      fp.ldo = E;
      launch_gated_norm_finish(fp, s);
    } else {
      prof_mark(prof, "prefill: gated rmsnorm", s);
      GatedRmsNormParams gp;
      gp.y = m_y.as<float>();
      gp.ldy = E;
      gp.x = xbc;
      gp.ldx = CD;
      gp.D = lw.D.as<float>();
      gp.P = P;
      gp.z = zx;
      gp.ldz = Din;
      gp.w = lw.gnorm.as<float>();
      gp.T = T;
      gp.E = E;
      gp.G = G;
      gp.eps = eps;
      gp.out = m_y_act.get();
      gp.out_dtype = m_wdt;
      gp.ldo = E;
      if (chunked) {
        gp.y_off = m_y_off.as<float>();
        gp.cs = m_cs.as<float>();
        gp.cs_stride = T_pad;
      }
      launch_gated_rmsnorm(gp, s);
    }

    prof_mark(prof, "prefill: out_proj gemm (+residual)", s);
    gemm(blas, D, T, E, {lw.out_proj.get(), m_wdt, E, true}, {m_y_act.get(), m_wdt, E, false}, resid, DType::F32, D, 1.f, 1.f);
    if (!lw.out_bias.empty()) launch_add_bias(resid, D, lw.out_bias.as<float>(), T, D, s);
  }
  m_pos = (m_pos + T) % K;
  m_n_tokens += T;

  const int64_t rows = want == LogitRows::All ? T : want == LogitRows::Last ? 1 : 0, first = T - rows;
  for (int64_t r0 = 0; r0 < rows; r0 += m_lm_rows) {
    const int64_t n = std::min(m_lm_rows, rows - r0);
    prof_mark(prof, "prefill: final norm + lm head", s);
    RmsNormParams rn;
    rn.x = resid + (first + r0) * D;
    rn.ldx = D;
    rn.w = m_norm_f.as<float>();
    rn.out = m_h.get();
    rn.out_dtype = m_wdt;
    rn.ldo = D;
    rn.T = n;
    rn.D = D;
    rn.eps = eps;
    launch_rmsnorm(rn, s);
    gemm(blas, V, n, D, {lm_head(), m_wdt, D, true}, {m_h.get(), m_wdt, D, false}, m_logits_ws.get(), DType::F32, V);
    if (out) {
      prof_mark(prof, "prefill: logits to host", s);
      CUDA_CHECK(cudaMemcpyAsync(out + r0 * V, m_logits_ws.get(), sizeof(float) * size_t(n * V), cudaMemcpyDeviceToHost, s));
    }
    m_last_logits_dev = m_logits_ws.as<float>() + (n - 1) * V;
  }
  if (prof) prof->finish(s);
  m_stream->sync();
}

// ---- decode ------------------------------------------------------------------------------------

void CudaBackend::enqueue_step(cudaStream_t s, StepMode mode, bool pdl) {
  const Config& c = m_c;
  const int64_t D = c.d_model, E = c.d_inner, H = c.n_heads, P = c.head_dim, G = c.n_groups, N = c.d_state, K = c.d_conv;
  const int64_t CD = c.conv_dim, Din = c.d_in_proj, V = c.vocab_size;
  const float eps = static_cast<float>(c.norm_eps);
  OpProfiler* prof = m_prof;
  StepIO* io_dev = m_io_dev.as<StepIO>();
  // Each kernel pulls what the same kernel of the next layer reads into L2 (weights, SSM state), so the
  // dependency chain never waits on DRAM; the last layer pulls in the first part of the LM head. Only
  // for models whose layers are small next to L2 (50 MB on an H100): a large model's decode streams
  // at full bandwidth anyway, and prefetching a layer ahead there only evicts what is in use.
  const size_t ws = dtype_size(m_wdt);
  const bool prefetch = env_flag("MAMBA_CUDA_PREFETCH", true) && (Din * D + D * E) * int64_t(ws) <= (int64_t(16) << 20);
  const int64_t lm_pf = std::min<int64_t>(env_int("MAMBA_CUDA_LM_PREFETCH_MB", 24) << 20, V * D * int64_t(ws)) / 3 & ~int64_t(15);
  // What kernel class `part` (0 in_proj, 1 SSM step, 2 out_proj) of layer l prefetches: [p, p+bytes) of
  // layer l+1, or on the last layer its third of the LM head's prefetch budget.
  auto next = [&](bool last, int part, const void* p, int64_t bytes) -> std::pair<const void*, int64_t> {
    if (!prefetch) return {nullptr, 0};
    if (last) return {static_cast<const char*>(lm_head()) + part * lm_pf, lm_pf};
    return {p, bytes};
  };
  // When each kernel class (in_proj, SSM step, out_proj) lets its PDL successor launch: 's' = at its
  // start, 'w' = once past its own wait. Measured (run 6): all at start piled ~5 layers of waiting
  // blocks onto the SMs and slowed the running kernel ~2x; all after the wait gave the short SSM step's
  // successor too little lead to load its weights.
  std::string trig = env_str("MAMBA_CUDA_TRIGGER", "wsw");
  if (trig.size() != 3) trig = "wsw";
  const bool trig_in = trig[0] == 's', trig_ssm = trig[1] == 's', trig_out = trig[2] == 's';
  // 'l' (GEMV classes): once a streaming warp has issued its last weight load, or a shared-memory block has its weights in.
  const bool trig_in_late = trig[0] == 'l', trig_out_late = trig[2] == 'l';
  const bool smem_gemv = env_flag("MAMBA_CUDA_GEMV_SMEM", true);  // measurement: false = streaming GEMV only
  // Measurement: the streaming GEMV's pipeline per class (in_proj, out_proj, LM head), '4' depth 2 x 4
  // vectors per lane (default), '1' depth 1 x 8 (GemvPipeline).
  const std::string pipe = env_str("MAMBA_CUDA_GEMV_PIPE", "444");
  auto pipeline = [&](size_t cls) {
    return cls < pipe.size() && pipe[cls] == '1' ? GemvPipeline::Depth1Batch8 : GemvPipeline::Depth2Batch4;
  };
  unsigned long long* trace = m_trace_on ? m_trace.as<unsigned long long>() : nullptr;
  auto trace_slot = [&](int64_t k) { return trace ? trace + kTraceSlots * k : nullptr; };
  // Measurement only (mamba-cuda-profile): leave kernel classes out of the graph to see what each costs
  // in place. 1 = in_proj, 2 = ssm step, 4 = out_proj, 8 = LM head, 16 = the SSM step's state stores.
  // Results are then meaningless.
  const int64_t skip = env_int("MAMBA_CUDA_DECODE_SKIP", 0);

  CUDA_CHECK(cudaMemcpyAsync(io_dev, m_io_pinned.get(), offsetof(StepIO, out_id), cudaMemcpyHostToDevice, s));
  if (decode_fused()) {
    // No L2 prefetch here: the layers stage their weights with the bulk-copy unit, and prefetching the next
    // layer's in_proj only competed with that (run 10: 0.2285 against 0.2217 ms per token); spreading the
    // LM head's first 32-48 MB over the last 4-12 layers changed nothing.
    enqueue_fused_layers(s, pdl, &io_dev->token, false, nullptr, 0, m_trace_on ? m_trace.as<unsigned long long>() : nullptr,
                         m_trace_on ? m_smid.as<unsigned>() : nullptr);
  } else {
    prof_mark(prof, "decode: embedding", s);
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
      prof_mark(prof, "decode: in_proj gemv (+rmsnorm)", s);
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
      gi.trace = trace_slot(3 * l);
      gi.trigger_at_start = trig_in;
      gi.trigger_after_loads = trig_in_late;
      gi.force_streaming = !smem_gemv;
      gi.pipeline = pipeline(0);
      std::tie(gi.prefetch_next, gi.prefetch_next_bytes) = next(last, 0, nw.in_proj.get(), Din * D * int64_t(ws));
      if (!(skip & 1)) launch_gemv(gi, s, pdl);

      prof_mark(prof, "decode: ssm step (conv+dt+scan+gate)", s);
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
      sp.trace = trace_slot(3 * l + 1);
      sp.trigger_at_start = trig_ssm;
      std::tie(sp.prefetch_next, sp.prefetch_next_bytes) = next(last, 1, sp.state + H * P * N, int64_t(sizeof(float)) * H * P * N);
      sp.skip_state_store = skip & 16;
      if (!(skip & 2)) launch_ssm_step(sp, s, pdl);

      prof_mark(prof, "decode: out_proj gemv (+group norm, residual)", s);
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
      go.trace = trace_slot(3 * l + 2);
      go.trigger_at_start = trig_out;
      go.trigger_after_loads = trig_out_late;
      go.force_streaming = !smem_gemv;
      go.pipeline = pipeline(1);
      std::tie(go.prefetch_next, go.prefetch_next_bytes) = next(last, 2, nw.out_proj.get(), D * E * int64_t(ws));
      if (!(skip & 4)) launch_gemv(go, s, pdl);
    }
  }

  prof_mark(prof, "decode: lm head gemv (+final norm)", s);
  GemvParams gl = lm_head_params();
  gl.trace = trace_slot(3 * c.n_layer);
  gl.force_streaming = !smem_gemv;
  gl.pipeline = pipeline(2);
  if (!(skip & 8)) launch_gemv(gl, s, pdl);

  if (mode == StepMode::Logits) {
    prof_mark(prof, "decode: logits to host", s);
    CUDA_CHECK(cudaMemcpyAsync(m_logits_pinned.get(), m_logits_dec.get(), sizeof(float) * size_t(V), cudaMemcpyDeviceToHost, s));
  } else {
    prof_mark(prof, "decode: sample", s);
    SampleParams sp;
    sp.logits = m_logits_dec.as<float>();
    sp.cfg = &io_dev->sample;
    sp.out = &io_dev->out_id;
    sp.ws = m_sample_ws.as<SampleWorkspace>();
    launch_sample(sp, s, pdl);
    CUDA_CHECK(cudaMemcpyAsync(&m_io_pinned.as<StepIO>()->out_id, &io_dev->out_id, sizeof(int32_t), cudaMemcpyDeviceToHost, s));
  }
  if (prof) prof->finish(s);
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
  gl.trigger_at_start = false;
  return gl;
}

// m_chain_len decode steps in one graph, the token of each step sampled by the one before on the device:
// the step inputs come in by one copy at the start, the ids go out by one at the end (ChainIO).
void CudaBackend::enqueue_chain(cudaStream_t s, bool pdl, bool greedy) {
  ChainIO* dev = m_chain_dev.as<ChainIO>();
  CUDA_CHECK(cudaMemcpyAsync(dev, m_chain_pinned.get(), offsetof(ChainIO, ids), cudaMemcpyHostToDevice, s));
  // When a step's last kernel (the sampler, or the greedy LM head) lets the next step's first layer launch:
  // only once it is done by default. Launched earlier, that layer's clusters find the SMs held by the LM
  // head or the sampler and pack two blocks onto an SM, and every layer after it keeps that placement:
  // 8.5 against 7.8 us per layer (run 11). Measurement: MAMBA_CUDA_CHAIN_TRIGGER (SampleParams::trigger,
  // GemvParams::chain_trigger).
  const int trig = int(std::clamp<int64_t>(env_int("MAMBA_CUDA_CHAIN_TRIGGER", greedy ? 0 : 2), 0, 2));
  const int64_t per_step = m_c.n_layer + 3;  // trace slots: layers, finish, LM head, sampler
  unsigned long long* trace = m_chain_trace_on ? m_chain_trace.as<unsigned long long>() : nullptr;
  auto slot = [&](int k, int64_t i) { return trace ? trace + kTraceSlots * (k * per_step + i) : nullptr; };
  for (int k = 0; k < m_chain_len; ++k) {
    enqueue_fused_layers(s, pdl, dev->slot[k], k > 0, &dev->live, k, slot(k, 0),
                         trace ? m_smid.as<unsigned>() + k * m_c.n_layer * kSmidStride * kDecodeBlockRec : nullptr);
    SampleParams sp;
    sp.logits = m_logits_dec.as<float>();
    sp.cfg = &dev->sample;
    sp.out = &dev->ids[k];
    sp.ws = m_sample_ws.as<SampleWorkspace>();
    sp.chain.live = &dev->live;
    sp.chain.step = k;
    sp.chain.u = &dev->u[k];
    sp.chain.next = k + 1 < m_chain_len ? dev->slot[k + 1] : nullptr;
    sp.chain.stop = dev->stop;
    sp.chain.n_stop = &dev->n_stop;
    GemvParams gl = lm_head_params();
    gl.trace = slot(k, m_c.n_layer + 1);
    if (greedy) {
      gl.argmax = sp;
      gl.argmax_ws = m_argmax_ws.as<ArgmaxWorkspace>();
      gl.chain_trigger = trig;
      launch_gemv(gl, s, pdl);
      continue;
    }
    launch_gemv(gl, s, pdl);
    sp.trigger = trig;
    sp.trace = slot(k, m_c.n_layer + 2);
    launch_sample(sp, s, pdl);
  }
  CUDA_CHECK(cudaMemcpyAsync(m_chain_pinned.get(), dev, sizeof(ChainIO), cudaMemcpyDeviceToHost, s));
}

GraphExec& CudaBackend::graph(StepMode mode) { return m_graphs[static_cast<size_t>(mode)]; }

void CudaBackend::drop_graphs() {
  for (GraphExec& g : m_graphs) g.reset();
}

void CudaBackend::capture(StepMode mode) {
  GraphExec& exec = graph(mode);
  cudaStream_t s = m_stream->get();
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool pdl = m_pdl && attempt == 0;
    CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    cudaGraph_t graph = nullptr;
    try {
      if (mode == StepMode::Chain || mode == StepMode::ChainGreedy) enqueue_chain(s, pdl, mode == StepMode::ChainGreedy);
      else enqueue_step(s, mode, pdl);
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

void CudaBackend::run_step(int32_t token, StepMode mode, const SampleConfig* sc) {
  const std::span<const int32_t> one(&token, 1);
  check_ids(one);
  activate();
  cudaStream_t s = m_stream->get();
  m_stream->sync();  // the pinned io block is about to be rewritten
  StepIO* io = m_io_pinned.as<StepIO>();
  io->token = token;
  io->pos = static_cast<int32_t>(m_pos);
  if (sc) io->sample = *sc;
  if (m_use_graph && !m_prof) {
    GraphExec& exec = graph(mode);
    if (!exec.ready()) capture(mode);
    exec.launch(s);
  } else {
    enqueue_step(s, mode, m_pdl && !m_prof);
  }
  m_stream->sync();
  m_pos = (m_pos + 1) % m_c.d_conv;
  m_n_tokens += 1;
  m_last_logits_dev = m_logits_dec.as<float>();
}

void CudaBackend::step(int32_t token, float* logits, ProbeSink* probes) {
  // probes: the hook point for per-layer probes (a later issue) — they will run the ungraphed path.
  (void)probes;
  run_step(token, StepMode::Logits, nullptr);
  if (logits) std::memcpy(logits, m_logits_pinned.get(), sizeof(float) * size_t(m_c.vocab_size));
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

int CudaBackend::decode_chain() const {
  return m_chain_len > 1 && m_use_graph && !m_prof && !m_trace_on && decode_fused() ? m_chain_len : 0;
}

// Room in m_smid for the block records of `steps` decode steps (decode_smid), kept if already larger.
void CudaBackend::reserve_block_records(int64_t steps) {
  const size_t bytes = sizeof(unsigned) * size_t(steps * m_c.n_layer * kSmidStride * kDecodeBlockRec);
  if (m_smid.bytes() < bytes) m_smid = DeviceBuffer(bytes, "decode block records");
}

std::vector<uint32_t> CudaBackend::decode_smid() const {
  std::vector<uint32_t> out(m_smid.bytes() / sizeof(uint32_t));
  if (!out.empty()) CUDA_CHECK(cudaMemcpy(out.data(), m_smid.get(), m_smid.bytes(), cudaMemcpyDeviceToHost));
  return out;
}

void CudaBackend::set_decode_chain(int steps) {
  m_chain_len = std::clamp(steps, 0, kMaxChain);
  drop_graphs();
}

void CudaBackend::set_chain_trace(bool on) {
  if (on && m_chain_trace.empty())
    m_chain_trace = DeviceBuffer(sizeof(unsigned long long) * kTraceSlots * size_t(kMaxChain * (m_c.n_layer + 3)), "decode chain trace");
  if (on) reserve_block_records(kMaxChain);
  m_chain_trace_on = on;
  drop_graphs();
}

std::vector<int32_t> CudaBackend::step_sample_chain(int32_t token, const SamplerParams& sp, std::span<const double> uniforms,
                                                    std::span<const int32_t> stop) {
  const int n = decode_chain();
  if (n == 0 || sp.repeat_penalty != 1.f) return {};
  if (uniforms.empty() || uniforms.size() > size_t(n))
    throw Error("decode chain: " + std::to_string(uniforms.size()) + " steps asked, 1.." + std::to_string(n) + " possible");
  if (stop.size() > size_t(kMaxStop)) throw Error("decode chain: at most " + std::to_string(kMaxStop) + " stop ids");
  const SampleConfig sc = sample_config(sp, 0.0);
  check_ids(std::span<const int32_t>(&token, 1));
  activate();
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
  const StepMode mode = sp.temperature == 0.f ? StepMode::ChainGreedy : StepMode::Chain;
  if (!graph(mode).ready()) capture(mode);
  if (m_chain_trace_on) {
    const std::vector<uint64_t> init = blank_trace(m_chain_trace.bytes() / sizeof(uint64_t));
    CUDA_CHECK(cudaMemcpy(m_chain_trace.get(), init.data(), m_chain_trace.bytes(), cudaMemcpyHostToDevice));
  }
  graph(mode).launch(s);
  m_stream->sync();
  if (m_chain_trace_on) {
    m_chain_trace_host.resize(m_chain_trace.bytes() / sizeof(uint64_t));
    CUDA_CHECK(cudaMemcpy(m_chain_trace_host.data(), m_chain_trace.get(), m_chain_trace.bytes(), cudaMemcpyDeviceToHost));
  }
  const int ran = io->live;
  if (ran < 1 || ran > want)
    throw Error("decode chain: the device reports " + std::to_string(ran) + " steps run of " + std::to_string(want));
  m_pos = (m_pos + ran) % m_c.d_conv;
  m_n_tokens += ran;
  m_last_logits_dev = m_logits_dec.as<float>();
  return std::vector<int32_t>(io->ids, io->ids + ran);
}

std::optional<int32_t> CudaBackend::step_sample(int32_t token, const SamplerParams& sp, double uniform) {
  if (sp.repeat_penalty != 1.f) return std::nullopt;  // needs the host-side history
  const SampleConfig sc = sample_config(sp, uniform);
  run_step(token, StepMode::Sample, &sc);
  return m_io_pinned.as<StepIO>()->out_id;
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

std::string CudaBackend::decode_path(const SamplerParams& sp) const {
  if (sp.repeat_penalty != 1.f) return "host sampling (repetition penalty)";
  const int chain = decode_chain();
  return chain > 1 ? "device sampling, chains of " + std::to_string(chain) + " steps" : "device sampling";
}

int64_t CudaBackend::decode(const DecodeRequest& r, Sampler& sampler, std::span<const int32_t> history, const DecodeCallback& on_token) {
  check_decode_request(r);
  const SamplerParams& sp = sampler.params();
  if (r.prob || r.top_n > 0 || r.probes || sp.repeat_penalty != 1.f) return Backend::decode(r, sampler, history, on_token);
  // One draw per id when sampling, none when greedy: the host sampler's use of the generator.
  const bool draws = sp.temperature > 0.f;
  auto draw = [&] { return draws ? sampler.next_uniform() : 0.5; };
  auto is_stop = [&](int32_t id) { return std::find(r.stop.begin(), r.stop.end(), id) != r.stop.end(); };
  int64_t n = 0;
  int32_t token = r.token;
  // Reports one id; false when the run ends with it.
  auto report = [&](int32_t id) {
    ++n;
    DecodedToken d;
    d.id = id;
    const bool more = on_token ? on_token(d) : true;
    return more && !is_stop(id);
  };
  if (token < 0 && r.steps > 0) {
    token = sample_last(sp, draw()).value();
    if (!report(token)) return n;
  }
  const int chain = decode_chain();
  std::vector<double> u;
  while (n < r.steps) {
    if (chain > 1 && r.steps - n >= chain) {
      // A chain that stops early (a stop id) used fewer draws than it was given: the generator is set back
      // and advanced by the draws used, so it stands where the host sampler's would.
      const std::array<uint64_t, 4> before = sampler.rng();
      u.resize(size_t(chain));
      for (double& v : u) v = draw();
      const std::vector<int32_t> ids = step_sample_chain(token, sp, u, r.stop);
      if (draws && ids.size() < u.size()) {
        sampler.set_rng(before);
        for (size_t k = 0; k < ids.size(); ++k) draw();
      }
      bool more = true;
      for (int32_t id : ids) more = report(id) && more;
      if (!more) return n;
      token = ids.back();
      continue;
    }
    token = step_sample(token, sp, draw()).value();
    if (!report(token)) return n;
  }
  return n;
}

std::optional<int32_t> CudaBackend::sample_last(const SamplerParams& sp, double uniform) {
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
  launch_sample(p, s);
  CUDA_CHECK(cudaMemcpyAsync(&io->out_id, &io_dev->out_id, sizeof(int32_t), cudaMemcpyDeviceToHost, s));
  m_stream->sync();
  return io->out_id;
}

void CudaBackend::set_use_graph(bool on) { m_use_graph = on; }

void CudaBackend::set_decode_fused(bool on) {
  m_decode_fused = on;
  drop_graphs();
}

bool CudaBackend::decode_fused() const {
  return m_decode_fused && m_layer_plan.cs > 0 && env_flag("MAMBA_CUDA_LAYER_FUSED", true) && env_int("MAMBA_CUDA_DECODE_SKIP", 0) == 0;
}

// One kernel per layer (decode_layer.cuh), then the finish kernel writes the residual the LM head reads
// into m_r_dec. Layer l reads residual buffer and partial products (l + 1) % 2 and writes l % 2.
void CudaBackend::enqueue_fused_layers(cudaStream_t s, bool pdl, const int32_t* step_io, bool after_kernel, const int32_t* live, int step,
                                       unsigned long long* trace, unsigned* smid) {
  const Config& c = m_c;
  const int64_t D = c.d_model, nc = m_layer_plan.nc;
  const float eps = static_cast<float>(c.norm_eps);
  float* r = m_lay_r.as<float>();
  float* parts = m_lay_parts.as<float>();
  float* ss = m_lay_ss.as<float>();
  // Trace slots: a single step uses the three-kernel layout (layer l at 3l, the finish at 3(L-1)+1), a
  // chain's step one slot per kernel (layer l at l, the finish at L).
  auto slot = [&](int64_t k3, int64_t k1) { return trace ? trace + kTraceSlots * (live ? k1 : k3) : nullptr; };
  const int64_t hc = int64_t(kDecodeLayerRows) * m_layer_plan.cs / c.head_dim;
  const int trigger = int(std::clamp<int64_t>(env_int("MAMBA_CUDA_LAYER_TRIGGER", 0), 0, 5));  // DecodeLayerParams::trigger
  const int skip = int(env_int("MAMBA_CUDA_LAYER_SKIP", 0));                                   // measurement only: DecodeLayerParams::skip
  // Measurement only: a chain's layers without the halt check (a stop id then leaves the state wrong).
  const bool nohalt = env_flag("MAMBA_CUDA_CHAIN_NOHALT", false);
  DecodeResidualIn in;
  in.embedding = m_embedding.get();
  in.nc = int(nc);
  in.clusters_per_group = int(c.n_heads / c.n_groups / hc);
  in.group_size = c.d_inner / c.n_groups;
  in.eps = eps;
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const DevLayer& lw = m_layers[size_t(l)];
    const int64_t cur = l % 2, prev = (l + 1) % 2;
    prof_mark(m_prof, "decode: layer (one kernel)", s);
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
    p.trace = slot(3 * l, l);
    p.smid = smid ? smid + l * kSmidStride * kDecodeBlockRec : nullptr;
    p.trigger = trigger;
    p.skip = skip;
    p.live = nohalt ? nullptr : live;
    p.step = step;
    p.live_early = l > 0;
    launch_decode_layer(p, m_layer_plan, s, pdl && (l > 0 || after_kernel));  // layer 0 of a single step follows a memcpy
    in.embedding = nullptr;
  }
  const int64_t last = (c.n_layer - 1) % 2;
  in.r = r + last * D;
  in.parts = parts + last * nc * D;
  in.ss = ss + last * nc;
  in.bias = m_layers.back().out_bias.empty() ? nullptr : m_layers.back().out_bias.as<float>();
  prof_mark(m_prof, "decode: finish residual", s);
  launch_decode_finish(in, D, m_r_dec.as<float>(), slot(3 * (c.n_layer - 1) + 1, c.n_layer), s, pdl, live, step);
}

void CudaBackend::set_pdl(bool on) {
  int major = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, m_device));
  m_pdl = on && major >= 9;
  drop_graphs();
}

void CudaBackend::set_decode_trace(bool on) {
  if (on && m_trace.empty()) m_trace = DeviceBuffer(sizeof(unsigned long long) * kTraceSlots * size_t(3 * m_c.n_layer + 1), "decode trace");
  if (on) reserve_block_records(1);
  m_trace_on = on;
  drop_graphs();
}

std::vector<uint64_t> CudaBackend::decode_trace_step() {
  if (!m_trace_on) throw Error("decode_trace_step: tracing is off (set_decode_trace)");
  activate();
  if (!graph(StepMode::Logits).ready()) capture(StepMode::Logits);
  cudaStream_t s = m_stream->get();
  m_stream->sync();
  const size_t n = kTraceSlots * size_t(3 * m_c.n_layer + 1);
  std::vector<uint64_t> t = blank_trace(n);
  CUDA_CHECK(cudaMemcpyAsync(m_trace.get(), t.data(), sizeof(uint64_t) * n, cudaMemcpyHostToDevice, s));
  StepIO* io = m_io_pinned.as<StepIO>();
  io->token = 1 % static_cast<int32_t>(m_c.vocab_size);
  io->pos = static_cast<int32_t>(m_pos);
  graph(StepMode::Logits).launch(s);
  CUDA_CHECK(cudaMemcpyAsync(t.data(), m_trace.get(), sizeof(uint64_t) * n, cudaMemcpyDeviceToHost, s));
  m_stream->sync();
  m_pos = (m_pos + 1) % m_c.d_conv;
  m_n_tokens += 1;
  return t;
}

double CudaBackend::decode_graph_ms(int n) {
  activate();
  if (!graph(StepMode::Logits).ready()) capture(StepMode::Logits);
  cudaStream_t s = m_stream->get();
  m_stream->sync();
  StepIO* io = m_io_pinned.as<StepIO>();
  io->token = 1 % static_cast<int32_t>(m_c.vocab_size);
  io->pos = static_cast<int32_t>(m_pos);
  graph(StepMode::Logits).launch(s);  // warm-up
  Event a, b;
  a.record(s);
  for (int i = 0; i < n; ++i) graph(StepMode::Logits).launch(s);
  b.record(s);
  const double ms = b.ms_since(a) / std::max(1, n);
  // Every replay used the same ring position, so the state is only good for more timing: reset it after.
  m_pos = (m_pos + 1) % m_c.d_conv;
  m_n_tokens += n + 1;
  return ms;
}

// ---- factory functions ---------------------------------------------------------------------------

bool cuda_device_available(std::string* why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    if (why) *why = std::string("no usable CUDA driver or GPU (") + cudaGetErrorString(e) + ")";
    return false;
  }
  if (n == 0) {
    if (why) *why = "no CUDA GPU found";
    return false;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
    (void)cudaGetLastError();
    if (why) *why = "cannot query CUDA device 0";
    return false;
  }
  if (prop.major < 8) {
    if (why)
      *why = std::string(prop.name) + " has compute capability " + std::to_string(prop.major) + "." + std::to_string(prop.minor) +
             "; the CUDA backend needs 8.0 (Ampere) or newer";
    return false;
  }
  std::string img_why;
  if (!cuda_kernel_image_ok(&img_why)) {
    if (why) *why = img_why;
    return false;
  }
  return true;
}

std::unique_ptr<Backend> make_cuda_backend(std::shared_ptr<const Model> model, const BackendOptions& opt) {
  BackendOptions o = opt;
  if (o.dtype.empty()) o.dtype = "bf16";
  return std::make_unique<CudaBackend>(std::move(model), o);
}

uint64_t cuda_peak_memory_bytes() { return device_bytes_peak(); }

}  // namespace mamba
