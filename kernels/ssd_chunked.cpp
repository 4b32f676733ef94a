#include "kernels/ssd_chunked.h"

#include "engine/error.h"
#include "kernels/cuda_check.h"
#include "kernels/gemm.h"
#include "kernels/lab.h"
#include "kernels/ssd_chunk_scan.cuh"
#include "kernels/ssd_chunk_scan_fused.cuh"
#include "kernels/ssd_chunk_state.cuh"
#include "kernels/ssd_state_passing.cuh"

namespace mamba {

namespace {
const void* offset(const void* p, int64_t elems, DType t) {
  return static_cast<const char*>(p) + elems * static_cast<int64_t>(dtype_size(t));
}
}  // namespace

bool ssd_chunked_fused_supported(const SsdChunkedArgs& a) {
  return ssd_chunk_scan_fused_supported(a.P, a.N, a.dtype, a.x_act, a.C_act, a.ld_act);
}

void SsdChunkedWorkspace::prepare(const SsdChunkedArgs& a, cudaStream_t s) {
  if (a.Q <= 0 || a.T_pad % a.Q != 0) throw Error("ssd_chunked: T_pad must be a positive multiple of the chunk size");
  const int64_t nc = a.T_pad / a.Q, H = a.H, P = a.P, N = a.N, G = a.G, Q = a.Q, E = H * P;
  const size_t es = dtype_size(a.dtype);
  cb.reserve(sizeof(float) * size_t(nc * G * Q * Q), "SSD C*B^T");
  if (!a.fused) M.reserve(es * size_t(nc * H * Q * Q), "SSD decay-masked C*B^T");
  if (!a.xs) xs.reserve(es * size_t(a.T_pad * E), "SSD scaled x");
  states.reserve(sizeof(float) * size_t(nc * H * P * N), "SSD chunk states");
  s_in.reserve(es * size_t(nc * H * P * N), "SSD chunk input states");
  batch = nc * H;
  ptrs.reserve(sizeof(void*) * size_t(9 * batch), "SSD GEMM pointer arrays");

  const void* xs_ptr = a.xs ? a.xs : xs.get();
  const void* yoff_ptr = a.y_off ? a.y_off : a.y;
  std::vector<const void*> key = {a.x_act,  a.B_act, a.C_act,      a.y,        yoff_ptr,  xs_ptr,
                                  cb.get(), M.get(), states.get(), s_in.get(), ptrs.get()};
  std::vector<int64_t> dims = {a.T_pad, Q, H, P, G, N, a.ld_act, a.ldy, static_cast<int64_t>(a.dtype), a.fused ? 1 : 0};
  if (key == m_key && dims == m_dims) return;

  // The decay-mask kernel writes only the lower triangles; the upper ones stay zero from here on.
  if (!a.fused) CUDA_CHECK(cudaMemsetAsync(M.get(), 0, es * size_t(nc * H * Q * Q), s));

  // The same buffers serve every layer, so the arrays are built once per shape.
  m_host_ptrs.assign(size_t(9 * batch), nullptr);
  const void** st_a = m_host_ptrs.data();
  const void** st_b = st_a + batch;
  const void** st_c = st_b + batch;
  const void** yo_a = st_c + batch;
  const void** yo_b = yo_a + batch;
  const void** yo_c = yo_b + batch;
  const void** yd_a = yo_c + batch;
  const void** yd_b = yd_a + batch;
  const void** yd_c = yd_b + batch;
  const int64_t hpg = H / G;
  for (int64_t c = 0; c < nc; ++c)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t i = c * H + h, g = h / hpg, row = c * Q;
      st_a[i] = offset(a.B_act, row * a.ld_act + g * N, a.dtype);
      st_b[i] = offset(xs_ptr, row * E + h * P, a.dtype);
      st_c[i] = offset(states.get(), i * P * N, DType::F32);
      if (a.fused) continue;  // the output GEMMs' arrays stay null
      yo_a[i] = offset(s_in.get(), i * P * N, a.dtype);
      yo_b[i] = offset(a.C_act, row * a.ld_act + g * N, a.dtype);
      yo_c[i] = offset(yoff_ptr, row * a.ldy + h * P, DType::F32);
      yd_a[i] = offset(a.x_act, row * a.ld_act + h * P, a.dtype);
      yd_b[i] = offset(M.get(), i * Q * Q, a.dtype);
      yd_c[i] = offset(a.y, row * a.ldy + h * P, DType::F32);
    }
  // Pageable source: the copy is staged before the call returns, and it is ordered on `s`.
  CUDA_CHECK(cudaMemcpyAsync(ptrs.get(), m_host_ptrs.data(), sizeof(void*) * m_host_ptrs.size(), cudaMemcpyHostToDevice, s));
  m_key = key;
  m_dims = dims;
}

void ssd_chunked_run(const SsdChunkedArgs& a, SsdChunkedWorkspace& ws, cublasHandle_t blas, cudaStream_t s) {
  if (a.fused && !ssd_chunked_fused_supported(a)) throw Error("ssd_chunked: the fused path does not support these shapes");
  ws.prepare(a, s);
  const int64_t Q = a.Q, nc = a.T_pad / Q, H = a.H, P = a.P, N = a.N, G = a.G, E = H * P, batch = ws.batch;
  const DType dt = a.dtype;
  const void* const* arr = static_cast<const void* const*>(ws.ptrs.get());
  auto arr_out = [&](int k) { return const_cast<void* const*>(arr + k * batch); };

  LAB_MARK("ssd: C*B^T gemm", s);
  for (int64_t g = 0; g < G; ++g)
    gemm_strided_batched(blas, Q, Q, N, {offset(a.B_act, g * N, dt), dt, a.ld_act, true}, Q * a.ld_act,
                         {offset(a.C_act, g * N, dt), dt, a.ld_act, false}, Q * a.ld_act, ws.cb.as<float>() + g * Q * Q, DType::F32, Q,
                         G * Q * Q, nc);

  if (!a.xs) {
    LAB_MARK("ssd: scale x", s);
    SsdScaleXParams sx;
    sx.x = a.x;
    sx.ldx = a.ldx;
    sx.dt = a.dt;
    sx.cs = a.cs;
    sx.T_pad = a.T_pad;
    sx.Q = Q;
    sx.H = H;
    sx.P = P;
    sx.xs = ws.xs.get();
    sx.ldxs = E;
    sx.dtype = dt;
    launch_ssd_scale_x(sx, s);
  }

  LAB_MARK("ssd: chunk states gemm", s);
  gemm_batched(blas, N, P, Q, {nullptr, dt, a.ld_act, false}, arr, {nullptr, dt, E, true}, arr + batch, arr_out(2), DType::F32, N, batch);

  LAB_MARK("ssd: state passing", s);
  SsdStatePassingParams sp;
  sp.chunk_states = ws.states.as<float>();
  sp.cs = a.cs;
  sp.state = a.state;
  sp.s_in = ws.s_in.get();
  sp.s_in_f32 = a.probe_s_in;
  sp.dtype = dt;
  sp.T_pad = a.T_pad;
  sp.Q = Q;
  sp.n_chunks = nc;
  sp.H = H;
  sp.PN = P * N;
  launch_ssd_state_passing(sp, s);

  if (a.fused) {
    LAB_MARK(a.gate.v ? "ssd: fused chunk scan + gate" : "ssd: fused chunk scan", s);
    SsdChunkScanFusedParams fp;
    fp.T_pad = a.T_pad;
    fp.Q = Q;
    fp.H = H;
    fp.P = P;
    fp.G = G;
    fp.N = N;
    fp.T_valid = a.T_valid;
    fp.dtype = dt;
    fp.x_act = a.x_act;
    fp.C_act = a.C_act;
    fp.ld_act = a.ld_act;
    fp.cb = ws.cb.as<float>();
    fp.s_in = ws.s_in.get();
    fp.dt = a.dt;
    fp.cs = a.cs;
    fp.x = a.x;
    fp.ldx = a.ldx;
    fp.D = a.D;
    fp.wn = a.fused_wn;
    fp.hb = a.fused_hb;
    if (a.gate.v) {
      fp.z = a.gate.z;
      fp.ldz = a.gate.ldz;
      fp.v = a.gate.v;
      fp.ldv = a.gate.ldv;
      fp.v_dtype = a.gate.v_dtype;
      fp.ss = a.gate.ss;
    } else {
      fp.y = a.y;
      fp.ldy = a.ldy;
    }
    launch_ssd_chunk_scan_fused(fp, s);
    return;
  }

  LAB_MARK("ssd: off-diagonal gemm", s);
  gemm_batched(blas, P, Q, N, {nullptr, dt, N, true}, arr + 3 * batch, {nullptr, dt, a.ld_act, false}, arr + 4 * batch, arr_out(5),
               DType::F32, a.ldy, batch);

  if (!a.y_off) {
    LAB_MARK("ssd: scale rows", s);
    SsdScaleRowsParams sr;
    sr.y = a.y;
    sr.ldy = a.ldy;
    sr.cs = a.cs;
    sr.T_pad = a.T_pad;
    sr.H = H;
    sr.P = P;
    launch_ssd_scale_rows(sr, s);
  }

  LAB_MARK("ssd: decay mask", s);
  SsdDecayMaskParams dm;
  dm.cb = ws.cb.as<float>();
  dm.dt = a.dt;
  dm.cs = a.cs;
  dm.T_pad = a.T_pad;
  dm.Q = Q;
  dm.n_chunks = nc;
  dm.H = H;
  dm.G = G;
  dm.M = ws.M.get();
  dm.dtype = dt;
  dm.D = a.D;
  launch_ssd_decay_mask(dm, s);

  LAB_MARK("ssd: diagonal gemm", s);
  gemm_batched(blas, P, Q, Q, {nullptr, dt, a.ld_act, false}, arr + 6 * batch, {nullptr, dt, Q, false}, arr + 7 * batch, arr_out(8),
               DType::F32, a.ldy, batch, 1.f, a.y_off ? 0.f : 1.f);
}

}  // namespace mamba
