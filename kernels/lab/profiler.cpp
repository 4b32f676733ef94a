#include "kernels/lab/profiler.h"

#include "kernels/lab.h"

namespace mamba {

namespace {
OpProfiler* g_profiler = nullptr;
}  // namespace

void OpProfiler::mark(const char* label, cudaStream_t s) {
  if (m_used == m_events.size()) m_events.emplace_back(true);
  m_events[m_used].record(s);
  if (m_labels.size() < m_used + 1) m_labels.resize(m_used + 1);
  m_labels[m_used] = label;
  ++m_used;
}

void OpProfiler::collect() {
  for (size_t i = 0; i + 1 < m_used; ++i) {
    if (m_labels[i].empty()) continue;  // the gap between a closing mark and the next op
    const float ms = m_events[i + 1].ms_since(m_events[i]);
    m_totals[m_labels[i]] += ms;
    m_counts[m_labels[i]] += 1;
  }
  m_used = 0;
}

namespace lab {
void attach(OpProfiler* p) { g_profiler = p; }
void mark(const char* label, cudaStream_t s) {
  if (g_profiler) g_profiler->mark(label, s);
}
bool profiling() { return g_profiler != nullptr; }
}  // namespace lab

}  // namespace mamba
