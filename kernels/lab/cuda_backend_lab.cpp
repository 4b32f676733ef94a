// Lab build only: the CudaBackend's measurement for mamba-cuda-profile. Kernel timelines (%globaltimer), the
// one-kernel decode's per-block records, graph replay timing, and switches read from the environment each time
// a decode graph is captured (the tool sets them per variant; results are wrong where a switch says so):
//   MAMBA_CUDA_LAYER_TRIGGER=0..5  where the layer kernel lets the next launch (decode_layer.cuh; production 0)
//   MAMBA_CUDA_LAYER_SKIP=bits     the layer kernel leaves work out (1 partial products, 2 in_proj dots, 4 state)
//   MAMBA_CUDA_DECODE_SKIP=bits    the three-kernel decode leaves kernels out (1 in_proj, 2 SSM step, 4 out_proj,
//                                  8 LM head; 16 the SSM step's state stores)
//   MAMBA_CUDA_PREFETCH=0          no next-layer L2 prefetch in the three-kernel decode
//   MAMBA_CUDA_TRIGGER=abc         in_proj (a) and out_proj (c) GEMVs: 'w' past the wait, 's' at the start,
//                                  'l' after the last weight load (b, the SSM step, is ignored)
//   MAMBA_CUDA_GEMV_PIPE=abc       '1': the streaming GEMV's depth-1 x 8 pipeline for in_proj, out_proj, LM head
//   MAMBA_CUDA_CHAIN_TRIGGER=0..2  a sampled chain's sampler lets the next step launch 0 past its wait, 1 before
//                                  it, 2 when done (production)
//   MAMBA_CUDA_CHAIN_NOHALT=1      a chain's layers skip the halt check (a stop id then leaves the state wrong)
#include <cstdlib>
#include <cstring>
#include <string>

#include "engine/error.h"
#include "kernels/cuda_backend_impl.h"
#include "kernels/cuda_check.h"
#include "kernels/lab/cuda_lab.h"
#include "kernels/ssm_step.cuh"

namespace mamba {

namespace {

int64_t env_int(const char* name, int64_t dflt) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoll(v, nullptr, 10) : dflt;
}

char env_char(const char* name, size_t i, char dflt) {
  const char* v = std::getenv(name);
  return v && std::strlen(v) > i ? v[i] : dflt;
}

int gemv_trigger(char c) { return c == 's' ? kGemvTrigStart : c == 'l' ? kGemvTrigLoads : -1; }

// Slots 0 and 1 of each kernel take minima, the others maxima.
std::vector<uint64_t> blank_trace(size_t n) {
  std::vector<uint64_t> t(n, 0);
  for (size_t k = 0; k < n; k += kTraceSlots) t[k] = t[k + 1] = ~uint64_t(0);
  return t;
}

void blank(DeviceBuffer& b) {
  const std::vector<uint64_t> t = blank_trace(b.bytes() / sizeof(uint64_t));
  CUDA_CHECK(cudaMemcpy(b.get(), t.data(), b.bytes(), cudaMemcpyHostToDevice));
}

}  // namespace

LabHooks CudaBackend::lab_hooks(LabKernel k, int64_t layer, int step) const {
  LabHooks h;
  const int64_t L = m_c.n_layer, rec = kRecordStride * kDecodeBlockRec;
  const CudaLab* lab = m_lab.get();
  if (step < 0 && lab && lab->trace) {
    const int64_t slot = k == LabKernel::InProj    ? 3 * layer
                         : k == LabKernel::SsmStep ? 3 * layer + 1
                         : k == LabKernel::OutProj ? 3 * layer + 2
                         : k == LabKernel::Layer   ? 3 * layer
                         : k == LabKernel::Finish  ? 3 * (L - 1) + 1
                         : k == LabKernel::LmHead  ? 3 * L
                                                   : -1;
    if (slot >= 0) h.trace = lab->trace_buf.as<unsigned long long>() + kTraceSlots * slot;
    if (k == LabKernel::Layer) h.records = lab->records.as<unsigned>() + layer * rec;
  }
  if (step >= 0 && lab && lab->chain_trace) {
    const int64_t slot = k == LabKernel::Layer ? layer : k == LabKernel::Finish ? L : k == LabKernel::LmHead ? L + 1 : L + 2;
    h.trace = lab->chain_trace_buf.as<unsigned long long>() + kTraceSlots * (step * (L + 3) + slot);
    if (k == LabKernel::Layer) h.records = lab->records.as<unsigned>() + (step * L + layer) * rec;
  }
  switch (k) {
    case LabKernel::Layer:
      h.trigger = int(env_int("MAMBA_CUDA_LAYER_TRIGGER", -1));
      h.skip = int(env_int("MAMBA_CUDA_LAYER_SKIP", 0));
      break;
    case LabKernel::InProj:
      h.trigger = gemv_trigger(env_char("MAMBA_CUDA_TRIGGER", 0, 'w'));
      h.variant = env_char("MAMBA_CUDA_GEMV_PIPE", 0, '4') == '1';
      break;
    case LabKernel::OutProj:
      h.trigger = gemv_trigger(env_char("MAMBA_CUDA_TRIGGER", 2, 'w'));
      h.variant = env_char("MAMBA_CUDA_GEMV_PIPE", 1, '4') == '1';
      break;
    case LabKernel::LmHead: h.variant = env_char("MAMBA_CUDA_GEMV_PIPE", 2, '4') == '1'; break;
    case LabKernel::SsmStep: h.skip = env_int("MAMBA_CUDA_DECODE_SKIP", 0) & 16 ? kSsmSkipStore : 0; break;
    case LabKernel::Sampler:
      if (step >= 0) {
        const int64_t t = env_int("MAMBA_CUDA_CHAIN_TRIGGER", 2);
        h.trigger = t == 0 ? 0 : t == 1 ? 1 : -1;
      }
      break;
    case LabKernel::Finish: break;
  }
  return h;
}

bool CudaBackend::lab_leaves_out(LabKernel k) const {
  const int64_t skip = env_int("MAMBA_CUDA_DECODE_SKIP", 0);
  return (k == LabKernel::InProj && (skip & 1)) || (k == LabKernel::SsmStep && (skip & 2)) || (k == LabKernel::OutProj && (skip & 4)) ||
         (k == LabKernel::LmHead && (skip & 8));
}

bool CudaBackend::lab_prefetch() const { return env_int("MAMBA_CUDA_PREFETCH", 1) != 0; }

bool CudaBackend::lab_chain_halt() const { return env_int("MAMBA_CUDA_CHAIN_NOHALT", 0) == 0; }

void CudaBackend::set_decode_trace(bool on) {
  if (!m_lab) m_lab = std::make_unique<CudaLab>();
  const int64_t L = m_c.n_layer;
  if (on && m_lab->trace_buf.empty()) m_lab->trace_buf = DeviceBuffer(sizeof(uint64_t) * kTraceSlots * size_t(3 * L + 1), "decode trace");
  m_lab->records.reserve(sizeof(uint32_t) * size_t((m_lab->chain_trace ? CudaOptions::kMaxChain : 1) * L * kRecordStride * kDecodeBlockRec),
                         "decode block records");
  m_lab->trace = on;
  drop_graphs();
}

std::vector<uint64_t> CudaBackend::decode_trace_step() {
  if (!m_lab || !m_lab->trace) throw Error("decode_trace_step: tracing is off (set_decode_trace)");
  activate();
  const GraphKey key{StepMode::Logits, false, false};
  if (!graph(key).ready()) capture(key);
  cudaStream_t s = m_stream->get();
  m_stream->sync();
  blank(m_lab->trace_buf);
  StepIO* io = m_io_pinned.as<StepIO>();
  io->token = 1 % static_cast<int32_t>(m_c.vocab_size);
  io->pos = static_cast<int32_t>(m_pos);
  graph(key).launch(s);
  std::vector<uint64_t> t(m_lab->trace_buf.bytes() / sizeof(uint64_t));
  CUDA_CHECK(cudaMemcpyAsync(t.data(), m_lab->trace_buf.get(), m_lab->trace_buf.bytes(), cudaMemcpyDeviceToHost, s));
  m_stream->sync();
  m_pos = (m_pos + 1) % m_c.d_conv;
  m_n_tokens += 1;
  return t;
}

void CudaBackend::set_chain_trace(bool on) {
  if (!m_lab) m_lab = std::make_unique<CudaLab>();
  const int64_t L = m_c.n_layer;
  if (on && m_lab->chain_trace_buf.empty())
    m_lab->chain_trace_buf = DeviceBuffer(sizeof(uint64_t) * kTraceSlots * size_t(CudaOptions::kMaxChain * (L + 3)), "decode chain trace");
  if (on)
    m_lab->records.reserve(sizeof(uint32_t) * size_t(CudaOptions::kMaxChain * L * kRecordStride * kDecodeBlockRec), "decode block records");
  m_lab->chain_trace = on;
  if (on) blank(m_lab->chain_trace_buf);
  drop_graphs();
}

const std::vector<uint64_t>& CudaBackend::chain_trace() const {
  if (!m_lab || m_lab->chain_trace_buf.empty()) throw Error("chain_trace: no chain trace (set_chain_trace)");
  m_stream->sync();
  m_lab->chain_trace_host.resize(m_lab->chain_trace_buf.bytes() / sizeof(uint64_t));
  CUDA_CHECK(
      cudaMemcpy(m_lab->chain_trace_host.data(), m_lab->chain_trace_buf.get(), m_lab->chain_trace_buf.bytes(), cudaMemcpyDeviceToHost));
  blank(m_lab->chain_trace_buf);  // the next chain's stamps start afresh
  return m_lab->chain_trace_host;
}

std::vector<uint32_t> CudaBackend::decode_records() const {
  if (!m_lab || m_lab->records.empty()) return {};
  m_stream->sync();
  std::vector<uint32_t> out(m_lab->records.bytes() / sizeof(uint32_t));
  CUDA_CHECK(cudaMemcpy(out.data(), m_lab->records.get(), m_lab->records.bytes(), cudaMemcpyDeviceToHost));
  return out;
}

double CudaBackend::decode_graph_ms(int n) {
  activate();
  const GraphKey key{StepMode::Logits, false, false};
  if (!graph(key).ready()) capture(key);
  cudaStream_t s = m_stream->get();
  m_stream->sync();
  StepIO* io = m_io_pinned.as<StepIO>();
  io->token = 1 % static_cast<int32_t>(m_c.vocab_size);
  io->pos = static_cast<int32_t>(m_pos);
  graph(key).launch(s);  // warm-up
  Event a, b;
  a.record(s);
  for (int i = 0; i < n; ++i) graph(key).launch(s);
  b.record(s);
  const double ms = b.ms_since(a) / std::max(1, n);
  // Every replay used the same ring position, so the state is only good for more timing: reset it after.
  m_pos = (m_pos + 1) % m_c.d_conv;
  m_n_tokens += n + 1;
  return ms;
}

}  // namespace mamba
