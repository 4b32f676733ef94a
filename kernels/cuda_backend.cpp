// The CUDA backend: weights on the GPU in bf16/f16/f32, the live state on the GPU in fp32. This file holds
// construction, the weights and the state; prefill and decode are in cuda_prefill.cpp, cuda_decode.cpp and
// cuda_decode_chain.cpp (docs/CUDA.md describes the design).
#include "kernels/cuda_backend.h"

#include <algorithm>
#include <string>

#include "engine/error.h"
#include "kernels/conv1d.cuh"
#include "kernels/cuda_backend_impl.h"
#include "kernels/cuda_check.h"
#include "kernels/elementwise.cuh"
#if MAMBA_CUDA_LAB
#include "kernels/lab/cuda_lab.h"
#endif

namespace mamba {

CudaBackend::CudaBackend(std::shared_ptr<const Model> model, const BackendOptions& opt, const CudaOptions& cuda)
    : m_model(std::move(model)), m_c(m_model->config), m_opt(cuda) {
  m_opt.validate();
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
  m_pdl = prop.major >= 9 && m_opt.pdl;
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
  m_layer_plan = plan_decode_layer(shape, m_opt.layer_cluster);
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
  reset_state();
}

CudaBackend::~CudaBackend() {
  if (m_stream) cudaStreamSynchronize(m_stream->get());
}

void CudaBackend::activate() const { CUDA_CHECK(cudaSetDevice(m_device)); }

std::string CudaBackend::name() const { return "cuda:" + std::to_string(m_device) + " " + m_device_name + " (" + dtype_name(m_wdt) + ")"; }

void CudaBackend::set_use_graph(bool on) { m_opt.graphs = on; }

void CudaBackend::set_pdl(bool on) {
  int major = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, m_device));
  m_opt.pdl = on;
  m_pdl = on && major >= 9;
  drop_graphs();
}

void CudaBackend::set_decode_chain(int steps) {
  m_opt.chain = std::clamp(steps, 0, CudaOptions::kMaxChain);
  drop_graphs();
}

void CudaBackend::set_decode_fused(bool on) {
  m_opt.layer_fused = on;
  drop_graphs();
}

void CudaBackend::set_segment(int64_t tokens) {
  CudaOptions o = m_opt;
  o.segment = tokens;
  o.validate();
  m_opt = o;
}

// ---- weights -----------------------------------------------------------------------------------

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

void CudaBackend::check_ids(std::span<const int32_t> ids) const {
  for (int32_t id : ids)
    if (id < 0 || id >= m_c.vocab_size)
      throw Error("token id " + std::to_string(id) + " is outside the vocabulary (0.." + std::to_string(m_c.vocab_size - 1) + ")");
}

// ---- entry points (cuda_backend.h) ----------------------------------------------------------------

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
