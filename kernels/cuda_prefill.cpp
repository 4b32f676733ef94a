// Prefill: the prompt through every layer at once. Per layer: RMSNorm, the in_proj GEMM (cuBLAS), dt, the causal
// conv, the SSD (chunked: ssd_chunked.h; recurrent: ssd_recurrent.cuh), the gated norm, the out_proj GEMM into
// the residual; then the final norm and the LM head for the rows the caller wants.
#include <algorithm>
#include <cstring>

#include "engine/error.h"
#include "engine/probes.h"
#include "engine/ssd_matrix.h"
#include "kernels/conv1d.cuh"
#include "kernels/cuda_backend_impl.h"
#include "kernels/cuda_check.h"
#include "kernels/dt_cumsum.cuh"
#include "kernels/elementwise.cuh"
#include "kernels/embedding.cuh"
#include "kernels/gated_rmsnorm.cuh"
#include "kernels/gemm.h"
#include "kernels/lab.h"
#include "kernels/prefill_probes.cuh"
#include "kernels/rmsnorm.cuh"
#include "kernels/ssd_recurrent.cuh"

namespace mamba {

namespace {
float to_float_limit(double v) { return static_cast<float>(v); }  // +inf stays +inf
}  // namespace

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
  const int64_t Q = opt.chunk_size > 0 ? opt.chunk_size : m_c.chunk_size;
  if (Q < 1) throw Error("chunk size must be >= 1");
  // Pieces of at most m_opt.segment tokens (a multiple of Q) bound the workspaces: prefill of T tokens is
  // exactly prefill of its pieces one after another.
  const int64_t seg = std::max<int64_t>(Q, m_opt.segment / Q * Q), V = m_c.vocab_size;
  if (opt.capture) {
    LayerCapture& cap = *opt.capture;
    if (cap.layer < 0 || cap.layer >= m_c.n_layer) throw Error("capture: no such layer");
    cap.T = 0;
    for (auto* v : {&cap.x, &cap.B, &cap.C, &cap.dt, &cap.y}) v->clear();
  }
  for (int64_t start = 0; start < T; start += seg) {
    const int64_t len = std::min(seg, T - start);
    const bool last = start + len == T;
    const LogitRows rows = opt.all_logits ? LogitRows::All : last ? LogitRows::Last : LogitRows::None;
    float* out = !logits ? nullptr : opt.all_logits ? logits + start * V : logits;
    // a capture takes the recurrent scan, whose output (the y the capture holds) is materialised
    const bool chunked = opt.scan == ScanMode::Chunked && len > 1 && !opt.capture;
    prefill_segment(tokens.data() + start, len, chunked, Q, rows == LogitRows::None ? nullptr : out, rows, opt.probes, opt.residuals,
                    opt.capture);
  }
}

// Appends this segment's rows of layer l's scan inputs (after the conv) and output: x, B, C from the conv
// output, dt (stored (H, T_pad)), and the recurrent scan's y plus the D skip the gated norm adds later.
void CudaBackend::capture_layer_rows(LayerCapture& cap, int64_t l, int64_t T, int64_t T_pad) {
  const Config& c = m_c;
  const int64_t E = c.d_inner, GN = c.n_groups * c.d_state, H = c.n_heads, P = c.head_dim, CD = c.conv_dim;
  std::vector<float> xbc(size_t(T * CD)), dt(size_t(H * T_pad)), y(size_t(T * E));
  cudaStream_t s = m_stream->get();
  CUDA_CHECK(cudaMemcpyAsync(xbc.data(), m_xbc.get(), sizeof(float) * xbc.size(), cudaMemcpyDeviceToHost, s));
  CUDA_CHECK(cudaMemcpyAsync(dt.data(), m_dt.get(), sizeof(float) * dt.size(), cudaMemcpyDeviceToHost, s));
  CUDA_CHECK(cudaMemcpyAsync(y.data(), m_y.get(), sizeof(float) * y.size(), cudaMemcpyDeviceToHost, s));
  m_stream->sync();
  const std::vector<float>& Dskip = m_model->weights.layers[size_t(l)].D;
  for (int64_t t = 0; t < T; ++t) {
    const float* row = xbc.data() + t * CD;
    cap.x.insert(cap.x.end(), row, row + E);
    cap.B.insert(cap.B.end(), row + E, row + E + GN);
    cap.C.insert(cap.C.end(), row + E + GN, row + E + 2 * GN);
    for (int64_t h = 0; h < H; ++h) cap.dt.push_back(dt[size_t(h * T_pad + t)]);
    for (int64_t i = 0; i < E; ++i) cap.y.push_back(double(y[size_t(t * E + i)]) + double(Dskip[size_t(i / P)]) * double(row[i]));
  }
  cap.T += T;
}

void CudaBackend::prefill_segment(const int32_t* ids, int64_t T, bool chunked, int64_t Q, float* out, LogitRows want, ProbeSink* probes,
                                  ResidualSink* residuals, LayerCapture* capture) {
  const Config& c = m_c;
  const int64_t D = c.d_model, E = c.d_inner, H = c.n_heads, P = c.head_dim, G = c.n_groups, N = c.d_state, K = c.d_conv;
  const int64_t Din = c.d_in_proj, CD = c.conv_dim, V = c.vocab_size;
  // A prompt shorter than a chunk is one chunk of its own length: same result, no padded work.
  if (chunked && T < Q) Q = T;
  const int64_t T_pad = chunked ? (T + Q - 1) / Q * Q : T;
  reserve_prefill(T_pad);
  cudaStream_t s = m_stream->get();
  cublasHandle_t blas = m_blas->get();
  const float eps = static_cast<float>(c.norm_eps);

  // The pinned copy is reused: wait for the previous upload to have left it.
  m_stream->sync();
  std::memcpy(m_ids_pinned.get(), ids, sizeof(int32_t) * size_t(T));
  CUDA_CHECK(cudaMemcpyAsync(m_ids.get(), m_ids_pinned.get(), sizeof(int32_t) * size_t(T), cudaMemcpyHostToDevice, s));

  LAB_MARK("prefill: embedding", s);
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

  // Fused chunk scan (bf16 operands, supported shapes, CudaOptions::fused_scan): one tensor-core kernel for
  // the SSD's output side with the D skip and the gate in its epilogue, then a light kernel that finishes the
  // grouped norm. The f32 mode keeps the unfused path as the check.
  SsdChunkedArgs shape;
  shape.P = P;
  shape.N = N;
  shape.dtype = m_sdt;
  shape.x_act = xbc_act;
  shape.ld_act = CD;
  shape.C_act = static_cast<const char*>(xbc_act) + (E + G * N) * int64_t(sd);
  const bool fused = chunked && m_sdt != DType::F32 && m_opt.fused_scan && ssd_chunked_fused_supported(shape);
  // v in bf16 goes straight into the out_proj input buffer (normalised in place); else fp32 on the side.
  const DType v_dtype = m_wdt == DType::BF16 ? DType::BF16 : DType::F32;
  if (fused && v_dtype != m_wdt) m_gate_v.reserve(sizeof(float) * size_t(T_pad * E), "gated SSD output");
  if (!fused) m_y.reserve(sizeof(float) * size_t(T_pad * E), "SSD output");
  if (chunked && !fused) m_y_off.reserve(sizeof(float) * size_t(T_pad * E), "SSD off-diagonal output");
  // Probes (engine/probes.h): per layer, the rows' sums of squares of the state after every token from a
  // recurrent pass (the chunked scan's is a rescan of each chunk from its fp32 entry state, every chunk at
  // once), that pass's y, then one kernel that reduces them to the layer's values.
  const int64_t pf_stride = 3 * T * H + T;
  if (probes) {
    m_pf_ss.reserve(sizeof(float) * size_t(T_pad * E), "probe state sums of squares");
    if (chunked) m_pf_y.reserve(sizeof(float) * size_t(T_pad * E), "probe SSD output");
    if (chunked) m_pf_s_in.reserve(sizeof(float) * size_t(T_pad / Q * H * P * N), "probe chunk entry states");
    m_pf_out.reserve(sizeof(float) * size_t(c.n_layer * pf_stride), "probe values");
  }

  for (int64_t l = 0; l < c.n_layer; ++l) {
    const DevLayer& lw = m_layers[size_t(l)];
    float* ring = m_ring.as<float>() + l * CD * K;
    float* state = m_ssm.as<float>() + l * H * P * N;

    LAB_MARK("prefill: rmsnorm", s);
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

    LAB_MARK("prefill: in_proj gemm", s);
    gemm(blas, Din, T, D, {lw.in_proj.get(), m_wdt, D, true}, {m_h.get(), m_wdt, D, false}, zx, DType::F32, Din);
    if (!lw.in_bias.empty()) launch_add_bias(zx, Din, lw.in_bias.as<float>(), T, Din, s);

    LAB_MARK("prefill: dt softplus + cumsum", s);
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
      a.probe_s_in = probes ? m_pf_s_in.as<float>() : nullptr;
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

    LAB_MARK("prefill: conv1d (+ssd x scaling)", s);
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
    if (fused && !probes) cp.out_cols = E;  // only the D skip reads fp32 (x); B and C are read in bf16 (the probes' rescan reads all)
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

    const float* probe_y = m_y.as<float>();
    if (chunked) {
      ssd_chunked_run(a, m_ssd_ws, blas, s);
      if (probes) {
        LAB_MARK("prefill: probes rescan", s);
        SsdRecurrentParams rp;
        rp.x = xbc;
        rp.B = xbc + E;
        rp.C = xbc + E + G * N;
        rp.ldx = CD;
        rp.dt = m_dt.as<float>();
        rp.dt_stride = T_pad;
        rp.A = lw.A.as<float>();
        rp.y = m_pf_y.as<float>();
        rp.ldy = E;
        rp.T = T;
        rp.H = H;
        rp.P = P;
        rp.G = G;
        rp.N = N;
        rp.state_ss = m_pf_ss.as<float>();
        rp.s_in = m_pf_s_in.as<float>();
        rp.Q = Q;
        launch_ssd_recurrent(rp, s);
        probe_y = m_pf_y.as<float>();
      }
    } else {
      LAB_MARK("prefill: ssd recurrent", s);
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
      rp.state_ss = probes ? m_pf_ss.as<float>() : nullptr;
      launch_ssd_recurrent(rp, s);
      if (capture && capture->layer == l) {
        capture_layer_rows(*capture, l, T, T_pad);
        if (capture->stop_after) {  // a scratch backend: the later layers do not matter to the capture
          m_pos = (m_pos + T) % K;
          m_n_tokens += T;
          return;
        }
      }
    }
    if (probes) {
      LAB_MARK("prefill: probes", s);
      PrefillProbeParams pp;
      pp.T = T;
      pp.H = H;
      pp.P = P;
      pp.D = D;
      pp.dt = m_dt.as<float>();
      pp.dt_stride = T_pad;
      pp.state_ss = m_pf_ss.as<float>();
      pp.y = probe_y;
      pp.ld = E;
      pp.x = xbc;
      pp.ldx = CD;
      pp.Dskip = lw.D.as<float>();
      pp.resid = resid;  // out_proj adds this layer's output below
      pp.out = m_pf_out.as<float>() + l * pf_stride;
      launch_prefill_probes(pp, s);
    }

    if (fused) {
      LAB_MARK("prefill: gated norm finish", s);
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
      LAB_MARK("prefill: gated rmsnorm", s);
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

    LAB_MARK("prefill: out_proj gemm (+residual)", s);
    gemm(blas, D, T, E, {lw.out_proj.get(), m_wdt, E, true}, {m_y_act.get(), m_wdt, E, false}, resid, DType::F32, D, 1.f, 1.f);
    if (!lw.out_bias.empty()) launch_add_bias(resid, D, lw.out_bias.as<float>(), T, D, s);
    if (residuals) {  // the residual stream after this layer to the host (the scan comparison): one wait per layer
      m_resid_host.resize(size_t(T * D));
      CUDA_CHECK(cudaMemcpyAsync(m_resid_host.data(), resid, sizeof(float) * size_t(T * D), cudaMemcpyDeviceToHost, s));
      m_stream->sync();
      residuals->residual(l, m_n_tokens, T, D, m_resid_host.data());
    }
  }
  m_pos = (m_pos + T) % K;
  const int64_t first_pos = m_n_tokens;  // the probes' first position
  m_n_tokens += T;

  const int64_t rows = want == LogitRows::All ? T : want == LogitRows::Last ? 1 : 0, first = T - rows;
  for (int64_t r0 = 0; r0 < rows; r0 += m_lm_rows) {
    const int64_t n = std::min(m_lm_rows, rows - r0);
    LAB_MARK("prefill: final norm + lm head", s);
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
      LAB_MARK("prefill: logits to host", s);
      CUDA_CHECK(cudaMemcpyAsync(out + r0 * V, m_logits_ws.get(), sizeof(float) * size_t(n * V), cudaMemcpyDeviceToHost, s));
    }
    m_last_logits_dev = m_logits_ws.as<float>() + (n - 1) * V;
  }
  LAB_MARK("", s);
  m_stream->sync();
  if (probes) {
    std::vector<float> v(size_t(c.n_layer * pf_stride));
    CUDA_CHECK(cudaMemcpy(v.data(), m_pf_out.get(), sizeof(float) * v.size(), cudaMemcpyDeviceToHost));
    for (int64_t l = 0; l < c.n_layer; ++l) {
      const float* b = v.data() + l * pf_stride;
      probes->layer({l, first_pos, T, H, b, b + T * H, b + 2 * T * H, b + 3 * T * H});
    }
  }
}

}  // namespace mamba
