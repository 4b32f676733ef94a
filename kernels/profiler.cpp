#include "kernels/profiler.h"

namespace mamba {

void OpProfiler::mark(const char* label, cudaStream_t s) {
  if (m_used == m_events.size()) m_events.emplace_back(true);
  m_events[m_used].record(s);
  if (m_labels.size() < m_used + 1) m_labels.resize(m_used + 1);
  m_labels[m_used] = label;
  ++m_used;
}

void OpProfiler::finish(cudaStream_t s) { mark("", s); }

void OpProfiler::collect() {
  for (size_t i = 0; i + 1 < m_used; ++i) {
    if (m_labels[i].empty()) continue;  // the gap between a finish() and the next mark
    const float ms = m_events[i + 1].ms_since(m_events[i]);
    m_totals[m_labels[i]] += ms;
    m_counts[m_labels[i]] += 1;
  }
  m_used = 0;
}

}  // namespace mamba
