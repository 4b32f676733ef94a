#pragma once
// One decode layer in one kernel (small models, sm_90): RMSNorm + in_proj, the conv window update + conv +
// SiLU, dt, the selective state update and the gate, and this layer's out_proj, over thread-block clusters.
// One dependent kernel per layer instead of three (docs/CUDA.md).
//
// The grid is `nc` clusters of `cs` blocks; cluster c owns heads [c*hc, (c+1)*hc) with hc*P = 16*cs, so
// every block owns 16 (head, p) rows of the state, all in one head. Before the PDL wait a block loads its
// state rows and conv window into registers and has the bulk-copy (TMA) unit stage its weights in shared
// memory: the in_proj rows of its own x, z and dt and a 2N/cs share of its group's B and C rows (every
// cluster of the group recomputes B and C), and a (D/cs, 16 cs) slice of out_proj. After the wait it
// builds the residual (below), computes its in_proj rows, sends its B and C share to every block of the
// cluster (st.async into their shared memory, counted by their mbarriers), runs the conv and the state
// update for its rows, sends its gated y, and multiplies the cluster's gated y into its D/cs rows of
// out_proj. The grouped RMSNorm's 1/rms is a per-group scalar, so each cluster writes its unnormalised
// partial product and its sum of squares; the next layer's kernel (or decode_finish before the LM head)
// adds the partial products of all clusters in a fixed order, scaled by their group's 1/rms:
// deterministic, no atomics, no grid barrier.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>

#include "kernels/decode_probes.h"
#include "kernels/dtype.h"
#include "kernels/lab.cuh"

namespace mamba {

constexpr int kDecodeLayerRows = 16;  // (head, p) rows of the state per block: a cluster of cs blocks owns 16 cs

#if MAMBA_CUDA_LAB
// Lab build: a block's record (LabHooks::records), kDecodeBlockRec words: word 0 its SM id, word kClkWait the
// globaltimer (ns, low 32 bits) past the PDL wait, the others SM clock cycles since the block started, each
// once the block (thread 0, after the barrier that ends the phase) is past that point.
constexpr int kDecodeBlockRec = 16;
enum DecodeClock : int {
  kClkWaited = 1,  // past the PDL wait
  kClkNorm,        // norm_w staged
  kClkLoads,       // thread 0's residual inputs returned
  kClkSum,         // the block's sum of squares (every thread's inputs returned)
  kClkLaneX,       // the normed x in registers
  kClkWin,         // the in_proj slice staged
  kClkCluster,     // the cluster's blocks all started
  kClkInDots,      // in_proj dots done
  kClkVals,        // the cluster's B and C arrived
  kClkConv,        // conv outputs in shared memory
  kClkState,       // state updated, y computed
  kClkWout,        // the out_proj slice staged
  kClkY,           // the cluster's gated y arrived
  kClkEnd,         // out_proj dots done
  kClkWait,        // globaltimer past the wait (ns, low 32 bits)
};
// Lab trigger points (LabHooks::trigger; production: past the wait): 0 past the wait, 1 with the inputs read,
// 2 once B and C are exchanged, 3 once the gated y is, 4 at the end, 5 at the start. Skip bits: 1 = the
// prologue reads no partial products, 2 = no in_proj dot products, 4 = no state update.
#endif

// The residual entering a layer: r_in (+ the previous layer's out_proj bias) + sum over the previous
// layer's clusters of parts[c] * rsqrt(mean of its group's y^2 + eps); or the token's embedding row.
struct DecodeResidualIn {
  const void* embedding = nullptr;  // (V, D) in the weight dtype: layer 0 reads row step_io[0] instead
  const float* r = nullptr;         // (D)
  const float* parts = nullptr;     // (nc, D) the previous layer's clusters' out_proj partial products
  const float* ss = nullptr;        // (nc) their sums of squares of the gated y
  const float* bias = nullptr;      // (D) the previous layer's out_proj bias, or null
  int nc = 0;                       // clusters of the previous layer
  int clusters_per_group = 1;       // consecutive clusters share a norm group of group_size channels
  int64_t group_size = 0;
  float eps = 1e-5f;  // the grouped norm's
};

struct DecodeLayerParams {
  int64_t D = 0, E = 0, H = 0, P = 0, G = 0, N = 0, K = 0, conv_dim = 0;
  DType wdtype = DType::BF16;
  const int32_t* step_io = nullptr;  // device [token, ring position of this token]
  DecodeResidualIn in;
  float* r_out = nullptr;  // (D) the residual entering this layer (written by block 0)
  float eps = 1e-5f;
  const float* norm_w = nullptr;   // (D)
  const void* in_proj = nullptr;   // (d_in_proj, D): z (E) | x (E) | B (G, N) | C (G, N) | dt (H)
  const float* in_bias = nullptr;  // (d_in_proj) or null
  const float* conv_w = nullptr;   // (conv_dim, K)
  const float* conv_b = nullptr;   // (conv_dim) or null
  float* ring = nullptr;           // (conv_dim, K) conv window ring (conv1d.cuh)
  const float* dt_bias = nullptr;  // (H)
  const float* A = nullptr;        // (H)
  const float* Dskip = nullptr;    // (H)
  float dt_lo = 0.f, dt_hi = 0.f;
  float* state = nullptr;          // (H, P, N)
  const float* gnorm_w = nullptr;  // (E)
  const void* out_proj = nullptr;  // (D, E)
  float* parts_out = nullptr;      // (nc, D) this layer's partial products
  float* ss_out = nullptr;         // (nc)
  // A chain of decode steps in one graph (CudaBackend::step_sample_chain): this kernel belongs to step
  // `step` and does nothing (the state stays as it is) unless step < *live, which a step's sampler lowers
  // when it samples a stop id. Null: a single step. live_early: *live may be read before the PDL wait (the
  // kernel that last wrote it is at least two kernels back: every layer but a step's first), which keeps
  // the read off the critical path.
  const int32_t* live = nullptr;
  int step = 0;
  bool live_early = false;
  // Probes (decode_probes.h), or null: the instance that also writes this layer's dt, each block's part of
  // its head's state and output sums of squares (kDecodeLayerRows rows a part) and the residual's.
  float* probe = nullptr;
  DecodeProbeLayout probe_layout;
  LabHooks lab;  // lab build: trace ([4] inputs read, [5] the last block's start, [6] B and C exchanged,
                 // [7] gated y exchanged), records, trigger points and skip bits above
};

struct DecodeLayerPlan {
  int cs = 0, nc = 0;  // cluster size and count; 0: the shape takes the three-kernel decode
  std::string why;     // the choice, or why none fits
};

// The plan for this shape (and device), or cs = 0. `cluster` > 0: that cluster size if it fits (tests, the lab).
DecodeLayerPlan plan_decode_layer(const DecodeLayerParams& shape, int cluster = 0);
void launch_decode_layer(const DecodeLayerParams& p, const DecodeLayerPlan& plan, cudaStream_t s, bool pdl);

// After the last layer: out = the residual entering the final norm (DecodeResidualIn), for the LM head.
// live/step: as in DecodeLayerParams (null: a single step).
void launch_decode_finish(const DecodeResidualIn& in, int64_t D, float* out, cudaStream_t s, bool pdl, const int32_t* live = nullptr,
                          int step = 0, const LabHooks& lab = {});

}  // namespace mamba
