#pragma once
// The CUDA backend class, visible to tests and tools for the extensions beyond Backend:
// on-device sampling, switches for the decode graph and PDL, and the event-timer profiler.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/sampler.h"
#include "kernels/cuda_memory.h"
#include "kernels/decode_layer.cuh"
#include "kernels/dtype.h"
#include "kernels/gemv.cuh"
#include "kernels/profiler.h"
#include "kernels/sampling.cuh"
#include "kernels/ssd_chunked.h"

namespace mamba {

class CudaBackend final : public Backend {
 public:
  CudaBackend(std::shared_ptr<const Model> model, const BackendOptions& opt);
  ~CudaBackend() override;

  std::string name() const override;
  const Model& model() const override { return *m_model; }
  void reset_state() override;
  void set_state(const State& s) override;
  State get_state() const override;
  int64_t n_tokens() const override { return m_n_tokens; }
  void forward(std::span<const int32_t> tokens, const ForwardOptions& opt, float* logits) override;
  // `logits` may be null when the caller samples on the device afterwards (sample_last).
  void step(int32_t token, float* logits, ProbeSink* probes = nullptr) override;
  uint64_t weight_bytes() const override;
  std::string weights_dtype() const override { return dtype_name(m_wdt); }

  // Decode one token and sample the next on the GPU: only the id crosses the bus.
  // `uniform` is the caller's draw in [0, 1); repeat_penalty must be 1 (it needs the host history).
  std::optional<int32_t> step_sample(int32_t token, const SamplerParams& sp, double uniform);
  // The logits of the last position of the last forward/step/chain, copied to the host.
  std::vector<float> last_logits() const;
  void last_logits(std::span<float> out) const override;
  // Samples from the logits of the last position of the last forward/step, on the GPU.
  std::optional<int32_t> sample_last(const SamplerParams& sp, double uniform);
  // On the device (sample_last, then chains of step_sample_chain or single step_sample) where the request
  // and settings allow: no alternatives, no probabilities, no probes, no repetition penalty. Otherwise the
  // host loop of Backend::decode.
  int64_t decode(const DecodeRequest& req, Sampler& sampler, std::span<const int32_t> history, const DecodeCallback& on_token) override;
  std::string decode_path(const SamplerParams& sp) const override;
  // Chains of decode steps in one graph (the one-kernel-per-layer decode only): each step's sampler writes
  // the next step's token on the device, a stop id halts the steps after it, and the host waits once per
  // chain. MAMBA_CUDA_CHAIN=n (read at construction; 0 = off) or set_decode_chain sets the length.
  int decode_chain() const;
  std::vector<int32_t> step_sample_chain(int32_t token, const SamplerParams& sp, std::span<const double> uniforms,
                                         std::span<const int32_t> stop);
  static constexpr int kDefaultChain = 32, kMaxChain = 64, kMaxStop = 8;
  void set_decode_chain(int steps);  // also drops the captured chain graph
  // Chain timeline (measurement): with it on, each chain records per step kTraceSlots stamps for each of
  // its layers, the finish kernel, the LM head and the sampler (n_layer + 3 kernels), as decode_trace_step;
  // chain_trace() holds the last chain's.
  void set_chain_trace(bool on);
  const std::vector<uint64_t>& chain_trace() const { return m_chain_trace_host; }
  // With either trace on, the one-kernel decode also records per block its SM id and its phase clocks
  // (kDecodeBlockRec words, decode_layer.cuh): (steps, n_layer, kSmidStride, kDecodeBlockRec) for a chain,
  // (n_layer, kSmidStride, kDecodeBlockRec) for a single step; decode_smid() copies them out.
  static constexpr int64_t kSmidStride = 128;
  std::vector<uint32_t> decode_smid() const;

  // Tuning and measurement.
  DType weight_dtype() const { return m_wdt; }
  void set_use_graph(bool on);
  void set_pdl(bool on);  // also drops the captured graphs (recaptured on next use)
  bool pdl() const { return m_pdl; }
  // Decode in one kernel per layer where the shape allows (decode_layer.cuh: thread-block clusters; small
  // models on sm_90). On by default; off runs three kernels per layer. MAMBA_CUDA_LAYER_FUSED=0 (read when
  // a graph is captured) turns it off too, MAMBA_CUDA_LAYER_CS=n (read here) forces a cluster size.
  void set_decode_fused(bool on);  // also drops the captured graphs
  bool decode_fused() const;
  const DecodeLayerPlan& decode_layer_plan() const { return m_layer_plan; }
  void set_profiler(OpProfiler* p) { m_prof = p; }  // non-null: ops are timed one by one (no graph)
  // Device time per decode step measured over `n` graph replays back to back (the state advances).
  double decode_graph_ms(int n);
  // Decode timeline (measurement): with tracing on, the graph records per kernel (3 per layer, then the
  // LM head; one kernel per layer uses the first slot of each layer and the finish kernel the second of
  // the last) kTraceSlots %globaltimer stamps in ns (launch.cuh): first block start, first and last
  // block past the PDL wait, last block end, last block with its inputs read (prologue done), last
  // block with its weights in shared memory (0 where a kernel has no such step).
  // decode_trace_step() runs one step and returns them (kTraceSlots per kernel).
  static constexpr int kTraceSlots = 8;
  void set_decode_trace(bool on);
  std::vector<uint64_t> decode_trace_step();

 private:
  struct DevLayer {
    DeviceBuffer norm, in_proj, in_bias, conv_w, conv_b, dt_bias, A, D, gnorm, out_proj, out_bias;
  };
  struct StepIO {  // pinned on the host, mirrored on the device; copied in by the decode graph
    int32_t token = 0;
    int32_t pos = 0;
    SampleConfig sample;
    int32_t out_id = 0;
  };
  // A decode chain's inputs and outputs, pinned on the host and mirrored on the device: copied in at the
  // graph's start up to `ids`, copied out whole at its end.
  struct ChainIO {
    SampleConfig sample;  // u unused: one draw per step below
    int32_t live = 0;     // steps k < live run; a step that samples a stop id lowers it to k + 1
    int32_t n_stop = 0;
    int32_t stop[kMaxStop] = {};
    float u[kMaxChain] = {};
    int32_t slot[kMaxChain][2] = {};  // per step: {token, ring position}; tokens after the first come from the samplers
    int32_t ids[kMaxChain] = {};      // the sampled ids
  };
  // Chain: a chain of steps with the sampler after each LM head; ChainGreedy: the LM head takes the
  // argmax itself (GemvParams::argmax_ws), with no sampler.
  enum class StepMode { Logits, Sample, Chain, ChainGreedy };
  enum class LogitRows { None, Last, All };

  void upload_weights();
  DeviceBuffer upload(const std::vector<float>& t, DType dt, const char* what);
  void check_ids(std::span<const int32_t> ids) const;
  void reserve_prefill(int64_t T_pad);
  void prefill_segment(const int32_t* ids, int64_t T, bool chunked, int64_t Q, float* out, LogitRows want);
  void enqueue_step(cudaStream_t s, StepMode mode, bool pdl);
  // step_io: device {token, ring position}; after_kernel: layer 0 follows a kernel (PDL applies);
  // live/step: DecodeLayerParams (null for a single step). trace: null, or the first trace slot.
  void enqueue_fused_layers(cudaStream_t s, bool pdl, const int32_t* step_io, bool after_kernel, const int32_t* live, int step,
                            unsigned long long* trace, unsigned* smid);
  void enqueue_chain(cudaStream_t s, bool pdl, bool greedy);
  void drop_graphs();
  void reserve_block_records(int64_t steps);
  GemvParams lm_head_params() const;
  GraphExec& graph(StepMode mode);
  static float clamp_uniform(double u);
  void run_step(int32_t token, StepMode mode, const SampleConfig* sc);
  void capture(StepMode mode);
  SampleConfig sample_config(const SamplerParams& sp, double uniform) const;
  void activate() const;

  std::shared_ptr<const Model> m_model;
  const Config& m_c;
  int m_device = 0;
  std::string m_device_name;
  DType m_wdt = DType::BF16;  // weights and the projections' inputs
  DType m_sdt = DType::BF16;  // the SSD's matmul operands (bf16 unless f32: fp16 would risk overflow in states)
  bool m_pdl = false, m_use_graph = true;
  OpProfiler* m_prof = nullptr;

  std::unique_ptr<Stream> m_stream;
  std::unique_ptr<CublasHandle> m_blas;

  // weights
  DeviceBuffer m_embedding, m_norm_f, m_lm_head;  // m_lm_head empty when tied
  std::vector<DevLayer> m_layers;
  const void* lm_head() const { return m_lm_head.empty() ? m_embedding.get() : m_lm_head.get(); }

  // live state: conv rings (L, conv_dim, K) and SSM states (L, H, P, N), fp32
  DeviceBuffer m_ring, m_ssm;
  int64_t m_pos = 0;  // ring position of the next token
  int64_t m_n_tokens = 0;

  // prefill workspace (grown on demand)
  int64_t m_cap = 0;
  DeviceBuffer m_ids, m_resid, m_h, m_zx, m_xbc, m_xbc_act, m_dt, m_cs, m_y, m_y_off, m_xs, m_y_act, m_logits_ws;
  DeviceBuffer m_gate_ss, m_gate_v;  // fused chunk scan: per-(token, head) sums of squares; fp32 v when not in m_y_act
  PinnedBuffer m_ids_pinned;
  SsdChunkedWorkspace m_ssd_ws;
  int64_t m_lm_rows = 0;

  // decode buffers (fixed, so captured graphs stay valid)
  DeviceBuffer m_io_dev, m_r_dec, m_zx_dec, m_y_dec, m_logits_dec;
  bool m_decode_fused = true;
  DecodeLayerPlan m_layer_plan;  // cs == 0: the shape takes the three-kernel decode
  // One kernel per layer: the residual entering each layer, its clusters' out_proj partial products and
  // sums of squares, double-buffered by layer parity: (2, D), (2, nc, D), (2, nc).
  DeviceBuffer m_lay_r, m_lay_parts, m_lay_ss;
  PinnedBuffer m_io_pinned, m_logits_pinned;
  DeviceBuffer m_sample_ws;  // SampleWorkspace
  GraphExec m_graphs[4];     // by StepMode
  DeviceBuffer m_argmax_ws;  // ArgmaxWorkspace of the greedy chain's LM head
  int m_chain_len = 0;
  DeviceBuffer m_chain_dev;  // ChainIO
  PinnedBuffer m_chain_pinned;
  bool m_chain_trace_on = false;
  DeviceBuffer m_chain_trace;  // (kMaxChain, n_layer + 3, kTraceSlots) u64
  std::vector<uint64_t> m_chain_trace_host;
  DeviceBuffer m_smid;   // see decode_smid
  DeviceBuffer m_trace;  // (3 * n_layer + 1, kTraceSlots) u64, see set_decode_trace

  bool m_trace_on = false;
  const float* m_last_logits_dev = nullptr;
};

}  // namespace mamba
