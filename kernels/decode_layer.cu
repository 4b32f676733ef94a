#include <cstdlib>
#include <string>

#include "engine/error.h"
#include "kernels/decode_layer.cuh"
#include "kernels/dtype.cuh"
#include "kernels/launch.cuh"
#include "kernels/vec16.cuh"

namespace mamba {

namespace {
// 256 threads: 16 (head, p) rows of the state per block, 16 lanes per row, 8 state columns per lane.
constexpr int kThreads = 256, kWarps = kThreads / 32, kRows = kDecodeLayerRows, kTpr = kThreads / kRows, kNJ = 8;
constexpr int kMaxN = kTpr * kNJ, kMaxNC = 8, kMaxCS = 16, kMaxK = 4, kItems = 2;

// Thread-block cluster primitives (sm_90). The arrive/wait pairs split the cluster barrier, so a block
// can arrive early and wait only where it needs the others.
__device__ __forceinline__ void cluster_arrive_relaxed() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("barrier.cluster.arrive.relaxed.aligned;" ::: "memory");
#endif
}
__device__ __forceinline__ void cluster_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("barrier.cluster.wait.acquire.aligned;" ::: "memory");
#endif
}
// Distributed shared memory with transaction barriers: a block's incoming values are counted in bytes by
// an mbarrier in its own shared memory (st.async completes the bytes on the receiver's barrier), so a
// receiver waits for exactly its data and nobody issues a cluster-wide barrier, whose release half
// compiles to a GPU-scope memory fence.
__device__ __forceinline__ void mbar_init(uint64_t* bar, unsigned count) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_u32(bar)), "r"(count) : "memory");
#endif
}
// Makes this thread's mbarrier inits visible to the cluster (ahead of a cluster barrier).
__device__ __forceinline__ void mbar_fence_init() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
#endif
}
__device__ __forceinline__ void mbar_expect_bytes(uint64_t* bar, unsigned bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_u32(bar)), "r"(bytes) : "memory");
#endif
}
__device__ __forceinline__ void mbar_wait(uint64_t* bar, unsigned parity) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "WAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n"
      "@!p bra WAIT;\n"
      "}\n" ::"r"(smem_u32(bar)),
      "r"(parity)
      : "memory");
#endif
}
// Stores v (16 bytes) at `local` (an address of this block's shared-memory layout) in block `rank` of the
// cluster, counted on that block's barrier `bar`.
__device__ __forceinline__ void st_cluster4(const float* local, unsigned rank, float4 v, const uint64_t* bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  unsigned ra, rb;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(ra) : "r"(smem_u32(local)), "r"(rank));
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(rb) : "r"(smem_u32(bar)), "r"(rank));
  asm volatile("st.async.shared::cluster.mbarrier::complete_tx::bytes.v4.f32 [%0], {%1, %2, %3, %4}, [%5];" ::"r"(ra), "f"(v.x), "f"(v.y),
               "f"(v.z), "f"(v.w), "r"(rb)
               : "memory");
#else
  (void)local;
  (void)rank;
  (void)v;
  (void)bar;
#endif
}
// Copies `bytes` (a multiple of 16) from global memory into this block's shared memory with the bulk-copy
// (TMA) unit, counted on `bar`. The weight staging goes this way rather than through ~100 KB of cp.async
// per block: 0.2431-0.2444 against 0.2500 ms per 130m token, measured.
__device__ __forceinline__ void bulk_g2s(void* dst, const void* src, unsigned bytes, uint64_t* bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(smem_u32(dst)), "l"(src),
               "r"(bytes), "r"(smem_u32(bar))
               : "memory");
#else
  (void)dst;
  (void)src;
  (void)bytes;
  (void)bar;
#endif
}

__device__ __forceinline__ float4 fma4(float4 acc, float4 a, float s) {
  return make_float4(acc.x + a.x * s, acc.y + a.y * s, acc.z + a.z * s, acc.w + a.w * s);
}

// Chunk c (4 floats) of the residual entering a layer (DecodeResidualIn). Every input is loaded before
// any is used: one round trip.
template <typename Wt>
__device__ __forceinline__ float4 residual_chunk(const DecodeResidualIn& in, int64_t token, int64_t D, int64_t c) {
  if (in.embedding) {
    const Wt* row = static_cast<const Wt*>(in.embedding) + token * D + 4 * c;
    return make_float4(to_f32(row[0]), to_f32(row[1]), to_f32(row[2]), to_f32(row[3]));
  }
  float ss[kMaxNC];
  float4 part[kMaxNC];
#pragma unroll
  for (int k = 0; k < kMaxNC; ++k) {
    ss[k] = k < in.nc ? in.ss[k] : 0.f;
    part[k] = k < in.nc ? reinterpret_cast<const float4*>(in.parts + k * D)[c] : make_float4(0.f, 0.f, 0.f, 0.f);
  }
  float4 x = reinterpret_cast<const float4*>(in.r)[c];
  if (in.bias) {
    const float4 b = reinterpret_cast<const float4*>(in.bias)[c];
    x = make_float4(x.x + b.x, x.y + b.y, x.z + b.z, x.w + b.w);
  }
  // Clusters [g * cpg, (g + 1) * cpg) share norm group g: 1/rms from the sum of their sums of squares,
  // computed once per group (a division and an rsqrt per cluster were ~0.5 us of dependent math per layer).
  const int cpg = in.clusters_per_group;
  float scale = 0.f;
#pragma unroll
  for (int k = 0; k < kMaxNC; ++k) {
    if (k < in.nc) {
      if (k % cpg == 0) {
        float s = 0.f;
#pragma unroll
        for (int q = 0; q < kMaxNC; ++q)
          if (q >= k && q < k + cpg) s += ss[q];
        scale = rsqrtf(s / float(in.group_size) + in.eps);
      }
      x = fma4(x, part[k], scale);
    }
  }
  return x;
}

// Dots of up to 8 rows of w (row j at first + j * stride, `row_vecs` 16-byte vectors per row; 1 <= n <= 8
// rows, the sums of rows j >= n are garbage) with this lane's NV vectors of the input (vectors i >= nvec
// count 0). Each vector index loads all 8 rows at once, and a butterfly reduction (9 shuffles, not 5 per
// row) leaves row j's sum in lanes 4j .. 4j + 3. No load or sum is conditional: rows past n
// reload row `first` and vectors past the row its last one, so the 8 loads issue together and the 8 rows'
// sums interleave; the predicated form compiled to a branch per row and vector, each load waited on
// before the next (1.7 us for the 130m in_proj slice).
template <typename Wt, int NV, int Q>
__device__ __forceinline__ float dot8_rows(const uint4* w, int64_t row_vecs, int first, int stride, int n, const float4 (&x)[NV][Q],
                                           int64_t nvec, int lane) {
  float acc[8];
#pragma unroll
  for (int j = 0; j < 8; ++j) acc[j] = 0.f;
#pragma unroll
  for (int v = 0; v < NV; ++v) {
    const int i = lane + 32 * v, ic = i < row_vecs ? i : int(row_vecs) - 1;
    uint4 wv[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) wv[j] = lds_u4(w + (first + (j < n ? j : 0) * stride) * row_vecs + ic);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const float d = dot16r(wv[j], x[v], static_cast<Wt*>(nullptr));
      acc[j] += i < nvec ? d : 0.f;
    }
  }
  // Lane bit 4 picks rows 4..7 or 0..3 to keep, bit 3 the pair within, bit 2 the row.
  const bool b4 = lane & 16, b3 = lane & 8, b2 = lane & 4;
  float h[4], q[2];
#pragma unroll
  for (int k = 0; k < 4; ++k) h[k] = (b4 ? acc[k + 4] : acc[k]) + __shfl_xor_sync(0xffffffffu, b4 ? acc[k] : acc[k + 4], 16);
#pragma unroll
  for (int k = 0; k < 2; ++k) q[k] = (b3 ? h[k + 2] : h[k]) + __shfl_xor_sync(0xffffffffu, b3 ? h[k] : h[k + 2], 8);
  float a = (b2 ? q[1] : q[0]) + __shfl_xor_sync(0xffffffffu, b2 ? q[0] : q[1], 4);
  a += __shfl_xor_sync(0xffffffffu, a, 2);
  a += __shfl_xor_sync(0xffffffffu, a, 1);
  return a;
}

// Shared memory: five mbarriers (in the first 64 bytes), then in floats: xin (D) | the group's B and C from the whole
// cluster (2N) | conv outputs (B | C | x) | per block of the cluster its 16 gated y * gnorm_w and its sum
// of squares of the gated y (kYSlot each) | this block's gated y^2 (16) | scratch (32) | in_proj bias of
// the block's rows | its in_proj results (nr); then the out_proj slice (D / cs rows x 16 cs columns) and
// the in_proj slice (nr rows x D), in the weight dtype.
constexpr int kYSlot = kRows + 4;  // 16 y * gnorm_w, the sum of squares, padding to 16 bytes
struct Layout {
  int64_t xin, vals, conv, ywv, ygl, scratch, inb, mine, floats;
};
__host__ __device__ inline int64_t r4(int64_t n) { return (n + 3) & ~int64_t(3); }
// A block's in_proj rows: its share of the group's B and C (bcpb = 2N / cs), then the x and z rows of its
// 16 (head, p) rows and its head's dt row. Only the B and C shares travel between blocks.
__host__ __device__ inline int64_t block_rows(int64_t bcpb) { return bcpb + 2 * kRows + 1; }
__host__ __device__ inline Layout layout(int64_t D, int64_t N, int64_t nr) {
  Layout l{};
  l.xin = 16;  // after the barriers
  l.vals = l.xin + r4(D);
  l.conv = l.vals + r4(2 * N);
  l.ywv = l.conv + r4(2 * N + kRows);
  l.ygl = l.ywv + kYSlot * kMaxCS;
  l.scratch = l.ygl + kRows;
  l.inb = l.scratch + 32;
  l.mine = l.inb + r4(nr);
  l.floats = l.mine + r4(nr);
  return l;
}

// REC (lab build only): the instance that records per-block clocks (LabHooks::records). PROBE: the instance
// that writes probes (DecodeLayerParams::probe).
template <typename Wt, int NV, bool REC, bool PROBE>
__global__ void __launch_bounds__(kThreads, 2) decode_layer_kernel(DecodeLayerParams p, int cs, int bcpb, int cpg) {
  constexpr int EPV = 16 / int(sizeof(Wt)), Q = EPV / 4;
  constexpr int NVO = (kRows * kMaxCS / EPV + 31) / 32;  // out_proj slice vectors per lane
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int cid = int(blockIdx.x) / cs, rank = int(blockIdx.x) % cs;  // clusters are (cs, 1, 1)
  const int64_t D = p.D, E = p.E, P = p.P, N = p.N, K = p.K, GN = p.G * p.N;
  const int64_t cols = int64_t(kRows) * cs, hc = cols / P, h0 = cid * hc, g = h0 / (p.H / p.G);
  const int nr = int(block_rows(bcpb));
  const int64_t ropb = D / cs, row0 = int64_t(rank) * kRows, hb = row0 / P;  // this block's (head, p) rows and head
  // This block's in_proj rows: B | C share (at the same place in every cluster of the group, so they come
  // out bit for bit alike), x (16), z (16), dt (1).
  auto in_row = [&](int64_t i) -> int64_t {
    if (i < bcpb) {
      const int64_t b = int64_t(rank) * bcpb + i;
      return b < N ? 2 * E + g * N + b : 2 * E + GN + g * N + (b - N);
    }
    if (i < bcpb + kRows) return E + h0 * P + row0 + (i - bcpb);
    if (i < bcpb + 2 * kRows) return h0 * P + row0 + (i - bcpb - kRows);
    return 2 * E + 2 * GN + h0 + hb;
  };
  const Layout lay = layout(D, N, nr);
  extern __shared__ __align__(16) float sm[];
  float* xin = sm + lay.xin;
  float* vals = sm + lay.vals;
  float* conv_out = sm + lay.conv;
  float* ywv = sm + lay.ywv;
  float* ygl = sm + lay.ygl;
  float* scratch = sm + lay.scratch;
  float* s_inb = sm + lay.inb;
  float* mine = sm + lay.mine;
  uint4* w_out = reinterpret_cast<uint4*>(sm + lay.floats);  // (ropb, cols)
  const int64_t ovec = cols / EPV;
  uint4* w_in = w_out + ropb * ovec;  // (nr, D)
  const int64_t nvec = D / EPV;
  uint64_t* bar_vals = reinterpret_cast<uint64_t*>(sm);  // the cluster's B and C have arrived
  uint64_t* bar_y = bar_vals + 1;                        // the cluster's gated y and sums of squares have
  uint64_t* bar_norm = bar_vals + 2;                     // norm_w is in xin
  uint64_t* bar_win = bar_vals + 3;                      // the in_proj slice is in
  uint64_t* bar_wout = bar_vals + 4;                     // the out_proj slice is in

  // ---- Before the wait: everything this layer reads that the previous kernel does not write. ----
  lab_trace_start(p.lab);
  lab_trace_mark(p.lab, 5);  // the last block's start
#if MAMBA_CUDA_LAB
  // REC: this block's record (kDecodeBlockRec words), the SM id, then a clock per phase (DecodeClock).
  unsigned* rec = REC ? p.lab.records + int64_t(blockIdx.x) * kDecodeBlockRec : nullptr;
  long long clk0 = 0;
  auto stamp = [&](int w) {
    if constexpr (REC)
      if (tid == 0) rec[w] = unsigned(clock64() - clk0);
  };
  if constexpr (REC) {
    if (tid == 0) {
      unsigned id;
      asm volatile("mov.u32 %0, %%smid;" : "=r"(id));
      rec[0] = id;
      clk0 = clock64();
    }
  }
#define STAMP(w) stamp(w)
#else
#define STAMP(w) ((void)0)
#endif
  if (lab_trigger(p.lab, 5, false)) pdl_launch_dependents();
  const bool chained = p.live != nullptr;
  const int live_early = chained && p.live_early ? __ldcg(p.live) : 0;  // used just before the wait
  if (tid < nr) s_inb[tid] = p.in_bias ? p.in_bias[in_row(tid)] : 0.f;
  // This thread's state row (row j of the block's 16, in head hb) and columns lr + 16 jj.
  const int j = tid / kTpr, lr = tid % kTpr;
  const int64_t grow = h0 * P + row0 + j;
  float* state = p.state + grow * N + lr;  // this thread's columns: state[kTpr * jj]
  float s[kNJ];
#pragma unroll
  for (int jj = 0; jj < kNJ; ++jj) s[jj] = lr + kTpr * jj < N ? state[kTpr * jj] : 0.f;
  const float A = p.A[h0 + hb], Dh = p.Dskip[h0 + hb], dt_bias = p.dt_bias[h0 + hb], gw = p.gnorm_w[grow];
  // Conv items: the group's B (N) and C (N) channels, then this block's 16 x channels. All but this
  // token's input is known before the wait: bias + the window's taps, summed into pre[u]. The whole ring
  // row is loaded (not the slots the ring position picks), so no load waits for the position's.
  const int64_t n_items = 2 * N + kRows;
  const int pos = p.step_io[1];
  int cch[kItems];  // 32-bit: conv_dim * K is far below 2^31
  float pre[kItems], cw_last[kItems];
  float cw[kItems][kMaxK], ring[kItems][kMaxK];
#pragma unroll
  for (int u = 0; u < kItems; ++u) {
    const int64_t i = tid + int64_t(u) * kThreads;
    cch[u] = int(i < N ? E + g * N + i : i < 2 * N ? E + GN + g * N + (i - N) : h0 * P + int64_t(rank) * kRows + (i - 2 * N));
#pragma unroll
    for (int k = 0; k < kMaxK; ++k) {
      cw[u][k] = i < n_items && k < K ? p.conv_w[cch[u] * int(K) + k] : 0.f;
      ring[u][k] = i < n_items && k < K ? p.ring[cch[u] * int(K) + k] : 0.f;
    }
    pre[u] = i < n_items && p.conv_b ? p.conv_b[cch[u]] : 0.f;
  }
  if (tid == 0) {
    for (int b = 0; b < 5; ++b) mbar_init(bar_vals + b, 1);
    mbar_fence_init();
    mbar_expect_bytes(bar_vals, unsigned(sizeof(float) * 2 * N));
    mbar_expect_bytes(bar_y, unsigned(sizeof(float) * kYSlot * cs));
    mbar_expect_bytes(bar_norm, unsigned(sizeof(float) * D));
    mbar_expect_bytes(bar_win, unsigned(int64_t(nr) * D * int64_t(sizeof(Wt))));
    mbar_expect_bytes(bar_wout, unsigned(ropb * cols * int64_t(sizeof(Wt))));
  }
  cluster_arrive_relaxed();  // paired with the wait before the first remote store: every block has started
                             // and its barriers are initialised
  __syncthreads();           // this block's barriers are, before its own copies use them
  if (warp == 0) {
    // Lane 0: norm_w; lanes 1..4: the four contiguous pieces of this block's in_proj rows (B or C share,
    // x, z, dt); every lane: rows of the out_proj slice.
    if (lane == 0) bulk_g2s(xin, p.norm_w, unsigned(sizeof(float) * D), bar_norm);
    if (lane >= 1 && lane <= 4) {
      const int64_t lo = lane == 1 ? 0 : lane == 2 ? bcpb : lane == 3 ? bcpb + kRows : bcpb + 2 * kRows;
      const int64_t n = lane == 1 ? bcpb : lane == 4 ? 1 : kRows;
      bulk_g2s(w_in + lo * nvec, static_cast<const char*>(p.in_proj) + in_row(lo) * nvec * 16, unsigned(n * nvec * 16), bar_win);
    }
    const char* src = static_cast<const char*>(p.out_proj) + (int64_t(rank) * ropb * E + h0 * P) * int64_t(sizeof(Wt));
    for (int64_t r = lane; r < ropb; r += 32) bulk_g2s(w_out + r * ovec, src + r * E * int64_t(sizeof(Wt)), unsigned(ovec * 16), bar_wout);
  }
#pragma unroll
  for (int u = 0; u < kItems; ++u) {
    // Window slot k (oldest first) is ring slot (pos + 1 + k) % K; tap K - 1 takes this token's input.
    float last = 0.f;
#pragma unroll
    for (int k = 0; k < kMaxK; ++k) {
      if (k == K - 1) last = cw[u][k];
      if (k >= K - 1) continue;
      const int slot = (pos + 1 + k) % int(K);
      float v = ring[u][0];
#pragma unroll
      for (int q = 1; q < kMaxK; ++q) v = slot == q ? ring[u][q] : v;
      pre[u] += cw[u][k] * v;
    }
    cw_last[u] = last;
  }
  // The ring takes each input once: x channels from their block, B and C from rank 0 of the group's
  // first cluster. No block reads that slot in this step.
  const bool bc_writer = rank == 0 && cid % cpg == 0;
  // A halted step of a chain does nothing. The staging copies still land in this block's shared memory and
  // the cluster's barrier arrival is pending, so it waits for both before leaving.
  auto leave = [&] {
    mbar_wait(bar_norm, 0);
    mbar_wait(bar_win, 0);
    mbar_wait(bar_wout, 0);
    cluster_wait();
  };
  if (chained && p.live_early && p.step >= live_early) {
    leave();
    return;
  }
  pdl_wait();
  if (lab_trigger(p.lab, 0, true)) pdl_launch_dependents();
  lab_trace_waited(p.lab);
#if MAMBA_CUDA_LAB
  STAMP(kClkWaited);
  if constexpr (REC)
    if (tid == 0) rec[kClkWait] = unsigned(lab_global_ns());
#endif

  // ---- The residual entering this layer, its RMSNorm: xin = x * norm_w, 1/rms on the results. ----
  // L2, not L1: in a chain the token was written by the previous step's sampler, and this block's read
  // of the ring position before the wait may have brought the same line into L1. *live is read with it.
  const int64_t token = p.in.embedding ? __ldcg(p.step_io) : 0;
  if (chained && !p.live_early && p.step >= __ldcg(p.live)) {
    leave();
    return;
  }
  mbar_wait(bar_norm, 0);
  STAMP(kClkNorm);
  float ss = 0.f;
  for (int64_t c = tid; c < D / 4; c += kThreads) {
    DecodeResidualIn in = p.in;
    if (lab_skip(p.lab, 1)) in.nc = 0;
    const float4 x = residual_chunk<Wt>(in, token, D, c);
    if (blockIdx.x == 0) reinterpret_cast<float4*>(p.r_out)[c] = x;
    const float4 w = lds_f4(xin + 4 * c);
    reinterpret_cast<float4*>(xin)[c] = make_float4(x.x * w.x, x.y * w.y, x.z * w.z, x.w * w.w);
    ss += x.x * x.x + x.y * x.y + x.z * x.z + x.w * x.w;
  }
  STAMP(kClkLoads);             // after the loop's shared-memory stores, which wait for its loads
  ss = block_sum(ss, scratch);  // its barriers also publish xin
  STAMP(kClkSum);
  if constexpr (PROBE)
    if (blockIdx.x == 0 && tid == 0) p.probe[p.probe_layout.resid()] = ss;
  const float scale = rsqrtf(ss / float(D) + p.eps);
  float4 xr[NV][Q];
  load_lane_vectors(xr, xin, nvec, lane);
  STAMP(kClkLaneX);
  lab_trace_mark(p.lab, 4);
  if (lab_trigger(p.lab, 1, false)) pdl_launch_dependents();
  mbar_wait(bar_win, 0);
  STAMP(kClkWin);
  cluster_wait();
  STAMP(kClkCluster);

  // ---- in_proj: each warp takes rows warp + 8 j, eight at a time. ----
  for (int base = 0; base < nr; base += kWarps * 8) {
    const int first = base + warp, n = first < nr ? (nr - first + kWarps - 1) / kWarps : 0;
    if (n == 0) continue;
    const float a = dot8_rows<Wt>(w_in, nvec, first, kWarps, n < 8 ? n : 8, xr, lab_skip(p.lab, 2) ? 0 : nvec, lane);
    const int j = lane >> 2, r = first + j * kWarps;
    if ((lane & 3) == 0 && j < n) mine[r] = scale * a + s_inb[r];
  }
  __syncthreads();
  STAMP(kClkInDots);
  // Every block gets this block's share of B and C, 16 bytes per store.
  for (int t = tid; t < cs * (bcpb / 4); t += kThreads) {
    const int d = t / (bcpb / 4), q = t - d * (bcpb / 4);
    st_cluster4(vals + rank * bcpb + 4 * q, unsigned(d), *reinterpret_cast<const float4*>(mine + 4 * q), bar_vals);
  }
  mbar_wait(bar_vals, 0);
  STAMP(kClkVals);
  lab_trace_mark(p.lab, 6);
  if (lab_trigger(p.lab, 2, false)) pdl_launch_dependents();

  // ---- Conv + SiLU, dt, the state update, y = (S C + D x) * silu(z). ----
  {
    float in[kItems];
#pragma unroll
    for (int u = 0; u < kItems; ++u) {
      const int64_t i = tid + int64_t(u) * kThreads;
      in[u] = i < n_items ? (i < 2 * N ? vals[i] : mine[bcpb + (i - 2 * N)]) : 0.f;
    }
#pragma unroll
    for (int u = 0; u < kItems; ++u) {
      const int64_t i = tid + int64_t(u) * kThreads;
      if (i < n_items) {
        conv_out[i] = silu_f(pre[u] + cw_last[u] * in[u]);
        if (i >= 2 * N || bc_writer) p.ring[cch[u] * int(K) + int(pos)] = in[u];
      }
    }
  }
  const float dt_raw = mine[bcpb + 2 * kRows], z = mine[bcpb + kRows + j];
  __syncthreads();
  STAMP(kClkConv);
  const float dt = softplus_clamp(dt_raw + dt_bias, p.dt_lo, p.dt_hi);
  {
    const float x = conv_out[2 * N + j], decay = expf(dt * A), dx = dt * x;
    float acc = 0.f, sq = 0.f;
#pragma unroll
    for (int jj = 0; jj < kNJ; ++jj) {
      const int64_t n = lr + kTpr * jj;
      if (n < N && !lab_skip(p.lab, 4)) {
        s[jj] = decay * s[jj] + dx * conv_out[n];
        acc += s[jj] * conv_out[N + n];
        if constexpr (PROBE) sq += s[jj] * s[jj];
        state[kTpr * jj] = s[jj];
      }
    }
#pragma unroll
    for (int o = kTpr / 2; o > 0; o >>= 1) {
      acc += __shfl_xor_sync(0xffffffffu, acc, o);
      if constexpr (PROBE) sq += __shfl_xor_sync(0xffffffffu, sq, o);
    }
    if (lr == 0) {
      const float yu = acc + Dh * x, y = yu * silu_f(z);
      ygl[j] = y * y;
      mine[j] = y * gw;
      if constexpr (PROBE) {  // scratch is free again: block_sum's last reads were several barriers ago
        scratch[j] = sq;
        scratch[kRows + j] = yu * yu;
      }
    }
  }
  __syncthreads();
  STAMP(kClkState);
  if (tid == 0) {
    float q = 0.f;
#pragma unroll
    for (int r = 0; r < kRows; ++r) q += ygl[r];
    mine[kRows] = q;
    mine[kRows + 1] = mine[kRows + 2] = mine[kRows + 3] = 0.f;
    if constexpr (PROBE) {
      const DecodeProbeLayout& lay = p.probe_layout;
      const int64_t head = h0 + hb, part = (row0 - hb * P) / kRows;
      float s2 = 0.f, y2 = 0.f;
#pragma unroll
      for (int r = 0; r < kRows; ++r) s2 += scratch[r], y2 += scratch[kRows + r];
      p.probe[lay.state(head, part)] = s2;
      p.probe[lay.y(head, part)] = y2;
      if (part == 0) p.probe[lay.dt() + head] = dt;
    }
  }
  __syncthreads();
  // Every block gets this block's slot: its 16 gated y * gnorm_w and its sum of squares of the gated y.
  if (tid < cs * (kYSlot / 4)) {
    const int d = tid / (kYSlot / 4), q = tid - d * (kYSlot / 4);
    st_cluster4(ywv + rank * kYSlot + 4 * q, unsigned(d), *reinterpret_cast<const float4*>(mine + 4 * q), bar_y);
  }
  mbar_wait(bar_wout, 0);
  STAMP(kClkWout);
  mbar_wait(bar_y, 0);
  STAMP(kClkY);
  lab_trace_mark(p.lab, 7);
  if (lab_trigger(p.lab, 3, false)) pdl_launch_dependents();

  // ---- out_proj: rows [rank * ropb, +ropb) over the cluster's columns, unnormalised. ----
  float4 yr[NVO][Q];
#pragma unroll
  for (int v = 0; v < NVO; ++v) {
    const int64_t i = lane + 32 * v;
    // Column i * EPV + 4 q lies in block (i * EPV) / 16's slot: EPV divides 16.
#pragma unroll
    for (int q = 0; q < Q; ++q)
      yr[v][q] = i < ovec ? lds_f4(ywv + (i * EPV / kRows) * kYSlot + (i * EPV) % kRows + 4 * q) : make_float4(0.f, 0.f, 0.f, 0.f);
  }
  float* out = p.parts_out + int64_t(cid) * D + rank * ropb;
  for (int base = 0; base < ropb; base += kWarps * 8) {
    const int first = base + warp, n = first < ropb ? int((ropb - first + kWarps - 1) / kWarps) : 0;
    if (n == 0) continue;
    const float a = dot8_rows<Wt>(w_out, ovec, first, kWarps, n < 8 ? n : 8, yr, ovec, lane);
    const int j = lane >> 2;
    if ((lane & 3) == 0 && j < n) out[first + j * kWarps] = a;
  }
#if MAMBA_CUDA_LAB
  if constexpr (REC) {
    __syncthreads();
    STAMP(kClkEnd);
  }
#endif
#undef STAMP
  if (rank == 0 && tid == 0) {
    float q = 0.f;
    for (int r = 0; r < cs; ++r) q += ywv[r * kYSlot + kRows];
    p.ss_out[cid] = q;
  }
  if (lab_trigger(p.lab, 4, false)) pdl_launch_dependents();
  lab_trace_end(p.lab);
}

template <typename Wt>
__global__ void __launch_bounds__(kThreads)
    decode_finish_kernel(DecodeResidualIn in, int64_t D, float* out, const int32_t* live, int step, LabHooks lab) {
  lab_trace_start(lab);
  if (live && step >= __ldcg(live)) return;  // written at least two kernels back (DecodeLayerParams::live_early)
  pdl_wait();
  pdl_launch_dependents();
  lab_trace_waited(lab);
  for (int64_t c = threadIdx.x; c < D / 4; c += kThreads) reinterpret_cast<float4*>(out)[c] = residual_chunk<Wt>(in, 0, D, c);
  lab_trace_end(lab);
}

using Kernel = void (*)(DecodeLayerParams, int, int, int);

template <typename Wt, bool REC, bool PROBE>
Kernel pick_typed(int64_t D) {
  constexpr int EPV = 16 / int(sizeof(Wt));
  if (D % EPV != 0) return nullptr;
  const int64_t per_lane = (D / EPV + 31) / 32;
  return per_lane <= 3   ? decode_layer_kernel<Wt, 3, REC, PROBE>
         : per_lane <= 4 ? decode_layer_kernel<Wt, 4, REC, PROBE>
         : per_lane <= 8 ? decode_layer_kernel<Wt, 8, REC, PROBE>
                         : nullptr;
}

template <typename Wt>
Kernel pick_instance(int64_t D, bool rec, bool probe) {
#if MAMBA_CUDA_LAB
  if (rec) return probe ? pick_typed<Wt, true, true>(D) : pick_typed<Wt, true, false>(D);
#else
  (void)rec;
#endif
  return probe ? pick_typed<Wt, false, true>(D) : pick_typed<Wt, false, false>(D);
}

// rec: the lab's recording instance (LabHooks::records set); probe: the probe-writing one.
Kernel pick(DType dt, int64_t D, bool rec = false, bool probe = false) {
  switch (dt) {
    case DType::BF16: return pick_instance<__nv_bfloat16>(D, rec, probe);
    case DType::F16: return pick_instance<__half>(D, rec, probe);
    case DType::F32: return pick_instance<float>(D, rec, probe);
  }
  return nullptr;
}

struct Geometry {
  int64_t cols = 0, hc = 0, nc = 0, bcpb = 0, nr = 0, cpg = 0;
  size_t smem = 0;
};

// Call only when 16 cs is a multiple of P (whole heads per cluster).
Geometry geometry(const DecodeLayerParams& p, int cs) {
  Geometry g;
  g.cols = int64_t(kRows) * cs;
  g.hc = g.cols / p.P;
  g.nc = p.H / g.hc;
  g.bcpb = 2 * p.N / cs;
  g.nr = block_rows(g.bcpb);
  g.cpg = (p.H / p.G) / g.hc;
  const size_t ws = dtype_size(p.wdtype);
  g.smem = sizeof(float) * size_t(layout(p.D, p.N, g.nr).floats) + size_t(p.D / cs * g.cols) * ws + size_t(g.nr * p.D) * ws;
  return g;
}

void set_attributes(Kernel k, int cs, size_t smem) {
  if (cs > 8) CUDA_CHECK(cudaFuncSetAttribute(k, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
  if (smem > 48 * 1024) CUDA_CHECK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
}

cudaLaunchConfig_t cluster_config(unsigned blocks, int cs, size_t smem, cudaLaunchAttribute (&attr)[2], bool pdl) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(blocks);
  cfg.blockDim = dim3(kThreads);
  cfg.dynamicSmemBytes = smem;
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = unsigned(cs);
  attr[0].val.clusterDim.y = 1;
  attr[0].val.clusterDim.z = 1;
  attr[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[1].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = pdl ? 2 : 1;
  return cfg;
}
}  // namespace

DecodeLayerPlan plan_decode_layer(const DecodeLayerParams& p, int forced) {
  DecodeLayerPlan none;
  const Kernel k = pick(p.wdtype, p.D);
  if (!k || p.N < 1 || p.N > kMaxN || p.K < 1 || p.K > kMaxK || p.G < 1 || p.H % p.G != 0 || p.P < 1 || p.E != p.H * p.P || p.D % 4 != 0) {
    none.why = "shape";
    return none;
  }
  int dev = 0, major = 0, smem_max = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  CUDA_CHECK(cudaDeviceGetAttribute(&smem_max, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  if (major < 9) {
    none.why = "no thread-block clusters before sm_90";
    return none;
  }
  for (int cs : {16, 8, 4, 2}) {
    if (forced && cs != forced) continue;
    const std::string tag = "cs=" + std::to_string(cs) + ": ";
    // Whole heads per cluster, one head per block, B and C split evenly into 16-byte shares within B or C.
    if ((int64_t(kRows) * cs) % p.P != 0 || p.P % kRows != 0 || (2 * p.N) % cs != 0 || (2 * p.N / cs) % 4 != 0 ||
        p.N % (2 * p.N / cs) != 0) {
      none.why += tag + "heads do not split; ";
      continue;
    }
    const Geometry g = geometry(p, cs);
    if (p.H % g.hc != 0 || g.nc > kMaxNC || (p.H / p.G) % g.hc != 0 || p.D % cs != 0 || p.D / cs > 1024) {
      none.why += tag + "heads do not split; ";
      continue;
    }
    if (g.smem > size_t(smem_max)) {
      none.why += tag + std::to_string(g.smem / 1024) + " KB of shared memory; ";
      continue;
    }
    set_attributes(k, cs, g.smem);
    cudaLaunchAttribute attr[2];
    cudaLaunchConfig_t cfg = cluster_config(unsigned(g.nc * cs), cs, g.smem, attr, false);
    int active = 0;
    const cudaError_t e = cudaOccupancyMaxActiveClusters(&active, k, &cfg);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      none.why += tag + cudaGetErrorString(e) + "; ";
      continue;
    }
    if (active < g.nc) {
      none.why += tag + std::to_string(active) + " clusters fit, " + std::to_string(g.nc) + " needed; ";
      continue;
    }
    DecodeLayerPlan plan;
    plan.cs = cs;
    plan.nc = int(g.nc);
    plan.why = tag + std::to_string(g.nc) + " clusters (" + std::to_string(active) + " fit), " + std::to_string(g.nr) +
               " in_proj rows per block, " + std::to_string(g.smem / 1024) + " KB shared";
    return plan;
  }
  none.cs = none.nc = 0;
  return none;
}

void launch_decode_layer(const DecodeLayerParams& p, const DecodeLayerPlan& plan, cudaStream_t s, bool pdl) {
#if MAMBA_CUDA_LAB
  const bool rec = p.lab.records != nullptr;
#else
  const bool rec = false;
#endif
  const Kernel k = plan.cs > 0 ? pick(p.wdtype, p.D, rec, p.probe != nullptr) : nullptr;
  if (!k) throw Error("decode_layer: no plan for this shape");
  const Geometry g = geometry(p, plan.cs);
  set_attributes(k, plan.cs, g.smem);
  cudaLaunchAttribute attr[2];
  cudaLaunchConfig_t cfg = cluster_config(unsigned(g.nc * plan.cs), plan.cs, g.smem, attr, pdl);
  cfg.stream = s;
  cuda_check(cudaLaunchKernelEx(&cfg, k, p, plan.cs, int(g.bcpb), int(g.cpg)), "decode_layer_kernel", __FILE__, __LINE__);
}

void launch_decode_finish(const DecodeResidualIn& in, int64_t D, float* out, cudaStream_t s, bool pdl, const int32_t* live, int step,
                          const LabHooks& lab) {
  // The weight dtype only matters for the embedding row, which this kernel never reads.
  launch_kernel(decode_finish_kernel<float>, dim3(1), dim3(kThreads), 0, s, pdl, "decode_finish_kernel", in, D, out, live, step, lab);
}

}  // namespace mamba
