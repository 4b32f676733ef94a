// The chunked and recurrent SSD on the GPU against engine/ssd.cpp, y and the final state.
#include "cuda_test_util.h"
#include "gemm.h"
#include "ssd.h"
#include "ssd_chunked.h"
#include "ssd_recurrent.cuh"

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
  a.T = c.T; a.H = c.H; a.P = c.P; a.G = c.G; a.N = c.N;
  a.x = in.xbc.data(); a.ldx = in.CD; a.B = in.xbc.data() + in.E; a.ldb = in.CD; a.C = in.xbc.data() + in.E + c.G * c.N; a.ldc = in.CD;
  a.dt = in.dt_th.data(); a.lddt = c.H; a.A = in.A.data(); a.y = r.y.data(); a.ldy = in.E; a.state = r.state.data();
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
      a.T_pad = T_pad; a.Q = c.Q; a.H = c.H; a.P = c.P; a.G = c.G; a.N = c.N;
      a.x = d_xbc.as<float>(); a.ldx = in.CD; a.x_act = act;
      a.B_act = static_cast<const char*>(act) + in.E * int64_t(dtype_size(dt));
      a.C_act = static_cast<const char*>(act) + (in.E + c.G * c.N) * int64_t(dtype_size(dt));
      a.ld_act = in.CD; a.dtype = dt; a.dt = d_dt.as<float>(); a.cs = d_cs.as<float>(); a.state = d_state.as<float>();
      a.y = d_y.as<float>(); a.ldy = in.E;
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
    p.x = d_xbc.as<float>(); p.B = p.x + in.E; p.C = p.x + in.E + c.G * c.N; p.ldx = in.CD; p.dt = d_dt.as<float>(); p.dt_stride = c.T;
    p.A = d_A.as<float>(); p.state = d_state.as<float>(); p.y = d_y.as<float>(); p.ldy = in.E; p.T = c.T; p.H = c.H; p.P = c.P; p.G = c.G;
    p.N = c.N;
    launch_ssd_recurrent(p, nullptr);
    sync_check();
    EXPECT_LT(rel_err_v(from_dev(d_y, ref.y.size()), ref.y), 1e-5);
    EXPECT_LT(rel_err_v(from_dev(d_state, ref.state.size()), ref.state), 1e-5);
  }
}
