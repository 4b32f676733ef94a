#pragma once
// Event timer for a breakdown of where device time goes. The backend calls prof_mark() before each
// operation; with no profiler attached that is one null test, so it costs nothing when off.
// Timing one op at a time serialises launches, so the sum is an upper bound on graph-replay time.
#include <cuda_runtime_api.h>

#include <map>
#include <string>
#include <vector>

#include "kernels/cuda_memory.h"

namespace mamba {

class OpProfiler {
 public:
  void mark(const char* label, cudaStream_t s);  // closes the previous op and opens `label`
  void finish(cudaStream_t s);                   // closes the last op
  void collect();                                // synchronises and adds this round's times into totals
  void clear() {
    m_totals.clear();
    m_counts.clear();
  }
  const std::map<std::string, double>& totals_ms() const { return m_totals; }
  const std::map<std::string, int64_t>& counts() const { return m_counts; }

 private:
  std::vector<Event> m_events;
  std::vector<std::string> m_labels;
  size_t m_used = 0;
  std::map<std::string, double> m_totals;
  std::map<std::string, int64_t> m_counts;
};

inline void prof_mark(OpProfiler* p, const char* label, cudaStream_t s) {
  if (p) p->mark(label, s);
}

}  // namespace mamba
