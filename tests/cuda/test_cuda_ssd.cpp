// The chunked and recurrent SSD on the GPU against engine/ssd.cpp, y and the final state; the fused
// chunk scan against the CPU and the unfused path, and its gated epilogue + norm finish.
#include "engine/ssd.h"
#include "kernels/gated_rmsnorm.cuh"
#include "kernels/gemm.h"
#include "kernels/ssd_chunked.h"
#include "kernels/ssd_recurrent.cuh"
#include "tests/cuda/cuda_test_util.h"

using namespace mamba;
using namespace mamba::test;

namespace {

struct SsdCase {
  int64_t T, Q, H, P, G, N;
};

std::string describe(const SsdCase& c) {
  return "T=" + std::to_string(c.T) + " Q=" + std::to_string(c.Q) + " H=" + std::to_string(c.H) + " P=" + std::to_string(c.P) +
         " G=" + std::to_string(c.G) + " N=" + std::to_string(c.N);
}

// Inputs laid out as the backend has them: one (T_pad, conv_dim) matrix x | B | C, dt as (H, T_pad).
struct SsdInputs {
  int64_t T_pad = 0, CD = 0, E = 0;
  std::vector<float> xbc, dt, A, state;
  std::vector<float> dt_th;  // (T, H) for the CPU
};

SsdInputs make_inputs(const SsdCase& c, int64_t T_pad, uint32_t seed) {
  SsdInputs in;
  in.T_pad = T_pad;
  in.E = c.H * c.P;
  in.CD = in.E + 2 * c.G * c.N;
  in.xbc.assign(static_cast<size_t>(T_pad * in.CD), 0.f);
  const auto r = randn(static_cast<size_t>(c.T * in.CD), seed);
  std::copy(r.begin(), r.end(), in.xbc.begin());
  in.dt.assign(static_cast<size_t>(c.H * T_pad), 0.f);
  in.dt_th.resize(static_cast<size_t>(c.T * c.H));
  const auto u = uniform(static_cast<size_t>(c.T * c.H), seed + 1, 0.005f, 0.25f);
  for (int64_t t = 0; t < c.T; ++t)
    for (int64_t h = 0; h < c.H; ++h) in.dt[size_t(h * T_pad + t)] = in.dt_th[size_t(t * c.H + h)] = u[size_t(t * c.H + h)];
  in.A = uniform(static_cast<size_t>(c.H), seed + 2, -4.f, -0.2f);
  in.state = randn(static_cast<size_t>(c.H * c.P * c.N), seed + 3, 0.5f);
  return in;
}

struct SsdRef {
  std::vector<float> y, state;
};

SsdRef cpu_ref(const SsdCase& c, const SsdInputs& in, bool chunked) {
  SsdRef r;
  r.y.assign(static_cast<size_t>(c.T * in.E), 0.f);
  r.state = in.state;
  SsdArgs a;
  a.T = c.T;
  a.H = c.H;
  a.P = c.P;
  a.G = c.G;
  a.N = c.N;
  a.x = in.xbc.data();
  a.ldx = in.CD;
  a.B = in.xbc.data() + in.E;
  a.ldb = in.CD;
  a.C = in.xbc.data() + in.E + c.G * c.N;
  a.ldc = in.CD;
  a.dt = in.dt_th.data();
  a.lddt = c.H;
  a.A = in.A.data();
  a.y = r.y.data();
  a.ldy = in.E;
  a.state = r.state.data();
  if (chunked) ssd_chunked(a, c.Q);
  else ssd_recurrent(a);
  return r;
}

std::vector<float> cumsum_chunks(const SsdCase& c, const SsdInputs& in) {
  std::vector<float> cs(in.dt.size());
  for (int64_t h = 0; h < c.H; ++h) {
    float run = 0.f;
    for (int64_t t = 0; t < in.T_pad; ++t) {
      if (t % c.Q == 0) run = 0.f;
      cs[size_t(h * in.T_pad + t)] = (run += in.dt[size_t(h * in.T_pad + t)] * in.A[size_t(h)]);
    }
  }
  return cs;
}

const SsdCase kCases[] = {
    {1, 8, 4, 32, 1, 16},       // T = 1
    {37, 16, 4, 32, 1, 16},     // partial last chunk
    {21, 8, 8, 64, 2, 64},      // n_groups > 1
    {300, 64, 4, 64, 1, 128},   // several chunks, d_state 128
    {256, 256, 6, 64, 3, 128},  // exactly one full chunk of the default size
    {130, 5, 4, 32, 2, 16},     // odd chunk size
};

}  // namespace

TEST_F(CudaTest, SsdChunkedMatchesCpu) {
  CublasHandle blas;
  for (DType dt : {DType::F32, DType::BF16})
    for (const SsdCase& c : kCases) {
      SCOPED_TRACE(describe(c) + " " + dtype_name(dt));
      const int64_t T_pad = (c.T + c.Q - 1) / c.Q * c.Q;
      const SsdInputs in = make_inputs(c, T_pad, uint32_t(c.T * 7 + c.N));
      const SsdRef ref = cpu_ref(c, in, true);
      auto d_xbc = to_dev(in.xbc);
      DeviceBuffer d_act = dt == DType::F32 ? DeviceBuffer() : to_dev_as(in.xbc, dt);
      const void* act = dt == DType::F32 ? d_xbc.get() : d_act.get();
      auto d_dt = to_dev(in.dt), d_cs = to_dev(cumsum_chunks(c, in)), d_state = to_dev(in.state);
      auto d_y = poisoned(sizeof(float) * T_pad * in.E);
      SsdChunkedArgs a;
      a.T_pad = T_pad;
      a.Q = c.Q;
      a.H = c.H;
      a.P = c.P;
      a.G = c.G;
      a.N = c.N;
      a.x = d_xbc.as<float>();
      a.ldx = in.CD;
      a.x_act = act;
      a.B_act = static_cast<const char*>(act) + in.E * int64_t(dtype_size(dt));
      a.C_act = static_cast<const char*>(act) + (in.E + c.G * c.N) * int64_t(dtype_size(dt));
      a.ld_act = in.CD;
      a.dtype = dt;
      a.dt = d_dt.as<float>();
      a.cs = d_cs.as<float>();
      a.state = d_state.as<float>();
      a.y = d_y.as<float>();
      a.ldy = in.E;
      SsdChunkedWorkspace ws;
      ssd_chunked_run(a, ws, blas.get(), nullptr);
      sync_check();
      auto y = from_dev(d_y, size_t(c.T * in.E));
      const double ey = rel_err_v(y, ref.y), es = rel_err_v(from_dev(d_state, in.state.size()), ref.state);
      std::printf("  ssd chunked %-40s %-4s  y %.2e  state %.2e\n", describe(c).c_str(), dtype_name(dt), ey, es);
      EXPECT_LT(ey, dt == DType::F32 ? 1e-5 : 1.5e-2);
      EXPECT_LT(es, dt == DType::F32 ? 1e-5 : 1.5e-2);
    }
}

TEST_F(CudaTest, SsdRecurrentMatchesCpu) {
  for (const SsdCase& c : kCases) {
    SCOPED_TRACE(describe(c));
    const SsdInputs in = make_inputs(c, c.T, uint32_t(c.T * 3 + c.N));
    const SsdRef ref = cpu_ref(c, in, false);
    auto d_xbc = to_dev(in.xbc), d_dt = to_dev(in.dt), d_A = to_dev(in.A), d_state = to_dev(in.state);
    auto d_y = poisoned(sizeof(float) * c.T * in.E);
    SsdRecurrentParams p;
    p.x = d_xbc.as<float>();
    p.B = p.x + in.E;
    p.C = p.x + in.E + c.G * c.N;
    p.ldx = in.CD;
    p.dt = d_dt.as<float>();
    p.dt_stride = c.T;
    p.A = d_A.as<float>();
    p.state = d_state.as<float>();
    p.y = d_y.as<float>();
    p.ldy = in.E;
    p.T = c.T;
    p.H = c.H;
    p.P = c.P;
    p.G = c.G;
    p.N = c.N;
    launch_ssd_recurrent(p, nullptr);
    sync_check();
    EXPECT_LT(rel_err_v(from_dev(d_y, ref.y.size()), ref.y), 1e-5);
    EXPECT_LT(rel_err_v(from_dev(d_state, ref.state.size()), ref.state), 1e-5);
  }
}

// ---- the fused tensor-core chunk scan (ssd_chunk_scan_fused.cuh) --------------------------------

namespace {

const SsdCase kFusedCases[] = {
    {1, 8, 4, 32, 1, 16},       // T = 1: one real row in a padded chunk
    {37, 16, 4, 32, 1, 16},     // partial last chunk
    {21, 8, 8, 64, 2, 64},      // n_groups > 1
    {300, 64, 4, 64, 1, 128},   // several chunks, d_state 128
    {256, 256, 6, 64, 3, 128},  // one full chunk of the default size: 4 row tiles, 4 diagonal stages
    {520, 256, 2, 64, 1, 128},  // default chunk, partial third chunk
    {130, 7, 4, 32, 2, 16},     // odd chunk size (CB rows not 16-byte aligned)
    {200, 48, 4, 64, 2, 64},    // chunk 48: a 64-row tile that is partly outside the chunk
    {300, 130, 2, 32, 1, 48},   // chunk 130 (two row tiles, the second partial), d_state 48 (partial stage)
    {100, 48, 2, 16, 1, 16},    // head_dim 16
    {90, 32, 4, 128, 2, 32},    // head_dim 128
};

// Device copies of one case's inputs (bf16 operand copy of xbc included) and SsdChunkedArgs over them.
struct DevSsd {
  DeviceBuffer xbc, act, dt, cs, state, D;
  SsdChunkedArgs a;
};

void upload(DevSsd& d, const SsdCase& c, const SsdInputs& in, const std::vector<float>& D, DType dt) {
  d.xbc = to_dev(in.xbc);
  d.act = to_dev_as(in.xbc, dt);
  d.dt = to_dev(in.dt);
  d.cs = to_dev(cumsum_chunks(c, in));
  d.state = to_dev(in.state);
  d.D = to_dev(D);
  SsdChunkedArgs& a = d.a;
  a = SsdChunkedArgs();
  a.T_pad = in.T_pad;
  a.Q = c.Q;
  a.H = c.H;
  a.P = c.P;
  a.G = c.G;
  a.N = c.N;
  a.x = d.xbc.as<float>();
  a.ldx = in.CD;
  a.x_act = d.act.get();
  a.B_act = static_cast<const char*>(d.act.get()) + in.E * int64_t(dtype_size(dt));
  a.C_act = static_cast<const char*>(d.act.get()) + (in.E + c.G * c.N) * int64_t(dtype_size(dt));
  a.ld_act = in.CD;
  a.dtype = dt;
  a.dt = d.dt.as<float>();
  a.cs = d.cs.as<float>();
  a.state = d.state.as<float>();
  a.ldy = in.E;
}

// y of the fused kernel (y epilogue, with the fp32 D skip), the first T rows, and the final state; `tiling`:
// the block tiling (SsdChunkScanFusedParams::wn, hb).
std::vector<float> fused_y(const SsdCase& c, const SsdInputs& in, const std::vector<float>& D, std::vector<float>* state = nullptr,
                           std::pair<int, int> tiling = {1, 1}) {
  CublasHandle blas;
  DevSsd d;
  upload(d, c, in, D, DType::BF16);
  auto d_y = poisoned(sizeof(float) * in.T_pad * in.E);
  d.a.fused = true;
  d.a.fused_wn = tiling.first;
  d.a.fused_hb = tiling.second;
  d.a.D = d.D.as<float>();
  d.a.y = d_y.as<float>();
  SsdChunkedWorkspace ws;
  ssd_chunked_run(d.a, ws, blas.get(), nullptr);
  sync_check();
  if (state) *state = from_dev(d.state, in.state.size());
  return from_dev(d_y, size_t(c.T * in.E));
}

}  // namespace

TEST_F(CudaTest, SsdFusedChunkScanMatchesCpuAndUnfused) {
  CublasHandle blas;
  for (const SsdCase& c : kFusedCases) {
    SCOPED_TRACE(describe(c));
    const int64_t T_pad = (c.T + c.Q - 1) / c.Q * c.Q;
    const SsdInputs in = make_inputs(c, T_pad, uint32_t(c.T * 11 + c.N + c.Q));
    const std::vector<float> D = uniform(size_t(c.H), 77, 0.5f, 1.5f);
    SsdRef ref = cpu_ref(c, in, true);
    for (int64_t t = 0; t < c.T; ++t)
      for (int64_t i = 0; i < in.E; ++i) ref.y[size_t(t * in.E + i)] += D[size_t(i / c.P)] * in.xbc[size_t(t * in.CD + i)];
    {
      DevSsd d;
      upload(d, c, in, D, DType::BF16);
      ASSERT_TRUE(ssd_chunked_fused_supported(d.a));
    }
    std::vector<float> st;
    const auto y = fused_y(c, in, D, &st);
    // The unfused bf16 path (y without the skip; added here in fp32 as the gated norm would).
    DevSsd u;
    upload(u, c, in, D, DType::BF16);
    auto d_y = poisoned(sizeof(float) * T_pad * in.E);
    u.a.y = d_y.as<float>();
    SsdChunkedWorkspace ws;
    ssd_chunked_run(u.a, ws, blas.get(), nullptr);
    sync_check();
    auto yu = from_dev(d_y, size_t(c.T * in.E));
    for (int64_t t = 0; t < c.T; ++t)
      for (int64_t i = 0; i < in.E; ++i) yu[size_t(t * in.E + i)] += D[size_t(i / c.P)] * in.xbc[size_t(t * in.CD + i)];
    const double ey = rel_err_v(y, ref.y), eu = rel_err_v(yu, ref.y), efu = rel_err_v(y, yu), es = rel_err_v(st, ref.state);
    std::printf("  ssd fused   %-40s y %.2e (unfused bf16 %.2e, fused vs unfused %.2e)  state %.2e\n", describe(c).c_str(), ey, eu, efu,
                es);
    EXPECT_LT(ey, 1.5e-2);
    EXPECT_LT(efu, 1.5e-2);
    EXPECT_LT(es, 1.5e-2);
    // every block tiling computes the same function
    for (std::pair<int, int> tiling : {std::pair{2, 1}, std::pair{1, 2}, std::pair{2, 2}}) {
      std::vector<float> st2;
      const auto y2 = fused_y(c, in, D, &st2, tiling);
      EXPECT_LT(rel_err_v(y2, y), 1e-5) << "tiling " << tiling.first << "," << tiling.second;
      EXPECT_LT(rel_err_v(st2, st), 1e-5) << "tiling " << tiling.first << "," << tiling.second;
    }
  }
}

// Changing one input must move exactly the outputs that depend on it, by more than rounding, and leave
// every other output bit for bit: catches wrong masks (j > i leaking in), wrong head / group / chunk
// offsets and rows written by the wrong block.
TEST_F(CudaTest, SsdFusedChunkScanRespondsOnlyWhereItShould) {
  const SsdCase c{300, 64, 4, 64, 2, 32};
  const int64_t T_pad = 320, t_star = 150, h_star = 3, g_star = 1;  // row 22 of chunk 2; head 3 is in group 1
  const SsdInputs base = make_inputs(c, T_pad, 4242);
  const std::vector<float> D = uniform(size_t(c.H), 5, 0.5f, 1.5f);
  const auto y0 = fused_y(c, base, D);
  const int64_t E = base.E, HP = c.P;
  auto changed = [&](const std::vector<float>& y, int64_t t, int64_t h) {
    double num = 0, den = 0;
    for (int64_t p = 0; p < HP; ++p) {
      const double a = y[size_t(t * E + h * HP + p)], b = y0[size_t(t * E + h * HP + p)];
      num += (a - b) * (a - b);
      den += b * b;
    }
    return std::sqrt(num / std::max(den, 1e-30));
  };
  auto same = [&](const std::vector<float>& y, int64_t t, int64_t h) {
    for (int64_t p = 0; p < HP; ++p)
      if (y[size_t(t * E + h * HP + p)] != y0[size_t(t * E + h * HP + p)]) return false;
    return true;
  };
  {  // x of one head at one token: that head, from that token on (in its chunk directly, later chunks through the state)
    SsdInputs in = base;
    for (int64_t p = 0; p < c.P; ++p) in.xbc[size_t(t_star * in.CD + h_star * c.P + p)] += 2.f;
    const auto y = fused_y(c, in, D);
    for (int64_t t = 0; t < c.T; ++t)
      for (int64_t h = 0; h < c.H; ++h) {
        if (h != h_star || t < t_star) {
          EXPECT_TRUE(same(y, t, h)) << "x: t=" << t << " h=" << h << " moved";
        } else if (t < t_star + 3) {  // further on the decay may shrink the change below any fixed bound
          EXPECT_GT(changed(y, t, h), 1e-2) << "x: t=" << t << " h=" << h << " did not move";
        }
      }
  }
  {  // C of one group at one token: only that token's row, in that group's heads
    SsdInputs in = base;
    for (int64_t n = 0; n < c.N; ++n) in.xbc[size_t(t_star * in.CD + E + c.G * c.N + g_star * c.N + n)] *= -1.f;
    const auto y = fused_y(c, in, D);
    for (int64_t t = 0; t < c.T; ++t)
      for (int64_t h = 0; h < c.H; ++h) {
        if (t == t_star && h / (c.H / c.G) == g_star) {
          EXPECT_GT(changed(y, t, h), 1e-2) << "C: h=" << h << " did not move";
        } else {
          EXPECT_TRUE(same(y, t, h)) << "C: t=" << t << " h=" << h << " moved";
        }
      }
  }
  {  // B of one group at one token: that group's heads from that token on
    SsdInputs in = base;
    for (int64_t n = 0; n < c.N; ++n) in.xbc[size_t(t_star * in.CD + E + g_star * c.N + n)] += 1.5f;
    const auto y = fused_y(c, in, D);
    for (int64_t t = 0; t < c.T; ++t)
      for (int64_t h = 0; h < c.H; ++h) {
        const bool dep = t >= t_star && h / (c.H / c.G) == g_star;
        if (!dep) {
          EXPECT_TRUE(same(y, t, h)) << "B: t=" << t << " h=" << h << " moved";
        } else if (t < t_star + 3) {
          EXPECT_GT(changed(y, t, h), 1e-3) << "B: t=" << t << " h=" << h << " did not move";
        }
      }
  }
  {  // the initial state of one head: that head everywhere (the first chunk most)
    SsdInputs in = base;
    for (int64_t k = 0; k < c.P * c.N; ++k) in.state[size_t(h_star * c.P * c.N + k)] += 1.f;
    const auto y = fused_y(c, in, D);
    for (int64_t t = 0; t < c.T; ++t)
      for (int64_t h = 0; h < c.H; ++h) {
        if (h != h_star) {
          EXPECT_TRUE(same(y, t, h)) << "state: t=" << t << " h=" << h << " moved";
        } else if (t < 8) {
          EXPECT_GT(changed(y, t, h), 1e-2) << "state: t=" << t << " did not move";
        }
      }
  }
}

// The gated epilogue + gated_norm_finish against the gated grouped RMSNorm of the CPU's y, in double.
TEST_F(CudaTest, SsdFusedGateAndNormFinishMatchReference) {
  const SsdCase cases[] = {{300, 64, 4, 64, 1, 128}, {130, 7, 6, 32, 3, 16}, {520, 256, 4, 64, 2, 128}, {90, 48, 4, 16, 2, 32}};
  for (const SsdCase& c : cases) {
    SCOPED_TRACE(describe(c));
    const int64_t T_pad = (c.T + c.Q - 1) / c.Q * c.Q;
    const SsdInputs in = make_inputs(c, T_pad, uint32_t(c.T + 3 * c.Q));
    const int64_t E = in.E, ldz = E + 3;  // an odd z row stride: the epilogue must not assume pairs are aligned
    const std::vector<float> D = uniform(size_t(c.H), 8, 0.5f, 1.5f), w = uniform(size_t(E), 9, 0.5f, 1.5f);
    std::vector<float> z = randn(size_t(T_pad * ldz), 10);
    const SsdRef ref = cpu_ref(c, in, true);
    const double eps = 1e-5;
    std::vector<float> want(size_t(c.T * E)), ss_want(size_t(c.T * c.H));
    const int64_t gs = E / c.G;
    for (int64_t t = 0; t < c.T; ++t) {
      std::vector<double> v(static_cast<size_t>(E));
      for (int64_t i = 0; i < E; ++i) {
        const double zz = z[size_t(t * ldz + i)];
        v[size_t(i)] = (ref.y[size_t(t * E + i)] + double(D[size_t(i / c.P)]) * in.xbc[size_t(t * in.CD + i)]) * zz / (1 + std::exp(-zz));
        ss_want[size_t(t * c.H + i / c.P)] += float(v[size_t(i)] * v[size_t(i)]);
      }
      for (int64_t g = 0; g < c.G; ++g) {
        double ss = 0;
        for (int64_t i = g * gs; i < (g + 1) * gs; ++i) ss += v[size_t(i)] * v[size_t(i)];
        const double r = 1 / std::sqrt(ss / double(gs) + eps);
        for (int64_t i = g * gs; i < (g + 1) * gs; ++i) want[size_t(t * E + i)] = float(v[size_t(i)] * r * w[size_t(i)]);
      }
    }
    auto d_z = to_dev(z), d_w = to_dev(w);
    for (DType v_dt : {DType::BF16, DType::F32}) {
      CublasHandle blas;
      DevSsd d;
      upload(d, c, in, D, DType::BF16);
      // bf16 v is normalised in place in the out buffer, as the backend does; f32 v lives on its own.
      auto d_out = poisoned(2 * size_t(T_pad * E));
      auto d_v32 = poisoned(sizeof(float) * size_t(T_pad * E));
      auto d_ss = poisoned(sizeof(float) * size_t(T_pad * c.H));
      d.a.fused = true;
      d.a.D = d.D.as<float>();
      d.a.T_valid = c.T;
      d.a.gate.z = d_z.as<float>();
      d.a.gate.ldz = ldz;
      d.a.gate.v_dtype = v_dt;
      d.a.gate.ldv = E;
      d.a.gate.ss = d_ss.as<float>();
      d.a.gate.v = v_dt == DType::BF16 ? d_out.get() : d_v32.get();
      SsdChunkedWorkspace ws;
      ssd_chunked_run(d.a, ws, blas.get(), nullptr);
      GatedNormFinishParams fp;
      fp.v = d.a.gate.v;
      fp.v_dtype = v_dt;
      fp.ldv = E;
      fp.ss = d_ss.as<float>();
      fp.w = d_w.as<float>();
      fp.T = c.T;
      fp.E = E;
      fp.H = c.H;
      fp.G = c.G;
      fp.eps = float(eps);
      fp.out = d_out.get();
      fp.out_dtype = DType::BF16;
      fp.ldo = E;
      const auto ss = from_dev(d_ss, size_t(c.T * c.H));
      launch_gated_norm_finish(fp, nullptr);
      sync_check();
      const auto out = from_dev(d_out, size_t(T_pad * E), DType::BF16);
      const std::vector<float> got(out.begin(), out.begin() + c.T * E);
      const double e = rel_err_v(got, want), es = rel_err_v(ss, ss_want);
      std::printf("  ssd fused gate+norm %-32s v %-4s out %.2e  ss %.2e\n", describe(c).c_str(), dtype_name(v_dt), e, es);
      EXPECT_LT(e, 1.5e-2);
      EXPECT_LT(es, 2e-2);
      for (float o : got) ASSERT_TRUE(std::isfinite(o));
      if (v_dt == DType::BF16) {  // padding rows are not the kernel's to write
        for (size_t k = size_t(c.T * E); k < out.size(); ++k) ASSERT_TRUE(std::isnan(out[k])) << "padding row written at " << k;
      }
    }
  }
}

// Shapes the fused kernel does not take fall back (the caller asks ssd_chunked_fused_supported).
TEST_F(CudaTest, SsdFusedSupportMatchesShapes) {
  auto probe = [](int64_t P, int64_t N, DType dt, int64_t ld) {
    SsdChunkedArgs a;
    a.P = P;
    a.N = N;
    a.dtype = dt;
    a.ld_act = ld;
    a.x_act = reinterpret_cast<const void*>(uintptr_t(256));
    a.C_act = reinterpret_cast<const void*>(uintptr_t(512));
    return ssd_chunked_fused_supported(a);
  };
  EXPECT_TRUE(probe(64, 128, DType::BF16, 5376));
  EXPECT_TRUE(probe(16, 16, DType::BF16, 64));
  EXPECT_FALSE(probe(8, 16, DType::BF16, 64));      // head_dim not a multiple of 16
  EXPECT_FALSE(probe(48, 16, DType::BF16, 64));     // head_dim not a kernel instance
  EXPECT_FALSE(probe(64, 8, DType::BF16, 64));      // d_state 8
  EXPECT_FALSE(probe(64, 128, DType::F32, 5376));   // the f32 check path stays unfused
  EXPECT_FALSE(probe(64, 128, DType::BF16, 5372));  // rows not 16-byte aligned
}
