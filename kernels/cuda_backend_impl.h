#pragma once
// The CUDA backend class, for tests and the lab tools (the app reaches it only as a Backend). Its sources:
//   cuda_backend.cpp        construction, weights, the live state
//   cuda_prefill.cpp        forward(): cuBLAS projections and the chunked or recurrent SSD, prompt probes
//   cuda_decode.cpp         one decode step as one captured graph: step(), sample_last(), step_sample()
//   cuda_decode_chain.cpp   chains of steps in one graph, and decode(), which runs them for the Session
//   lab/cuda_backend_lab.cpp  (lab build only) timelines, block records, graph timing
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/sampler.h"
#include "kernels/cuda_memory.h"
#include "kernels/cuda_options.h"
#include "kernels/decode_layer.cuh"
#include "kernels/decode_probes.h"
#include "kernels/dtype.h"
#include "kernels/gemv.cuh"
#include "kernels/lab.cuh"
#include "kernels/sampling.cuh"
#include "kernels/ssd_chunked.h"

namespace mamba {

#if MAMBA_CUDA_LAB
struct CudaLab;
#endif

class CudaBackend final : public Backend {
 public:
  CudaBackend(std::shared_ptr<const Model> model, const BackendOptions& opt, const CudaOptions& cuda = CudaOptions::from_env());
  ~CudaBackend() override;

  std::string name() const override;
  const Model& model() const override { return *m_model; }
  void reset_state() override;
  void set_state(const State& s) override;
  State get_state() const override;
  int64_t n_tokens() const override { return m_n_tokens; }
  void forward(std::span<const int32_t> tokens, const ForwardOptions& opt, float* logits) override;
  void step(int32_t token, float* logits, ProbeSink* probes = nullptr) override;
  void last_logits(std::span<float> out) const override;
  std::vector<float> last_logits() const;
  // Samples on the device: the first id from the last forward/step's logits, then chains of steps (each step's
  // sampler feeds the next step's token on the device) or single steps, with the chosen ids' probabilities,
  // alternatives and probes computed there too. Only a repetition penalty (it needs the host history) takes
  // the host loop of Backend::decode.
  int64_t decode(const DecodeRequest& req, Sampler& sampler, std::span<const int32_t> history, const DecodeCallback& on_token) override;
  std::string decode_path(const SamplerParams& sp) const override;
  uint64_t weight_bytes() const override;
  std::string weights_dtype() const override { return dtype_name(m_wdt); }

  // The pieces decode() is made of (tests hold them against each other). `uniform`: the draw in [0, 1) when
  // sampling; `info`: null, or the chosen id's probability and its top_n alternatives (<= kReportTop);
  // `probes`: as step(). Empty when the settings need the host (repetition penalty).
  std::optional<int32_t> sample_last(const SamplerParams& sp, double uniform, SampleInfo* info = nullptr, int top_n = 0);
  std::optional<int32_t> step_sample(int32_t token, const SamplerParams& sp, double uniform, SampleInfo* info = nullptr, int top_n = 0,
                                     ProbeSink* probes = nullptr);
  // Feeds `token` and samples up to uniforms.size() (<= decode_chain()) ids in one graph; a sampled stop id
  // ends the chain after it. Returns the ids; `infos` (when not null) gets one SampleInfo per id.
  std::vector<int32_t> step_sample_chain(int32_t token, const SamplerParams& sp, std::span<const double> uniforms,
                                         std::span<const int32_t> stop, std::vector<SampleInfo>* infos = nullptr, int top_n = 0,
                                         ProbeSink* probes = nullptr);
  static constexpr int kMaxStop = 8;

  // Settings (CudaOptions), changeable after construction; each drops the captured graphs.
  const CudaOptions& options() const { return m_opt; }
  int decode_chain() const;  // the chain length decode() uses, 0 when it runs single steps
  void set_decode_chain(int steps);
  void set_use_graph(bool on);
  void set_pdl(bool on);  // on only where the GPU has it (sm_90+)
  bool pdl() const { return m_pdl; }
  void set_decode_fused(bool on);
  bool decode_fused() const { return m_opt.layer_fused && m_layer_plan.cs > 0; }
  const DecodeLayerPlan& decode_layer_plan() const { return m_layer_plan; }
  void set_fused_scan(bool on) { m_opt.fused_scan = on; }
  void set_segment(int64_t tokens);
  DType weight_dtype() const { return m_wdt; }

#if MAMBA_CUDA_LAB
  // ---- Lab build only (kernels/lab/cuda_backend_lab.cpp): measurement for the profiling tools. ----
  // Per-kernel %globaltimer timelines (lab.cuh's kTraceSlots per kernel): a single step's (3 per layer, then
  // the LM head; the one-kernel decode uses each layer's first slot and the finish kernel the second of the
  // last layer), one step run by decode_trace_step(); a chain's (per step n_layer + 3: layers, finish, LM
  // head, sampler), the last chain's in chain_trace().
  void set_decode_trace(bool on);
  std::vector<uint64_t> decode_trace_step();
  void set_chain_trace(bool on);
  const std::vector<uint64_t>& chain_trace() const;
  // With either trace on, the one-kernel decode's per-block records (decode_layer.cuh DecodeClock):
  // (steps, n_layer, kRecordStride, kDecodeBlockRec) words.
  static constexpr int64_t kRecordStride = 128;
  std::vector<uint32_t> decode_records() const;
  // Device time per decode step over `n` graph replays back to back (the state advances).
  double decode_graph_ms(int n);
#endif

 private:
  struct DevLayer {
    DeviceBuffer norm, in_proj, in_bias, conv_w, conv_b, dt_bias, A, D, gnorm, out_proj, out_bias;
  };
  // A single step's inputs and outputs, pinned on the host and mirrored on the device: the graph copies in up
  // to out_id and out what its mode produces.
  struct StepIO {
    int32_t token = 0;
    int32_t pos = 0;
    SampleConfig sample;
    int32_t out_id = 0;
    SampleReport report;
  };
  // A chain's inputs and outputs, likewise: copied in up to `ids`, out from `ids` on (the reports only when
  // the chain reports).
  struct ChainIO {
    SampleConfig sample;  // u unused: one draw per step below
    int32_t live = 0;     // steps k < live run; a step that samples a stop id lowers it to k + 1
    int32_t n_stop = 0;
    int32_t stop[kMaxStop] = {};
    float u[CudaOptions::kMaxChain] = {};
    int32_t slot[CudaOptions::kMaxChain][2] = {};  // per step: {token, ring position}; tokens after the first come from the samplers
    int32_t ids[CudaOptions::kMaxChain] = {};      // the sampled ids
    SampleReport reports[CudaOptions::kMaxChain];
  };
  // Logits: the logits go to the host. Sample: the sampler's id. Chain: steps with a sampler after each LM
  // head. ChainGreedy: the LM head takes the argmax itself (GemvParams::argmax_ws), no sampler.
  enum class StepMode { Logits, Sample, Chain, ChainGreedy };
  struct GraphKey {
    StepMode mode = StepMode::Logits;
    bool report = false;  // the sampler writes a SampleReport
    bool probes = false;  // the probe-writing kernel instances, and the probes copied out
  };
  enum class LogitRows { None, Last, All };
  // Decode kernels the lab can hook (lab_hooks).
  enum class LabKernel { InProj, SsmStep, OutProj, LmHead, Layer, Finish, Sampler };

  // cuda_backend.cpp
  void upload_weights();
  DeviceBuffer upload(const std::vector<float>& t, DType dt, const char* what);
  void check_ids(std::span<const int32_t> ids) const;
  void activate() const;
  // cuda_prefill.cpp
  void reserve_prefill(int64_t T_pad);
  void capture_layer_rows(LayerCapture& cap, int64_t l, int64_t T, int64_t T_pad);
  // capture: copies one layer's scan inputs and output (engine/ssd_matrix.h); the forward then runs the recurrent scan.
  void prefill_segment(const int32_t* ids, int64_t T, bool chunked, int64_t Q, float* out, LogitRows want, ProbeSink* probes,
                       ResidualSink* residuals, LayerCapture* capture);
  // cuda_decode.cpp
  void enqueue_step(cudaStream_t s, const GraphKey& key, bool pdl);
  void enqueue_three_kernel_layers(cudaStream_t s, bool pdl, float* probe);
  // step_io: device {token, ring position}; after_kernel: layer 0 follows a kernel (PDL applies); live/step:
  // DecodeLayerParams (null for a single step); probe: this step's probe rows, or null.
  void enqueue_fused_layers(cudaStream_t s, bool pdl, const int32_t* step_io, bool after_kernel, const int32_t* live, int step,
                            float* probe);
  GemvParams lm_head_params() const;
  GraphExec& graph(const GraphKey& key);
  void capture(const GraphKey& key);
  void drop_graphs();
  void run_step(int32_t token, const GraphKey& key, const SampleConfig* sc);
  SampleConfig sample_config(const SamplerParams& sp, double uniform) const;
  static float clamp_uniform(double u);
  static void to_info(const SampleReport& r, int top_n, SampleInfo* info);
  // probes
  DecodeProbeLayout probe_layout() const;
  float* probe_rows(int step, int64_t layer) const;  // where step `step`'s layer writes its probe values
  void reserve_probes();
  // cuda_decode_chain.cpp
  void enqueue_chain(cudaStream_t s, const GraphKey& key, bool pdl);
#if MAMBA_CUDA_LAB
  LabHooks lab_hooks(LabKernel k, int64_t layer, int step) const;
  bool lab_leaves_out(LabKernel k) const;
  bool lab_prefetch() const;
  bool lab_chain_halt() const;
#else
  LabHooks lab_hooks(LabKernel, int64_t, int) const { return {}; }
  static constexpr bool lab_leaves_out(LabKernel) { return false; }
  static constexpr bool lab_prefetch() { return true; }
  static constexpr bool lab_chain_halt() { return true; }
#endif

  std::shared_ptr<const Model> m_model;
  const Config& m_c;
  CudaOptions m_opt;
  int m_device = 0;
  std::string m_device_name;
  DType m_wdt = DType::BF16;  // weights and the projections' inputs
  DType m_sdt = DType::BF16;  // the SSD's matmul operands (bf16 unless f32: fp16 would risk overflow in states)
  bool m_pdl = false;         // m_opt.pdl where the GPU has it

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
  DeviceBuffer m_gate_ss, m_gate_v;                   // fused chunk scan: per-(token, head) sums of squares; fp32 v when not in m_y_act
  std::vector<float> m_resid_host;                    // the residual after a layer, for ForwardOptions::residuals
  DeviceBuffer m_pf_ss, m_pf_y, m_pf_s_in, m_pf_out;  // prompt probes: row sums of squares, y, fp32 entry states, values
  PinnedBuffer m_ids_pinned;
  SsdChunkedWorkspace m_ssd_ws;
  int64_t m_lm_rows = 0;

  // decode buffers (fixed, so captured graphs stay valid)
  DeviceBuffer m_io_dev, m_r_dec, m_zx_dec, m_y_dec, m_logits_dec;
  DecodeLayerPlan m_layer_plan;  // cs == 0: the shape takes the three-kernel decode
  // One kernel per layer: the residual entering each layer, its clusters' out_proj partial products and
  // sums of squares, double-buffered by layer parity: (2, D), (2, nc, D), (2, nc).
  DeviceBuffer m_lay_r, m_lay_parts, m_lay_ss;
  PinnedBuffer m_io_pinned, m_logits_pinned;
  DeviceBuffer m_sample_ws;  // SampleWorkspace
  DeviceBuffer m_argmax_ws;  // ArgmaxWorkspace of the greedy chain's LM head
  GraphExec m_graphs[16];    // by GraphKey
  DeviceBuffer m_chain_dev;  // ChainIO
  PinnedBuffer m_chain_pinned;
  // decode probes: (kMaxChain, n_layer, DecodeProbeLayout::stride()) on the device and pinned on the host
  DeviceBuffer m_probe_dev;
  PinnedBuffer m_probe_pinned;
  const float* m_last_logits_dev = nullptr;

#if MAMBA_CUDA_LAB
  std::unique_ptr<CudaLab> m_lab;
  friend struct CudaLab;
#endif
};

}  // namespace mamba
