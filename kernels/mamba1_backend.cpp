#include "kernels/mamba1_backend.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "engine/error.h"
#include "kernels/cuda_check.h"
#include "kernels/cuda_memory.h"
#include "kernels/dtype.h"
#include "kernels/embedding.cuh"
#include "kernels/gemm.h"
#include "kernels/mamba1_conv.cuh"
#include "kernels/mamba1_scan.cuh"
#include "kernels/rmsnorm.cuh"

namespace mamba {

namespace {

DeviceBuffer upload(const std::vector<float>& v, DType dt, const char* what) {
  DeviceBuffer b(std::max<size_t>(v.size(), 1) * dtype_size(dt), what);
  if (v.empty()) return b;
  if (dt == DType::F32) {
    CUDA_CHECK(cudaMemcpy(b.get(), v.data(), v.size() * 4, cudaMemcpyHostToDevice));
  } else if (dt == DType::BF16) {
    std::vector<__nv_bfloat16> h(v.size());
    for (size_t i = 0; i < v.size(); ++i) h[i] = __float2bfloat16_rn(v[i]);
    CUDA_CHECK(cudaMemcpy(b.get(), h.data(), h.size() * 2, cudaMemcpyHostToDevice));
  } else {
    std::vector<__half> h(v.size());
    for (size_t i = 0; i < v.size(); ++i) h[i] = __float2half_rn(v[i]);
    CUDA_CHECK(cudaMemcpy(b.get(), h.data(), h.size() * 2, cudaMemcpyHostToDevice));
  }
  return b;
}

struct DevLayer {
  DeviceBuffer norm, in_proj, in_proj_bias, conv_w, conv_b, x_proj, dt_proj, dt_bias, A, D, out_proj, out_proj_bias;
  DeviceBuffer conv_state, ssm_state;  // (E, K-1), (E, N) f32
};

class CudaMamba1Backend final : public Backend {
 public:
  CudaMamba1Backend(std::shared_ptr<const Model> model, const BackendOptions& opt) : m_model(std::move(model)) {
    const Config& c = m_model->config;
    if (!c.mamba1()) throw Error("the CUDA Mamba-1 backend was given a " + std::string(arch_name(c.arch)) + " model");
    m_wdt = parse_device_dtype(opt.dtype);
    CUDA_CHECK(cudaSetDevice(opt.device_index));
    cudaDeviceProp prop{};
    CUDA_CHECK(cudaGetDeviceProperties(&prop, opt.device_index));
    m_device_name = prop.name;
    m_device_index = opt.device_index;
    const Weights& w = m_model->weights;
    m_embedding = upload(w.embedding, m_wdt, "embedding");
    if (!w.lm_head.empty()) m_lm_head = upload(w.lm_head, m_wdt, "lm_head");
    m_norm_f = upload(w.norm_f, DType::F32, "norm_f");
    for (const Mamba1LayerWeights& l : w.layers1) {
      DevLayer d;
      d.norm = upload(l.norm, DType::F32, "norm");
      d.in_proj = upload(l.in_proj, m_wdt, "in_proj");
      if (!l.in_proj_bias.empty()) d.in_proj_bias = upload(l.in_proj_bias, DType::F32, "in_proj bias");
      d.conv_w = upload(l.conv_w, DType::F32, "conv1d");
      if (!l.conv_b.empty()) d.conv_b = upload(l.conv_b, DType::F32, "conv1d bias");
      d.x_proj = upload(l.x_proj, DType::F32, "x_proj");
      d.dt_proj = upload(l.dt_proj, DType::F32, "dt_proj");
      d.dt_bias = upload(l.dt_proj_bias, DType::F32, "dt_proj bias");
      d.A = upload(l.A, DType::F32, "A");
      d.D = upload(l.D, DType::F32, "D");
      d.out_proj = upload(l.out_proj, m_wdt, "out_proj");
      if (!l.out_proj_bias.empty()) d.out_proj_bias = upload(l.out_proj_bias, DType::F32, "out_proj bias");
      d.conv_state = DeviceBuffer(std::max<int64_t>(1, c.d_inner * (c.d_conv - 1)) * 4, "conv state");
      d.ssm_state = DeviceBuffer(c.d_inner * c.d_state * 4, "ssm state");
      m_layers.push_back(std::move(d));
    }
    CUBLAS_CHECK(cublasSetStream(m_cublas.get(), m_stream.get()));
    reset_state();
  }

  std::string name() const override {
    return "cuda:" + std::to_string(m_device_index) + " " + m_device_name + " (" + dtype_name(m_wdt) + ", Mamba-1)";
  }
  const Model& model() const override { return *m_model; }
  int64_t n_tokens() const override { return m_n_tokens; }
  uint64_t weight_bytes() const override {
    const Config& c = m_model->config;
    const uint64_t big =
        uint64_t(c.n_layer) * uint64_t(2 * c.d_inner * c.d_model + c.d_model * c.d_inner) + uint64_t(c.vocab_size * c.d_model);
    const uint64_t small = uint64_t(c.n_params() - c.vocab_size * c.d_model * (c.tie_embeddings ? 1 : 2)) -
                           uint64_t(c.n_layer) * uint64_t(3 * c.d_inner * c.d_model);
    return big * dtype_size(m_wdt) + small * 4;
  }

  void reset_state() override {
    for (DevLayer& d : m_layers) {
      CUDA_CHECK(cudaMemsetAsync(d.conv_state.get(), 0, d.conv_state.bytes(), m_stream.get()));
      CUDA_CHECK(cudaMemsetAsync(d.ssm_state.get(), 0, d.ssm_state.bytes(), m_stream.get()));
    }
    m_stream.sync();
    m_n_tokens = 0;
    m_have_last = false;
  }

  void set_state(const State& s) override {
    if (!s.matches(m_model->config)) throw Error("state does not match the model's shapes");
    for (size_t l = 0; l < m_layers.size(); ++l) {
      if (!s.layers[l].conv.empty())
        CUDA_CHECK(cudaMemcpy(m_layers[l].conv_state.get(), s.layers[l].conv.data(), s.layers[l].conv.size() * 4, cudaMemcpyHostToDevice));
      CUDA_CHECK(cudaMemcpy(m_layers[l].ssm_state.get(), s.layers[l].ssm.data(), s.layers[l].ssm.size() * 4, cudaMemcpyHostToDevice));
    }
    m_n_tokens = s.n_tokens;
    m_have_last = false;
  }

  State get_state() const override {
    m_stream.sync();
    State s(m_model->config);
    for (size_t l = 0; l < m_layers.size(); ++l) {
      if (!s.layers[l].conv.empty())
        CUDA_CHECK(cudaMemcpy(s.layers[l].conv.data(), m_layers[l].conv_state.get(), s.layers[l].conv.size() * 4, cudaMemcpyDeviceToHost));
      CUDA_CHECK(cudaMemcpy(s.layers[l].ssm.data(), m_layers[l].ssm_state.get(), s.layers[l].ssm.size() * 4, cudaMemcpyDeviceToHost));
    }
    s.n_tokens = m_n_tokens;
    return s;
  }

  void forward(std::span<const int32_t> tokens, const ForwardOptions& opt, float* logits) override {
    check_forward_options(opt);
    if (opt.capture) throw Error("capturing a layer for the SSD matrix runs on the CPU backend");
    run(tokens, opt.all_logits, logits, opt.probes);
  }
  void step(int32_t token, float* logits, ProbeSink* probes) override { run(std::span<const int32_t>(&token, 1), false, logits, probes); }
  void last_logits(std::span<float> out) const override {
    if (!m_have_last) throw Error("no logits yet: nothing has been run through the model");
    if (out.size() != m_last.size()) throw Error("last_logits: wrong output size");
    std::copy(m_last.begin(), m_last.end(), out.begin());
  }

 private:
  void reserve(int64_t T, bool probes) {
    const Config& c = m_model->config;
    const int64_t D = c.d_model, E = c.d_inner;
    m_ids.reserve(T * 4, "token ids");
    m_resid.reserve(T * D * 4, "residual");
    m_h.reserve(T * D * dtype_size(m_wdt), "normed input");
    m_xz.reserve(T * 2 * E * 4, "x|z");
    m_x.reserve(T * E * 4, "conv output");
    m_dbc.reserve(T * c.d_x_proj * 4, "dt|B|C");
    m_dt.reserve(T * E * 4, "dt");
    m_y.reserve(T * E * dtype_size(m_wdt), "gated output");
    m_logits.reserve(T * c.vocab_size * 4, "logits");
    if (probes) {
      m_pdt.reserve(T * E * 4, "probe dt");
      m_pyp.reserve(T * E * 4, "probe y");
      m_psq.reserve(T * E * 4, "probe state");
    }
  }

  void add_bias(float* out, const DeviceBuffer& bias, int64_t T, int64_t N) {
    if (bias.empty()) return;
    // out (T, N) += bias: a rank-1 update through cuBLAS (ones (T) x bias (N)), no extra kernel.
    m_ones.reserve(T * 4, "ones");
    if (m_ones_n < T) {
      std::vector<float> ones(static_cast<size_t>(T), 1.f);
      CUDA_CHECK(cudaMemcpyAsync(m_ones.get(), ones.data(), T * 4, cudaMemcpyHostToDevice, m_stream.get()));
      m_stream.sync();
      m_ones_n = T;
    }
    GemmOperand a{bias.get(), DType::F32, N, false}, b{m_ones.get(), DType::F32, 1, false};
    gemm(m_cublas.get(), N, T, 1, a, b, out, DType::F32, N, 1.f, 1.f);
  }

  void run(std::span<const int32_t> tokens, bool all_logits, float* logits, ProbeSink* probes) {
    const Config& c = m_model->config;
    const int64_t T = static_cast<int64_t>(tokens.size()), D = c.d_model, E = c.d_inner, N = c.d_state, R = c.dt_rank, V = c.vocab_size;
    if (T == 0) throw Error("forward: no tokens");
    for (int32_t id : tokens)
      if (id < 0 || id >= V)
        throw Error("token id " + std::to_string(id) + " is outside the vocabulary (0.." + std::to_string(V - 1) + ")");
    reserve(T, probes != nullptr);
    cudaStream_t s = m_stream.get();
    cublasHandle_t h = m_cublas.get();
    CUDA_CHECK(cudaMemcpyAsync(m_ids.get(), tokens.data(), T * 4, cudaMemcpyHostToDevice, s));
    EmbeddingParams ep;
    ep.table = m_embedding.get();
    ep.dtype = m_wdt;
    ep.ids = m_ids.as<int32_t>();
    ep.T = T;
    ep.D = D;
    ep.out = m_resid.as<float>();
    launch_embedding(ep, s);

    const int64_t S = probe_groups(c);
    std::vector<float> h_dt, h_yp, h_sq, h_r, pr_sn, pr_yn;
    for (int64_t l = 0; l < c.n_layer; ++l) {
      DevLayer& d = m_layers[static_cast<size_t>(l)];
      if (probes) {
        h_r.resize(static_cast<size_t>(T * D));
        CUDA_CHECK(cudaMemcpyAsync(h_r.data(), m_resid.get(), T * D * 4, cudaMemcpyDeviceToHost, s));
      }
      RmsNormParams rp;
      rp.x = m_resid.as<float>();
      rp.ldx = D;
      rp.w = d.norm.as<float>();
      rp.out = m_h.get();
      rp.out_dtype = m_wdt;
      rp.ldo = D;
      rp.T = T;
      rp.D = D;
      rp.eps = static_cast<float>(c.norm_eps);
      launch_rmsnorm(rp, s);
      // xz (T, 2E) = h (T, D) @ in_proj^T: column-major C (2E x T) = in_proj^T... as gemm(m=2E, n=T, k=D).
      gemm(h, 2 * E, T, D, {d.in_proj.get(), m_wdt, D, true}, {m_h.get(), m_wdt, D, false}, m_xz.get(), DType::F32, 2 * E);
      add_bias(m_xz.as<float>(), d.in_proj_bias, T, 2 * E);
      Mamba1ConvParams cp;
      cp.in = m_xz.as<float>();
      cp.ld_in = 2 * E;
      cp.w = d.conv_w.as<float>();
      cp.b = d.conv_b.empty() ? nullptr : d.conv_b.as<float>();
      cp.state = d.conv_state.as<float>();
      cp.out = m_x.as<float>();
      cp.T = T;
      cp.E = E;
      cp.K = c.d_conv;
      launch_mamba1_conv(cp, s);
      gemm(h, c.d_x_proj, T, E, {d.x_proj.get(), DType::F32, E, true}, {m_x.get(), DType::F32, E, false}, m_dbc.get(), DType::F32,
           c.d_x_proj);
      gemm(h, E, T, R, {d.dt_proj.get(), DType::F32, R, true}, {m_dbc.get(), DType::F32, c.d_x_proj, false}, m_dt.get(), DType::F32, E);
      Mamba1ScanParams sp;
      sp.T = T;
      sp.E = E;
      sp.N = N;
      sp.x = m_x.as<float>();
      sp.dt_raw = m_dt.as<float>();
      sp.dt_bias = d.dt_bias.as<float>();
      sp.B = m_dbc.as<float>() + R;
      sp.C = m_dbc.as<float>() + R + N;
      sp.ldbc = c.d_x_proj;
      sp.A = d.A.as<float>();
      sp.D = d.D.as<float>();
      sp.z = m_xz.as<float>() + E;
      sp.ldz = 2 * E;
      sp.state = d.ssm_state.as<float>();
      sp.y = m_y.get();
      sp.y_dtype = m_wdt;
      if (probes) {
        sp.dt_out = m_pdt.as<float>();
        sp.y_pre = m_pyp.as<float>();
        sp.state_sq = m_psq.as<float>();
      }
      launch_mamba1_scan(sp, s);
      if (probes) report(l, T, E, S, h_r, h_dt, h_yp, h_sq, pr_sn, pr_yn, *probes);
      // resid += y @ out_proj^T (beta = 1)
      gemm(h, D, T, E, {d.out_proj.get(), m_wdt, E, true}, {m_y.get(), m_wdt, E, false}, m_resid.get(), DType::F32, D, 1.f, 1.f);
      add_bias(m_resid.as<float>(), d.out_proj_bias, T, D);
    }
    const bool all = all_logits && logits;
    const int64_t first = all ? 0 : T - 1, rows = T - first;
    RmsNormParams rp;
    rp.x = m_resid.as<float>() + first * D;
    rp.ldx = D;
    rp.w = m_norm_f.as<float>();
    rp.out = m_h.get();
    rp.out_dtype = m_wdt;
    rp.ldo = D;
    rp.T = rows;
    rp.D = D;
    rp.eps = static_cast<float>(c.norm_eps);
    launch_rmsnorm(rp, s);
    const void* lm = m_lm_head.empty() ? m_embedding.get() : m_lm_head.get();
    gemm(h, V, rows, D, {lm, m_wdt, D, true}, {m_h.get(), m_wdt, D, false}, m_logits.get(), DType::F32, V);
    m_last.resize(static_cast<size_t>(V));
    CUDA_CHECK(cudaMemcpyAsync(m_last.data(), m_logits.as<float>() + (rows - 1) * V, V * 4, cudaMemcpyDeviceToHost, s));
    if (all) CUDA_CHECK(cudaMemcpyAsync(logits, m_logits.get(), rows * V * 4, cudaMemcpyDeviceToHost, s));
    m_stream.sync();
    if (logits && !all) std::copy(m_last.begin(), m_last.end(), logits);
    m_have_last = true;
    m_n_tokens += T;
  }

  // The layer's probe values to the host, grouped as the CPU backend groups them.
  void report(int64_t l, int64_t T, int64_t E, int64_t S, const std::vector<float>& resid, std::vector<float>& dt, std::vector<float>& yp,
              std::vector<float>& sq, std::vector<float>& sn, std::vector<float>& yn, ProbeSink& sink) {
    const Config& c = m_model->config;
    cudaStream_t s = m_stream.get();
    dt.resize(static_cast<size_t>(T * E));
    yp.resize(dt.size());
    sq.resize(dt.size());
    CUDA_CHECK(cudaMemcpyAsync(dt.data(), m_pdt.get(), T * E * 4, cudaMemcpyDeviceToHost, s));
    CUDA_CHECK(cudaMemcpyAsync(yp.data(), m_pyp.get(), T * E * 4, cudaMemcpyDeviceToHost, s));
    CUDA_CHECK(cudaMemcpyAsync(sq.data(), m_psq.get(), T * E * 4, cudaMemcpyDeviceToHost, s));
    m_stream.sync();
    const int64_t gs = E / S, D = c.d_model;
    sn.assign(static_cast<size_t>(T * S), 0.f);
    yn.assign(static_cast<size_t>(T * S), 0.f);
    std::vector<float> rn(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) {
      double r2 = 0;
      for (int64_t i = 0; i < D; ++i) r2 += double(resid[t * D + i]) * resid[t * D + i];
      rn[t] = static_cast<float>(std::sqrt(r2));
      for (int64_t g = 0; g < S; ++g) {
        double a = 0, b = 0;
        for (int64_t e = g * gs; e < (g + 1) * gs; ++e) {
          a += sq[t * E + e];
          b += double(yp[t * E + e]) * yp[t * E + e];
        }
        sn[t * S + g] = static_cast<float>(std::sqrt(a));
        yn[t * S + g] = static_cast<float>(std::sqrt(b));
      }
    }
    LayerProbe p{l, m_n_tokens, T, E, dt.data(), sn.data(), yn.data(), rn.data()};
    p.S = S;
    sink.layer(p);
  }

  std::shared_ptr<const Model> m_model;
  DType m_wdt = DType::BF16;
  std::string m_device_name;
  int m_device_index = 0;
  Stream m_stream;
  CublasHandle m_cublas;
  DeviceBuffer m_embedding, m_lm_head, m_norm_f;
  std::vector<DevLayer> m_layers;
  DeviceBuffer m_ids, m_resid, m_h, m_xz, m_x, m_dbc, m_dt, m_y, m_logits, m_ones, m_pdt, m_pyp, m_psq;
  int64_t m_ones_n = 0;
  std::vector<float> m_last;
  bool m_have_last = false;
  int64_t m_n_tokens = 0;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_mamba1_backend(std::shared_ptr<const Model> model, const BackendOptions& opt) {
  return std::make_unique<CudaMamba1Backend>(std::move(model), opt);
}

}  // namespace mamba
