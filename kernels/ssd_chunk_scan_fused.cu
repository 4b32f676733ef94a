#include <cuda_bf16.h>

#include <cstdlib>
#include <cstring>

#include "engine/error.h"
#include "kernels/dtype.cuh"
#include "kernels/launch.cuh"
#include "kernels/ssd_chunk_scan_fused.cuh"

namespace mamba {

namespace {

constexpr int kRows = 64;     // chunk rows per block: 4 row warps x 16 rows
constexpr int kK = 64;        // reduction extent of one pipeline stage (chunk columns j, or state columns n)
constexpr int kLdA = kK + 8;  // shared row stride in elements: +16 bytes puts ldmatrix's 8 rows in distinct banks

// ldmatrix on a shared-space byte address (computed once per thread, advanced by constants).
__device__ __forceinline__ void ldsm_x4(unsigned (&r)[4], unsigned addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldsm_x4_trans(unsigned (&r)[4], unsigned addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
// 16-byte global -> shared copy that bypasses the registers; ok = false zero-fills (src is then not read).
__device__ __forceinline__ void cp_async16_s(unsigned dst, const void* src, bool ok) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(ok ? 16 : 0));
}
__device__ __forceinline__ void st_shared_u2(unsigned addr, unsigned a, unsigned b) {
  asm volatile("st.shared.v2.u32 [%0], {%1, %2};\n" ::"r"(addr), "r"(a), "r"(b));
}

// 2^x and 1/x on the special-function unit (flush-to-zero): what feeds bf16 needs no more, and the
// IEEE versions cost a denormal fix-up each (and a branchy subroutine for the division).
__device__ __forceinline__ float ex2_fast(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}
__device__ __forceinline__ float rcp_fast(float x) {
  float y;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}
constexpr float kLog2e = 1.4426950408889634f;

__device__ __forceinline__ unsigned pack_bf16x2(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<unsigned*>(&v);
}

// d (16x8 fp32) += a (16x16 bf16, row) * b (16x8 bf16, col)
__device__ __forceinline__ void mma_bf16(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// The epilogue's fp32 rows are read once, late: start pulling them into L2 when the block starts.
// A hint only; the range is widened to 16-byte bounds (inside the same allocation's granules).
__device__ __forceinline__ void prefetch_row_l2(const void* ptr, unsigned bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  const uintptr_t a = reinterpret_cast<uintptr_t>(ptr), lo = a & ~uintptr_t(15), hi = (a + bytes + 15) & ~uintptr_t(15);
  asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(lo), "r"(unsigned(hi - lo)) : "memory");
#else
  (void)ptr;
  (void)bytes;
#endif
}

// Block shape: 4 row warps (16 rows each) x WN column warps (P / WN columns each) x HB heads. The HB heads
// are consecutive heads of one group: they share the C*B^T tile, which each thread loads once (its RPT rows
// x 4 columns) and turns into all HB decay-masked tiles, and the C tile of the off-diagonal stages.
template <int P, int WN, int HB>
struct Cfg {
  static constexpr int warps = 4 * WN * HB, threads = 32 * warps;
  static constexpr int PW = P / WN;             // columns per warp
  static constexpr int NT = PW / 8;             // m16n8 accumulator tiles per warp (even: ldmatrix.x4 feeds two)
  static constexpr int RPT = 1024 / threads;    // CB-tile rows per thread (64 rows x 16 four-column groups)
  static constexpr int RSTEP = threads / 16;    // row distance between a thread's CB rows
  static constexpr int ld_x = P + 8;            // the X stage is (kK, P): its rows are P long
  static constexpr int a_elems = kRows * kLdA;  // per head: M tile (diagonal stages); slot 0 holds C (off-diagonal)
  static constexpr int b_elems = P * kLdA > kK* ld_x ? P* kLdA : kK* ld_x;  // per head: S_in or x stage
  static constexpr unsigned a_bytes = a_elems * 2, b_bytes = b_elems * 2;
  static constexpr size_t smem_bytes = 2 * size_t(HB) * (a_bytes + b_bytes);  // two stages
  static constexpr int u_c = kRows * 8 / threads;                             // 16-byte copies of the C tile per thread
  static constexpr int u_b = HB * 8 * P / threads;  // 16-byte copies of the S_in or x tiles per thread (8P per head)
  static_assert(NT % 2 == 0 && RPT >= 1 && u_c >= 1 && u_b >= 1, "bad fused chunk-scan block shape");
};

// grid (ceil(Q / 64) row tiles, H / HB, n_chunks). Warp w: head slot hs, column part cw, row group rw; its
// accumulator acc[nt] is the m16n8 tile of rows rw*16 + (gid, gid+8), columns cw*PW + 8nt + (2tig, 2tig+1).
// Pipeline stages: first the off-diagonal ones (k = state columns n, A = C rows, B = S_in), then the
// diagonal ones (k = chunk columns j <= the tile's last row, A = decay-masked CB built here, B = x rows).
// Two shared buffers per operand: stage s+1's copies and CB loads are in flight while stage s multiplies.
// Index arithmetic is hoisted (per-thread bases, constant strides): the first version spent ~4x the
// instructions of the arithmetic itself on it.
template <typename TV, int P, int WN, int HB, int MIN_BLOCKS>
__global__ void __launch_bounds__(Cfg<P, WN, HB>::threads, MIN_BLOCKS) ssd_chunk_scan_fused_kernel(SsdChunkScanFusedParams p) {
  using TA = __nv_bfloat16;
  using K = Cfg<P, WN, HB>;
  constexpr int NT = K::NT, RPT = K::RPT, RSTEP = K::RSTEP, kT = K::threads;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  __shared__ float ss_part[WN > 1 ? HB * WN * kRows : 1];
  __shared__ float cs_rows[HB * kRows];          // cs * log2(e) of the tile's rows per head; -inf past the chunk
  const unsigned sA = smem_u32(smem_raw);        // [2][HB] M / C tiles
  const unsigned sB = sA + 2 * HB * K::a_bytes;  // [2][HB] S_in / x tiles

  const int tile = int(gridDim.x) - 1 - int(blockIdx.x);  // the heaviest tiles (most diagonal stages) start first
  const int h0 = blockIdx.y * HB, c = blockIdx.z;
  const int Q = int(p.Q), N = int(p.N), H = int(p.H);
  const int64_t ld = p.ld_act, T_pad = p.T_pad;
  const int g = h0 / (H / int(p.G));
  const int i0 = tile * kRows;
  const int64_t t0 = int64_t(c) * Q;  // first token of the chunk
  const int64_t T_valid = p.T_valid > 0 ? p.T_valid : T_pad;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, gid = lane >> 2, tig = lane & 3;
  const int hs = warp / (4 * WN), cw = (warp >> 2) % WN, rw = warp & 3;
  const int h = h0 + hs;  // this warp's head
  const bool gated = p.v != nullptr;

  pdl_wait();
  const float* cs0 = p.cs + int64_t(h0) * T_pad + t0;  // head h0 + k: + k * T_pad
  const float* dt0 = p.dt + int64_t(h0) * T_pad + t0;
  for (int r = tid; r < HB * kRows; r += kT) {
    const int i = i0 + (r & (kRows - 1)), k = r / kRows;
    cs_rows[r] = i < Q ? cs0[int64_t(k) * T_pad + i] * kLog2e : -INFINITY;
    const int64_t t = t0 + i, col = int64_t(h0 + k) * P;  // the epilogue's fp32 rows, read once, late
    if (i < Q && t < T_valid) {
      if (p.D) prefetch_row_l2(p.x + t * p.ldx + col, P * sizeof(float));
      if (gated) prefetch_row_l2(p.z + t * p.ldz + col, P * sizeof(float));
    }
  }

  const TA* xa = static_cast<const TA*>(p.x_act) + t0 * ld + int64_t(h0) * P;
  const TA* sa = static_cast<const TA*>(p.s_in) + (int64_t(c) * H + h0) * int64_t(P) * N;
  // Q % 4 == 0: CB rows (and cs, dt: T_pad is a multiple of Q) are 16-byte aligned and a float4 of four
  // consecutive columns is wholly inside or outside the chunk.
  const bool vec4 = (Q & 3) == 0 && ((reinterpret_cast<uintptr_t>(p.cs) | reinterpret_cast<uintptr_t>(p.dt)) & 15) == 0;
  const int n_off = (N + kK - 1) / kK;
  const int n_stages = n_off + tile + 1;  // diagonal stages j0 = 0, 64, .., i0

  // C-tile copies: thread = column group (tid & 7) of rows c_r + u * (kT / 8).
  const int c_r = tid >> 3, c_col = (tid & 7) * 8;
  const TA* c_src = static_cast<const TA*>(p.C_act) + (t0 + i0 + c_r) * ld + int64_t(g) * N + c_col;
  unsigned c_ok = 0;
#pragma unroll
  for (int u = 0; u < K::u_c; ++u) c_ok |= unsigned(i0 + c_r + u * (kT / 8) < Q) << u;
  const unsigned c_dst = sA + unsigned(c_r * kLdA + c_col) * 2;

  // CB tile: thread = 4 consecutive columns (cg) of rows rr + q * RSTEP.
  const int cg = tid & 15, rr = tid >> 4;
  const float* cb_thr = p.cb + (int64_t(c) * p.G + g) * int64_t(Q) * Q + int64_t(i0 + rr) * Q + 4 * cg;
  unsigned row_ok = 0;
#pragma unroll
  for (int q = 0; q < RPT; ++q) row_ok |= unsigned(i0 + rr + q * RSTEP < Q) << q;
  const unsigned m_dst = sA + unsigned(rr * kLdA + 4 * cg) * 2;
  float cbv[RPT][4], csc[HB][4], dtc[HB][4];

  auto issue_copies = [&](int s, int buf) {
    const unsigned a_buf = buf * HB * K::a_bytes, b_buf = sB + buf * HB * K::b_bytes;
    if (s < n_off) {
      const int n0 = s * kK;
      const bool col_ok = n0 + c_col < N;
#pragma unroll
      for (int u = 0; u < K::u_c; ++u) {            // C rows of the tile, shared by the HB heads
        const bool ok = col_ok && (c_ok >> u & 1);  // a skipped copy zero-fills and gets a valid address anyway
        cp_async16_s(c_dst + a_buf + u * (kT / 8) * kLdA * 2, ok ? c_src + u * (kT / 8) * ld + n0 : c_src, ok);
      }
#pragma unroll
      for (int u = 0; u < K::u_b; ++u) {  // S_in (P, N) of each head: row r, columns n0..n0+63
        const int v = tid + u * kT, k = v / (8 * P), w = v & (8 * P - 1), r = w >> 3, col = (w & 7) * 8;
        const bool ok = n0 + col < N;
        cp_async16_s(b_buf + k * K::b_bytes + unsigned(r * kLdA + col) * 2, ok ? sa + int64_t(k) * P * N + r * N + n0 + col : sa, ok);
      }
    } else {
      const int j0 = (s - n_off) * kK;
      constexpr int VPR = P / 8;
      const TA* xs = xa + int64_t(j0) * ld;
#pragma unroll
      for (int u = 0; u < K::u_b; ++u) {  // x rows j0..j0+63; rows past the chunk are zero (M's zeros must not meet NaN)
        const int v = tid + u * kT, k = v / (8 * P), w = v & (8 * P - 1), r = w / VPR, col = (w % VPR) * 8;
        const bool ok = j0 + r < Q;
        cp_async16_s(b_buf + k * K::b_bytes + unsigned(r * K::ld_x + col) * 2, ok ? xs + r * ld + k * P + col : xa, ok);
      }
    }
    cp_async_commit();
  };

  auto fetch_cb = [&](int s) {  // global -> registers, so the loads overlap the previous stage's MMAs
    const int j0 = (s - n_off) * kK, jc = j0 + 4 * cg;
    const bool diag = j0 == i0;
    if (vec4) {
#pragma unroll
      for (int k = 0; k < HB; ++k) {
        float4 a = make_float4(0.f, 0.f, 0.f, 0.f), d = a;
        if (jc < Q) {
          a = __ldg(reinterpret_cast<const float4*>(cs0 + k * T_pad + jc));
          d = __ldg(reinterpret_cast<const float4*>(dt0 + k * T_pad + jc));
        }
        csc[k][0] = a.x * kLog2e;
        csc[k][1] = a.y * kLog2e;
        csc[k][2] = a.z * kLog2e;
        csc[k][3] = a.w * kLog2e;
        dtc[k][0] = d.x;
        dtc[k][1] = d.y;
        dtc[k][2] = d.z;
        dtc[k][3] = d.w;
      }
#pragma unroll
      for (int q = 0; q < RPT; ++q) {  // in the diagonal stage, four-column groups wholly right of the row are skipped
        float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
        if ((row_ok >> q & 1) && (!diag || 4 * cg <= rr + q * RSTEP))
          v = __ldg(reinterpret_cast<const float4*>(cb_thr + q * RSTEP * Q + j0));
        cbv[q][0] = v.x;
        cbv[q][1] = v.y;
        cbv[q][2] = v.z;
        cbv[q][3] = v.w;
      }
    } else {  // any chunk size: element by element
#pragma unroll
      for (int k = 0; k < HB; ++k)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          csc[k][e] = jc + e < Q ? cs0[k * T_pad + jc + e] * kLog2e : 0.f;
          dtc[k][e] = jc + e < Q ? dt0[k * T_pad + jc + e] : 0.f;
        }
#pragma unroll
      for (int q = 0; q < RPT; ++q)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int i = i0 + rr + q * RSTEP;
          cbv[q][e] = i < Q && jc + e <= i ? __ldg(cb_thr + q * RSTEP * Q + j0 + e) : 0.f;
        }
    }
  };

  // M = CB * 2^(cs_i - cs_j) * dt_j. Rows past the chunk have cs_i = -inf (and CB 0): 0 without a mask.
  // Only the diagonal stage needs the causal select (exp of a positive difference may be inf).
  auto store_mask = [&](int s, int buf) {
    const bool diag = (s - n_off) * kK == i0;
#pragma unroll
    for (int k = 0; k < HB; ++k) {
      const unsigned dst = m_dst + (buf * HB + k) * K::a_bytes;
#pragma unroll
      for (int q = 0; q < RPT; ++q) {
        const int r = rr + q * RSTEP;
        const float cs_i = cs_rows[k * kRows + r];
        float m[4];
#pragma unroll
        for (int e = 0; e < 4; ++e) m[e] = cbv[q][e] * ex2_fast(cs_i - csc[k][e]) * dtc[k][e];
        if (diag) {
#pragma unroll
          for (int e = 0; e < 4; ++e) m[e] = 4 * cg + e <= r ? m[e] : 0.f;
        }
        st_shared_u2(dst + q * RSTEP * kLdA * 2, pack_bf16x2(m[0], m[1]), pack_bf16x2(m[2], m[3]));
      }
    }
  };

  float acc[NT][4];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0.f;

  // ldmatrix lane addresses (bytes, relative to a stage's tile): A rows rw*16 + (lane & 15), k (lane >> 4) * 8;
  // S_in (n-major) rows cw*PW + (lane & 7) + (lane >> 4) * 8, k ((lane >> 3) & 1) * 8; x (k-major) rows
  // lane & 15, columns cw*PW + (lane >> 4) * 8.
  const unsigned a_lane = unsigned((rw * 16 + (lane & 15)) * kLdA + (lane >> 4) * 8) * 2;
  const unsigned bo_lane = unsigned((cw * K::PW + (lane & 7) + ((lane >> 4) << 3)) * kLdA + ((lane >> 3) & 1) * 8) * 2;
  const unsigned bd_lane = unsigned((lane & 15) * K::ld_x + cw * K::PW + (lane >> 4) * 8) * 2;

  auto mma_stage = [&](unsigned a_base, unsigned b_base, bool diag, int ksteps) {
    auto kstep = [&](int ks) {
      unsigned af[4];
      ldsm_x4(af, a_base + ks * 32);
#pragma unroll
      for (int np = 0; np < NT / 2; ++np) {
        unsigned bf[4];
        if (diag) ldsm_x4_trans(bf, b_base + ks * 16 * K::ld_x * 2 + np * 32);
        else ldsm_x4(bf, b_base + np * 16 * kLdA * 2 + ks * 32);
        mma_bf16(acc[2 * np], af, bf[0], bf[1]);
        mma_bf16(acc[2 * np + 1], af, bf[2], bf[3]);
      }
    };
#pragma unroll
    for (int ks = 0; ks < kK / 16; ++ks)  // one copy of the body (instruction cache), warp-uniform guard
      if (ks < ksteps) kstep(ks);
  };

  issue_copies(0, 0);  // an off-diagonal stage: N >= 16

  for (int s = 0; s < n_stages; ++s) {
    const int buf = s & 1;
    cp_async_wait_all();
    __syncthreads();  // stage s is in shared memory, and everyone is done reading stage s-1's buffers
    const bool next_diag = s + 1 < n_stages && s + 1 >= n_off;
    if (s + 1 < n_stages) {
      issue_copies(s + 1, buf ^ 1);
      if (next_diag) fetch_cb(s + 1);
    }

    const unsigned b_base = sB + (buf * HB + hs) * K::b_bytes;
    if (s < n_off) {
      mma_stage(sA + buf * HB * K::a_bytes + a_lane, b_base + bo_lane, false, min(kK, N - s * kK) / 16);  // A: the shared C tile
      if (s == n_off - 1) {  // the off-diagonal part is complete: scale its rows by exp(cs_i)
        const float ea = ex2_fast(cs_rows[hs * kRows + rw * 16 + gid]), eb = ex2_fast(cs_rows[hs * kRows + rw * 16 + gid + 8]);
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
          acc[nt][0] *= ea;
          acc[nt][1] *= ea;
          acc[nt][2] *= eb;
          acc[nt][3] *= eb;
        }
      }
    } else {
      const int j0 = (s - n_off) * kK;
      // k-steps wholly right of the warp's last row are zero in M; so are those past the chunk.
      const int ksteps = max(0, min((min(Q, i0 + rw * 16 + 16) - j0 + 15) / 16, kK / 16));
      mma_stage(sA + (buf * HB + hs) * K::a_bytes + a_lane, b_base + bd_lane, true, ksteps);  // A: this head's M tile
    }
    if (next_diag) store_mask(s + 1, buf ^ 1);
  }

  // Epilogue: rows rw*16 + gid (+8), columns cw*PW + 8nt + 2tig (+1) of head h.
  const float d_h = p.D ? p.D[h] : 0.f;
  const bool pairs =
      ((reinterpret_cast<uintptr_t>(p.x) | uintptr_t(p.ldx) * 4u | reinterpret_cast<uintptr_t>(p.z) | uintptr_t(p.ldz) * 4u) & 7u) == 0;
  float ss_half[2] = {0.f, 0.f};
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int i = i0 + rw * 16 + gid + 8 * half;
    const int64_t t = t0 + i;
    if (i < Q && t < T_valid) {
      const int64_t col0 = int64_t(h) * P + cw * K::PW + 2 * tig;
      float2 xv[NT], zv[NT];
      const float* xr = p.D ? p.x + t * p.ldx + col0 : nullptr;
      const float* zr = gated ? p.z + t * p.ldz + col0 : nullptr;
      // all loads first: one memory latency per row, not NT
      if (pairs) {
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
          xv[nt] = p.D ? *reinterpret_cast<const float2*>(xr + 8 * nt) : make_float2(0.f, 0.f);
          zv[nt] = gated ? *reinterpret_cast<const float2*>(zr + 8 * nt) : make_float2(0.f, 0.f);
        }
      } else {
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
          xv[nt] = p.D ? make_float2(xr[8 * nt], xr[8 * nt + 1]) : make_float2(0.f, 0.f);
          zv[nt] = gated ? make_float2(zr[8 * nt], zr[8 * nt + 1]) : make_float2(0.f, 0.f);
        }
      }
      if (gated) {
        TV* vr = static_cast<TV*>(p.v) + t * p.ldv + col0;
        float ss = 0.f;
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {  // silu(z) = z / (1 + e^-z); e^-z = inf gives 0, as it should
          const float v0 = (acc[nt][2 * half] + d_h * xv[nt].x) * zv[nt].x * rcp_fast(1.f + ex2_fast(-kLog2e * zv[nt].x));
          const float v1 = (acc[nt][2 * half + 1] + d_h * xv[nt].y) * zv[nt].y * rcp_fast(1.f + ex2_fast(-kLog2e * zv[nt].y));
          ss += v0 * v0 + v1 * v1;
          store2<TV>(vr + 8 * nt, v0, v1);
        }
        ss_half[half] = ss;
      } else {
        float* yr = p.y + t * p.ldy + col0;
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
          yr[8 * nt] = acc[nt][2 * half] + d_h * xv[nt].x;
          yr[8 * nt + 1] = acc[nt][2 * half + 1] + d_h * xv[nt].y;
        }
      }
    }
  }
  // Ungated: done (uniform over the block). Gated: sums of squares per (row, head), over the quad's lanes,
  // then over the WN column warps.
  if (!gated) return;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    ss_half[half] += __shfl_xor_sync(0xffffffffu, ss_half[half], 1);
    ss_half[half] += __shfl_xor_sync(0xffffffffu, ss_half[half], 2);
  }
  if constexpr (WN > 1) {
    if (tig == 0) {
      ss_part[(hs * WN + cw) * kRows + rw * 16 + gid] = ss_half[0];
      ss_part[(hs * WN + cw) * kRows + rw * 16 + gid + 8] = ss_half[1];
    }
    __syncthreads();
    if (cw == 0 && tig == 0) {
#pragma unroll
      for (int half = 0; half < 2; ++half)
#pragma unroll
        for (int w = 1; w < WN; ++w) ss_half[half] += ss_part[(hs * WN + w) * kRows + rw * 16 + gid + 8 * half];
    }
  }
  if (cw == 0 && tig == 0) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int i = i0 + rw * 16 + gid + 8 * half;
      const int64_t t = t0 + i;
      if (i < Q && t < T_valid) p.ss[t * H + h] = ss_half[half];
    }
  }
}

// (WN, HB) block shapes, chosen at run time (SsdChunkScanFusedParams::wn, hb).
template <typename TV, int P, int WN, int HB, int MIN_BLOCKS>
void launch_shape(const SsdChunkScanFusedParams& p, cudaStream_t s) {
  using K = Cfg<P, WN, HB>;
  auto kernel = ssd_chunk_scan_fused_kernel<TV, P, WN, HB, MIN_BLOCKS>;
  const size_t smem = K::smem_bytes;
  // Dynamic + static shared memory beyond 48 KB needs the opt-in (the static part is ~1 KB).
  if (smem > 40 * 1024) CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  const dim3 grid(ceil_div(p.Q, kRows), static_cast<unsigned>(p.H / HB), static_cast<unsigned>(p.T_pad / p.Q));
  launch_kernel(kernel, grid, dim3(K::threads), smem, s, false, "ssd_chunk_scan_fused_kernel", p);
}

template <typename TV, int P>
void launch_p(const SsdChunkScanFusedParams& p, cudaStream_t s, int wn, int hb) {
  if (hb > 1 && (p.H / p.G) % hb != 0) hb = 1;  // the block's heads must share a group
  if constexpr (P >= 32) {
    if (wn == 2 && hb == 2) return launch_shape<TV, P, 2, 2, 1>(p, s);
    if (wn == 2) return launch_shape<TV, P, 2, 1, (P <= 64 ? 3 : 2)>(p, s);
  }
  if constexpr (P <= 64) {
    if (hb == 2) return launch_shape<TV, P, 1, 2, 2>(p, s);
  }
  launch_shape<TV, P, 1, 1, (P <= 64 ? 4 : 2)>(p, s);
}

template <typename TV>
void launch_v(const SsdChunkScanFusedParams& p, cudaStream_t s, int wn, int hb) {
  switch (p.P) {
    case 16: launch_p<TV, 16>(p, s, wn, hb); break;
    case 32: launch_p<TV, 32>(p, s, wn, hb); break;
    case 64: launch_p<TV, 64>(p, s, wn, hb); break;
    case 128: launch_p<TV, 128>(p, s, wn, hb); break;
    default: throw Error("ssd fused chunk scan: head_dim " + std::to_string(p.P) + " is not supported");
  }
}

bool aligned16(const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15) == 0; }

}  // namespace

bool ssd_chunk_scan_fused_supported(int64_t P, int64_t N, DType dtype, const void* x_act, const void* C_act, int64_t ld_act) {
  return dtype == DType::BF16 && (P == 16 || P == 32 || P == 64 || P == 128) && N >= 16 && N % 16 == 0 && ld_act % 8 == 0 &&
         aligned16(x_act) && aligned16(C_act);
}

void launch_ssd_chunk_scan_fused(const SsdChunkScanFusedParams& p, cudaStream_t s) {
  if (p.T_pad <= 0) return;
  if (!ssd_chunk_scan_fused_supported(p.P, p.N, p.dtype, p.x_act, p.C_act, p.ld_act) || !aligned16(p.s_in))
    throw Error("ssd fused chunk scan: unsupported shape or layout");
  if (p.Q < 1 || p.T_pad % p.Q != 0 || p.G < 1 || p.H % p.G != 0) throw Error("ssd fused chunk scan: bad chunking or grouping");
  if (p.T_pad / p.Q > 65535 || p.H > 65535 || p.Q > (int64_t(1) << 30)) throw Error("ssd fused chunk scan: too many chunks or heads");
  if (p.D && !p.x) throw Error("ssd fused chunk scan: the D skip needs x");
  const int wn = p.wn == 2 ? 2 : 1, hb = p.hb == 2 ? 2 : 1;
  if (p.v) {
    if (!p.z || !p.ss || p.ldv % 2 != 0 || (p.v_dtype != DType::BF16 && p.v_dtype != DType::F32))
      throw Error("ssd fused chunk scan: the gated epilogue needs z, ss, an even ldv and v in bf16 or f32");
    if (p.v_dtype == DType::BF16) launch_v<__nv_bfloat16>(p, s, wn, hb);
    else launch_v<float>(p, s, wn, hb);
  } else {
    if (!p.y) throw Error("ssd fused chunk scan: no output");
    launch_v<float>(p, s, wn, hb);
  }
}

}  // namespace mamba
